//! Dixa wire formats (`/beta/teams`), with their OpenAPI schemas. Field names are Dixa's.

use crate::domain::{Id, Team, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;

/// A team.
#[derive(Serialize, ToSchema)]
pub struct TeamView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Id,
    #[schema(example = "Tier 1")]
    pub name: String,
}

impl From<&Team> for TeamView {
    fn from(team: &Team) -> Self {
        TeamView {
            id: team.id,
            name: team.name.clone(),
        }
    }
}

/// `{"data": <team>}`.
#[derive(Serialize, ToSchema)]
pub struct TeamAnswer {
    pub data: TeamView,
}

/// `{"data": [<team>...]}`.
#[derive(Serialize, ToSchema)]
pub struct TeamsAnswer {
    pub data: Vec<TeamView>,
}

/// A member of a team.
#[derive(Serialize, ToSchema)]
pub struct AgentView {
    /// The user id.
    #[schema(value_type = String, format = Uuid)]
    pub id: Id,
    pub name: String,
    pub email: String,
}

/// `{"data": [<agent>...]}`.
#[derive(Serialize, ToSchema)]
pub struct AgentsAnswer {
    pub data: Vec<AgentView>,
}

/// The presence of one member.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentPresenceView {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: Id,
    #[schema(value_type = String, format = DateTime)]
    pub request_time: Timestamp,
    /// Now while online; the last disconnect otherwise (null if never seen).
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub last_seen: Option<Timestamp>,
    /// `Working` when available, else `Away`.
    #[schema(value_type = DixaPresenceStatus)]
    pub presence_status: &'static str,
    #[schema(value_type = DixaConnectionStatus)]
    pub connection_status: &'static str,
    pub active_channels: Vec<String>,
}

/// Paging of the presence list.
#[derive(Serialize, ToSchema)]
pub struct PageMeta {
    /// The next page's relative URL, absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `{"data": [<presence>...], "meta": {"next"?}}`.
#[derive(Serialize, ToSchema)]
pub struct PresenceAnswer {
    pub data: Vec<AgentPresenceView>,
    pub meta: PageMeta,
}

/// `{"agentIds": [...]}`: the body of the member changes.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct AgentIdsBody {
    /// User ids of teammates of the project.
    #[schema(value_type = Vec<String>, format = Uuid)]
    agent_ids: Vec<Id>,
}

/// `{"name": ...}`: the body of a new team.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewTeamBody {
    #[schema(value_type = crate::views::Name, example = "Tier 1")]
    name: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = DixaPresenceStatus)]
pub enum DixaPresenceStatus {
    Working,
    Away,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = DixaConnectionStatus)]
pub enum DixaConnectionStatus {
    Online,
    Offline,
}

/// A Dixa (`/beta`) error.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = DixaError)]
pub struct DixaErrorBody {
    #[schema(example = "Invalid value for: body")]
    message: String,
}
