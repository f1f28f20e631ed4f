use super::{Id, Role, Timestamp};
use serde::{Deserialize, Serialize};

/// A project API key. Only the SHA-256 of the secret is stored; the secret itself is shown once.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ApiKey {
    pub id: Id,
    pub project_id: Id,
    pub name: String,
    /// `admin` or `agent`.
    pub role: Role,
    /// The first characters of the secret, so that people can tell keys apart in a listing.
    pub prefix: String,
    /// Hex SHA-256 of the full secret.
    pub secret_hash: String,
    pub created_by: Option<Id>,
    pub created_at: Timestamp,
}
