//! One agent socket: counts the connection, answers frames, keeps the connection alive, and
//! uncounts it when it closes.
//!
//! One task per socket runs a single `select!` loop over the socket, the heartbeat timer and the
//! node's shutdown signal. An idle socket therefore costs one task and the WebSocket buffers,
//! nothing more (see the memory budget in DESIGN.md).

use super::frames::{self, frame_error, ClientFrame, FrameError};
use super::rate::{RateLimiter, Verdict};
use super::topics::{self, SocketCaller, Subscriptions};
use crate::domain::{ApiKey, Id, PresenceKey, Teammate};
use crate::presence::UserSlot;
use crate::service::{Access, Principal, TeammatePatch};
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use std::time::{Duration, Instant};

pub mod close_code {
    /// Silent for two heartbeat intervals.
    pub const HEARTBEAT_TIMEOUT: u16 = 1001;
    /// Kept flooding past the rate limit.
    pub const POLICY: u16 = 1008;
    /// A message over the size cap.
    pub const TOO_BIG: u16 = 1009;
    /// The node is shutting down: reconnect (to another node) within the grace period.
    pub const RESTART: u16 = 1012;
    /// The socket did not read its topics' events fast enough and was dropped; reconnect and
    /// resume with `since`. Also: the node is full; connect to another node or try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Who is on the socket and what it counts for. Kept small: an idle socket holds only this.
pub struct SessionSetup {
    pub user_id: Option<Id>,
    /// The API key, for key sockets (boxed: user sockets, the many, pay one pointer).
    pub api_key: Option<Box<ApiKey>>,
    /// `project_id` of the handshake, if any.
    pub project_id: Option<Id>,
    pub channel: String,
    /// The teammates this socket counts for (empty for API keys and `presence=false`).
    pub keys: Vec<PresenceKey>,
    pub slot: UserSlot,
}

pub async fn run(mut socket: WebSocket, state: AppState, setup: SessionSetup) {
    let SessionSetup {
        user_id,
        api_key,
        project_id,
        channel,
        keys,
        slot,
    } = setup;
    let registration = if keys.is_empty() {
        None
    } else {
        // Boxed here and below: a task's future is as large as its largest await, and every
        // idle socket would otherwise pay for these rarely-taken paths.
        Some(Box::pin(state.tracker.connect(keys, channel)).await)
    };
    let heartbeat_every = state.config.heartbeat;
    let stall_limit = heartbeat_every * 2;
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + heartbeat_every,
        heartbeat_every,
    );
    let mut shutdown = state.shutdown.clone();
    let mut last_heard = Instant::now();
    let mut limiter = RateLimiter::new(last_heard);
    let caller = SocketCaller { user_id, api_key };
    let mut subscriptions: Option<Box<Subscriptions>> = None;
    let closing = loop {
        tokio::select! {
            frame = topics::next(&mut subscriptions) => {
                let Some(frame) = frame else {
                    break Some((close_code::TRY_AGAIN_LATER, "slow consumer: resume with since"));
                };
                if send(&mut socket, stall_limit, Message::Text(frame)).await.is_err() {
                    break None;
                }
            }
            message = socket.recv() => {
                let message = match message {
                    None => break None,
                    Some(Err(e)) => {
                        if e.to_string().contains("Space limit exceeded") {
                            break Some((close_code::TOO_BIG, "message too big"));
                        }
                        break None;
                    }
                    Some(Ok(message)) => message,
                };
                last_heard = Instant::now();
                let text = match message {
                    Message::Text(text) => Some(text),
                    Message::Binary(_) => None,
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Close(_) => break None,
                };
                match limiter.check(last_heard) {
                    Verdict::Allow => {}
                    Verdict::Limit => {
                        let e = FrameError::new("rate_limited", "too many frames; slow down");
                        if send(&mut socket, stall_limit, text_message(frames::error(&e, None))).await.is_err() {
                            break None;
                        }
                        continue;
                    }
                    Verdict::Close => break Some((close_code::POLICY, "rate limit exceeded")),
                }
                let reply = match text {
                    None => vec![frames::error(
                        &FrameError::new("invalid_frame", "binary frames are not supported"),
                        None,
                    )],
                    Some(text) => {
                        Box::pin(handle(&state, &caller, &mut subscriptions, project_id, text.as_str()))
                            .await
                    }
                };
                let mut failed = false;
                for frame in reply {
                    if send(&mut socket, stall_limit, text_message(frame)).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed {
                    break None;
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > heartbeat_every * 2 {
                    break Some((close_code::HEARTBEAT_TIMEOUT, "heartbeat timeout"));
                }
                if caller.api_key.is_some() && !Box::pin(caller.still_valid(&state)).await {
                    break Some((close_code::POLICY, "the API key was deleted"));
                }
                if send(&mut socket, stall_limit, text_message(frames::heartbeat("ping"))).await.is_err()
                    || send(&mut socket, stall_limit, Message::Ping(Default::default())).await.is_err()
                {
                    break None;
                }
            }
            _ = shutdown.changed() => break Some((close_code::RESTART, "node restarting")),
        }
    };
    let close_sent = match closing {
        Some((code, reason)) => Box::pin(send_close(&mut socket, code, reason)).await,
        None => false,
    };
    if let Some(registration) = registration {
        Box::pin(state.tracker.disconnect(registration)).await;
    }
    drop(slot);
    if close_sent {
        Box::pin(await_close_reply(&mut socket)).await;
    }
}

/// A socket the node has no room for: closed at once with 1013 (try again later).
pub async fn refuse_node_full(mut socket: WebSocket) {
    if send_close(
        &mut socket,
        close_code::TRY_AGAIN_LATER,
        "node full: try again later",
    )
    .await
    {
        await_close_reply(&mut socket).await;
    }
}

/// How long a server-initiated close may take: sending the close frame (a client that stopped
/// reading may never take it), then waiting for the client's answer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

async fn send_close(socket: &mut WebSocket, code: u16, reason: &'static str) -> bool {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    matches!(
        tokio::time::timeout(CLOSE_TIMEOUT, socket.send(frame)).await,
        Ok(Ok(()))
    )
}

/// Completes the closing handshake: reads (and drops) what the client still sends until its
/// close frame. Without this, unread client bytes make the kernel answer with a reset, and the
/// client may lose the frames before the close, including the close code that says why.
async fn await_close_reply(socket: &mut WebSocket) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Sends one message. A client that takes none for `limit` (it stopped reading, or vanished
/// without a FIN) is given up on: otherwise the blocked send would also stop the heartbeat that
/// is meant to find such clients.
async fn send(socket: &mut WebSocket, limit: Duration, message: Message) -> Result<(), ()> {
    // Boxed: the timer would otherwise enlarge every idle socket's task (see `run`).
    let mut sending = Box::pin(socket.send(message));
    // Most sends complete at once: only a send that has to wait gets a timer.
    if let std::task::Poll::Ready(sent) = futures::poll!(sending.as_mut()) {
        return sent.map_err(drop);
    }
    match Box::pin(tokio::time::timeout(limit, sending)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

fn text_message(text: String) -> Message {
    Message::Text(text.into())
}

/// Answers one text frame with zero or more frames.
async fn handle(
    state: &AppState,
    caller: &SocketCaller,
    subscriptions: &mut Option<Box<Subscriptions>>,
    project_id: Option<Id>,
    text: &str,
) -> Vec<String> {
    match frames::parse(text) {
        Err(e) => vec![frames::error(&e, None)],
        Ok(ClientFrame::Heartbeat) => vec![frames::heartbeat("pong")],
        Ok(ClientFrame::Subscribe { topic, since }) => {
            topics::subscribe(state, caller, subscriptions, &topic, since.as_deref()).await
        }
        Ok(ClientFrame::Unsubscribe { topic }) => topics::unsubscribe(subscriptions, &topic),
        Ok(ClientFrame::Availability(payload)) => {
            match availability(state, caller.user_id, project_id, payload).await {
                Ok(frames) => frames,
                Err(e) => vec![frames::error(&e, None)],
            }
        }
    }
}

/// The `availability` frame: like `PUT /v3/{pid}/project_users/` for the payload's project, or
/// the socket's, or else every project where the user is an active teammate.
async fn availability(
    state: &AppState,
    user_id: Option<Id>,
    project_id: Option<Id>,
    payload: frames::AvailabilityPayload,
) -> Result<Vec<String>, FrameError> {
    let user_id =
        user_id.ok_or_else(|| FrameError::new("forbidden", "an API key has no availability"))?;
    let user = state
        .store
        .get_user(user_id)
        .await
        .map_err(|e| frame_error(e.into()))?
        .ok_or_else(|| FrameError::new("forbidden", "the user no longer exists"))?;
    let projects: Vec<Id> = match (payload.project_id.as_deref(), project_id) {
        (Some(raw), _) => vec![raw
            .parse()
            .map_err(|_| FrameError::new("invalid_payload", "project_id must be a UUID"))?],
        (None, Some(pid)) => vec![pid],
        (None, None) => state
            .store
            .list_user_teammates(user_id)
            .await
            .map_err(|e| frame_error(e.into()))?
            .into_iter()
            .filter(Teammate::is_active)
            .map(|t| t.project_id)
            .collect(),
    };
    if projects.is_empty() {
        return Err(FrameError::new(
            "not_found",
            "you are not an active teammate of any project",
        ));
    }
    let patch = TeammatePatch {
        user_available: payload.user_available,
        profile_status: payload.profile_status,
        ..Default::default()
    };
    let mut replies = Vec::with_capacity(projects.len());
    for pid in projects {
        let access = Access::resolve(state.store.as_ref(), Principal::User(user.clone()), pid)
            .await
            .map_err(frame_error)?;
        let teammate = state
            .teams
            .update_own(&access, patch.clone())
            .await
            .map_err(frame_error)?;
        replies.push(frames::availability(
            &pid.to_string(),
            teammate.user_available,
            &teammate.profile_status,
        ));
    }
    Ok(replies)
}
