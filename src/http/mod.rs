//! The HTTP surface: routers by API family, the shared state, and the middleware every request
//! passes through (request id, trace span, metrics, body limit, panic guard).

mod board;
pub mod desk;
pub mod dixa;
mod docs;
pub mod error;
pub mod extract;
pub mod openapi;
mod ops;
pub mod params;
pub mod tiledesk;

use crate::state::AppState;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::time::Instant;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyDeadlineLayer;
use tower_http::trace::TraceLayer;

/// HTTP bodies over this are answered 413 (docs/protocol.md §9).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(ops::router())
        .merge(docs::router())
        .merge(board::router())
        .merge(openapi::router())
        .merge(tiledesk::router())
        .merge(dixa::router())
        .merge(desk::router())
        .merge(crate::ws::router())
        .route_layer(middleware::from_fn(record_metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // The head has `http_header_timeout` (server.rs); the body gets as long again, from the
        // end of the head: a body trickled in byte by byte cannot hold a connection either.
        .layer(RequestBodyDeadlineLayer::new(
            state.config.http_header_timeout,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            crate::error::Error::Internal("a request handler panicked".into()).into_response()
        }))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // The path only: query strings may carry `?token=` credentials.
            let request_id = req
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = %request_id,
            )
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> crate::error::Error {
    crate::error::Error::NotFound("route not found".into())
}

async fn method_not_allowed() -> Response {
    let body = serde_json::json!({ "success": false, "msg": "method not allowed on this route" });
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// Per-route request counts and latency histograms, labelled with the route *pattern* so that
/// ids do not explode the label space.
async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let status = response.status();
    metrics::counter!(
        "http_requests_total",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status.as_u16().to_string(),
    )
    .increment(1);
    metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method,
        "route" => route,
    )
    .record(started.elapsed().as_secs_f64());
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        metrics::counter!("http_internal_errors_total").increment(1);
    }
    response
}
