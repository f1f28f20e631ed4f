//! Accounts: sign-up, sign-in and turning credentials into a [`Principal`].

use super::invitations::{self, accept_invitations};
use super::Principal;
use crate::auth::{api_key, jwt, password};
use crate::domain::{self, Timestamp, User};
use crate::error::{Error, Result};
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// Failed sign-ins allowed for one email within [`SIGNIN_WINDOW`] before answers turn into 429.
pub const SIGNIN_ATTEMPTS: u64 = 10;
pub const SIGNIN_WINDOW: Duration = Duration::from_secs(15 * 60);

const MIN_PASSWORD_LEN: usize = 8;
const MAX_PASSWORD_LEN: usize = 1024;
const MAX_NAME_LEN: usize = 200;

#[derive(Debug)]
pub struct SignupRequest {
    pub email: String,
    pub password: String,
    pub firstname: String,
    pub lastname: String,
    /// The token of the pending invitation this sign-up takes.
    pub invite_token: Option<String>,
}

#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    jwt: jwt::JwtKeys,
    token_ttl: Duration,
    /// `signup_claims_invitations`: an email alone converts its pending invitations.
    claims_invitations: bool,
}

impl Accounts {
    pub fn new(
        store: Arc<dyn Store>,
        jwt: jwt::JwtKeys,
        token_ttl: Duration,
        claims_invitations: bool,
    ) -> Self {
        Accounts {
            store,
            jwt,
            token_ttl,
            claims_invitations,
        }
    }

    /// Creates an account. With `invite_token`, the pending invitation it opens becomes a
    /// teammate (an unknown or voided token, or one for another email, is 422 and creates
    /// nothing); with `signup_claims_invitations`, every invitation of the email does.
    pub async fn signup(&self, request: SignupRequest) -> Result<User> {
        let email = domain::normalize_email(&request.email);
        if !domain::is_plausible_email(&email) {
            return Err(Error::Unprocessable("email is not a valid address".into()));
        }
        let length = request.password.chars().count();
        if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&length) {
            return Err(Error::Unprocessable(format!(
                "password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"
            )));
        }
        for (field, value) in [
            ("firstname", &request.firstname),
            ("lastname", &request.lastname),
        ] {
            if value.chars().count() > MAX_NAME_LEN {
                return Err(Error::Unprocessable(format!(
                    "{field} must be at most {MAX_NAME_LEN} characters"
                )));
            }
        }
        let invitation = match request.invite_token.as_deref() {
            None => None,
            Some(token) => Some(
                invitations::find_by_token(self.store.as_ref(), &email, token)
                    .await?
                    .ok_or_else(|| {
                        Error::Unprocessable(
                            "invite_token does not open a pending invitation for this email".into(),
                        )
                    })?,
            ),
        };
        let password_hash = password::hash(request.password)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let now = Timestamp::now();
        let user_id = domain::new_id();
        if let Some(invitation) = &invitation {
            invitations::claim(self.store.as_ref(), invitation, user_id).await?;
        }
        let user = User {
            id: user_id,
            email,
            password_hash,
            firstname: request.firstname.trim().to_string(),
            lastname: request.lastname.trim().to_string(),
            attributes: Default::default(),
            created_at: now,
            updated_at: now,
        };
        match self.store.create_user(&user).await {
            Err(StoreError::Conflict) => {
                return Err(Error::Unprocessable(
                    "an account with this email already exists".into(),
                ))
            }
            other => other?,
        }
        if let Some(invitation) = &invitation {
            invitations::convert(self.store.as_ref(), &user, invitation).await?;
        }
        if self.claims_invitations {
            accept_invitations(self.store.as_ref(), &user, true).await?;
        }
        Ok(user)
    }

    /// Checks an email and password, with the per-email failure limit.
    ///
    /// The password is always verified (a correct one always signs in and resets the counter, as
    /// the contract says successful sign-ins are never limited); after [`SIGNIN_ATTEMPTS`]
    /// failures in the window, failures answer 429 with `Retry-After` instead of 401. Unknown
    /// emails cost the same Argon2 work as known ones, so timing does not reveal accounts.
    pub async fn check_password(&self, email: &str, password: &str) -> Result<User> {
        let email = domain::normalize_email(email);
        let user = self.store.find_user_by_email(&email).await?;
        let matches = password::verify(
            password.to_string(),
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await;
        match user {
            Some(user) if matches => {
                self.store.clear_failed_signins(&email).await?;
                // Repairs a sign-up that stopped before it took its invitation.
                accept_invitations(self.store.as_ref(), &user, self.claims_invitations).await?;
                Ok(user)
            }
            _ => {
                let failures = self
                    .store
                    .record_failed_signin(&email, SIGNIN_WINDOW)
                    .await?;
                if failures.count > SIGNIN_ATTEMPTS {
                    Err(Error::TooManyRequests {
                        msg: "too many failed sign-ins for this email; try again later".into(),
                        retry_after: failures.resets_in,
                    })
                } else {
                    Err(Error::Unauthorized("invalid email or password"))
                }
            }
        }
    }

    /// A signed `JWT` for the user (without the `JWT ` scheme prefix).
    pub fn issue_token(&self, user: &User) -> String {
        let now = chrono::Utc::now().timestamp();
        self.jwt.sign(&jwt::Claims {
            sub: Some(user.id.to_string()),
            legacy_id: Some(user.id.to_string()),
            email: Some(user.email.clone()),
            iss: Some("presence-gateway".into()),
            iat: Some(now),
            exp: Some(now + self.token_ttl.as_secs() as i64),
            nbf: None,
        })
    }

    /// The user a JWT speaks for; 401 if the token is invalid or the user no longer exists.
    pub async fn user_from_jwt(&self, token: &str) -> Result<User> {
        let id = self.jwt.verify(token).await.map_err(|e| {
            tracing::debug!(reason = %e, "JWT refused");
            Error::Unauthorized("invalid or expired token")
        })?;
        self.store
            .get_user(id)
            .await?
            .ok_or(Error::Unauthorized("the token's user does not exist"))
    }

    pub async fn api_key(&self, secret: &str) -> Result<Principal> {
        self.store
            .find_api_key(&api_key::hash(secret))
            .await?
            .map(Principal::ApiKey)
            .ok_or(Error::Unauthorized("invalid API key"))
    }

    /// Resolves any `Authorization` credential (docs/protocol.md §1): `JWT x`, `Bearer x`,
    /// `Basic b64`, or a bare API key / JWT.
    pub async fn authenticate(&self, authorization: &str) -> Result<Principal> {
        let authorization = authorization.trim();
        let (scheme, value) = authorization
            .split_once(' ')
            .map(|(s, v)| (s, v.trim()))
            .unwrap_or(("", authorization));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let (email, password) = decode_basic(value)
                    .ok_or(Error::Unauthorized("malformed Basic credentials"))?;
                // The sign-in limit applies, but an API route answers refused credentials
                // with 401 (sign-in itself keeps Tiledesk's 429).
                match self.check_password(&email, &password).await {
                    Ok(user) => Ok(Principal::User(user)),
                    Err(Error::TooManyRequests { retry_after, .. }) => {
                        Err(Error::CredentialsLocked { retry_after })
                    }
                    Err(other) => Err(other),
                }
            }
            "jwt" | "bearer" | "" => self.token(value).await,
            _ => Err(Error::Unauthorized("unsupported authorization scheme")),
        }
    }

    /// A bare token: a JWT or an API key, told apart by shape.
    pub async fn token(&self, token: &str) -> Result<Principal> {
        let token = token.strip_prefix("JWT ").unwrap_or(token).trim();
        if token.is_empty() {
            return Err(Error::Unauthorized("missing credentials"));
        }
        if jwt::looks_like_jwt(token) {
            Ok(Principal::User(self.user_from_jwt(token).await?))
        } else {
            self.api_key(token).await
        }
    }
}

fn decode_basic(value: &str) -> Option<(String, String)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (email, password) = text.split_once(':')?;
    Some((email.to_string(), password.to_string()))
}
