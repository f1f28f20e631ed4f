//! The team presence board at `/board` (README, "The team presence board"): a page, its script and style, and the
//! JavaScript client library it is built on (`clients/js/src`), all compiled into the binary.
//!
//! There is no build step: the files are served as they are in the repository, so the board
//! works offline and a change to the client library reaches the board with the next build.
//! The credential travels in the URL fragment (`#token=...`), which browsers never send to a
//! server, so it stays out of access logs.

use crate::state::AppState;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

#[derive(utoipa::OpenApi)]
#[openapi(paths(board_page, board_asset))]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/board", get(board_page))
        .route("/board/{file}", get(board_asset))
}

const HTML: &str = "text/html; charset=utf-8";
const SCRIPT: &str = "text/javascript; charset=utf-8";
const STYLE: &str = "text/css; charset=utf-8";

/// The files under `/board/`, by name: the board's own, then the client library's modules,
/// which import each other by these same relative names.
const ASSETS: &[(&str, &str, &str)] = &[
    ("board.js", SCRIPT, include_str!("board.js")),
    ("team-board.js", SCRIPT, include_str!("team-board.js")),
    ("ui.js", SCRIPT, include_str!("ui.js")),
    ("board.css", STYLE, include_str!("board.css")),
    ("icon.svg", "image/svg+xml", include_str!("icon.svg")),
    (
        "emitter.js",
        SCRIPT,
        include_str!("../../../clients/js/src/emitter.js"),
    ),
    (
        "index.js",
        SCRIPT,
        include_str!("../../../clients/js/src/index.js"),
    ),
    (
        "client.js",
        SCRIPT,
        include_str!("../../../clients/js/src/client.js"),
    ),
    (
        "team.js",
        SCRIPT,
        include_str!("../../../clients/js/src/team.js"),
    ),
    (
        "errors.js",
        SCRIPT,
        include_str!("../../../clients/js/src/errors.js"),
    ),
];

/// The page only loads what the gateway serves, and talks only to the gateway.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The board page: sign-in and project picker without a `#token=...&project=...` fragment,
/// the live team with one.
#[utoipa::path(get, path = "/board", tag = "operations",
    responses((status = 200, description = "an HTML page", content_type = "text/html", body = String)))]
async fn board_page() -> Response {
    serve(HTML, include_str!("index.html"))
}

/// A file of the board (its script, style and icon, and the client library's modules).
#[utoipa::path(get, path = "/board/{file}", tag = "operations",
    params(("file" = String, Path, description = "a file name, e.g. `board.js`")),
    responses(
        (status = 200, description = "the file", content_type = "text/javascript", body = String),
        (status = 404, description = "no such file", body = crate::http::error::TiledeskError),
    ))]
async fn board_asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => serve(content_type, body),
        None => crate::error::Error::not_found("file").into_response(),
    }
}

fn serve(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            // The files change with the binary: revalidate rather than run an old client.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
