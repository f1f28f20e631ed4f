//! A team (Dixa): a named group of a project's teammates, e.g. "Tier 1" or "Billing".
//!
//! Membership is kept on the teammate (`Teammate::teams`), not on the team, so that joining or
//! leaving a team is a change of one teammate record: written under the same version check, and
//! with its event appended in the same atomic step, as every other teammate change.

use super::{Id, Timestamp};
use serde::{Deserialize, Serialize};

/// Longest team name accepted.
pub const MAX_TEAM_NAME_LEN: usize = 200;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Team {
    pub id: Id,
    pub project_id: Id,
    pub name: String,
    pub created_at: Timestamp,
}
