//! The error shapes of the three API families, as schemas, and the shared error responses that
//! [`super::Family`] adds to every operation of a family.
//!
//! The bodies are built in `http/error.rs` (Tiledesk), `http/dixa.rs` and `http/desk.rs`; these
//! types only describe them. The schemathesis run in CI checks every answer against them.

use serde::Serialize;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, Ref};
use utoipa::ToSchema;

/// A Tiledesk (`/v3`) error.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct TiledeskError {
    #[schema(example = false)]
    success: bool,
    #[schema(example = "not a member of this project")]
    msg: String,
    /// Tiledesk's numeric code where it has one: 4000 inviting yourself, 4001 inviting an
    /// active member.
    #[schema(example = 4001)]
    code: Option<i64>,
}

/// A Dixa (`/beta`) error.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct DixaError {
    #[schema(example = "Invalid value for: body")]
    message: String,
}

/// One problem of a Desk request.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct DeskErrorEntry {
    #[schema(example = "invalid")]
    code: String,
    /// The field at fault, for validation errors.
    #[schema(example = "email")]
    field: Option<String>,
    message: String,
}

/// A Desk (`/desk`) error: one entry per problem.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct DeskError {
    errors: Vec<DeskErrorEntry>,
}

/// The statuses every operation of a family may answer, and why.
pub const COMMON: [(u16, &str); 3] = [
    (400, "malformed input: a bad id, query parameter or body"),
    (413, "the body is over 1 MiB"),
    (
        503,
        "the store is unreachable; retry after `Retry-After` seconds",
    ),
];

/// The statuses of operations that take credentials.
pub const AUTHENTICATED: [(u16, &str); 3] = [
    (
        401,
        "missing or invalid credentials (with `WWW-Authenticate`)",
    ),
    (
        403,
        "not an active member of the project, or the role is too low",
    ),
    (
        404,
        "the project or the entity named in the path does not exist",
    ),
];

/// What a write may answer when the record kept changing under it (the teammate update loop
/// gives up after 8 optimistic retries).
pub const CONCURRENT: (u16, &str) = (409, "the record kept changing concurrently; retry");

/// The name of a shared response in `components.responses`, e.g. `Tiledesk401`.
pub fn response_name(family: &str, status: u16) -> String {
    format!("{family}{status}")
}

/// A shared error response whose body is the family's error schema.
pub fn response(schema: &str, description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
}
