//! `POST /v3/auth/signup` and `POST /v3/auth/signin`.
//!
//! Malformed JSON is 400 like everywhere; a well-formed body with missing or mistyped fields is
//! 422, as Tiledesk clients expect for sign-in and sign-up forms.

use crate::error::{Error, Result};
use crate::http::extract::{AnyJson, Json};
use crate::service::SignupRequest;
use crate::state::AppState;
use crate::views::UserView;
use axum::extract::State;
use serde_json::{json, Value};

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

pub async fn signup(State(state): State<AppState>, AnyJson(body): AnyJson) -> Result<Json<Value>> {
    object(&body)?;
    let request = SignupRequest {
        email: field(&body, "email", true)?.to_string(),
        password: field(&body, "password", true)?.to_string(),
        firstname: field(&body, "firstname", false)?.to_string(),
        lastname: field(&body, "lastname", false)?.to_string(),
    };
    let user = state.accounts.signup(request).await?;
    Ok(Json(
        json!({ "success": true, "user": UserView::from(&user) }),
    ))
}

pub async fn signin(State(state): State<AppState>, AnyJson(body): AnyJson) -> Result<Json<Value>> {
    object(&body)?;
    let email = field(&body, "email", true)?;
    let password = field(&body, "password", true)?;
    let user = state.accounts.check_password(email, password).await?;
    let token = state.accounts.issue_token(&user);
    Ok(Json(json!({
        "success": true,
        "token": format!("JWT {token}"),
        "user": UserView::from(&user),
    })))
}
