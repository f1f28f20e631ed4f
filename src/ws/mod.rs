//! The agent WebSocket (`GET /ws` and `GET /`): the Tiledesk realtime protocol (docs/protocol.md
//! §4).
//!
//! The handshake authenticates, resolves which teammates the socket counts for, applies the
//! per-user limit, and sizes the WebSocket buffers for presence traffic; [`session`] runs it.

mod answers;
mod frames;
mod rate;
pub mod session;
mod topics;
pub mod upgrade;

use crate::domain::{Id, PresenceKey};
use crate::error::Error;
use crate::listener_session::Opening;
use crate::presence::Held;
use crate::service::{Access, Principal};
use crate::state::AppState;
use axum::extract::{FromRequestParts, RawQuery, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use session::SessionSetup;
use upgrade::Upgrade;

/// Messages (and frames) over this close the socket with 1009 (docs/protocol.md §9).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// tungstenite keeps a read buffer of this size for the socket's whole life, and reads at most
/// this much per call. Client frames are heartbeats, subscriptions and availability changes of
/// 50 to 300 bytes (one or two reads); a larger message grows the buffer as far as it needs.
/// 1 KiB here cost every idle socket 900 bytes more (docs/benchmarks.md, the profile table).
const READ_BUFFER_BYTES: usize = 128;
const WRITE_BUFFER_BYTES: usize = 0;
/// How much unsent data a socket may queue: more than the largest frame the gateway sends (an
/// event's frame, or one part of a snapshot), so a send waits for a slow client rather than fails.
const MAX_WRITE_BUFFER_BYTES: usize = 512 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ws", get(agent_socket))
        .route("/", get(agent_socket))
}

/// Handshake query options.
struct Options {
    token: Option<String>,
    project_id: Option<Id>,
    channel: String,
    presence: bool,
}

impl Options {
    fn parse(query: Option<&str>) -> Result<Self, Error> {
        let mut options = Options {
            token: None,
            project_id: None,
            channel: "web".to_string(),
            presence: true,
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "token" => options.token = Some(value.into_owned()),
                "project_id" => {
                    options.project_id = Some(value.parse().map_err(|_| {
                        Error::bad_request(format!("invalid project_id `{value}`: expected a UUID"))
                    })?)
                }
                "channel" => {
                    let valid = !value.is_empty()
                        && value.len() <= 32
                        && value
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                    if !valid {
                        return Err(Error::bad_request(
                            "channel must be 1 to 32 letters, digits, `-`, `_` or `.`",
                        ));
                    }
                    options.channel = value.into_owned();
                }
                "presence" => {
                    options.presence = match value.as_ref() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(Error::bad_request("presence must be true or false")),
                    }
                }
                _ => {}
            }
        }
        Ok(options)
    }
}

async fn agent_socket(State(state): State<AppState>, request: Request) -> Response {
    match handshake(state, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn handshake(state: AppState, mut request: Request) -> Result<Response, Error> {
    let upgrade = Upgrade::from_request(&mut request);
    let (mut parts, _body) = request.into_parts();
    let RawQuery(query) = RawQuery::from_request_parts(&mut parts, &state)
        .await
        .unwrap_or(RawQuery(None));
    let options = Options::parse(query.as_deref())?;
    let opening = Opening::authenticate(
        &state,
        options.token.as_deref(),
        parts.headers.get(header::AUTHORIZATION),
    )
    .await?;
    let keys = counted_keys(&state, &opening.principal, &options).await?;
    let admitted = opening.admit(&state, Held::Socket);
    if let Err(e @ Error::TooManyRequests { .. }) = admitted {
        return Err(e);
    }
    let Some(upgrade) = upgrade else {
        return Ok(Upgrade::required());
    };
    let Ok(listener) = admitted else {
        // The node is full: a WebSocket client sees a close code (1013, try again later) where
        // an HTTP status might be lost in its reconnect logic.
        return Ok(upgrade.accept(session::refuse_node_full));
    };
    // Boxed until the session starts: the upgrade task holds it meanwhile.
    let setup = Box::new(SessionSetup {
        listener,
        project_id: options.project_id,
        channel: options.channel,
        keys,
    });
    Ok(upgrade.accept(move |socket| session::run(socket, state, *setup)))
}

/// The teammates a socket counts for: with `project_id`, that project's teammate (the caller
/// must be an active member); without it, every project where the user is an active teammate.
/// API keys and `presence=false` sockets observe without counting.
async fn counted_keys(
    state: &AppState,
    principal: &Principal,
    options: &Options,
) -> Result<Vec<PresenceKey>, Error> {
    if let Some(pid) = options.project_id {
        // Also checks that the caller belongs to the project (403/404 otherwise).
        let access = Access::resolve(state.store.as_ref(), principal.clone(), pid).await?;
        return Ok(match (&access.teammate, options.presence) {
            (Some(teammate), true) => vec![PresenceKey {
                project_id: pid,
                teammate_id: teammate.id,
            }],
            _ => Vec::new(),
        });
    }
    let Principal::User(user) = principal else {
        return Ok(Vec::new());
    };
    let keys: Vec<PresenceKey> = state
        .store
        .list_user_teammates(user.id)
        .await?
        .into_iter()
        .filter(|t| t.is_active())
        .map(|t| PresenceKey {
            project_id: t.project_id,
            teammate_id: t.id,
        })
        .collect();
    // A socket is for teammates: an account that belongs to no project could otherwise hold
    // sockets (and fill the node) without anything to watch.
    if keys.is_empty() {
        return Err(Error::forbidden(
            "you are not an active teammate of any project",
        ));
    }
    Ok(if options.presence { keys } else { Vec::new() })
}
