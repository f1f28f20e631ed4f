//! JSON Web Tokens, verified with the `jsonwebtoken` crate.
//!
//! Which key verifies a token depends only on its header's `alg`, and each algorithm has one
//! source of keys, so no key can be used with an algorithm it was not meant for:
//!
//! - `HS256`: `jwt_secret`, and nothing else. An HS256 token "signed" with a published RSA or
//!   EC key (the classic algorithm-confusion attack) fails, because a public key is never used
//!   as an HMAC secret.
//! - `RS256`, `ES256`, `EdDSA`: the key of `jwt_jwks` that the header's `kid` names, which must
//!   be bound to that very algorithm ([`super::jwks`]).
//! - anything else, including `none` and the other HMAC and RSA variants: refused.
//!
//! The header's `jwk`, `jku`, `x5u` and `x5c` are ignored: a token never brings its own key.
//! Sign-in tokens are HS256 with `jwt_secret`.

use super::jwks::Jwks;
use super::validation::relax_validation;
use crate::domain::Id;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm, or not the algorithm of the key")]
    Algorithm,
    #[error("no key with the token's kid")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token names no user")]
    NoSubject,
}

impl From<jsonwebtoken::errors::Error> for JwtError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::InvalidSignature => JwtError::Signature,
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::ImmatureSignature => JwtError::NotYetValid,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::MissingAlgorithm
            | ErrorKind::UnsupportedAlgorithm => JwtError::Algorithm,
            _ => JwtError::Malformed,
        }
    }
}

/// The claims of the tokens the gateway signs (sign-in) and that backends may mint. The user id
/// goes in both `sub` and Tiledesk's `_id`, so Tiledesk clients that read `_id` find it.
#[derive(Debug, Serialize, Default)]
pub struct Claims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none")]
    pub legacy_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// What a verified token is read for: who it speaks for. Any JSON type is accepted here so that
/// an odd `sub` (Tiledesk's `"user"`, a number) falls through to `_id` instead of failing.
#[derive(Deserialize)]
struct Identity {
    sub: Option<serde_json::Value>,
    #[serde(rename = "_id")]
    legacy_id: Option<serde_json::Value>,
}

impl Identity {
    /// docs/protocol.md §1: `sub` when it is a user id (a UUID), else `_id`. Tiledesk puts `"user"`
    /// (or `"guest"`, ...) in `sub` and the user id in `_id`.
    fn user_id(&self) -> Option<Id> {
        let as_id = |value: &Option<serde_json::Value>| value.as_ref()?.as_str()?.parse().ok();
        as_id(&self.sub).or_else(|| as_id(&self.legacy_id))
    }
}

/// Signs (HS256) and verifies tokens: the shared secret, and optionally a JWKS.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    secret: DecodingKey,
    hs256: Validation,
    jwks: Option<Arc<Jwks>>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(<redacted>)")
    }
}

impl JwtKeys {
    /// `secret` must not be empty (the configuration requires 8 characters or more).
    pub fn new(secret: &[u8]) -> Self {
        let mut hs256 = Validation::new(Algorithm::HS256);
        relax_validation(&mut hs256);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret).expect("the JWT secret is not empty"),
            secret: DecodingKey::from_secret(secret).expect("the JWT secret is not empty"),
            hs256,
            jwks: None,
        }
    }

    /// Also accepts RS256, ES256 and EdDSA tokens signed with a key of `jwks`.
    pub fn with_jwks(mut self, jwks: Jwks) -> Self {
        self.jwks = Some(Arc::new(jwks));
        self
    }

    /// An HS256 token with the shared secret.
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing with a non-empty secret cannot fail")
    }

    /// Verifies the signature with the key the header's `alg` (and `kid`) call for, `exp` and
    /// `nbf` (30 s of leeway), and returns the user the token speaks for.
    pub async fn verify(&self, token: &str) -> Result<Id, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        let identity: Identity = match header.alg {
            Algorithm::HS256 => jsonwebtoken::decode(token, &self.secret, &self.hs256)?.claims,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA => {
                let jwks = self.jwks.as_ref().ok_or(JwtError::Algorithm)?;
                let kid = header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
                let key = jwks.key(kid).await.ok_or(JwtError::UnknownKey)?;
                if key.algorithm != header.alg {
                    return Err(JwtError::Algorithm);
                }
                jsonwebtoken::decode(token, &key.decoding, &key.validation)?.claims
            }
            _ => return Err(JwtError::Algorithm),
        };
        identity.user_id().ok_or(JwtError::NoSubject)
    }
}

/// A token shaped like a JWT (three dot-separated parts), as opposed to an API key.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::{json, Value};

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn keys() -> JwtKeys {
        JwtKeys::new(b"secret")
    }

    /// An HS256 token over any JSON, signed with `secret`.
    fn mint(claims: &Value, secret: &[u8]) -> String {
        let key = EncodingKey::from_secret(secret).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
    }

    async fn verify(token: &str) -> Result<Id, JwtError> {
        keys().verify(token).await
    }

    #[tokio::test]
    async fn round_trip() {
        let id = crate::domain::new_id();
        let token = keys().sign(&Claims {
            sub: Some(id.to_string()),
            exp: Some(now() + 60),
            ..Default::default()
        });
        assert_eq!(verify(&token).await, Ok(id));
    }

    #[tokio::test]
    async fn wrong_secret_is_rejected() {
        let id = crate::domain::new_id();
        let token = mint(&json!({"sub": id}), b"other");
        assert_eq!(verify(&token).await, Err(JwtError::Signature));
    }

    #[tokio::test]
    async fn exp_and_nbf_have_30_s_of_leeway() {
        let id = crate::domain::new_id();
        let at = |claims: Value| mint(&claims, b"secret");
        assert_eq!(
            verify(&at(json!({"sub": id, "exp": now() - 15}))).await,
            Ok(id)
        );
        assert_eq!(
            verify(&at(json!({"sub": id, "exp": now() - 60}))).await,
            Err(JwtError::Expired)
        );
        assert_eq!(
            verify(&at(json!({"sub": id, "nbf": now() + 15}))).await,
            Ok(id)
        );
        assert_eq!(
            verify(&at(json!({"sub": id, "nbf": now() + 60}))).await,
            Err(JwtError::NotYetValid)
        );
        assert_eq!(verify(&at(json!({"sub": id}))).await, Ok(id), "no exp");
    }

    #[tokio::test]
    async fn extreme_times_neither_overflow_nor_panic() {
        let id = crate::domain::new_id();
        let at = |claims: Value| mint(&claims, b"secret");
        // The largest integers are the far future; a number beyond u64 is malformed.
        for (exp, expected) in [
            (json!(i64::MAX), Ok(id)),
            (json!(u64::MAX), Ok(id)),
            (json!(1e300), Err(JwtError::Malformed)),
        ] {
            assert_eq!(
                verify(&at(json!({"sub": id, "exp": exp}))).await,
                expected,
                "{exp}"
            );
        }
        for nbf in [json!(i64::MAX), json!(u64::MAX)] {
            assert_eq!(
                verify(&at(json!({"sub": id, "nbf": nbf}))).await,
                Err(JwtError::NotYetValid)
            );
        }
        for bad in [json!(i64::MIN), json!(-1), json!("soon")] {
            assert!(verify(&at(json!({"sub": id, "exp": bad}))).await.is_err());
            assert!(verify(&at(json!({"sub": id, "nbf": bad}))).await.is_err());
        }
    }

    #[tokio::test]
    async fn alg_none_and_other_algorithms_are_rejected() {
        let id = crate::domain::new_id();
        let payload = URL_SAFE_NO_PAD.encode(json!({"sub": id}).to_string());
        for alg in ["none", "None", "HS384", "HS512", "RS256", "PS256", ""] {
            let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
            let token = format!("{header}.{payload}.");
            assert!(verify(&token).await.is_err(), "{alg}");
        }
        let key = EncodingKey::from_secret(b"secret").unwrap();
        let hs512 = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &json!({"sub": id}), &key);
        assert_eq!(verify(&hs512.unwrap()).await, Err(JwtError::Algorithm));
    }

    #[tokio::test]
    async fn tampered_payload_is_rejected() {
        let id = crate::domain::new_id();
        let token = mint(&json!({"sub": id}), b"secret");
        let parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(json!({"sub": crate::domain::new_id()}).to_string());
        let token = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(verify(&token).await, Err(JwtError::Signature));
    }

    #[tokio::test]
    async fn the_user_is_sub_when_it_is_an_id_else_tiledesk_id() {
        let (a, b) = (crate::domain::new_id(), crate::domain::new_id());
        let cases = [
            (json!({"sub": a}), Ok(a)),
            (json!({"_id": a}), Ok(a)),
            (json!({"sub": "user", "_id": a}), Ok(a)),
            (json!({"sub": 42, "_id": a}), Ok(a)),
            (json!({"sub": a, "_id": b}), Ok(a)),
            (
                json!({"sub": "user", "_id": "5e1c9b3f8e"}),
                Err(JwtError::NoSubject),
            ),
            (json!({"sub": "user"}), Err(JwtError::NoSubject)),
            (json!({"sub": ""}), Err(JwtError::NoSubject)),
            (json!({"email": "a@example.com"}), Err(JwtError::NoSubject)),
        ];
        for (claims, expected) in cases {
            assert_eq!(
                verify(&mint(&claims, b"secret")).await,
                expected,
                "{claims}"
            );
        }
    }

    #[tokio::test]
    async fn an_audience_is_not_a_reason_to_refuse() {
        let id = crate::domain::new_id();
        for aud in [json!("https://tiledesk.com"), json!(["a", "b"])] {
            let token = mint(&json!({"_id": id, "sub": "user", "aud": aud}), b"secret");
            assert_eq!(verify(&token).await, Ok(id), "{aud}");
        }
    }

    #[tokio::test]
    async fn asymmetric_tokens_need_a_jwks() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"u"}"#);
        let token = format!("{header}.{payload}.c2ln");
        assert_eq!(verify(&token).await, Err(JwtError::Algorithm));
    }

    #[tokio::test]
    async fn garbage_is_malformed() {
        for bad in ["", "a.b", "a.b.c.d", "!!.??.**", "..", "e30.e30."] {
            assert!(verify(bad).await.is_err(), "{bad}");
        }
    }
}
