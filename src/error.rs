//! The one error type of the gateway's operations. Each variant is a class of outcome that every
//! API family maps to a status code; `http::error` renders it in the Tiledesk shape.

use crate::store::StoreError;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input or id (400).
    #[error("{0}")]
    BadRequest(String),
    /// No or invalid credentials (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Authenticated but not allowed (403), optionally with a Tiledesk error code.
    #[error("{msg}")]
    Forbidden { msg: String, code: Option<u32> },
    /// The thing does not exist, or is not visible to the caller (404).
    #[error("{0}")]
    NotFound(String),
    /// A uniqueness rule was violated (409), e.g. an email that is taken.
    #[error("{0}")]
    Conflict(String),
    /// A syntactically valid but unacceptable sign-in or sign-up body (422).
    #[error("{0}")]
    Unprocessable(String),
    /// The request body is over the size limit (413).
    #[error("request body too large")]
    PayloadTooLarge,
    /// The request body did not arrive within its deadline (408).
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// Too many attempts (429); `retry_after` goes into the `Retry-After` header.
    #[error("{msg}")]
    TooManyRequests { msg: String, retry_after: Duration },
    /// Basic credentials of an email whose wrong passwords hit the sign-in limit, on a route
    /// other than sign-in: 401 as for any refused credentials (RFC 7235), with `Retry-After`.
    #[error("too many failed sign-ins for this email; try again later")]
    CredentialsLocked { retry_after: Duration },
    /// The store is unreachable (503): fail fast, the client may retry.
    #[error("service unavailable")]
    Unavailable(String),
    /// A bug or corrupt data (500). The detail is logged, never sent to the client.
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Error::Forbidden {
            msg: msg.into(),
            code: None,
        }
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    pub fn not_found(what: &str) -> Self {
        Error::NotFound(format!("{what} not found"))
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Error::not_found("record"),
            StoreError::Conflict => Error::Conflict("the record changed concurrently".into()),
            StoreError::LastOwner => Error::Forbidden {
                msg: "the last owner of a project can be neither removed nor demoted".into(),
                code: None,
            },
            StoreError::Unavailable(detail) | StoreError::Refused(detail) => {
                Error::Unavailable(detail)
            }
            StoreError::Internal(detail) => Error::Internal(detail),
        }
    }
}
