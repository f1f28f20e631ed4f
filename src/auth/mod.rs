//! Credentials: JWTs, passwords and API keys. No HTTP here; `http::auth` turns headers into
//! calls to these.

pub mod api_key;
pub mod jwk;
pub mod jwks;
pub mod jwt;
pub mod password;
mod validation;

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}
