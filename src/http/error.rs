//! Renders [`Error`] in the Tiledesk shape `{"success":false,"msg":"...","code"?}`.
//!
//! Internal details are logged here and never sent: a 500 says "internal error", a 503 says
//! "service unavailable".

use crate::error::Error;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use utoipa::ToSchema;

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) | Error::CredentialsLocked { .. } => StatusCode::UNAUTHORIZED,
            Error::Forbidden { .. } => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log_hidden_detail();
        let status = self.status();
        let mut body = json!({ "success": false, "msg": self.to_string() });
        if let Error::Forbidden {
            code: Some(code), ..
        } = &self
        {
            body["code"] = json!(code);
        }
        let mut response = (status, Json(body)).into_response();
        self.add_headers(response.headers_mut());
        response
    }
}

impl Error {
    /// The headers an error answer carries in every API family: the authentication challenge
    /// of a 401, and `Retry-After` for 429 and 503.
    pub fn add_headers(&self, headers: &mut HeaderMap) {
        match self {
            Error::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="presence-gateway""#),
                );
            }
            Error::TooManyRequests { retry_after, .. } => retry_in(headers, *retry_after),
            Error::CredentialsLocked { retry_after } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="presence-gateway""#),
                );
                retry_in(headers, *retry_after);
            }
            Error::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
    }

    /// Logs what the client is not told: the detail of a 500 or a 503.
    pub fn log_hidden_detail(&self) {
        match self {
            Error::Internal(detail) => tracing::error!(%detail, "internal error"),
            Error::Unavailable(detail) => tracing::warn!(%detail, "store unavailable"),
            _ => {}
        }
    }
}

/// `Retry-After` in whole seconds, at least 1.
fn retry_in(headers: &mut HeaderMap, after: std::time::Duration) {
    let secs = after.as_secs().max(1);
    headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
}

/// A Tiledesk (`/v3`) error.
/// (The body [`Error`] renders, described for the OpenAPI document.)
#[derive(ToSchema)]
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
