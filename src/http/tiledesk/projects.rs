//! `POST /v3/projects` and `GET /v3/projects/{pid}`.

use crate::domain::Role;
use crate::error::Result;
use crate::http::extract::{Caller, Json, Member};
use crate::http::params::ProjectPath;
use crate::state::AppState;
use crate::views::to_value;
use crate::views::ProjectView;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

/// `POST /v3/projects`.
#[derive(Deserialize, ToSchema)]
pub struct NewProject {
    /// Trimmed; 1 to 200 characters.
    #[schema(value_type = crate::views::Name, example = "Support")]
    name: String,
}

/// Creates a project; the caller becomes its owner.
#[utoipa::path(post, path = "/v3/projects", tag = "projects",
    security(("jwt" = []), ("basic" = [])),
    request_body = NewProject,
    responses((status = 200, description = "the new project", body = ProjectView<'static>)))]
pub async fn create(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Json(body): Json<NewProject>,
) -> Result<Json<Value>> {
    let user = principal.require_user()?;
    let (project, _owner) = state.teams.create_project(user, &body.name).await?;
    Ok(Json(to_value(&ProjectView::from(&project))?))
}

/// A project (agent and up).
#[utoipa::path(get, path = "/v3/projects/{pid}", tag = "projects",
    params(ProjectPath),
    responses((status = 200, description = "the project", body = ProjectView<'static>)))]
pub async fn get(Member(access): Member) -> Result<Json<Value>> {
    access.require(Role::Agent)?;
    Ok(Json(to_value(&ProjectView::from(&access.project))?))
}
