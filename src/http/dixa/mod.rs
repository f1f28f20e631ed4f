//! The Dixa-compatible teams API under `/beta/teams` (docs/rest.md, "Dixa teams").
//!
//! Callers authenticate with a project API key; the key's project is the scope, so a key never
//! sees another project's teams. Reads need an `agent` key, changes an `admin` key. Errors are
//! Dixa's `{"message": "..."}`, with Dixa's wording for malformed input:
//! `Invalid value for: path parameter teamId`, `Invalid value for: body`,
//! `Invalid value for: query parameter pageLimit` / `pageKey`.

mod views;

pub use views::DixaErrorBody;

use super::extract::{body_rejection, ProjectKey};
use super::params::TeamPath;
use crate::domain::{Id, PresenceStatus, Timestamp};
use crate::error::Error;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use views::{
    AgentIdsBody, AgentPresenceView, AgentView, AgentsAnswer, NewTeamBody, PageMeta,
    PresenceAnswer, TeamAnswer, TeamView, TeamsAnswer,
};

/// Presence rows per page unless `pageLimit` says otherwise, and the most it may say.
const DEFAULT_PAGE_LIMIT: usize = 50;
const MAX_PAGE_LIMIT: usize = 1000;

/// The routes below, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    create,
    get_one,
    remove,
    members,
    add_members,
    remove_members,
    presence
))]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/beta/teams", get(list).post(create))
        .route("/beta/teams/{team_id}", get(get_one).delete(remove))
        .route(
            "/beta/teams/{team_id}/agents",
            get(members).patch(add_members).delete(remove_members),
        )
        .route("/beta/teams/{team_id}/presence", get(presence))
}

/// An error in Dixa's shape. Internal details are logged, never sent.
pub struct DixaError(Error);

impl From<Error> for DixaError {
    fn from(e: Error) -> Self {
        DixaError(e)
    }
}

impl From<crate::store::StoreError> for DixaError {
    fn from(e: crate::store::StoreError) -> Self {
        DixaError(e.into())
    }
}

impl IntoResponse for DixaError {
    fn into_response(self) -> Response {
        let error = self.0;
        error.log_hidden_detail();
        let message = match &error {
            Error::Internal(_) => "Internal failure during request processing".to_string(),
            Error::Unavailable(_) => "Service unavailable".to_string(),
            Error::NotFound(_) => "An entity in this request could not be found".to_string(),
            other => other.to_string(),
        };
        let mut response = (error.status(), Json(json!({ "message": message }))).into_response();
        error.add_headers(response.headers_mut());
        response
    }
}

type Result<T> = std::result::Result<T, DixaError>;

fn invalid(what: &str) -> DixaError {
    DixaError(Error::bad_request(format!("Invalid value for: {what}")))
}

/// The `{team_id}` path segment: a UUID, or `Invalid value for: path parameter teamId` (also
/// for segments that are not even UTF-8).
pub struct TeamId(Id);

impl FromRequestParts<AppState> for TeamId {
    type Rejection = DixaError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid("path parameter teamId"))?;
        raw.parse()
            .map(TeamId)
            .map_err(|_| invalid("path parameter teamId"))
    }
}

/// A JSON object body of type `T`; anything else is `Invalid value for: body`.
fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T> {
    super::extract::parse_json(bytes).map_err(|_| invalid("body"))
}

#[derive(Deserialize)]
struct CreateTeam {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentIds {
    agent_ids: Vec<String>,
}

impl AgentIds {
    fn parse(bytes: &Bytes) -> Result<Vec<Id>> {
        body::<AgentIds>(bytes)?
            .agent_ids
            .iter()
            .map(|id| id.parse().map_err(|_| invalid("body")))
            .collect()
    }
}

/// Membership changes with a body that names a non-member are `Invalid value for: body` too.
fn body_error(e: Error) -> DixaError {
    match e {
        Error::BadRequest(_) => invalid("body"),
        other => DixaError(other),
    }
}

fn read_body(
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Bytes> {
    body.map_err(|r| DixaError(body_rejection(r)))
}

/// Creates a team (admin key).
#[utoipa::path(post, path = "/beta/teams", tag = "dixa",
    request_body = NewTeamBody,
    responses((status = 201, description = "the new team", body = TeamAnswer)))]
async fn create(
    State(state): State<AppState>,
    ProjectKey(access, _): ProjectKey<DixaError>,
    raw: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response> {
    let request: CreateTeam = body(&read_body(raw)?)?;
    let team = state
        .teams
        .create(&access, &request.name)
        .await
        .map_err(body_error)?;
    Ok((
        StatusCode::CREATED,
        Json(TeamAnswer {
            data: TeamView::from(&team),
        }),
    )
        .into_response())
}

/// The project's teams.
#[utoipa::path(get, path = "/beta/teams", tag = "dixa",
    responses((status = 200, description = "the teams", body = TeamsAnswer)))]
async fn list(
    State(state): State<AppState>,
    ProjectKey(access, _): ProjectKey<DixaError>,
) -> Result<Json<TeamsAnswer>> {
    let teams = state.teams.list(&access).await?;
    let data = teams.iter().map(TeamView::from).collect();
    Ok(Json(TeamsAnswer { data }))
}

/// One team.
#[utoipa::path(get, path = "/beta/teams/{team_id}", tag = "dixa",
    params(TeamPath),
    responses((status = 200, description = "the team", body = TeamAnswer)))]
async fn get_one(
    State(state): State<AppState>,
    ProjectKey(access, _): ProjectKey<DixaError>,
    TeamId(id): TeamId,
) -> Result<Json<TeamAnswer>> {
    let team = state.teams.get(&access, id).await?;
    Ok(Json(TeamAnswer {
        data: TeamView::from(&team),
    }))
}

/// Deletes a team (admin key); its members stay in the project.
#[utoipa::path(delete, path = "/beta/teams/{team_id}", tag = "dixa",
    params(TeamPath),
    responses((status = 204, description = "deleted")))]
async fn remove(
    State(state): State<AppState>,
    ProjectKey(access, _): ProjectKey<DixaError>,
    TeamId(id): TeamId,
) -> Result<StatusCode> {
    state.teams.delete(&access, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The team's members.
#[utoipa::path(get, path = "/beta/teams/{team_id}/agents", tag = "dixa",
    params(TeamPath),
    responses((status = 200, description = "the members", body = AgentsAnswer)))]
async fn members(
    State(state): State<AppState>,
    ProjectKey(access, _): ProjectKey<DixaError>,
    TeamId(id): TeamId,
) -> Result<Json<AgentsAnswer>> {
    let members = state.teams.members(&access, id).await?;
    let user_ids: Vec<Id> = members.iter().map(|t| t.user_id).collect();
    let users = state.store.get_users(&user_ids).await?;
    let data = users
        .iter()
        .zip(&user_ids)
        .map(|(user, id)| {
            let (name, email) = user
                .as_ref()
                .map(|u| (u.fullname(), u.email.clone()))
                .unwrap_or_default();
            AgentView {
                id: *id,
                name,
                email,
            }
        })
        .collect();
    Ok(Json(AgentsAnswer { data }))
}

/// Adds teammates to the team (admin key).
#[utoipa::path(patch, path = "/beta/teams/{team_id}/agents", tag = "dixa",
    params(TeamPath),
    request_body = AgentIdsBody,
    responses((status = 200, description = "added")))]
async fn add_members(
    State(state): State<AppState>,
    ProjectKey(access, _): ProjectKey<DixaError>,
    TeamId(id): TeamId,
    raw: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode> {
    change_members(&state, &access, id, raw, true).await?;
    Ok(StatusCode::OK)
}

/// Removes teammates from the team (admin key).
#[utoipa::path(delete, path = "/beta/teams/{team_id}/agents", tag = "dixa",
    params(TeamPath),
    request_body = AgentIdsBody,
    responses((status = 204, description = "removed")))]
async fn remove_members(
    State(state): State<AppState>,
    ProjectKey(access, _): ProjectKey<DixaError>,
    TeamId(id): TeamId,
    raw: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode> {
    change_members(&state, &access, id, raw, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{agentIds}` joins (`member`) or leaves the team.
async fn change_members(
    state: &AppState,
    access: &crate::service::Access,
    id: Id,
    raw: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
    member: bool,
) -> Result<()> {
    let agents = AgentIds::parse(&read_body(raw)?)?;
    let teams = &state.teams;
    let changed = if member {
        teams.add_members(access, id, &agents).await
    } else {
        teams.remove_members(access, id, &agents).await
    };
    changed.map_err(body_error)
}

/// Where a presence page starts: after this user id (members are ordered by user id, so a page
/// stays put when members before or after it join or leave). Opaque to clients: base64url of
/// `{"after":"<user id>"}`.
#[derive(serde::Serialize, Deserialize)]
struct PageKey {
    after: Id,
}

impl PageKey {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(raw: &str) -> Option<PageKey> {
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The live presence of the team's members, a page at a time, ordered by user id (so a page
/// stays put while members join or leave).
#[utoipa::path(get, path = "/beta/teams/{team_id}/presence", tag = "dixa",
    params(
        TeamPath,
        ("pageLimit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "rows per page (default 50)"),
        ("pageKey" = Option<String>, Query, description = "the opaque key of `meta.next`"),
    ),
    responses((status = 200, description = "a page of presence", body = PresenceAnswer)))]
async fn presence(
    State(state): State<AppState>,
    ProjectKey(access, _): ProjectKey<DixaError>,
    TeamId(id): TeamId,
    RawQuery(query): RawQuery,
) -> Result<Json<PresenceAnswer>> {
    let mut limit = DEFAULT_PAGE_LIMIT;
    let mut after = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "pageLimit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE_LIMIT).contains(n))
                    .ok_or_else(|| invalid("query parameter pageLimit"))?;
            }
            "pageKey" => {
                let key =
                    PageKey::decode(&value).ok_or_else(|| invalid("query parameter pageKey"))?;
                after = Some(key.after);
            }
            _ => {}
        }
    }
    let members = state.teams.members(&access, id).await?;
    let mut page: Vec<_> = members
        .into_iter()
        .filter(|t| after.is_none_or(|a| t.user_id > a))
        .take(limit + 1)
        .collect();
    let next = (page.len() > limit).then(|| {
        page.truncate(limit);
        let last = page.last().map(|t| t.user_id).unwrap_or_default();
        format!(
            "/beta/teams/{id}/presence?pageKey={}&pageLimit={limit}",
            PageKey { after: last }.encode()
        )
    });
    let presences = state.presence_of(&page).await?;
    let now = Timestamp::now();
    let data = page
        .iter()
        .zip(&presences)
        .map(|(teammate, presence)| {
            let online = presence.status == PresenceStatus::Online;
            let presence_status = if teammate.user_available {
                "Working"
            } else {
                "Away"
            };
            let connection_status = if online { "Online" } else { "Offline" };
            let last_seen = if online {
                Some(now)
            } else {
                presence.last_seen_at
            };
            AgentPresenceView {
                user_id: teammate.user_id,
                request_time: now,
                last_seen,
                presence_status,
                connection_status,
                active_channels: presence.channels.clone(),
            }
        })
        .collect();
    Ok(Json(PresenceAnswer {
        data,
        meta: PageMeta { next },
    }))
}
