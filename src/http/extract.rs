//! Extractors whose rejections speak the gateway's error shape instead of axum's plain text:
//! a JSON body ([`Json`]), path ids ([`Path`]), the caller ([`Caller`]) and the caller's standing
//! in the project named by the `{pid}` path segment ([`Member`]).

use crate::domain::Id;
use crate::error::Error;
use crate::service::{Access, Principal};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::marker::PhantomData;

/// A JSON body. The content type is not checked (some clients omit it); the body must parse.
/// Malformed JSON and wrong types are 400; a body over the limit is 413.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

/// Any JSON value as the body, for handlers that check its shape themselves (sign-up and sign-in
/// answer a non-object with 422, as Tiledesk clients expect). Malformed JSON is 400.
pub struct AnyJson(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for AnyJson {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_any_json(&bytes).map(AnyJson)
    }
}

/// JSON text must be UTF-8 (RFC 8259). serde skips the fields a route ignores without looking at
/// their bytes, so the whole body is checked first.
fn require_utf8(bytes: &[u8]) -> Result<(), Error> {
    std::str::from_utf8(bytes)
        .map(drop)
        .map_err(|e| Error::bad_request(format!("the body is not UTF-8: {e}")))
}

/// Parses any JSON value; malformed JSON is 400.
pub fn parse_any_json(bytes: &[u8]) -> Result<serde_json::Value, Error> {
    require_utf8(bytes)?;
    serde_json::from_slice(bytes)
        .map_err(|e| Error::bad_request(format!("malformed JSON body: {e}")))
}

/// Parses a request body. Every body of the gateway is a JSON object: anything else (an array in
/// particular, which serde would otherwise read positionally into a struct) is refused.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(Error::bad_request("the body must be a JSON object"));
    }
    require_utf8(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => Error::bad_request(format!("invalid body: {e}")),
            _ => Error::bad_request(format!("malformed JSON body: {e}")),
        }
    })
}

/// An integral JSON number as an `i64`: `5` and also `5.0`, which JSON Schema (and so the
/// OpenAPI document) calls an integer too. Fractions and numbers out of range are `None`.
pub fn integral(number: &serde_json::Number) -> Option<i64> {
    number.as_i64().or_else(|| {
        let f = number.as_f64()?;
        // ±2^63 are the first floats past i64's range (a number beyond it rounds to them), so
        // both bounds are strict.
        (f.fract() == 0.0 && f > -9_223_372_036_854_775_808.0 && f < 9_223_372_036_854_775_808.0)
            .then_some(f as i64)
    })
}

/// `deserialize_with` for optional integer fields, with [`integral`]'s rule.
pub fn optional_integer<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    Option::<serde_json::Number>::deserialize(deserializer)?
        .map(|n| {
            integral(&n).ok_or_else(|| {
                serde::de::Error::custom(format!("expected a whole number in range, not {n}"))
            })
        })
        .transpose()
}

pub fn body_rejection(rejection: BytesRejection) -> Error {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Error::PayloadTooLarge;
    }
    // The body's deadline (http/mod.rs) ran out while it was being read.
    let mut source = std::error::Error::source(&rejection);
    while let Some(cause) = source {
        if cause.is::<tower_http::timeout::TimeoutError>() {
            return Error::RequestTimeout;
        }
        source = cause.source();
    }
    Error::bad_request(format!("unreadable body: {rejection}"))
}

/// Path parameters; a malformed id is 400 (not axum's plain-text rejection).
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e| Error::bad_request(format!("invalid path parameter: {}", e.body_text())))
    }
}

/// The authenticated caller, from the `Authorization` header.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(Error::Unauthorized("missing credentials"))?
            .to_str()
            .map_err(|_| Error::Unauthorized("malformed Authorization header"))?;
        state.accounts.authenticate(header).await.map(Caller)
    }
}

/// The caller's standing in the project of the `{pid}` path segment. Authentication comes first
/// (401), then the id (400), then the project (404) and membership (403). Each handler then
/// states its minimum role with [`Access::require`].
pub struct Member(pub Access);

impl FromRequestParts<AppState> for Member {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        let Path(params) =
            Path::<HashMap<String, String>>::from_request_parts(parts, state).await?;
        let pid = params
            .get("pid")
            .ok_or_else(|| Error::Internal("route without a {pid} segment".into()))?;
        let pid = parse_id(pid, "project id")?;
        Access::resolve(state.store.as_ref(), principal, pid)
            .await
            .map(Member)
    }
}

/// The caller of the Dixa and Desk APIs: a project API key, resolved in its own project (the
/// key's project is the scope). A user's token is refused (401). `E` is the API family's error
/// shape.
pub struct ProjectKey<E>(pub Access, pub PhantomData<E>);

impl<E: From<Error> + IntoResponse> FromRequestParts<AppState> for ProjectKey<E> {
    type Rejection = E;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, E> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        let Principal::ApiKey(key) = &principal else {
            return Err(Error::Unauthorized("this API takes a project API key").into());
        };
        let project_id = key.project_id;
        let access = Access::resolve(state.store.as_ref(), principal, project_id).await?;
        Ok(ProjectKey(access, PhantomData))
    }
}

/// Parses a UUID path segment, 400 otherwise.
pub fn parse_id(raw: &str, what: &str) -> Result<Id, Error> {
    raw.parse()
        .map_err(|_| Error::bad_request(format!("invalid {what} `{raw}`: expected a UUID")))
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Property tests of the body parser every `/v3` body goes through (they replaced a `cargo fuzz`
/// target, so that they run in CI): nothing panics or overflows the stack, whatever the bytes;
/// what parses is an object that re-serializes to the same value; the object and `Value` readers
/// agree.
#[cfg(test)]
mod proptests {
    use super::parse_json;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    /// Equal, except that floats may differ in their last bits (serde_json's fast float parser
    /// may land one ulp away without its `float_roundtrip` feature).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
                match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-14 * x.abs().max(y.abs()),
                    _ => false,
                }
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y)
                        .all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy))
            }
            _ => a == b,
        }
    }

    fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
        let as_value = parse_json::<Value>(bytes);
        let as_object = parse_json::<Map<String, Value>>(bytes);
        match &as_value {
            Ok(value) => {
                prop_assert!(value.is_object(), "a body is an object: {value}");
                prop_assert!(as_object.is_ok());
                let text = serde_json::to_string(value).expect("a parsed value serializes");
                let again: Value = serde_json::from_str(&text).expect("re-serialized JSON parses");
                prop_assert!(same(&again, value), "{again} != {value}");
            }
            Err(_) => prop_assert!(as_object.is_err()),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            check(&bytes)?;
        }

        #[test]
        fn json_looking_bytes(text in r#"\{[\[\]{}":,. 0-9a-zA-Z\\\-eEtrufalsn]{0,128}\}?"#) {
            check(text.as_bytes())?;
        }

        #[test]
        fn deep_nesting(depth in 1usize..20_000, objects in any::<bool>()) {
            let (open, close) = if objects { (r#"{"a":"#, "}") } else { ("[", "]") };
            let body = format!(r#"{{"b":{}1{}}}"#, open.repeat(depth), close.repeat(depth));
            check(body.as_bytes())?;
        }
    }
}
