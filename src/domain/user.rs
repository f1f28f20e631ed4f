use super::{Id, Timestamp};
use serde::{Deserialize, Serialize};

/// A person who can sign in. Stored with its password hash; never rendered with it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: Id,
    /// Always lower-cased (see [`super::normalize_email`]).
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub firstname: String,
    pub lastname: String,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl User {
    pub fn fullname(&self) -> String {
        format!("{} {}", self.firstname, self.lastname)
            .trim()
            .to_string()
    }
}
