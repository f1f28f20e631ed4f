//! The Teamwork-Desk-compatible user update, `PATCH /desk/api/v2/users/{id}.json` (docs/rest.md,
//! "Teamwork Desk user update").
//!
//! `{id}` is the user id (a UUID here; Desk's are integers). The caller is an `admin` API key;
//! the user must be a teammate of the key's project (404 otherwise, so a key learns nothing of
//! other projects). The body is `{"user":{...}}` or the bare object. Fields map onto:
//!
//! * the user: `firstName`, `lastName`, `email`;
//! * the teammate: `role` (`admin` / `agent`), `state` (`active` / `deleted` = trashed);
//! * the teammate's `settings.desk`: `timezoneId`, `editMethod`, `ticketReplyRedirect`,
//!   `isPartTime`, `reviewer`, `sendPushNotifications`, `sendWebNotifications`,
//!   `autoFollowOnCC`.
//!
//! Read-only and unknown fields, and `null` values, are ignored. Every invalid field gets its own
//! entry in a 400 `{"errors":[{"code":"invalid","field","message"}]}`, and then nothing is
//! changed. The teammate change goes through the same service as `/v3`, so it produces the same
//! single event (`project_user.update`, `.delete` for `deleted`, `.restore` for `active` after
//! `deleted`). Names and email are the user's account, like `PUT /v3/users`, and produce no
//! teammate event. The account is shared by all of the user's projects, so a key changes it only
//! for a user who is an active teammate of no other project, never an owner's (see
//! [`AccountChange`]).

mod error;
mod preferences;
mod schema;

pub use schema::{DeskErrorBody, DeskErrorEntry};

use error::{invalid_fields, DeskError, FieldError};

use super::extract::{body_rejection, parse_any_json, ProjectKey};
use crate::domain::{self, Id, Role, Teammate, TeammateStatus, User};
use crate::error::Error;
use crate::service::TeammatePatch;
use crate::state::AppState;
use crate::store::StoreError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};

use axum::routing::patch;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

const MAX_NAME_LEN: usize = 200;
/// The key under `settings` where the Desk preferences live.
const SETTINGS_KEY: &str = "desk";

/// The route below, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(update_user))]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/desk/api/v2/users/{file}", patch(update_user))
}

type Result<T> = std::result::Result<T, DeskError>;

/// What a request asks to change, after validation.
#[derive(Default)]
struct DeskUpdate {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    role: Option<Role>,
    /// `Some(true)` for `deleted`.
    deleted: Option<bool>,
    preferences: Map<String, Value>,
}

impl DeskUpdate {
    /// Validates every field; all problems at once.
    fn parse(body: &Value) -> Result<DeskUpdate> {
        let object = match body.get("user") {
            Some(Value::Object(user)) => user,
            Some(Value::Null) | None => body.as_object().ok_or_else(|| {
                invalid_fields(vec![FieldError::new(
                    "user",
                    "the body must be a JSON object",
                )])
            })?,
            Some(_) => {
                return Err(invalid_fields(vec![FieldError::new(
                    "user",
                    "user must be an object",
                )]))
            }
        };
        let field = |name: &str| object.get(name).filter(|v| !v.is_null());
        let mut errors = Vec::new();
        let mut update = DeskUpdate::default();
        for (name, slot) in [
            ("firstName", &mut update.first_name),
            ("lastName", &mut update.last_name),
        ] {
            if let Some(value) = field(name) {
                match value.as_str() {
                    Some(s) if s.chars().count() <= MAX_NAME_LEN => *slot = Some(s.to_string()),
                    _ => errors.push(FieldError::new(
                        name,
                        format!("{name} must be a string of at most {MAX_NAME_LEN} characters"),
                    )),
                }
            }
        }
        if let Some(value) = field("email") {
            let email = value.as_str().map(domain::normalize_email);
            match email {
                Some(email) if domain::is_plausible_email(&email) => update.email = Some(email),
                _ => errors.push(FieldError::new(
                    "email",
                    "email must be a valid email address",
                )),
            }
        }
        if let Some(value) = field("role") {
            match value.as_str() {
                Some("admin") => update.role = Some(Role::Admin),
                Some("agent") => update.role = Some(Role::Agent),
                _ => errors.push(FieldError::new("role", "role must be admin or agent")),
            }
        }
        if let Some(value) = field("state") {
            match value.as_str() {
                Some("active") => update.deleted = Some(false),
                Some("deleted") => update.deleted = Some(true),
                _ => errors.push(FieldError::new("state", "state must be active or deleted")),
            }
        }
        for name in preferences::NAMES {
            if let Some(value) = field(name) {
                match preferences::accept(name, value) {
                    Ok(kept) => {
                        update.preferences.insert(name.into(), kept);
                    }
                    Err(message) => errors.push(FieldError::new(name, message)),
                }
            }
        }
        if errors.is_empty() {
            Ok(update)
        } else {
            Err(invalid_fields(errors))
        }
    }
}

/// The Desk role of a teammate: owners and admins are `admin`, everyone else `agent`.
fn desk_role(role: Role) -> &'static str {
    if role >= Role::Admin {
        "admin"
    } else {
        "agent"
    }
}

/// Updates a user of the key's project (admin key): names and email on the account, role and
/// state on the teammate, Desk preferences in the teammate's settings. All or nothing: one
/// invalid field changes nothing.
#[utoipa::path(patch, path = "/desk/api/v2/users/{id}.json", tag = "desk",
    params(("id" = uuid::Uuid, Path, description = "the user id")),
    request_body = schema::DeskUpdateBody,
    responses((status = 200, description = "the user after the change", body = schema::DeskUserAnswer)))]
async fn update_user(
    State(state): State<AppState>,
    ProjectKey(access, _): ProjectKey<DeskError>,
    path: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    access.require(Role::Admin)?;
    let file = path.map(|Path(file)| file).unwrap_or_default();
    let user_id: Id = file
        .strip_suffix(".json")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| Error::not_found("user"))?;
    let body = parse_any_json(&raw.map_err(body_rejection)?)?;
    let update = DeskUpdate::parse(&body)?;

    let pid = access.project.id;
    let teammate = state
        .store
        .find_teammate_by_user(pid, user_id)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    let mut user = state
        .store
        .get_user(user_id)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;

    // Every check before the first write, so that a refused request changes nothing.
    let email_change = update.email.clone().filter(|e| *e != user.email);
    let mut account_fields = Vec::new();
    if update
        .first_name
        .as_ref()
        .is_some_and(|n| *n != user.firstname)
    {
        account_fields.push("firstName");
    }
    if update
        .last_name
        .as_ref()
        .is_some_and(|n| *n != user.lastname)
    {
        account_fields.push("lastName");
    }
    if email_change.is_some() {
        account_fields.push("email");
    }
    if !account_fields.is_empty() {
        let change = AccountChange {
            user: &user,
            teammate: &teammate,
            fields: &account_fields,
            email: email_change.as_deref(),
        };
        change.check(&state, access.role).await?;
    }
    let role = update
        .role
        .filter(|r| desk_role(*r) != desk_role(teammate.role));
    let patch = TeammatePatch {
        role,
        trashed: update.deleted,
        status: update
            .deleted
            .and_then(|deleted| (!deleted).then_some(TeammateStatus::Active)),
        settings_merge: (!update.preferences.is_empty()).then(|| {
            let mut merge = Map::new();
            merge.insert(
                SETTINGS_KEY.into(),
                Value::Object(update.preferences.clone()),
            );
            merge
        }),
        ..Default::default()
    };
    let changes_teammate =
        patch.role.is_some() || patch.trashed.is_some() || patch.settings_merge.is_some();
    // The teammate first: the service refuses an owner's role or state (403) before anything is
    // written; the account, checked above, follows.
    let teammate = if changes_teammate {
        state.teammates.update(&access, teammate.id, patch).await?
    } else {
        teammate
    };
    if !account_fields.is_empty() {
        if let Some(first) = update.first_name {
            user.firstname = first;
        }
        if let Some(last) = update.last_name {
            user.lastname = last;
        }
        user.updated_at = crate::domain::Timestamp::now();
        match email_change {
            Some(email) => {
                user.email = email;
                state
                    .store
                    .change_user_email(&user)
                    .await
                    .map_err(|e| match e {
                        StoreError::Conflict => invalid_fields(vec![FieldError::new(
                            "email",
                            "email is already in use",
                        )]),
                        other => other.into(),
                    })?;
            }
            None => state.store.update_user(&user).await?,
        }
    }
    Ok(Json(
        json!({ "user": user_json(&user, &teammate), "included": {} }),
    ))
}

/// A change of the user's account (names, email) through a project's key. The account is
/// shared by every project the user belongs to, and the email is its sign-in name, so:
/// - an owner's account is changed only by an owner (a key never is one): 403;
/// - a user who is an active teammate of another project is changed only by the user: a 400
///   entry per field;
/// - the email must be nobody else's: a 400 `email` entry.
struct AccountChange<'a> {
    user: &'a User,
    teammate: &'a Teammate,
    fields: &'a [&'static str],
    email: Option<&'a str>,
}

impl AccountChange<'_> {
    async fn check(&self, state: &AppState, caller: Role) -> Result<()> {
        if self.teammate.role == Role::Owner && caller != Role::Owner {
            return Err(Error::forbidden("only an owner may change an owner's account").into());
        }
        let elsewhere = state
            .store
            .list_user_teammates(self.user.id)
            .await?
            .iter()
            .any(|t| t.project_id != self.teammate.project_id && t.is_active());
        if elsewhere {
            let errors = self
                .fields
                .iter()
                .map(|field| {
                    FieldError::new(
                        field,
                        format!(
                            "this user belongs to other projects; only they can change their {field}"
                        ),
                    )
                })
                .collect();
            return Err(invalid_fields(errors));
        }
        if let Some(email) = self.email {
            let taken = state
                .store
                .find_user_by_email(email)
                .await?
                .is_some_and(|other| other.id != self.user.id);
            if taken {
                return Err(invalid_fields(vec![FieldError::new(
                    "email",
                    "email is already in use",
                )]));
            }
        }
        Ok(())
    }
}

/// The user in Desk's field names: the account, the teammate's role and state, and the Desk
/// preferences (with Desk's defaults where none were set).
fn user_json(user: &User, teammate: &Teammate) -> Value {
    let preferences = teammate
        .settings
        .get(SETTINGS_KEY)
        .and_then(Value::as_object);
    // `settings` can also be replaced through the Tiledesk API with any JSON, so a stored value
    // is shown only if this API would have accepted it; otherwise the Desk default.
    let preference = |name: &str, default: Value| {
        preferences
            .and_then(|p| p.get(name))
            .filter(|value| preferences::accept(name, value).is_ok())
            .cloned()
            .unwrap_or(default)
    };
    json!({
        "id": user.id.to_string(),
        "firstName": user.firstname,
        "lastName": user.lastname,
        "email": user.email,
        "role": desk_role(teammate.role),
        "state": if teammate.trashed { "deleted" } else { "active" },
        "isAppOwner": teammate.role == Role::Owner,
        "timezoneId": preference("timezoneId", json!(0)),
        "editMethod": preference("editMethod", json!("html")),
        "ticketReplyRedirect": preference("ticketReplyRedirect", json!("Stay")),
        "isPartTime": preference("isPartTime", json!(false)),
        "reviewer": preference("reviewer", json!(false)),
        "sendPushNotifications": preference("sendPushNotifications", json!(true)),
        "sendWebNotifications": preference("sendWebNotifications", json!(true)),
        "autoFollowOnCC": preference("autoFollowOnCC", json!(false)),
        "avatarURL": "",
        "createdAt": teammate.created_at,
        "updatedAt": teammate.updated_at.max(user.updated_at),
        "deletedAt": if teammate.trashed { json!(teammate.updated_at) } else { Value::Null },
    })
}
