//! One JWKS document → the keys the gateway will use, by `kid`.
//!
//! Only keys that can verify exactly one of the three accepted algorithms are kept, each bound
//! to that algorithm: RSA → RS256, EC P-256 → ES256, OKP Ed25519 → EdDSA, and a JWK's `alg`, when
//! present, must agree. So a token's `alg` can never make a key verify with another algorithm.
//! Symmetric (`oct`) keys are never taken from a JWKS: HS256 is verified with `jwt_secret` only,
//! so a published key cannot become an HMAC secret. Every other key is skipped with the reason,
//! which the caller logs (and, at start, puts in its error when nothing usable is left).

use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::jwk::PublicKeyUse;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, Validation};
use std::collections::HashMap;
use std::sync::Arc;

/// RSA moduli outside this range (in bits) are refused: smaller is weak, larger is a CPU cost.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// One usable public key, bound to the one algorithm it verifies.
pub struct Key {
    pub algorithm: Algorithm,
    pub decoding: DecodingKey,
    /// `Validation` for `algorithm` (built once, not per token).
    pub validation: Validation,
}

pub type KeyMap = HashMap<String, Arc<Key>>;

/// The usable keys of a JWKS document, by `kid`, and why each other key was ignored.
pub fn parse(bytes: &[u8]) -> Result<(KeyMap, Vec<String>), String> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(bytes)
        .map_err(|e| format!("not a JWKS (`{{\"keys\":[...]}}`): {e}"))?;
    let mut keys = KeyMap::new();
    let mut skipped = Vec::new();
    for (index, value) in set.keys.into_iter().enumerate() {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(e) => {
                skipped.push(format!("key #{index}: not a JWK: {e}"));
                continue;
            }
        };
        let Some(kid) = jwk.common.key_id.clone().filter(|kid| !kid.is_empty()) else {
            skipped.push(format!("key #{index}: no `kid`"));
            continue;
        };
        if keys.contains_key(&kid) {
            skipped.push(format!("key `{kid}`: a second key with this `kid`"));
            continue;
        }
        match usable(&jwk) {
            Ok(key) => {
                keys.insert(kid, Arc::new(key));
            }
            Err(reason) => skipped.push(format!("key `{kid}`: {reason}")),
        }
    }
    Ok((keys, skipped))
}

/// The key as a verifier for its one algorithm, or why it cannot be used.
fn usable(jwk: &Jwk) -> Result<Key, String> {
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(other) => return Err(format!("`use` is {other:?}, not `sig`")),
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.contains(&KeyOperations::Verify) {
            return Err("`key_ops` lacks `verify`".into());
        }
    }
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::EllipticCurve(p) => {
            return Err(format!("curve {:?} is not accepted (P-256 only)", p.curve))
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            return Err(format!(
                "curve {:?} is not accepted (Ed25519 only)",
                p.curve
            ))
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric (`oct`) keys are not taken from a JWKS".into())
        }
        _ => return Err("unsupported key type".into()),
    };
    if let Some(alg) = jwk.common.key_algorithm {
        if alg != KeyAlgorithm::from(algorithm) {
            return Err(format!(
                "`alg` {alg:?} does not fit the key (it would verify {algorithm:?})"
            ));
        }
    }
    let decoding = DecodingKey::from_jwk(jwk).map_err(|e| format!("bad key material: {e}"))?;
    check_material(algorithm, &decoding)?;
    let provider = CryptoProvider::try_get_default()
        .ok_or("jsonwebtoken has no crypto provider (a build problem)")?;
    (provider.verifier_factory)(&algorithm, &decoding)
        .map_err(|e| format!("bad key material: {e}"))?;
    let mut validation = Validation::new(algorithm);
    super::validation::relax_validation(&mut validation);
    Ok(Key {
        algorithm,
        decoding,
        validation,
    })
}

/// Sizes the verifiers would otherwise trip over at verification time (an Ed25519 key shorter
/// than 32 bytes makes `jsonwebtoken` 12 panic there) or that are too weak to trust.
fn check_material(algorithm: Algorithm, key: &DecodingKey) -> Result<(), String> {
    match (algorithm, key.kind()) {
        (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            let bits = significant_bits(n);
            if !RSA_BITS.contains(&bits) {
                return Err(format!(
                    "an RSA modulus of {bits} bits (accepted: {} to {})",
                    RSA_BITS.start(),
                    RSA_BITS.end()
                ));
            }
            if e.is_empty() || e.len() > 8 {
                return Err("a malformed RSA exponent".into());
            }
        }
        (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) if point.len() == 65 => {}
        (Algorithm::EdDSA, DecodingKeyKind::SecretOrDer(x)) if x.len() == 32 => {}
        _ => return Err("key material of the wrong size".into()),
    }
    Ok(())
}

fn significant_bits(bytes: &[u8]) -> usize {
    let bytes = match bytes.iter().position(|b| *b != 0) {
        Some(first) => &bytes[first..],
        None => return 0,
    };
    bytes.len() * 8 - bytes[0].leading_zeros() as usize
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;
    use std::path::PathBuf;

    /// A file of `tests/fixtures/jwks/` (test-only keys).
    pub(crate) fn fixture(name: &str) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwks")).join(name)
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn unusable_keys_are_skipped_with_a_reason() {
        let set: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixture("jwks.json")).unwrap()).unwrap();
        let rsa = set["keys"][0].clone();
        let ec = set["keys"][1].clone();
        let with = |key: &serde_json::Value, patch: serde_json::Value| {
            let mut key = key.clone();
            for (field, value) in patch.as_object().unwrap() {
                key[field] = value.clone();
            }
            key
        };
        let document = json!({"keys": [
            rsa,
            {"kty": "oct", "kid": "hmac", "k": b64(b"a shared secret")},
            with(&rsa, json!({"kid": "rsa-as-es256", "alg": "ES256"})),
            with(&rsa, json!({"kid": "rsa-384", "alg": "RS384"})),
            with(&rsa, json!({"kid": "rsa-enc", "use": "enc"})),
            with(&rsa, json!({"kid": "rsa-sign-only", "key_ops": ["sign"]})),
            with(&rsa, json!({"kid": "rsa-1024", "n": b64(&[0xff; 128])})),
            with(&rsa, json!({"kid": "rsa-1"})),
            with(&ec, json!({"kid": "p384", "crv": "P-384", "x": b64(&[1; 48]), "y": b64(&[1; 48])})),
            with(&ec, json!({"kid": "off-curve", "x": b64(&[0; 32]), "y": b64(&[0; 32])})),
            {"kty": "OKP", "kid": "ed-short", "crv": "Ed25519", "x": b64(&[7; 3])},
            {"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": b64(&[7; 32])},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            {"kid": "no-kty"},
            "not an object",
        ]});
        let (keys, skipped) = parse(document.to_string().as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["rsa-1"]);
        assert_eq!(skipped.len(), 14, "{skipped:#?}");
        for kid in [
            "hmac",
            "rsa-as-es256",
            "rsa-384",
            "rsa-enc",
            "rsa-1024",
            "off-curve",
        ] {
            assert!(
                skipped
                    .iter()
                    .any(|reason| reason.contains(&format!("`{kid}`"))),
                "{kid} in {skipped:#?}"
            );
        }
    }
}
