use super::{Id, Role, Timestamp};
use serde::{Deserialize, Serialize};

/// An invitation to an email address that has no account yet. One per (project, email):
/// inviting again replaces it, with a new token, which voids the old one.
///
/// It turns into a teammate when someone signs up with that email *and* the invitation's token
/// (or, with `signup_claims_invitations`, with the email alone).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PendingInvitation {
    pub id: Id,
    pub project_id: Id,
    pub email: String,
    pub role: Role,
    pub user_available: bool,
    pub invited_by: Option<Id>,
    pub created_at: Timestamp,
    /// SHA-256 of the token (empty for invitations stored before tokens existed: those are
    /// converted only by `signup_claims_invitations`).
    #[serde(default)]
    pub token_hash: String,
    /// The account a sign-up with the token was creating: if that sign-up stopped after the
    /// account existed, the account's next sign-in converts the invitation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<Id>,
}
