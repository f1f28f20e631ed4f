//! The Desk error shape: `{"errors": [{"code", "field"?, "message"}]}`, one entry per problem.
//! Internal details are logged, never sent.

use crate::error::Error;
use crate::store::StoreError;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// A Desk error: one entry per problem.
pub enum DeskError {
    Invalid(Vec<FieldError>),
    Other(Error),
}

pub struct FieldError {
    field: String,
    message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl From<Error> for DeskError {
    fn from(e: Error) -> Self {
        DeskError::Other(e)
    }
}

impl From<StoreError> for DeskError {
    fn from(e: StoreError) -> Self {
        DeskError::Other(e.into())
    }
}

impl IntoResponse for DeskError {
    fn into_response(self) -> Response {
        let error = match self {
            DeskError::Invalid(fields) => {
                let errors: Vec<Value> = fields
                    .iter()
                    .map(|f| json!({"code": "invalid", "field": f.field, "message": f.message}))
                    .collect();
                let body = json!({ "errors": errors });
                return (axum::http::StatusCode::BAD_REQUEST, Json(body)).into_response();
            }
            DeskError::Other(error) => error,
        };
        error.log_hidden_detail();
        let (code, message) = match &error {
            Error::Internal(_) => ("internal", "internal error".to_string()),
            Error::Unavailable(_) => ("unavailable", "service unavailable".to_string()),
            Error::BadRequest(m) => ("bad_request", m.clone()),
            Error::Unauthorized(m) => ("unauthorized", m.to_string()),
            Error::Forbidden { msg, .. } => ("forbidden", msg.clone()),
            Error::NotFound(m) => ("not_found", m.clone()),
            Error::Conflict(m) => ("conflict", m.clone()),
            other => ("error", other.to_string()),
        };
        let body = json!({ "errors": [{ "code": code, "message": message }] });
        let mut response = (error.status(), Json(body)).into_response();
        error.add_headers(response.headers_mut());
        response
    }
}

/// All validation problems at once, one entry per field.
pub fn invalid_fields(mut errors: Vec<FieldError>) -> DeskError {
    errors.dedup_by(|a, b| a.field == b.field);
    DeskError::Invalid(errors)
}
