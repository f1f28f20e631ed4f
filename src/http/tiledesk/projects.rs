//! `POST /v3/projects` and `GET /v3/projects/{pid}`.

use crate::domain::Role;
use crate::error::Result;
use crate::http::extract::{Caller, Json, Member};
use crate::state::AppState;
use crate::views::to_value;
use crate::views::ProjectView;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
pub struct NewProject {
    name: String,
}

pub async fn create(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Json(body): Json<NewProject>,
) -> Result<Json<Value>> {
    let user = principal.require_user()?;
    let (project, _owner) = state.teams.create_project(user, &body.name).await?;
    Ok(Json(to_value(&ProjectView::from(&project))?))
}

pub async fn get(Member(access): Member) -> Result<Json<Value>> {
    access.require(Role::Agent)?;
    Ok(Json(to_value(&ProjectView::from(&access.project))?))
}
