//! `/v3/{pid}/project_users/...` and `/v3/projects/{pid}/users/availables`: the team.

use super::team_query::{parse_bool, parse_status, ListFilter};
use crate::domain::{Presence, Role, Teammate};
use crate::error::{Error, Result};
use crate::http::extract::{optional_integer, parse_id, Json, Member};
use crate::http::params::{ProjectPath, ProjectUserPath, TeammatePath};
use crate::service::{InviteOutcome, InviteRequest, RemoveMode, TeammatePatch};
use crate::state::AppState;
use crate::views::{
    to_value, AvailableView, InvitationView, PendingInvitationView, PresenceStatusName, RoleName,
    TeammateStatusName, TeammateView,
};
use axum::extract::{Path, RawQuery, State};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use utoipa::ToSchema;

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> &'a str {
    params.get(name).map(String::as_str).unwrap_or_default()
}

/// The team. Trashed teammates are left out unless `trashed=true`.
#[utoipa::path(get, path = "/v3/{pid}/project_users", tag = "teammates",
    params(
        ProjectPath,
        ("trashed" = Option<bool>, Query, description = "include trashed teammates"),
        ("role" = Option<String>, Query, pattern = r"^((owner|admin|supervisor|agent|user|guest)(,|$))*$",
            description = "only these roles, comma-separated (the parameter may also repeat)"),
        ("presencestatus" = Option<PresenceStatusName>, Query, description = "only online or offline teammates"),
        ("status" = Option<TeammateStatusName>, Query, description = "only active or disabled teammates"),
    ),
    responses((status = 200, description = "the teammates", body = Vec<TeammateView<'static>>)))]
pub async fn list(
    State(state): State<AppState>,
    Member(access): Member,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>> {
    access.require(Role::Agent)?;
    let filter = ListFilter::parse(query.as_deref())?;
    let teammates = state.store.list_teammates(access.project.id).await?;
    // Presence is read once: for the `presencestatus` filter and for rendering.
    let presences = state.presence_of(&teammates).await?;
    let (kept, kept_presences): (Vec<Teammate>, Vec<Presence>) = teammates
        .into_iter()
        .zip(presences)
        .filter(|(t, p)| filter.keeps(t, p))
        .unzip();
    Ok(Json(Value::Array(
        state.render_teammates_with(&kept, &kept_presences).await?,
    )))
}

/// The caller's own teammate, as an array (as in Tiledesk).
#[utoipa::path(get, path = "/v3/{pid}/project_users/me", tag = "teammates",
    security(("jwt" = []), ("basic" = [])),
    params(ProjectPath),
    responses((status = 200, description = "an array with the caller's teammate", body = Vec<TeammateView<'static>>)))]
pub async fn me(State(state): State<AppState>, Member(access): Member) -> Result<Json<Value>> {
    access.require(Role::Agent)?;
    let own = access
        .teammate
        .as_ref()
        .ok_or_else(|| Error::forbidden("an API key has no teammate of its own"))?;
    Ok(Json(Value::Array(
        state.render_teammates(std::slice::from_ref(own)).await?,
    )))
}

/// One teammate.
#[utoipa::path(get, path = "/v3/{pid}/project_users/{puid}", tag = "teammates",
    params(TeammatePath),
    responses((status = 200, description = "the teammate", body = TeammateView<'static>)))]
pub async fn get(
    State(state): State<AppState>,
    Member(access): Member,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>> {
    access.require(Role::Agent)?;
    let id = parse_id(param(&params, "puid"), "teammate id")?;
    let teammate = state
        .store
        .get_teammate(access.project.id, id)
        .await?
        .ok_or_else(|| Error::not_found("teammate"))?;
    Ok(Json(state.render_teammate(&teammate).await?))
}

/// The teammate of a user, as an array (as in Tiledesk).
#[utoipa::path(get, path = "/v3/{pid}/project_users/users/{user_id}", tag = "teammates",
    params(ProjectUserPath),
    responses((status = 200, description = "an array with that user's teammate", body = Vec<TeammateView<'static>>)))]
pub async fn by_user(
    State(state): State<AppState>,
    Member(access): Member,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>> {
    access.require(Role::Agent)?;
    let user_id = parse_id(param(&params, "user_id"), "user id")?;
    let teammate = state
        .store
        .find_teammate_by_user(access.project.id, user_id)
        .await?
        .ok_or_else(|| Error::not_found("teammate"))?;
    Ok(Json(Value::Array(vec![
        state.render_teammate(&teammate).await?,
    ])))
}

/// `POST /v3/{pid}/project_users/invite`.
#[derive(Deserialize, ToSchema)]
pub struct InviteBody {
    #[schema(format = Email, max_length = 254, example = "bob@example.com")]
    email: String,
    #[schema(value_type = InvitableRole)]
    role: String,
    #[allow(dead_code)]
    firstname: Option<String>,
    #[allow(dead_code)]
    lastname: Option<String>,
    user_available: Option<bool>,
}

/// The roles an invitation may give.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum InvitableRole {
    Agent,
    Supervisor,
    Admin,
}

/// What an invitation answers.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum InviteAnswer<'a> {
    Teammate(Box<TeammateView<'a>>),
    Pending(PendingInvitationView<'a>),
}

/// Invites an email (admin and up). A disabled or trashed member is reactivated; an email with
/// no account gets a pending invitation that becomes a teammate at sign-up.
#[utoipa::path(post, path = "/v3/{pid}/project_users/invite", tag = "teammates",
    params(ProjectPath),
    request_body = InviteBody,
    responses((status = 200, description = "the teammate, or the pending invitation", body = InviteAnswer<'static>)))]
pub async fn invite(
    State(state): State<AppState>,
    Member(access): Member,
    Json(body): Json<InviteBody>,
) -> Result<Json<Value>> {
    access.require(Role::Admin)?;
    let role = body
        .role
        .parse()
        .map_err(|_| Error::bad_request("role must be one of agent, supervisor or admin"))?;
    let outcome = state
        .teammates
        .invite(
            &access,
            InviteRequest {
                email: body.email,
                role,
                user_available: body.user_available,
            },
        )
        .await?;
    match outcome {
        InviteOutcome::Teammate(teammate) => Ok(Json(state.render_teammate(&teammate).await?)),
        InviteOutcome::Pending { invitation, token } => {
            Ok(Json(to_value(&PendingInvitationView {
                success: true,
                msg:
                    "User not found; the invitation is pending until they sign up with this email \
                  and its token (pendingInvitation.token, shown only now)",
                pending_invitation: InvitationView::new(&invitation, Some(&token)),
            })?))
        }
    }
}

/// The body of both teammate updates. Unknown fields are ignored (clients send whole objects).
#[derive(Deserialize, Default, ToSchema)]
pub struct UpdateBody {
    user_available: Option<bool>,
    #[serde(rename = "profileStatus")]
    #[schema(max_length = 200, example = "lunch")]
    profile_status: Option<String>,
    #[serde(default, deserialize_with = "optional_integer")]
    max_served_chat: Option<i64>,
    /// Alias of `max_served_chat`.
    #[serde(default, deserialize_with = "optional_integer")]
    max_assigned_chat: Option<i64>,
    /// Replaces the attributes object.
    #[schema(value_type = Option<Object>)]
    attributes: Option<Map<String, Value>>,
    /// Replaces the settings object.
    #[schema(value_type = Option<Object>)]
    settings: Option<Map<String, Value>>,
    /// Admins and up only; only an owner grants or revokes `owner`.
    #[schema(value_type = Option<RoleName>)]
    role: Option<String>,
    /// `PUT /v3/{pid}/project_users/{puid}` only.
    #[schema(value_type = Option<TeammateStatusName>)]
    status: Option<String>,
    /// `PUT /v3/{pid}/project_users/{puid}` only.
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "optional_integer")]
    number_assigned_requests: Option<i64>,
}

impl UpdateBody {
    fn into_patch(self) -> Result<TeammatePatch> {
        // Checked here too, not only where it is applied, so that the route that ignores the
        // field (your own teammate) refuses it the same way.
        if self.number_assigned_requests.is_some_and(|n| n < 0) {
            return Err(Error::bad_request(
                "number_assigned_requests must not be negative",
            ));
        }
        Ok(TeammatePatch {
            user_available: self.user_available,
            profile_status: self.profile_status,
            max_served_chat: self.max_served_chat.or(self.max_assigned_chat),
            attributes: self.attributes,
            settings: self.settings,
            role: self
                .role
                .map(|r| {
                    r.parse().map_err(|e: crate::domain::ParseRoleError| {
                        Error::bad_request(e.to_string())
                    })
                })
                .transpose()?,
            status: self.status.as_deref().map(parse_status).transpose()?,
            number_assigned_requests: self.number_assigned_requests,
            ..Default::default()
        })
    }
}

/// Updates the caller's own teammate (`role` only for admins and up).
#[utoipa::path(put, path = "/v3/{pid}/project_users", tag = "teammates",
    security(("jwt" = []), ("basic" = [])),
    params(ProjectPath),
    request_body = UpdateBody,
    responses((status = 200, description = "the teammate after the change", body = TeammateView<'static>)))]
pub async fn update_own(
    State(state): State<AppState>,
    Member(access): Member,
    Json(body): Json<UpdateBody>,
) -> Result<Json<Value>> {
    access.require(Role::Agent)?;
    let teammate = state
        .teammates
        .update_own(&access, body.into_patch()?)
        .await?;
    Ok(Json(state.render_teammate(&teammate).await?))
}

/// Updates a teammate of the project (admin and up). Never creates one.
#[utoipa::path(put, path = "/v3/{pid}/project_users/{puid}", tag = "teammates",
    params(TeammatePath),
    request_body = UpdateBody,
    responses((status = 200, description = "the teammate after the change", body = TeammateView<'static>)))]
pub async fn update(
    State(state): State<AppState>,
    Member(access): Member,
    Path(params): Path<HashMap<String, String>>,
    Json(body): Json<UpdateBody>,
) -> Result<Json<Value>> {
    access.require(Role::Admin)?;
    let id = parse_id(param(&params, "puid"), "teammate id")?;
    let teammate = state
        .teammates
        .update(&access, id, body.into_patch()?)
        .await?;
    Ok(Json(state.render_teammate(&teammate).await?))
}

/// Disables a teammate; `soft=true` trashes it, `hard=true` deletes it. The last owner cannot be
/// removed.
#[utoipa::path(delete, path = "/v3/{pid}/project_users/{puid}", tag = "teammates",
    params(
        TeammatePath,
        ("soft" = Option<bool>, Query, description = "trash instead of disabling"),
        ("hard" = Option<bool>, Query, description = "delete instead of disabling"),
    ),
    responses((status = 200, description = "the teammate after the change", body = TeammateView<'static>)))]
pub async fn remove(
    State(state): State<AppState>,
    Member(access): Member,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>> {
    access.require(Role::Admin)?;
    let id = parse_id(param(&params, "puid"), "teammate id")?;
    let (mut soft, mut hard) = (false, false);
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "soft" => soft = parse_bool("soft", &value)?,
            "hard" => hard = parse_bool("hard", &value)?,
            _ => {}
        }
    }
    let mode = match (soft, hard) {
        (true, true) => return Err(Error::bad_request("choose soft or hard, not both")),
        (true, false) => RemoveMode::Trash,
        (false, true) => RemoveMode::Delete,
        (false, false) => RemoveMode::Disable,
    };
    let teammate = state.teammates.remove(&access, id, mode).await?;
    Ok(Json(state.render_teammate(&teammate).await?))
}

/// Restores a trashed teammate.
#[utoipa::path(put, path = "/v3/{pid}/project_users/{puid}/restore", tag = "teammates",
    params(TeammatePath),
    responses((status = 200, description = "the restored teammate", body = TeammateView<'static>)))]
pub async fn restore(
    State(state): State<AppState>,
    Member(access): Member,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>> {
    access.require(Role::Admin)?;
    let id = parse_id(param(&params, "puid"), "teammate id")?;
    let teammate = state.teammates.restore(&access, id).await?;
    Ok(Json(state.render_teammate(&teammate).await?))
}

/// `[{id, fullname, email, assigned_request}]` of active, available teammates (agent and up).
/// `id` is the user id, as in Tiledesk.
#[utoipa::path(get, path = "/v3/projects/{pid}/users/availables", tag = "teammates",
    params(ProjectPath),
    responses((status = 200, description = "the available teammates", body = Vec<AvailableView<'static>>)))]
pub async fn availables(
    State(state): State<AppState>,
    Member(access): Member,
) -> Result<Json<Value>> {
    access.require(Role::Agent)?;
    let available: Vec<Teammate> = state
        .store
        .list_teammates(access.project.id)
        .await?
        .into_iter()
        .filter(|t| t.is_active() && t.user_available && t.role >= Role::Agent)
        .collect();
    let user_ids: Vec<_> = available.iter().map(|t| t.user_id).collect();
    let users = state.store.get_users(&user_ids).await?;
    let list = available
        .iter()
        .zip(users.iter())
        .filter_map(|(t, u)| {
            let u = u.as_ref()?;
            Some(to_value(&AvailableView {
                id: u.id.to_string(),
                fullname: u.fullname(),
                email: &u.email,
                assigned_request: t.number_assigned_requests,
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Json(Value::Array(list)))
}
