//! The query parameters of the team routes: the list filters and the boolean flags.

use crate::domain::{Presence, PresenceStatus, Role, Teammate, TeammateStatus};
use crate::error::{Error, Result};

/// Filters of `GET /v3/{pid}/project_users`.
#[derive(Default)]
pub struct ListFilter {
    include_trashed: bool,
    roles: Vec<Role>,
    presence: Option<PresenceStatus>,
    status: Option<TeammateStatus>,
}

impl ListFilter {
    /// Parses the raw query; `role` may repeat or be comma-separated.
    pub fn parse(query: Option<&str>) -> Result<Self> {
        let mut filter = ListFilter::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "trashed" => filter.include_trashed = parse_bool("trashed", &value)?,
                "role" => {
                    for role in value.split(',').filter(|r| !r.is_empty()) {
                        filter.roles.push(role.parse().map_err(
                            |e: crate::domain::ParseRoleError| Error::bad_request(e.to_string()),
                        )?);
                    }
                }
                "presencestatus" => {
                    filter.presence = Some(match value.as_ref() {
                        "online" => PresenceStatus::Online,
                        "offline" => PresenceStatus::Offline,
                        other => {
                            return Err(Error::bad_request(format!(
                                "presencestatus must be online or offline, not `{other}`"
                            )))
                        }
                    })
                }
                "status" => filter.status = Some(parse_status(&value)?),
                _ => {}
            }
        }
        Ok(filter)
    }

    pub fn keeps(&self, t: &Teammate, p: &Presence) -> bool {
        (self.include_trashed || !t.trashed)
            && (self.roles.is_empty() || self.roles.contains(&t.role))
            && self.presence.is_none_or(|s| s == p.status)
            && self.status.is_none_or(|s| s == t.status)
    }
}

pub fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(Error::bad_request(format!(
            "{name} must be true or false, not `{other}`"
        ))),
    }
}

pub fn parse_status(value: &str) -> Result<TeammateStatus> {
    match value {
        "active" => Ok(TeammateStatus::Active),
        "disabled" => Ok(TeammateStatus::Disabled),
        other => Err(Error::bad_request(format!(
            "status must be active or disabled, not `{other}`"
        ))),
    }
}
