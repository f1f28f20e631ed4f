//! The OpenAPI 3.1 document of every HTTP route (docs/protocol.md covers what it cannot: the
//! socket, events, webhooks), generated from the code.
//!
//! Each handler carries its own `#[utoipa::path]` (path, parameters, body, success answers), and
//! each router module lists its handlers in an `ApiDoc` next to its route table. This module
//! merges them and applies what is the same for a whole API family instead of repeating it on
//! every handler: the security schemes and the error answers in that family's shape
//! ([`FAMILIES`]). `tests/api/openapi.rs` fails when a route exists in the router but not here, or
//! the other way round.

mod errors;

use crate::state::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::OnceLock;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, PathItem, Ref, RefOr};
use utoipa::OpenApi;

/// Credentials an operation takes.
#[derive(Clone, Copy, PartialEq)]
enum Credentials {
    /// Sign-up and sign-in.
    None,
    /// A user's JWT or password, or a project API key (the Tiledesk API).
    UserOrKey,
    /// A project API key only (the Dixa and Desk APIs).
    Key,
}

/// An API family: the paths it owns, the shape of its errors and its credentials.
struct Family {
    prefix: &'static str,
    /// Prefix of its shared responses in `components.responses`.
    name: &'static str,
    error_schema: &'static str,
    credentials: Credentials,
}

/// The first family whose prefix matches a path owns it; paths of none (the operations
/// endpoints) get nothing added.
const FAMILIES: [Family; 4] = [
    Family {
        prefix: "/v3/auth/",
        name: "Tiledesk",
        error_schema: "TiledeskError",
        credentials: Credentials::None,
    },
    Family {
        prefix: "/v3/",
        name: "Tiledesk",
        error_schema: "TiledeskError",
        credentials: Credentials::UserOrKey,
    },
    Family {
        prefix: "/beta/",
        name: "Dixa",
        error_schema: "DixaError",
        credentials: Credentials::Key,
    },
    Family {
        prefix: "/desk/",
        name: "Desk",
        error_schema: "DeskError",
        credentials: Credentials::Key,
    },
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "presence-gateway",
        description = "Live presence and availability of customer-support teammates, behind the \
                       Tiledesk (`/v3`), Dixa (`/beta`) and Teamwork Desk (`/desk`) REST APIs. \
                       The agent WebSocket (`/ws`), events and webhooks are described in the repository's docs/protocol.md, not here.",
        license(name = "MIT")
    ),
    paths(openapi_json),
    components(schemas(
        super::error::TiledeskError,
        super::dixa::DixaErrorBody,
        super::desk::DeskErrorBody,
        super::desk::DeskErrorEntry
    )),
    tags(
        (name = "accounts", description = "Sign-up, sign-in and the current user"),
        (name = "projects", description = "Projects"),
        (name = "teammates", description = "The team of a project: roles, availability, presence"),
        (name = "keys", description = "Project API keys"),
        (name = "events", description = "Server-Sent Events of a project's changes"),
        (name = "webhooks", description = "Webhook subscriptions and their delivery history"),
        (name = "dixa", description = "Dixa-compatible teams and team presence (API key)"),
        (name = "desk", description = "Teamwork-Desk-compatible user update (API key)"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
struct Root;

/// `GET /openapi.json`.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "the OpenAPI 3.1 document of every HTTP route",
        content_type = "application/json", body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}

/// The whole document, built once.
pub fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

/// The document as JSON, serialized once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| serde_json::to_string(document()).expect("the document serializes"))
}

fn build() -> Document {
    let mut doc = Root::openapi();
    doc.merge(super::tiledesk::ApiDoc::openapi());
    doc.merge(super::dixa::ApiDoc::openapi());
    doc.merge(super::desk::ApiDoc::openapi());
    doc.merge(super::ops::ApiDoc::openapi());
    doc.merge(super::docs::ApiDoc::openapi());
    doc.merge(super::board::ApiDoc::openapi());
    add_security_schemes(&mut doc);
    add_shared_responses(&mut doc);
    for (path, item) in doc.paths.paths.iter_mut() {
        if let Some(family) = FAMILIES.iter().find(|f| path.starts_with(f.prefix)) {
            for (changes, operation) in operations(item) {
                family.apply(operation, changes);
            }
        }
    }
    doc
}

impl Family {
    /// `changes`: the operation writes (anything but GET), so it may meet a concurrent change.
    fn apply(&self, operation: &mut utoipa::openapi::path::Operation, changes: bool) {
        let mut statuses: Vec<(u16, &str)> = errors::COMMON.to_vec();
        if operation.request_body.is_none() {
            statuses.retain(|(status, _)| !matches!(status, 408 | 413));
        }
        if self.credentials != Credentials::None {
            statuses.extend(errors::AUTHENTICATED);
            // An operation that takes fewer credentials (a user's, not a key) says so itself.
            operation.security.get_or_insert_with(|| self.security());
            if changes {
                statuses.push(errors::CONCURRENT);
            }
        }
        for (status, _) in statuses {
            operation
                .responses
                .responses
                .entry(status.to_string())
                .or_insert_with(|| {
                    RefOr::Ref(Ref::from_response_name(errors::response_name(
                        self.name, status,
                    )))
                });
        }
    }

    /// Alternatives: any one of them is enough.
    fn security(&self) -> Vec<SecurityRequirement> {
        let names: &[&str] = match self.credentials {
            Credentials::None => &[],
            Credentials::UserOrKey => &["jwt", "basic", "apiKey"],
            Credentials::Key => &["apiKey"],
        };
        names
            .iter()
            .map(|name| SecurityRequirement::new(*name, Vec::<String>::new()))
            .collect()
    }
}

/// The operations of a path, each with whether it writes.
fn operations(
    item: &mut PathItem,
) -> impl Iterator<Item = (bool, &mut utoipa::openapi::path::Operation)> {
    [
        (false, item.get.as_mut()),
        (true, item.put.as_mut()),
        (true, item.post.as_mut()),
        (true, item.delete.as_mut()),
        (true, item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(changes, operation)| Some((changes, operation?)))
}

fn add_security_schemes(doc: &mut Document) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "jwt",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "A JWT as `Bearer <jwt>` or `JWT <jwt>` (the form sign-in returns): HS256 \
                     with the shared secret, or RS256 / ES256 / EdDSA with a key of the \
                     configured JWKS",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "basic",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some("email and password (runs Argon2 per request)"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "apiKey",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "Authorization",
            "a project API key (`pgk_…`), bare or as `Bearer <key>`",
        ))),
    );
}

fn add_shared_responses(doc: &mut Document) {
    let components = doc.components.get_or_insert_with(Default::default);
    // Families that share a name (the two Tiledesk ones) insert the same responses again.
    for family in &FAMILIES {
        let statuses = errors::COMMON.iter().chain(&errors::AUTHENTICATED);
        for (status, description) in statuses.chain([&errors::CONCURRENT]) {
            components.responses.insert(
                errors::response_name(family.name, *status),
                RefOr::T(errors::response(family.error_schema, *status, description)),
            );
        }
    }
}
