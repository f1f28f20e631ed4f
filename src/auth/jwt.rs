//! HS256 JSON Web Tokens, and nothing else.
//!
//! The gateway only ever needs HS256 with one shared secret, so this verifies exactly that:
//! a token whose header names any other algorithm (including `none`) is rejected before its
//! signature is even looked at, and the signature is compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm")]
    Algorithm,
    #[error("bad signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token names no user")]
    NoSubject,
}

/// The claims the gateway reads. Tiledesk tokens carry the user id as `_id`; ours and most
/// backends' carry it as `sub`. Either works.
#[derive(Debug, Serialize, Deserialize, Default)]
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

impl Claims {
    /// The user id the token speaks for.
    pub fn subject(&self) -> Option<&str> {
        self.sub
            .as_deref()
            .or(self.legacy_id.as_deref())
            .filter(|s| !s.is_empty())
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// Signs and verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct JwtKeys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(<redacted>)")
    }
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        JwtKeys {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts keys of any length")
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// Verifies the signature, `exp` and `nbf` (with 30 s of leeway for clock skew) and that the
    /// token names a user.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<Claims, JwtError> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(JwtError::Malformed)?;
        if payload.contains('.') {
            return Err(JwtError::Malformed);
        }
        let header: Header = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(JwtError::Malformed)?;
        if header.alg != "HS256" {
            return Err(JwtError::Algorithm);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| JwtError::Malformed)?;
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| JwtError::Signature)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(JwtError::Malformed)?;
        const LEEWAY: i64 = 30;
        if claims
            .exp
            .is_some_and(|exp| now_unix > exp.saturating_add(LEEWAY))
        {
            return Err(JwtError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| now_unix.saturating_add(LEEWAY) < nbf)
        {
            return Err(JwtError::NotYetValid);
        }
        if claims.subject().is_none() {
            return Err(JwtError::NoSubject);
        }
        Ok(claims)
    }
}

/// A token shaped like a JWT (three dot-separated parts), as opposed to an API key.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, exp: Option<i64>) -> Claims {
        Claims {
            sub: Some(sub.into()),
            exp,
            ..Default::default()
        }
    }

    #[test]
    fn round_trip() {
        let keys = JwtKeys::new(b"secret");
        let token = keys.sign(&claims("u1", Some(2_000)));
        let back = keys.verify(&token, 1_000).unwrap();
        assert_eq!(back.subject(), Some("u1"));
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let token = JwtKeys::new(b"secret").sign(&claims("u1", None));
        assert_eq!(
            JwtKeys::new(b"other").verify(&token, 0).unwrap_err(),
            JwtError::Signature
        );
    }

    #[test]
    fn expired_is_rejected_after_leeway() {
        let keys = JwtKeys::new(b"secret");
        let token = keys.sign(&claims("u1", Some(1_000)));
        assert!(keys.verify(&token, 1_020).is_ok(), "inside the leeway");
        assert_eq!(keys.verify(&token, 1_031).unwrap_err(), JwtError::Expired);
    }

    #[test]
    fn alg_none_is_rejected() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"u1"}"#);
        let token = format!("{header}.{payload}.");
        assert_eq!(
            JwtKeys::new(b"secret").verify(&token, 0).unwrap_err(),
            JwtError::Algorithm
        );
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let keys = JwtKeys::new(b"secret");
        let token = keys.sign(&claims("u1", None));
        let parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#);
        let token = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(keys.verify(&token, 0).unwrap_err(), JwtError::Signature);
    }

    #[test]
    fn legacy_id_claim_and_missing_subject() {
        let keys = JwtKeys::new(b"secret");
        let token = keys.sign(&Claims {
            legacy_id: Some("u2".into()),
            ..Default::default()
        });
        assert_eq!(keys.verify(&token, 0).unwrap().subject(), Some("u2"));
        let token = keys.sign(&Claims::default());
        assert_eq!(keys.verify(&token, 0).unwrap_err(), JwtError::NoSubject);
    }

    #[test]
    fn garbage_is_malformed() {
        let keys = JwtKeys::new(b"secret");
        for bad in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert!(keys.verify(bad, 0).is_err(), "{bad}");
        }
    }
}
