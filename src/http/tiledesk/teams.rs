//! `GET /v3/{pid}/teams`: the project's Dixa teams with their members, for any credential of
//! the project (the board's team filter). The Dixa API itself (`/beta/teams`) takes only API
//! keys and has no project in its paths, so a teammate signed in with a token could not read
//! its teams there.

use crate::domain::{Id, Role};
use crate::error::Result;
use crate::http::extract::{Json, Member};
use crate::http::params::ProjectPath;
use crate::state::AppState;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

/// A team and the user ids of its members.
#[derive(Serialize, ToSchema)]
pub struct TeamMembersView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Id,
    #[schema(example = "Tier 1")]
    pub name: String,
    /// The members' user ids, ordered.
    #[schema(value_type = Vec<String>)]
    pub members: Vec<Id>,
}

/// The project's teams, oldest first, each with its members' user ids (agent and up).
#[utoipa::path(get, path = "/v3/{pid}/teams", tag = "teammates",
    params(ProjectPath),
    responses((status = 200, description = "the teams", body = Vec<TeamMembersView>)))]
pub async fn list(
    State(state): State<AppState>,
    Member(access): Member,
) -> Result<Json<Vec<TeamMembersView>>> {
    access.require(Role::Agent)?;
    let teams = state.teams.list(&access).await?;
    // One read of the team; each teammate lists its teams.
    let teammates = state.store.list_teammates(access.project.id).await?;
    let views = teams
        .into_iter()
        .map(|team| {
            let mut members: Vec<Id> = teammates
                .iter()
                .filter(|t| !t.trashed && t.teams.binary_search(&team.id).is_ok())
                .map(|t| t.user_id)
                .collect();
            members.sort();
            TeamMembersView {
                id: team.id,
                name: team.name,
                members,
            }
        })
        .collect();
    Ok(Json(views))
}
