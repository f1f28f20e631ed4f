//! `GET /v3/users` and `PUT /v3/users`: the current user.

use crate::domain::Timestamp;
use crate::error::{Error, Result};
use crate::http::extract::{Caller, Json};
use crate::state::AppState;
use crate::views::{to_value, UserView};
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The user the credentials belong to.
#[utoipa::path(get, path = "/v3/users", tag = "accounts",
    security(("jwt" = []), ("basic" = [])),
    responses((status = 200, description = "the current user", body = UserView<'static>)))]
pub async fn me(Caller(principal): Caller) -> Result<Json<Value>> {
    let user = principal.require_user()?;
    Ok(Json(to_value(&UserView::from(user))?))
}

/// What `PUT /v3/users` may change; other fields are ignored.
#[derive(Deserialize, ToSchema)]
pub struct UserUpdate {
    #[schema(max_length = 200)]
    firstname: Option<String>,
    #[schema(max_length = 200)]
    lastname: Option<String>,
    /// Replaces the attributes object.
    #[schema(value_type = Option<Object>)]
    attributes: Option<Map<String, Value>>,
}

/// Updates the current user's names and attributes.
#[utoipa::path(put, path = "/v3/users", tag = "accounts",
    security(("jwt" = []), ("basic" = [])),
    request_body = UserUpdate,
    responses((status = 200, description = "the user after the change", body = UserView<'static>)))]
pub async fn update(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Json(body): Json<UserUpdate>,
) -> Result<Json<Value>> {
    let mut user = principal.require_user()?.clone();
    for (name, value) in [("firstname", &body.firstname), ("lastname", &body.lastname)] {
        if value.as_ref().is_some_and(|v| v.chars().count() > 200) {
            return Err(Error::bad_request(format!(
                "{name} must be at most 200 characters"
            )));
        }
    }
    if let Some(v) = body.firstname {
        user.firstname = v.trim().to_string();
    }
    if let Some(v) = body.lastname {
        user.lastname = v.trim().to_string();
    }
    if let Some(v) = body.attributes {
        user.attributes = v;
        user.check_sizes()
            .map_err(|e| Error::bad_request(e.to_string()))?;
    }
    user.updated_at = Timestamp::now();
    state.store.update_user(&user).await?;
    Ok(Json(to_value(&UserView::from(&user))?))
}
