//! `POST /v3/auth/signup` and `POST /v3/auth/signin`.
//!
//! Malformed JSON is 400 like everywhere; a well-formed body with missing or mistyped fields is
//! 422, as Tiledesk clients expect for sign-in and sign-up forms.

use crate::error::{Error, Result};
use crate::http::extract::{AnyJson, Json};
use crate::service::SignupRequest;
use crate::state::AppState;
use crate::views::{to_value, SigninView, SignupView, UserView};
use axum::extract::State;
use serde_json::Value;
use utoipa::ToSchema;

fn field<'a>(body: &'a Value, name: &str, required: bool) -> Result<&'a str> {
    match body.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) if !required => Ok(""),
        None | Some(Value::Null) => Err(Error::Unprocessable(format!("{name} is required"))),
        Some(_) => Err(Error::Unprocessable(format!("{name} must be a string"))),
    }
}

fn object(body: &Value) -> Result<()> {
    if body.is_object() {
        Ok(())
    } else {
        Err(Error::Unprocessable(
            "the body must be a JSON object".into(),
        ))
    }
}

/// The sign-up body. The handler reads it field by field so that a malformed one is 422, as
/// Tiledesk clients expect.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SignupBody {
    /// Lower-cased; must be unique.
    #[schema(format = Email, max_length = 254, example = "ann@example.com")]
    email: String,
    #[schema(min_length = 8, max_length = 1024, example = "ann-secret-1")]
    password: String,
    #[schema(max_length = 200, example = "Ann")]
    firstname: Option<String>,
    #[schema(max_length = 200, example = "Lee")]
    lastname: Option<String>,
    /// The token of a pending invitation for this email (`pendingInvitation.token`): the new
    /// account joins that project. An unknown or voided token, or one for another email, is
    /// 422 and creates no account.
    #[schema(example = "pgi_3q2-7wEvzz7cKZ1bq0R5yYbQJ9xX3eE0Vn1y2Zt4u8k")]
    invite_token: Option<String>,
}

/// The sign-in body.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SigninBody {
    #[schema(example = "ann@example.com")]
    email: String,
    #[schema(example = "ann-secret-1")]
    password: String,
}

/// Creates an account. With `invite_token`, the pending invitation it opens becomes a teammate.
#[utoipa::path(post, path = "/v3/auth/signup", tag = "accounts",
    request_body = SignupBody,
    responses(
        (status = 200, description = "the new account", body = SignupView<'static>),
        (status = 422, description = "an invalid body, or the email is taken", body = crate::http::error::TiledeskError),
    ))]
pub async fn signup(State(state): State<AppState>, AnyJson(body): AnyJson) -> Result<Json<Value>> {
    object(&body)?;
    let request = SignupRequest {
        email: field(&body, "email", true)?.to_string(),
        password: field(&body, "password", true)?.to_string(),
        firstname: field(&body, "firstname", false)?.to_string(),
        lastname: field(&body, "lastname", false)?.to_string(),
        invite_token: Some(field(&body, "invite_token", false)?)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    };
    let user = state.accounts.signup(request).await?;
    Ok(Json(to_value(&SignupView {
        success: true,
        user: UserView::from(&user),
    })?))
}

/// Signs in with email and password. The token comes back as `JWT <jwt>`.
#[utoipa::path(post, path = "/v3/auth/signin", tag = "accounts",
    request_body = SigninBody,
    responses(
        (status = 200, description = "a token for the user", body = SigninView<'static>),
        (status = 401, description = "wrong email or password", body = crate::http::error::TiledeskError),
        (status = 422, description = "an invalid body", body = crate::http::error::TiledeskError),
        (status = 429, description = "10 failed attempts for this email within 15 minutes", body = crate::http::error::TiledeskError,
            headers(("Retry-After" = String, description = "seconds until the window ends"))),
    ))]
pub async fn signin(State(state): State<AppState>, AnyJson(body): AnyJson) -> Result<Json<Value>> {
    object(&body)?;
    let email = field(&body, "email", true)?;
    let password = field(&body, "password", true)?;
    let user = state.accounts.check_password(email, password).await?;
    let token = state.accounts.issue_token(&user);
    Ok(Json(to_value(&SigninView {
        success: true,
        token: format!("JWT {token}"),
        user: UserView::from(&user),
    })?))
}
