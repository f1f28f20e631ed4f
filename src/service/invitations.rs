//! Pending invitations turn into teammates: the steps that join an invitation (stored under the
//! email, a global key) with the user's sign-up (another global key) and the teammate (in the
//! project's partition).
//!
//! Who may take an invitation: whoever signs up with the invitation's token, which only the
//! inviter's answer showed. An email alone proves nothing (nobody checked that the person signing
//! up owns the address), so it converts invitations only where `signup_claims_invitations`
//! says a front end verified it.
//!
//! Invite and sign-up race without a lock: the inviter stores the invitation and *then* looks the
//! email up; the sign-up claims the email and *then* converts. Whichever runs second sees the
//! other's write. A sign-up that stopped between its steps is repaired at the account's next
//! sign-in: a sign-up with a token first marks the invitation as claimed by the account it is
//! creating.

use crate::auth::invitation_token;
use crate::domain::{Id, PendingInvitation, Teammate, User};
use crate::error::Result;
use crate::store::{Store, StoreError};

/// The pending invitation of `email` that `token` opens; `None` if the token is unknown, was
/// voided by a newer invitation, or belongs to another email.
pub async fn find_by_token(
    store: &dyn Store,
    email: &str,
    token: &str,
) -> Result<Option<PendingInvitation>> {
    let hash = invitation_token::hash(token);
    Ok(store
        .list_invitations(email)
        .await?
        .into_iter()
        .find(|i| !i.token_hash.is_empty() && i.token_hash == hash))
}

/// Marks `invitation` as being taken by the account `user_id` that a sign-up is creating.
pub async fn claim(store: &dyn Store, invitation: &PendingInvitation, user_id: Id) -> Result<()> {
    let claimed = PendingInvitation {
        claimed_by: Some(user_id),
        ..invitation.clone()
    };
    Ok(store.put_invitation(&claimed).await?)
}

/// The invitations a sign-in or sign-up turns into teammates: those claimed for this account
/// (a sign-up with their token), or with `claim_all` every invitation of its email. Idempotent:
/// an invitation whose teammate already exists (or whose project is gone) is simply dropped, so
/// a crash half-way is repaired by the next call.
pub async fn accept_invitations(store: &dyn Store, user: &User, claim_all: bool) -> Result<()> {
    for invitation in store.list_invitations(&user.email).await? {
        if claim_all || invitation.claimed_by == Some(user.id) {
            convert(store, user, &invitation).await?;
        }
    }
    Ok(())
}

/// One invitation → a teammate of `user`, and the invitation is gone.
pub async fn convert(store: &dyn Store, user: &User, invitation: &PendingInvitation) -> Result<()> {
    let mut teammate = Teammate::new(
        invitation.project_id,
        user.id,
        invitation.role,
        invitation.invited_by,
    );
    teammate.user_available = invitation.user_available;
    match store.insert_teammate(&teammate).await {
        Ok(()) | Err(StoreError::Conflict) | Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    store
        .delete_invitation(&user.email, invitation.project_id)
        .await?;
    Ok(())
}
