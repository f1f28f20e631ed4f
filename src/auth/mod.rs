//! Credentials: JWTs, passwords, API keys and invitation tokens. No HTTP here; `http/extract.rs`
//! turns headers into calls to these (through `service::Accounts`).

pub mod api_key;
pub mod invitation_token;
pub mod jwk;
pub mod jwks;
pub mod jwt;
pub mod password;
mod validation;

/// A new secret: `prefix` followed by 32 random bytes (256 bits) in URL-safe base64.
pub fn secret(prefix: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// The SHA-256 of a secret, in hex: what is stored and looked up instead of the secret.
pub fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}
