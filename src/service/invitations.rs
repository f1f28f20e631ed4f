//! Pending invitations turn into teammates: the steps that join an invitation (stored under the
//! email, a global key) with the user's sign-up (another global key) and the teammate (in the
//! project's partition).
//!
//! Invite and sign-up race without a lock: the inviter stores the invitation and *then* looks the
//! email up; the sign-up claims the email and *then* reads the invitations. Whichever runs second
//! sees the other's write, so an invitation never stays pending for a user who exists (both may
//! convert it; the teammate insert is idempotent). A sign-up that crashed between its steps is
//! repaired at the user's next sign-in.

use crate::domain::{PendingInvitation, Teammate, User};
use crate::error::Result;
use crate::store::{Store, StoreError};

/// Pending invitation → teammate, for each of the user's invitations. Idempotent: an invitation
/// whose teammate already exists (or whose project is gone) is simply dropped, so a crash
/// half-way is repaired by the next call.
pub async fn accept_invitations(store: &dyn Store, user: &User) -> Result<()> {
    for invitation in store.list_invitations(&user.email).await? {
        let PendingInvitation {
            project_id,
            role,
            user_available,
            invited_by,
            ..
        } = invitation;
        let mut teammate = Teammate::new(project_id, user.id, role, invited_by);
        teammate.user_available = user_available;
        match store.insert_teammate(&teammate).await {
            Ok(()) | Err(StoreError::Conflict) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        store.delete_invitation(&user.email, project_id).await?;
    }
    Ok(())
}
