//! The OpenAPI schemas of the Desk user update. The handler validates the body field by field
//! (one error entry per field) and builds the answer in `user_json`, so these types only
//! describe the two; the schemathesis run in CI checks that they agree.

#![allow(dead_code)]

use utoipa::ToSchema;

/// `{"user": {...}}` (the fields may also come unwrapped). Absent or null fields are left as
/// they are; read-only fields are ignored.
#[derive(ToSchema)]
pub struct DeskUpdateBody {
    user: Option<DeskUserPatch>,
}

/// The fields a Desk update may change.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct DeskUserPatch {
    #[schema(max_length = 200)]
    first_name: Option<String>,
    #[schema(max_length = 200)]
    last_name: Option<String>,
    /// Changes the sign-in email (for users active in no other project).
    #[schema(format = Email, max_length = 254)]
    email: Option<String>,
    role: Option<DeskRole>,
    /// `deleted` trashes the teammate, `active` restores it.
    state: Option<DeskState>,
    #[schema(minimum = 0)]
    timezone_id: Option<i64>,
    edit_method: Option<EditMethod>,
    ticket_reply_redirect: Option<TicketReplyRedirect>,
    is_part_time: Option<bool>,
    reviewer: Option<bool>,
    send_push_notifications: Option<bool>,
    send_web_notifications: Option<bool>,
    #[schema(rename = "autoFollowOnCC")]
    auto_follow_on_cc: Option<bool>,
}

/// The answer: `{"user": {...}, "included": {}}`.
#[derive(ToSchema)]
pub struct DeskUserAnswer {
    user: DeskUser,
    included: Object,
}

/// An empty object.
#[derive(ToSchema)]
pub struct Object {}

/// A Desk user.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct DeskUser {
    #[schema(format = Uuid)]
    id: String,
    first_name: String,
    last_name: String,
    email: String,
    role: DeskRole,
    state: DeskState,
    is_app_owner: bool,
    timezone_id: i64,
    edit_method: EditMethod,
    ticket_reply_redirect: TicketReplyRedirect,
    is_part_time: bool,
    reviewer: bool,
    send_push_notifications: bool,
    send_web_notifications: bool,
    #[schema(rename = "autoFollowOnCC")]
    auto_follow_on_cc: bool,
    #[schema(rename = "avatarURL")]
    avatar_url: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// Set while the teammate is trashed.
    #[schema(format = DateTime, required = true)]
    deleted_at: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum DeskRole {
    Admin,
    Agent,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum DeskState {
    Active,
    Deleted,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum EditMethod {
    Html,
    Markdown,
}

#[derive(ToSchema)]
pub enum TicketReplyRedirect {
    Stay,
    Next,
    Inbox,
}

/// One problem of a Desk request.
#[derive(ToSchema)]
pub struct DeskErrorEntry {
    #[schema(example = "invalid")]
    code: String,
    /// The field at fault, for validation errors.
    #[schema(example = "email")]
    field: Option<String>,
    message: String,
}

/// A Desk (`/desk`) error: one entry per problem.
#[derive(ToSchema)]
#[schema(as = DeskError)]
pub struct DeskErrorBody {
    errors: Vec<DeskErrorEntry>,
}
