//! Invitation tokens: the proof that whoever signs up for a pending invitation received it.
//!
//! The token is shown once, in the answer to the invitation (the inviter passes it on, in the
//! invitation link); only its SHA-256 is stored, as for API keys.

pub const PREFIX: &str = "pgi_";

/// A new token: `pgi_` followed by 32 random bytes in URL-safe base64.
pub fn generate() -> String {
    super::secret(PREFIX)
}

pub fn hash(token: &str) -> String {
    super::secret_hash(token)
}
