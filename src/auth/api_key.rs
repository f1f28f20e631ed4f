//! Project API keys: a random secret shown once, stored only as its SHA-256.
//!
//! Looking a key up by the hash of what was presented means no stored secret is ever compared
//! byte by byte, so there is no timing signal about how much of a guess was right.

pub const PREFIX: &str = "pgk_";

/// A new secret: `pgk_` followed by 32 random bytes in URL-safe base64.
pub fn generate() -> String {
    super::secret(PREFIX)
}

pub fn hash(secret: &str) -> String {
    super::secret_hash(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_and_hash_stably() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX));
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(hash(&a).len(), 64);
    }
}
