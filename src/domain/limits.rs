//! The size rules of the fields clients fill freely. Every write that changes one of them (REST,
//! the socket's `availability` frame, the Desk API) is checked against the same rule, so a
//! teammate record, and with it every event and every frame, has a bounded size.
//! `docs/operations.md` derives the event log's worst-case memory from these figures.

use super::{Teammate, User};
use serde_json::{Map, Value};

/// `profileStatus`, in characters.
pub const MAX_PROFILE_STATUS_CHARS: usize = 200;
/// `attributes` and `settings`, each, as compact JSON.
pub const MAX_OBJECT_JSON_BYTES: usize = 16 * 1024;
/// (Dixa) teams one teammate belongs to.
pub const MAX_TEAMS_PER_TEAMMATE: usize = 100;

/// A field over its size limit; the message names the field and the limit.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TooLarge(pub String);

impl Teammate {
    /// Checks the fields that differ from `before` (a field stored before its limit existed
    /// does not block unrelated changes).
    pub fn check_sizes(&self, before: &Teammate) -> Result<(), TooLarge> {
        if self.profile_status != before.profile_status {
            check_profile_status(&self.profile_status)?;
        }
        if self.attributes != before.attributes {
            check_object("attributes", &self.attributes)?;
        }
        if self.settings != before.settings {
            check_object("settings", &self.settings)?;
        }
        if self.teams.len() > MAX_TEAMS_PER_TEAMMATE && self.teams.len() > before.teams.len() {
            return Err(TooLarge(format!(
                "a teammate may belong to at most {MAX_TEAMS_PER_TEAMMATE} teams"
            )));
        }
        Ok(())
    }
}

impl User {
    /// Checks the account's free-form fields (`attributes`).
    pub fn check_sizes(&self) -> Result<(), TooLarge> {
        check_object("attributes", &self.attributes)
    }
}

pub fn check_profile_status(status: &str) -> Result<(), TooLarge> {
    if status.chars().count() > MAX_PROFILE_STATUS_CHARS {
        return Err(TooLarge(format!(
            "profileStatus must be at most {MAX_PROFILE_STATUS_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_object(field: &str, object: &Map<String, Value>) -> Result<(), TooLarge> {
    let bytes = serde_json::to_vec(object).map_or(usize::MAX, |json| json.len());
    if bytes > MAX_OBJECT_JSON_BYTES {
        return Err(TooLarge(format!(
            "{field} must be at most {} KiB as JSON ({bytes} bytes given)",
            MAX_OBJECT_JSON_BYTES / 1024
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{new_id, Role};
    use serde_json::json;

    fn teammate() -> Teammate {
        Teammate::new(new_id(), new_id(), Role::Agent, None)
    }

    fn object_of(bytes: usize) -> Map<String, Value> {
        // {"b":"…"} is 8 bytes around the string.
        let Value::Object(map) = json!({"b": "x".repeat(bytes - 8)}) else {
            unreachable!()
        };
        assert_eq!(serde_json::to_vec(&map).unwrap().len(), bytes);
        map
    }

    #[test]
    fn fields_at_their_limit_pass_and_one_more_fails() {
        let before = teammate();
        let mut t = before.clone();
        t.attributes = object_of(MAX_OBJECT_JSON_BYTES);
        t.settings = object_of(MAX_OBJECT_JSON_BYTES);
        t.profile_status = "é".repeat(MAX_PROFILE_STATUS_CHARS);
        assert_eq!(t.check_sizes(&before), Ok(()));
        for field in ["attributes", "settings", "profileStatus"] {
            let mut over = t.clone();
            match field {
                "attributes" => over.attributes = object_of(MAX_OBJECT_JSON_BYTES + 1),
                "settings" => over.settings = object_of(MAX_OBJECT_JSON_BYTES + 1),
                _ => over.profile_status.push('x'),
            }
            let e = over.check_sizes(&before).unwrap_err();
            assert!(e.0.starts_with(field), "{e}");
        }
    }

    #[test]
    fn only_changed_fields_are_checked() {
        let mut stored = teammate();
        stored.attributes = object_of(MAX_OBJECT_JSON_BYTES * 2);
        let mut next = stored.clone();
        next.user_available = false;
        assert_eq!(next.check_sizes(&stored), Ok(()));
    }

    #[test]
    fn team_memberships_are_capped() {
        let before = teammate();
        let mut t = before.clone();
        for _ in 0..MAX_TEAMS_PER_TEAMMATE {
            t.join_team(new_id());
        }
        assert_eq!(t.check_sizes(&before), Ok(()));
        let mut more = t.clone();
        more.join_team(new_id());
        assert!(more.check_sizes(&t).is_err());
    }
}
