//! `/v3/{pid}/keys`: project API keys (admin). The secret is returned once, as `key`.

use crate::auth::api_key;
use crate::domain::{self, ApiKey, Role, Timestamp};
use crate::error::{Error, Result};
use crate::http::extract::{parse_id, Json, Member};
use crate::http::params::{KeyPath, ProjectPath};
use crate::state::AppState;
use crate::views::to_value;
use crate::views::ApiKeyView;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use utoipa::ToSchema;

/// `POST /v3/{pid}/keys`. The body is optional.
#[derive(Deserialize, Default, ToSchema)]
pub struct NewKey {
    #[schema(max_length = 200, example = "crm")]
    name: Option<String>,
    /// `agent` (the default) or `admin`; never above the creator's role.
    #[schema(value_type = Option<KeyRole>)]
    role: Option<String>,
}

/// The roles a key may carry.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum KeyRole {
    Agent,
    Admin,
}

/// Creates an API key (admin and up). Its value is in `key`, shown this once.
/// The body is optional: an empty POST creates an `agent` key.
#[utoipa::path(post, path = "/v3/{pid}/keys", tag = "keys",
    params(ProjectPath),
    request_body(content = Option<NewKey>, description = "optional"),
    responses((status = 200, description = "the key, with its value in `key`", body = ApiKeyView<'static>)))]
pub async fn create(
    State(state): State<AppState>,
    Member(access): Member,
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Value>> {
    access.require(Role::Admin)?;
    let body = body.map_err(crate::http::extract::body_rejection)?;
    let text = body.trim_ascii();
    let body: NewKey = if text.is_empty() || text == b"null" {
        NewKey::default()
    } else {
        crate::http::extract::parse_json(&body)?
    };
    let role = match body.role.as_deref().unwrap_or("agent") {
        "agent" => Role::Agent,
        "admin" => Role::Admin,
        other => {
            return Err(Error::bad_request(format!(
                "role must be agent or admin, not `{other}`"
            )))
        }
    };
    if role > access.role {
        return Err(Error::forbidden(
            "a key cannot have a higher role than its creator",
        ));
    }
    let name = body.name.unwrap_or_default();
    if name.chars().count() > 200 {
        return Err(Error::bad_request("name must be at most 200 characters"));
    }
    let secret = api_key::generate();
    let key = ApiKey {
        id: domain::new_id(),
        project_id: access.project.id,
        name,
        role,
        prefix: secret[..api_key::PREFIX.len() + 6].to_string(),
        secret_hash: api_key::hash(&secret),
        created_by: Some(access.principal.actor_id()),
        created_at: Timestamp::now(),
    };
    state.store.create_api_key(&key).await?;
    Ok(Json(to_value(&ApiKeyView::new(&key, Some(&secret)))?))
}

/// The project's API keys, without their values.
#[utoipa::path(get, path = "/v3/{pid}/keys", tag = "keys",
    params(ProjectPath),
    responses((status = 200, description = "the keys", body = Vec<ApiKeyView<'static>>)))]
pub async fn list(State(state): State<AppState>, Member(access): Member) -> Result<Json<Value>> {
    access.require(Role::Admin)?;
    let keys = state.store.list_api_keys(access.project.id).await?;
    let views: Result<Vec<Value>> = keys
        .iter()
        .map(|k| to_value(&ApiKeyView::new(k, None)))
        .collect();
    Ok(Json(Value::Array(views?)))
}

/// Deletes an API key; its open sockets and streams stop.
#[utoipa::path(delete, path = "/v3/{pid}/keys/{key_id}", tag = "keys",
    params(KeyPath),
    responses((status = 200, description = "the deleted key", body = ApiKeyView<'static>)))]
pub async fn remove(
    State(state): State<AppState>,
    Member(access): Member,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>> {
    access.require(Role::Admin)?;
    let raw = params.get("key_id").map(String::as_str).unwrap_or_default();
    let id = parse_id(raw, "key id")?;
    let key = state
        .store
        .delete_api_key(access.project.id, id)
        .await?
        .ok_or_else(|| Error::not_found("API key"))?;
    // Its open sockets and streams on this node end at once; other nodes find the key gone at
    // their next key check (within `KEY_CHECK_INTERVAL`).
    state.events.revocations().revoke(access.project.id, key.id);
    Ok(Json(to_value(&ApiKeyView::new(&key, None))?))
}
