//! The shared error responses that [`super::Family`] adds to every operation of a family. Their
//! bodies are the families' error schemas, described where each body is built: `TiledeskError`
//! in `http/error.rs`, `DixaError` in `http/dixa/views.rs`, `DeskError` in `http/desk/schema.rs`.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::{ContentBuilder, Ref};

/// The statuses every operation of a family may answer, and why.
pub const COMMON: [(u16, &str); 4] = [
    (400, "malformed input: a bad id, query parameter or body"),
    (
        408,
        "the body did not arrive within `http_header_timeout_ms` of the end of the request's head",
    ),
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
pub fn response(schema: &str, status: u16, description: &str) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(schema)))
            .build(),
    );
    for (name, about) in headers(status) {
        let header = HeaderBuilder::new()
            .schema(Some(Object::with_type(Type::String)))
            .description(Some(*about))
            .build();
        response = response.header(*name, header);
    }
    response.build()
}

/// The headers an error answer of `status` carries (`Error::add_headers`).
fn headers(status: u16) -> &'static [(&'static str, &'static str)] {
    match status {
        401 => &[("WWW-Authenticate", "the authentication challenge")],
        503 => &[("Retry-After", "seconds to wait before retrying")],
        _ => &[],
    }
}
