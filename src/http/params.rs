//! Path parameters of the routes, described once for the OpenAPI document (`params(...)` in
//! each handler's `#[utoipa::path]`). Handlers read them through `extract::Path`; these types
//! are never constructed.

#![allow(dead_code)]

use utoipa::IntoParams;
use uuid::Uuid;

/// `{pid}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectPath {
    /// The project id.
    pid: Uuid,
}

/// `{pid}` and `{puid}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TeammatePath {
    /// The project id.
    pid: Uuid,
    /// The teammate (`project_user`) id.
    puid: Uuid,
}

/// `{pid}` and `{user_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectUserPath {
    /// The project id.
    pid: Uuid,
    /// The user id.
    user_id: Uuid,
}

/// `{pid}` and `{key_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    /// The project id.
    pid: Uuid,
    /// The API key id.
    key_id: Uuid,
}

/// `{pid}` and `{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SubscriptionPath {
    /// The project id.
    pid: Uuid,
    /// The subscription id.
    id: Uuid,
}

/// `{team_id}` (Dixa).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TeamPath {
    /// The team id.
    team_id: Uuid,
}
