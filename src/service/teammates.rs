//! Projects and teammates: creation, invitations, updates, removal and restore.
//!
//! Every change to a stored teammate goes through [`Teammates::mutate`]: read, apply a pure change,
//! write back under an optimistic version check, retry on a concurrent write. Rules that span
//! teammates (the last owner) are enforced atomically inside the store.

use super::invitations;
use super::{Access, Principal};
use crate::auth::invitation_token;
use crate::domain::{
    self, EventType, PendingInvitation, Project, Role, Teammate, TeammateStatus, Timestamp, User,
};
use crate::error::{Error, Result};
use crate::store::{Store, StoreError};
use serde_json::{Map, Value};
use std::sync::Arc;

const MAX_WRITE_ATTEMPTS: usize = 8;
const MAX_PROJECT_NAME_LEN: usize = 200;

/// The fields a teammate update may carry. `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct TeammatePatch {
    pub user_available: Option<bool>,
    pub profile_status: Option<String>,
    pub max_served_chat: Option<i64>,
    pub attributes: Option<Map<String, Value>>,
    pub settings: Option<Map<String, Value>>,
    pub role: Option<Role>,
    /// Admin route only.
    pub status: Option<TeammateStatus>,
    /// Admin route only.
    pub number_assigned_requests: Option<i64>,
    /// Trash (`true`) or restore (`false`); admin only (the Desk `state`).
    pub trashed: Option<bool>,
    /// A JSON merge patch (RFC 7396) applied to `settings`: keys set to `null` are removed,
    /// objects are merged, anything else replaces (the Desk preferences).
    pub settings_merge: Option<Map<String, Value>>,
}

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

/// Which event a teammate change emits.
#[derive(Clone, Copy, Debug)]
enum EventKind {
    Fixed(EventType),
    /// Decided from what changed ([`classify_update`]).
    Classified,
}

impl From<EventType> for EventKind {
    fn from(t: EventType) -> Self {
        EventKind::Fixed(t)
    }
}

/// Updates through the `PUT` routes and the socket's `availability` frame.
const UPDATE: EventKind = EventKind::Classified;

/// The event of an update (docs/protocol.md §6): turning a teammate's status to disabled is a
/// `project_user.disable`; a change of `user_available` and/or `profileStatus` alone is an
/// `availability.update`; anything else is a `project_user.update`.
fn classify_update(before: &Teammate, after: &Teammate) -> EventType {
    if !before.trashed && after.trashed {
        return EventType::Delete;
    }
    if before.trashed && !after.trashed {
        return EventType::Restore;
    }
    if before.status == TeammateStatus::Active && after.status == TeammateStatus::Disabled {
        return EventType::Disable;
    }
    let availability_only = Teammate {
        user_available: before.user_available,
        profile_status: before.profile_status.clone(),
        updated_at: before.updated_at,
        version: before.version,
        ..after.clone()
    } == *before;
    if availability_only {
        EventType::AvailabilityUpdate
    } else {
        EventType::Update
    }
}

/// Only an owner may change another owner's standing or hand out ownership.
fn guard_owner_change(actor: Role, target: &Teammate) -> Result<()> {
    if target.role == Role::Owner && actor != Role::Owner {
        return Err(Error::forbidden("only an owner may change an owner"));
    }
    Ok(())
}

fn apply_patch(actor: Role, t: &mut Teammate, patch: &TeammatePatch) -> Result<()> {
    if let Some(role) = patch.role {
        if role != t.role {
            if role == Role::Owner && actor != Role::Owner {
                return Err(Error::forbidden("only an owner may grant the owner role"));
            }
            guard_owner_change(actor, t)?;
            t.role = role;
        }
    }
    if let Some(status) = patch.status {
        if status != t.status {
            guard_owner_change(actor, t)?;
            t.status = status;
        }
    }
    if let Some(trashed) = patch.trashed {
        if trashed != t.trashed {
            guard_owner_change(actor, t)?;
            if trashed {
                t.trash();
            } else {
                t.reactivate();
            }
        }
    }
    if let Some(v) = patch.user_available {
        t.user_available = v;
    }
    if let Some(v) = &patch.profile_status {
        t.profile_status = v.clone();
    }
    if let Some(v) = patch.max_served_chat {
        t.max_served_chat = v;
    }
    if let Some(v) = patch.number_assigned_requests {
        if v < 0 {
            return Err(Error::bad_request(
                "number_assigned_requests must not be negative",
            ));
        }
        t.number_assigned_requests = v;
    }
    if let Some(v) = &patch.attributes {
        t.attributes = v.clone();
    }
    if let Some(v) = &patch.settings {
        t.settings = v.clone();
    }
    if let Some(merge) = &patch.settings_merge {
        merge_patch(&mut t.settings, merge);
    }
    Ok(())
}

/// RFC 7396 JSON merge patch of an object.
fn merge_patch(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let slot = target
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(existing) = slot {
                    merge_patch(existing, inner);
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

impl Principal {
    /// The user behind the caller, or 403 for an API key on a user-only route.
    pub fn require_user(&self) -> Result<&User> {
        self.user()
            .ok_or_else(|| Error::forbidden("this route needs a user, not an API key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn teammate(role: Role) -> Teammate {
        Teammate::new(domain::new_id(), domain::new_id(), role, None)
    }

    #[test]
    fn only_owners_grant_or_revoke_ownership() {
        let patch = TeammatePatch {
            role: Some(Role::Owner),
            ..Default::default()
        };
        let mut t = teammate(Role::Agent);
        assert!(apply_patch(Role::Admin, &mut t, &patch).is_err());
        assert_eq!(t.role, Role::Agent);
        assert!(apply_patch(Role::Owner, &mut t, &patch).is_ok());
        assert_eq!(t.role, Role::Owner);

        let demote = TeammatePatch {
            role: Some(Role::Agent),
            ..Default::default()
        };
        assert!(apply_patch(Role::Admin, &mut t, &demote).is_err());
        assert!(apply_patch(Role::Owner, &mut t, &demote).is_ok());
    }

    #[test]
    fn updates_are_classified_by_what_changed() {
        let before = teammate(Role::Agent);
        let mut after = before.clone();
        after.version += 1;
        after.user_available = false;
        after.profile_status = "lunch".into();
        assert_eq!(
            classify_update(&before, &after),
            EventType::AvailabilityUpdate
        );
        after.max_served_chat = 3;
        assert_eq!(classify_update(&before, &after), EventType::Update);
        let mut disabled = before.clone();
        disabled.status = TeammateStatus::Disabled;
        disabled.user_available = false;
        assert_eq!(classify_update(&before, &disabled), EventType::Disable);
    }

    #[test]
    fn patch_leaves_unnamed_fields_alone() {
        let mut t = teammate(Role::Agent);
        t.profile_status = "lunch".into();
        let patch = TeammatePatch {
            user_available: Some(false),
            ..Default::default()
        };
        apply_patch(Role::Agent, &mut t, &patch).unwrap();
        assert!(!t.user_available);
        assert_eq!(t.profile_status, "lunch");
    }
}
