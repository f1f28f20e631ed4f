//! What a teammate update may change, and the rules of applying it: who may change an owner, how
//! `settings` merge, and which event a change emits. Pure functions over a [`Teammate`]; the
//! [`Teammates`](super::Teammates) service runs them inside its mutate loop.

use crate::domain::{EventType, Role, Teammate, TeammateStatus};
use crate::error::{Error, Result};
use serde_json::{Map, Value};

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

/// Which event a teammate change emits.
#[derive(Clone, Copy, Debug)]
pub(super) enum EventKind {
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
pub(super) const UPDATE: EventKind = EventKind::Classified;

/// The event of an update (docs/protocol.md §6): turning a teammate's status to disabled is a
/// `project_user.disable`; a change of `user_available` and/or `profileStatus` alone is an
/// `availability.update`; anything else is a `project_user.update`.
pub(super) fn classify_update(before: &Teammate, after: &Teammate) -> EventType {
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
pub(super) fn guard_owner_change(actor: Role, target: &Teammate) -> Result<()> {
    if target.role == Role::Owner && actor != Role::Owner {
        return Err(Error::forbidden("only an owner may change an owner"));
    }
    Ok(())
}

pub(super) fn apply_patch(actor: Role, t: &mut Teammate, patch: &TeammatePatch) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain;

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
