//! Tiledesk wire formats, mapped from domain types. Field names are exactly the contract's.
//!
//! Each view also derives its OpenAPI schema (`ToSchema`), so the document at `/openapi.json`
//! describes exactly what is serialized. Enumerated strings have small schema-only enums here.

use crate::domain::{ApiKey, PendingInvitation, Presence, Project, Teammate, Timestamp, User};
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The schema of a project or team name: 1 to 200 characters as sent, not blank. "Not blank" is
/// a character outside Rust's `White_Space` (what `str::trim` removes), spelled out because
/// ECMA-262's `\s` differs (U+0085, U+FEFF).
pub struct Name;

impl utoipa::PartialSchema for Name {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        const NOT_BLANK: &str =
            r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(200))
            .pattern(Some(NOT_BLANK))
            .into()
    }
}

impl ToSchema for Name {}

/// A role name; each includes the ones after it.
#[derive(Serialize, ToSchema)]
#[schema(as = Role)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Owner,
    Admin,
    Supervisor,
    Agent,
    User,
    Guest,
}

/// A teammate's status in its project.
#[derive(Serialize, ToSchema)]
#[schema(as = TeammateStatus)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum TeammateStatusName {
    Active,
    Disabled,
}

/// Live presence, counted over every node.
#[derive(Serialize, ToSchema)]
#[schema(as = PresenceStatus)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatusName {
    Online,
    Offline,
}

/// A user as the API shows it: never with the password hash.
#[derive(Serialize, ToSchema)]
pub struct UserView<'a> {
    #[serde(rename = "_id")]
    #[schema(format = Uuid)]
    pub underscore_id: String,
    #[schema(format = Uuid)]
    pub id: String,
    pub email: &'a str,
    pub firstname: &'a str,
    pub lastname: &'a str,
    pub fullname: String,
    pub emailverified: bool,
    /// Tiledesk: 100 active.
    #[schema(example = 100)]
    pub status: u32,
    #[schema(value_type = Object)]
    pub attributes: &'a Map<String, Value>,
    #[serde(rename = "createdAt")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(rename = "updatedAt")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl<'a> From<&'a User> for UserView<'a> {
    fn from(u: &'a User) -> Self {
        UserView {
            underscore_id: u.id.to_string(),
            id: u.id.to_string(),
            email: &u.email,
            firstname: &u.firstname,
            lastname: &u.lastname,
            fullname: u.fullname(),
            emailverified: false,
            status: 100,
            attributes: &u.attributes,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProjectView<'a> {
    #[serde(rename = "_id")]
    #[schema(format = Uuid)]
    pub underscore_id: String,
    #[schema(format = Uuid)]
    pub id: String,
    pub name: &'a str,
    pub status: u32,
    #[serde(rename = "createdBy")]
    #[schema(format = Uuid)]
    pub created_by: String,
    #[serde(rename = "createdAt")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(rename = "updatedAt")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl<'a> From<&'a Project> for ProjectView<'a> {
    fn from(p: &'a Project) -> Self {
        ProjectView {
            underscore_id: p.id.to_string(),
            id: p.id.to_string(),
            name: &p.name,
            status: 100,
            created_by: p.created_by.to_string(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// The `id_user` object inside a teammate.
#[derive(Serialize, ToSchema)]
pub struct TeammateUserView<'a> {
    #[serde(rename = "_id")]
    #[schema(format = Uuid)]
    pub underscore_id: String,
    #[schema(format = Uuid)]
    pub id: String,
    pub email: &'a str,
    pub firstname: &'a str,
    pub lastname: &'a str,
}

#[derive(Serialize, ToSchema)]
pub struct PresenceView<'a> {
    #[schema(value_type = PresenceStatusName)]
    pub status: &'static str,
    #[serde(rename = "changedAt")]
    #[schema(value_type = String, format = DateTime)]
    pub changed_at: Timestamp,
    pub connections: u64,
    pub channels: &'a [String],
    #[serde(rename = "lastSeenAt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub last_seen_at: Option<Timestamp>,
}

impl<'a> From<&'a Presence> for PresenceView<'a> {
    fn from(presence: &'a Presence) -> Self {
        PresenceView {
            status: presence.status.as_str(),
            changed_at: presence.changed_at,
            connections: presence.connections,
            channels: &presence.channels,
            last_seen_at: presence.last_seen_at,
        }
    }
}

/// The teammate (`project_user`) JSON: every field present, as docs/protocol.md §3 lists them.
#[derive(Serialize, ToSchema)]
pub struct TeammateView<'a> {
    #[serde(rename = "_id")]
    #[schema(format = Uuid)]
    pub underscore_id: String,
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(format = Uuid)]
    pub id_project: String,
    #[schema(required = true)]
    pub id_user: Option<TeammateUserView<'a>>,
    #[schema(value_type = RoleName)]
    pub role: &'static str,
    pub user_available: bool,
    #[serde(rename = "profileStatus")]
    pub profile_status: &'a str,
    pub max_served_chat: i64,
    pub number_assigned_requests: i64,
    #[serde(rename = "isBusy")]
    pub is_busy: bool,
    #[schema(value_type = TeammateStatusName)]
    pub status: &'static str,
    pub trashed: bool,
    #[serde(rename = "isAuthenticated")]
    pub is_authenticated: bool,
    pub presence: PresenceView<'a>,
    /// Online, available, not busy, active and not trashed: a router may hand it a chat now.
    pub routable: bool,
    #[schema(value_type = Object)]
    pub attributes: &'a Map<String, Value>,
    #[schema(value_type = Vec<Object>)]
    pub tags: &'a [Value],
    #[schema(value_type = Object)]
    pub settings: &'a Map<String, Value>,
    #[serde(rename = "createdBy")]
    #[schema(format = Uuid, required = true)]
    pub created_by: Option<String>,
    #[serde(rename = "createdAt")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(rename = "updatedAt")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl<'a> TeammateView<'a> {
    pub fn new(t: &'a Teammate, user: Option<&'a User>, presence: &'a Presence) -> Self {
        TeammateView {
            underscore_id: t.id.to_string(),
            id: t.id.to_string(),
            id_project: t.project_id.to_string(),
            id_user: user.map(|u| TeammateUserView {
                underscore_id: u.id.to_string(),
                id: u.id.to_string(),
                email: &u.email,
                firstname: &u.firstname,
                lastname: &u.lastname,
            }),
            role: t.role.as_str(),
            user_available: t.user_available,
            profile_status: &t.profile_status,
            max_served_chat: t.max_served_chat,
            number_assigned_requests: t.number_assigned_requests,
            is_busy: t.is_busy(),
            status: t.status.as_str(),
            trashed: t.trashed,
            is_authenticated: user.is_some(),
            presence: PresenceView::from(presence),
            routable: t.is_routable(presence),
            attributes: &t.attributes,
            tags: &t.tags,
            settings: &t.settings,
            created_by: t.created_by.map(|id| id.to_string()),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct InvitationView<'a> {
    #[serde(rename = "_id")]
    #[schema(format = Uuid)]
    pub underscore_id: String,
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(format = Uuid)]
    pub id_project: String,
    pub email: &'a str,
    #[schema(value_type = RoleName)]
    pub role: &'static str,
    pub user_available: bool,
    #[serde(rename = "createdBy")]
    #[schema(format = Uuid, required = true)]
    pub created_by: Option<String>,
    #[serde(rename = "createdAt")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// The invitation's token: whoever signs up with it (`invite_token`) takes the invitation.
    /// At least 128 random bits; shown only in the answer to the invitation, and inviting again
    /// makes a new one and voids this.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "pgi_3q2-7wEvzz7cKZ1bq0R5yYbQJ9xX3eE0Vn1y2Zt4u8k")]
    pub token: Option<&'a str>,
}

impl<'a> InvitationView<'a> {
    /// `token` only in the answer to the invitation: it is never stored.
    pub fn new(i: &'a PendingInvitation, token: Option<&'a str>) -> Self {
        InvitationView {
            token,
            underscore_id: i.id.to_string(),
            id: i.id.to_string(),
            id_project: i.project_id.to_string(),
            email: &i.email,
            role: i.role.as_str(),
            user_available: i.user_available,
            created_by: i.invited_by.map(|id| id.to_string()),
            created_at: i.created_at,
        }
    }
}

/// An API key's metadata. The secret (`key`) is added only in the creation response.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyView<'a> {
    #[serde(rename = "_id")]
    #[schema(format = Uuid)]
    pub underscore_id: String,
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(format = Uuid)]
    pub id_project: String,
    pub name: &'a str,
    #[schema(value_type = RoleName)]
    pub role: &'static str,
    pub prefix: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
    #[serde(rename = "createdBy")]
    #[schema(format = Uuid, required = true)]
    pub created_by: Option<String>,
    #[serde(rename = "createdAt")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl<'a> ApiKeyView<'a> {
    pub fn new(k: &'a ApiKey, secret: Option<&'a str>) -> Self {
        ApiKeyView {
            underscore_id: k.id.to_string(),
            id: k.id.to_string(),
            id_project: k.project_id.to_string(),
            name: &k.name,
            role: k.role.as_str(),
            prefix: &k.prefix,
            key: secret,
            created_by: k.created_by.map(|id| id.to_string()),
            created_at: k.created_at,
        }
    }
}

/// `POST /v3/auth/signup`.
#[derive(Serialize, ToSchema)]
pub struct SignupView<'a> {
    #[schema(example = true)]
    pub success: bool,
    pub user: UserView<'a>,
}

/// `POST /v3/auth/signin`.
#[derive(Serialize, ToSchema)]
pub struct SigninView<'a> {
    #[schema(example = true)]
    pub success: bool,
    /// `JWT <jwt>`: use it verbatim as the `Authorization` value.
    #[schema(example = "JWT eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl")]
    pub token: String,
    pub user: UserView<'a>,
}

/// The answer to an invitation of an email with no account yet.
#[derive(Serialize, ToSchema)]
pub struct PendingInvitationView<'a> {
    #[schema(example = true)]
    pub success: bool,
    pub msg: &'static str,
    #[serde(rename = "pendingInvitation")]
    pub pending_invitation: InvitationView<'a>,
}

/// One entry of `GET /v3/projects/{pid}/users/availables`. `id` is the user id, as in Tiledesk.
#[derive(Serialize, ToSchema)]
pub struct AvailableView<'a> {
    #[schema(format = Uuid)]
    pub id: String,
    pub fullname: String,
    pub email: &'a str,
    pub assigned_request: i64,
}

/// Serializes a view into a JSON value (a failure is a bug: 500).
pub fn to_value<T: Serialize>(view: &T) -> Result<Value> {
    serde_json::to_value(view).map_err(|e| Error::Internal(e.to_string()))
}
