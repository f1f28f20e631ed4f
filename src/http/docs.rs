//! The API reference page at `/docs`, rendered from `/openapi.json`.
//!
//! The page is Swagger UI, whose files are compiled into the binary (`utoipa-swagger-ui` with
//! its `vendored` feature), so it works with no internet. It is served by hand rather than with
//! the crate's router because the gateway trims trailing slashes (`NormalizePathLayer`), and
//! the crate's `/docs` → `/docs/` redirect would loop: the index is served at `/docs` with a
//! `<base href="/docs/">`, so its relative asset links resolve under `/docs/`.

use crate::state::AppState;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::{Arc, OnceLock};
use utoipa::OpenApi;
use utoipa_swagger_ui::Config;

#[derive(OpenApi)]
#[openapi(paths(docs_index, docs_asset))]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/docs", get(docs_index))
        .route("/docs/{file}", get(docs_asset))
}

/// The API reference page, rendered from `/openapi.json` in the browser.
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 200, description = "an HTML page", content_type = "text/html", body = String)))]
async fn docs_index() -> Response {
    static INDEX: OnceLock<Option<String>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let file = utoipa_swagger_ui::serve("index.html", config()).ok()??;
        let html = String::from_utf8(file.bytes.into_owned()).ok()?;
        Some(html.replacen("<head>", "<head>\n    <base href=\"/docs/\" />", 1))
    });
    match index {
        Some(html) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A file of the page (scripts, styles, icons).
#[utoipa::path(get, path = "/docs/{file}", tag = "operations",
    params(("file" = String, Path, description = "a file name, e.g. `swagger-ui.css`")),
    responses(
        (status = 200, description = "the file", content_type = "application/octet-stream", body = String),
        (status = 404, description = "no such file", body = crate::http::error::TiledeskError),
    ))]
async fn docs_asset(Path(file): Path<String>) -> Response {
    match utoipa_swagger_ui::serve(&file, config()) {
        Ok(Some(file)) => {
            let mut response = (
                [(header::CONTENT_TYPE, file.content_type)],
                file.bytes.into_owned(),
            )
                .into_response();
            if file.gzpipped {
                response.headers_mut().insert(
                    header::CONTENT_ENCODING,
                    "gzip".parse().expect("a header value"),
                );
            }
            response
        }
        _ => crate::error::Error::not_found("file").into_response(),
    }
}

/// Swagger UI's settings: where the document is.
fn config() -> Arc<Config<'static>> {
    static CONFIG: OnceLock<Arc<Config<'static>>> = OnceLock::new();
    CONFIG
        // No validator badge: Swagger UI would load it from validator.swagger.io, telling that
        // host where the gateway's document is (and the page must work offline).
        .get_or_init(|| Arc::new(Config::from("/openapi.json").validator_url("none")))
        .clone()
}
