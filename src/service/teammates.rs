//! Projects and teammates: creation, invitations, updates, removal and restore.
//!
//! Every change to a stored teammate goes through [`Teammates::mutate`]: read, apply a pure change,
//! write back under an optimistic version check, retry on a concurrent write. Rules that span
//! teammates (the last owner) are enforced atomically inside the store.

use super::invitations;
use super::teammate_patch::{
    apply_patch, classify_update, guard_owner_change, EventKind, TeammatePatch, UPDATE,
};
use super::Access;
use crate::auth::invitation_token;
use crate::domain::{
    self, EventType, PendingInvitation, Project, Role, Teammate, TeammateStatus, Timestamp, User,
};
use crate::error::{Error, Result};
use crate::store::{Store, StoreError};
use std::sync::Arc;

const MAX_WRITE_ATTEMPTS: usize = 8;
const MAX_PROJECT_NAME_LEN: usize = 200;

#[derive(Debug)]
pub struct InviteRequest {
    pub email: String,
    pub role: Role,
    pub user_available: Option<bool>,
}

#[derive(Debug)]
pub enum InviteOutcome {
    /// The email has an account: it is now an active teammate (new or reactivated).
    Teammate(Box<Teammate>),
    /// No account yet: the invitation waits for a sign-up with its token, shown only here.
    Pending {
        invitation: PendingInvitation,
        token: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveMode {
    /// `status: disabled`, `user_available: false`; can be re-enabled.
    Disable,
    /// `trashed: true`; can be restored.
    Trash,
    /// Gone for good.
    Delete,
}

#[derive(Clone)]
pub struct Teammates {
    store: Arc<dyn Store>,
}

impl Teammates {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Teammates { store }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Creates a project; the creating user becomes its owner teammate.
    pub async fn create_project(&self, owner: &User, name: &str) -> Result<(Project, Teammate)> {
        // The length counts what was sent (as the OpenAPI schema says); the name kept is trimmed.
        let too_long = name.chars().count() > MAX_PROJECT_NAME_LEN;
        let name = name.trim();
        if name.is_empty() || too_long {
            return Err(Error::bad_request(format!(
                "name must be 1 to {MAX_PROJECT_NAME_LEN} characters"
            )));
        }
        let now = Timestamp::now();
        let project = Project {
            id: domain::new_id(),
            name: name.to_string(),
            created_by: owner.id,
            created_at: now,
            updated_at: now,
        };
        let teammate = Teammate::new(project.id, owner.id, Role::Owner, Some(owner.id));
        self.store.create_project(&project, &teammate).await?;
        Ok((project, teammate))
    }

    /// Invites an email to the project (admin+). Never creates a duplicate teammate.
    pub async fn invite(&self, access: &Access, request: InviteRequest) -> Result<InviteOutcome> {
        access.require(Role::Admin)?;
        let email = domain::normalize_email(&request.email);
        if !domain::is_plausible_email(&email) {
            return Err(Error::bad_request("email is not a valid address"));
        }
        if !request.role.is_invitable() {
            return Err(Error::bad_request(
                "role must be one of agent, supervisor or admin",
            ));
        }
        if access.principal.user().is_some_and(|u| u.email == email) {
            return Err(Error::Forbidden {
                msg: "you cannot invite yourself".into(),
                code: Some(4000),
            });
        }
        let project_id = access.project.id;
        let invited_by = Some(access.principal.actor_id());
        let Some(user) = self.store.find_user_by_email(&email).await? else {
            let token = invitation_token::generate();
            let invitation = PendingInvitation {
                id: domain::new_id(),
                project_id,
                email,
                role: request.role,
                user_available: request.user_available.unwrap_or(true),
                invited_by,
                created_at: Timestamp::now(),
                token_hash: invitation_token::hash(&token),
                claimed_by: None,
            };
            self.store.put_invitation(&invitation).await?;
            // The email may have signed up meanwhile: then it is an account like any other, and
            // this side converts the invitation (see `invitations`).
            if let Some(user) = self.store.find_user_by_email(&invitation.email).await? {
                invitations::convert(self.store.as_ref(), &user, &invitation).await?;
                if let Some(teammate) = self
                    .store
                    .find_teammate_by_user(project_id, user.id)
                    .await?
                {
                    return Ok(InviteOutcome::Teammate(Box::new(teammate)));
                }
            }
            return Ok(InviteOutcome::Pending { invitation, token });
        };
        for _ in 0..MAX_WRITE_ATTEMPTS {
            match self
                .store
                .find_teammate_by_user(project_id, user.id)
                .await?
            {
                None => {
                    let mut teammate = Teammate::new(project_id, user.id, request.role, invited_by);
                    if let Some(available) = request.user_available {
                        teammate.user_available = available;
                    }
                    match self.store.insert_teammate(&teammate).await {
                        Ok(()) => return Ok(InviteOutcome::Teammate(Box::new(teammate))),
                        Err(StoreError::Conflict) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Some(existing) if existing.is_active() => {
                    return Err(Error::Forbidden {
                        msg: "this user is already a member of the project".into(),
                        code: Some(4001),
                    })
                }
                Some(existing) => {
                    // Reactivate the disabled or trashed teammate instead of adding a second one.
                    let (_, teammate) = self
                        .mutate(existing.project_id, existing.id, EventType::Invite, |t| {
                            if t.is_active() {
                                return Err(Error::Forbidden {
                                    msg: "this user is already a member of the project".into(),
                                    code: Some(4001),
                                });
                            }
                            if t.role == Role::Owner {
                                return Err(Error::forbidden(
                                    "an owner can only be reinstated by restoring it",
                                ));
                            }
                            t.reactivate();
                            t.role = request.role;
                            if let Some(available) = request.user_available {
                                t.user_available = available;
                            }
                            Ok(())
                        })
                        .await?;
                    return Ok(InviteOutcome::Teammate(Box::new(teammate)));
                }
            }
        }
        Err(Error::Conflict(
            "the teammate changed concurrently; try again".into(),
        ))
    }

    /// Updates the caller's own teammate. `role` needs admin or above.
    pub async fn update_own(&self, access: &Access, patch: TeammatePatch) -> Result<Teammate> {
        let own = access
            .teammate
            .as_ref()
            .ok_or_else(|| Error::forbidden("an API key has no teammate of its own"))?;
        if patch.role.is_some() {
            access.require(Role::Admin)?;
        }
        let patch = TeammatePatch {
            status: None,
            number_assigned_requests: None,
            trashed: None,
            ..patch
        };
        let (_, after) = self
            .mutate(own.project_id, own.id, UPDATE, |t| {
                apply_patch(access.role, t, &patch)
            })
            .await?;
        Ok(after)
    }

    /// Updates any teammate of the project (admin+). Never creates one.
    pub async fn update(
        &self,
        access: &Access,
        teammate_id: domain::Id,
        patch: TeammatePatch,
    ) -> Result<Teammate> {
        access.require(Role::Admin)?;
        let (_, after) = self
            .mutate(access.project.id, teammate_id, UPDATE, |t| {
                apply_patch(access.role, t, &patch)
            })
            .await?;
        Ok(after)
    }

    /// Disables, trashes or deletes a teammate (admin+). Returns the teammate as it ends up (for
    /// a hard delete, as it was last).
    pub async fn remove(
        &self,
        access: &Access,
        teammate_id: domain::Id,
        mode: RemoveMode,
    ) -> Result<Teammate> {
        access.require(Role::Admin)?;
        let project_id = access.project.id;
        if mode != RemoveMode::Delete {
            let event = match mode {
                RemoveMode::Disable => EventType::Disable,
                _ => EventType::Delete,
            };
            let (_, after) = self
                .mutate(project_id, teammate_id, event, |t| {
                    guard_owner_change(access.role, t)?;
                    match mode {
                        RemoveMode::Disable => {
                            t.status = TeammateStatus::Disabled;
                            t.user_available = false;
                        }
                        _ => t.trash(),
                    }
                    Ok(())
                })
                .await?;
            return Ok(after);
        }
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let current = self.load(project_id, teammate_id).await?;
            guard_owner_change(access.role, &current)?;
            match self.store.delete_teammate(&current, current.version).await {
                Ok(()) => return Ok(current),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(Error::not_found("teammate")),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict(
            "the teammate changed concurrently; try again".into(),
        ))
    }

    /// Restores a trashed teammate (admin+); 400 if it is not trashed.
    pub async fn restore(&self, access: &Access, teammate_id: domain::Id) -> Result<Teammate> {
        access.require(Role::Admin)?;
        let (_, after) = self
            .mutate(access.project.id, teammate_id, EventType::Restore, |t| {
                if !t.trashed {
                    return Err(Error::bad_request("the teammate is not trashed"));
                }
                guard_owner_change(access.role, t)?;
                t.reactivate();
                Ok(())
            })
            .await?;
        Ok(after)
    }

    /// Adds a teammate to a (Dixa) team, or removes it, with a `team.member_added` /
    /// `team.member_removed` event; nothing (no event) if it is already so. The caller checks
    /// the team and the caller's role.
    pub(super) async fn set_team_membership(
        &self,
        project_id: domain::Id,
        teammate_id: domain::Id,
        team_id: domain::Id,
        member: bool,
    ) -> Result<Teammate> {
        let event = if member {
            EventType::TeamMemberAdded
        } else {
            EventType::TeamMemberRemoved
        };
        let (_, after) = self
            .mutate(project_id, teammate_id, event, |t| {
                if member {
                    if t.trashed {
                        return Err(Error::bad_request("a trashed teammate cannot join a team"));
                    }
                    t.join_team(team_id);
                } else {
                    t.leave_team(team_id);
                }
                Ok(())
            })
            .await?;
        Ok(after)
    }

    async fn load(&self, project_id: domain::Id, teammate_id: domain::Id) -> Result<Teammate> {
        self.store
            .get_teammate(project_id, teammate_id)
            .await?
            .ok_or_else(|| Error::not_found("teammate"))
    }

    /// Read, apply `change`, and write back under the version check, retrying when another
    /// writer got there first. A change that alters nothing writes nothing (and emits nothing);
    /// any other change appends exactly one event, of the type `event` names (the store does
    /// that in the same atomic step as the write).
    /// Returns the teammate before and after.
    async fn mutate(
        &self,
        project_id: domain::Id,
        teammate_id: domain::Id,
        event: impl Into<EventKind>,
        change: impl Fn(&mut Teammate) -> Result<()>,
    ) -> Result<(Teammate, Teammate)> {
        let event = event.into();
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let before = self.load(project_id, teammate_id).await?;
            let mut after = before.clone();
            change(&mut after)?;
            if after == before {
                return Ok((before, after));
            }
            after
                .check_sizes(&before)
                .map_err(|e| Error::bad_request(e.to_string()))?;
            after.version = before.version + 1;
            after.updated_at = Timestamp::now();
            let event_type = match event {
                EventKind::Fixed(t) => t,
                EventKind::Classified => classify_update(&before, &after),
            };
            match self
                .store
                .update_teammate(&after, before.version, event_type)
                .await
            {
                Ok(()) => return Ok((before, after)),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(Error::not_found("teammate")),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict(
            "the teammate changed concurrently; try again".into(),
        ))
    }
}
