use super::{Id, Role, Timestamp};
use serde::{Deserialize, Serialize};

/// An invitation to an email address that has no account yet. Signing up with that email turns
/// every pending invitation into a teammate. One per (project, email): re-inviting updates it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PendingInvitation {
    pub id: Id,
    pub project_id: Id,
    pub email: String,
    pub role: Role,
    pub user_available: bool,
    pub invited_by: Option<Id>,
    pub created_at: Timestamp,
}
