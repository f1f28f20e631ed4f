//! The team presence board at `/board` (README, "The team presence board"): a page, its script
//! and style, and the JavaScript client library it is built on (`clients/js/src`), all compiled
//! into the binary.
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

/// The board's own files: its page, scripts, style and icon.
#[derive(rust_embed::Embed)]
#[folder = "src/http/board/"]
#[include = "*.html"]
#[include = "*.js"]
#[include = "*.css"]
#[include = "*.svg"]
struct BoardFiles;

/// The client library's modules, served beside the board's scripts (they import each other by
/// these same relative names).
#[derive(rust_embed::Embed)]
#[folder = "clients/js/src/"]
#[include = "*.js"]
struct ClientFiles;

/// The page only loads what the gateway serves, and talks only to the gateway.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The board page: sign-in and project picker without a `#token=...&project=...` fragment,
/// the live team with one.
#[utoipa::path(get, path = "/board", tag = "operations",
    responses((status = 200, description = "an HTML page", content_type = "text/html", body = String)))]
async fn board_page() -> Response {
    asset("index.html")
}

/// A file of the board (its script, style and icon, and the client library's modules).
#[utoipa::path(get, path = "/board/{file}", tag = "operations",
    params(("file" = String, Path, description = "a file name, e.g. `board.js`")),
    responses(
        (status = 200, description = "the file", content_type = "text/javascript", body = String),
        (status = 404, description = "no such file", body = crate::http::error::TiledeskError),
    ))]
async fn board_asset(Path(file): Path<String>) -> Response {
    // The page itself is `/board`.
    if file == "index.html" {
        return crate::error::Error::not_found("file").into_response();
    }
    asset(&file)
}

fn asset(name: &str) -> Response {
    let Some(file) = BoardFiles::get(name).or_else(|| ClientFiles::get(name)) else {
        return crate::error::Error::not_found("file").into_response();
    };
    // The files are UTF-8 text; the type comes from the name.
    let content_type = format!("{}; charset=utf-8", file.metadata.mimetype());
    (
        [
            (header::CONTENT_TYPE, content_type.as_str()),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            // The files change with the binary: revalidate rather than run an old client.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        file.data,
    )
        .into_response()
}
