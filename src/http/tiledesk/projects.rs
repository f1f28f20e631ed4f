//! `POST /v3/projects`, `GET /v3/projects` and `GET /v3/projects/{pid}`.

use crate::domain::Role;
use crate::error::Result;
use crate::http::extract::{Caller, Json, Member};
use crate::http::params::ProjectPath;
use crate::state::AppState;
use crate::views::to_value;
use crate::views::ProjectView;
use axum::extract::State;
use serde::{Deserialize, Serialize};
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
    let (project, _owner) = state.teammates.create_project(user, &body.name).await?;
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

/// One of the caller's projects in `GET /v3/projects`: the caller's teammate in it, with the
/// project itself under `id_project` (Tiledesk's shape, where `id_project` is populated).
#[derive(Serialize, ToSchema)]
pub struct MembershipView<'a> {
    /// The caller's teammate id in the project.
    #[serde(rename = "_id")]
    #[schema(format = Uuid)]
    pub underscore_id: String,
    #[schema(format = Uuid)]
    pub id: String,
    pub id_project: ProjectView<'a>,
    #[schema(value_type = crate::views::RoleName)]
    pub role: &'a str,
    pub user_available: bool,
}

/// The projects where the caller is an active teammate, oldest membership first (a signed-in
/// user; an API key has no projects of its own).
#[utoipa::path(get, path = "/v3/projects", tag = "projects",
    security(("jwt" = []), ("basic" = [])),
    responses((status = 200, description = "the caller's projects", body = Vec<MembershipView<'static>>)))]
pub async fn list(State(state): State<AppState>, Caller(principal): Caller) -> Result<Json<Value>> {
    let user = principal.require_user()?;
    let mut teammates: Vec<_> = state
        .store
        .list_user_teammates(user.id)
        .await?
        .into_iter()
        .filter(|t| t.is_active())
        .collect();
    teammates.sort_by_key(|t| t.created_at);
    let mut views = Vec::with_capacity(teammates.len());
    for teammate in &teammates {
        // A project deleted under a membership is left out rather than failing the list.
        let Some(project) = state.store.get_project(teammate.project_id).await? else {
            continue;
        };
        views.push(to_value(&MembershipView {
            underscore_id: teammate.id.to_string(),
            id: teammate.id.to_string(),
            id_project: ProjectView::from(&project),
            role: teammate.role.as_str(),
            user_available: teammate.user_available,
        })?);
    }
    Ok(Json(Value::Array(views)))
}
