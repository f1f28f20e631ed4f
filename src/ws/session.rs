//! One agent socket: counts the connection, answers frames, keeps the connection alive, and
//! uncounts it when it closes.
//!
//! One task per socket runs a single `select!` loop over the socket, its topics and the node's
//! heartbeat clock (which also says when the node shuts down). An idle socket therefore costs
//! one task (holding a [`Session`]) and the WebSocket's buffers, nothing more;
//! docs/benchmarks.md has the profile, owner by owner.

use super::frames::{self, frame_error, ClientFrame, FrameError};
use super::rate::{RateLimiter, Verdict};
use super::topics::{self, SocketCaller, Subscriptions};
use crate::domain::{ApiKey, Id, PresenceKey, Teammate};
use crate::heartbeat::{Beat, Heartbeat};
use crate::presence::{Registration, UserSlot};
use crate::service::{Access, Principal, TeammatePatch};
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use std::future::Future;
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

/// Who is on the socket and what it counts for, as the handshake found it.
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

/// What an open socket holds between frames: everything an idle socket costs, besides the
/// kernel's socket and the WebSocket's own buffers.
struct Session {
    socket: WebSocket,
    state: AppState,
    caller: SocketCaller,
    project_id: Option<Id>,
    registration: Option<Registration>,
    /// The socket's place in the per-user and per-node limits, freed once it is uncounted.
    slot: Option<UserSlot>,
    heartbeat: Heartbeat,
    last_heard: Instant,
    limiter: RateLimiter,
    subscriptions: Option<Box<Subscriptions>>,
}

/// Runs one agent socket until it closes.
///
/// Not an `async fn`: the session is built here, outside the future, and the future only owns
/// it and borrows it. An `async fn` would keep its arguments and the locals they are moved into
/// side by side in its state (rust-lang/rust#62958), and every idle socket's task would pay for
/// both copies.
pub fn run(
    socket: WebSocket,
    state: AppState,
    setup: SessionSetup,
) -> impl Future<Output = ()> + Send {
    let SessionSetup {
        user_id,
        api_key,
        project_id,
        channel,
        keys,
        slot,
    } = setup;
    let now = Instant::now();
    let mut session = Session {
        registration: (!keys.is_empty()).then(|| Registration::new(keys, channel)),
        heartbeat: state.heartbeats.subscribe(),
        socket,
        state,
        caller: SocketCaller { user_id, api_key },
        project_id,
        slot: Some(slot),
        last_heard: now,
        limiter: RateLimiter::new(now),
        subscriptions: None,
    };
    async move { session.serve().await }
}

/// What the session loop does after one wakeup.
enum Flow {
    Continue,
    /// Close the socket, with this code and reason, or without a close frame (`None`: the
    /// client is gone or stopped reading).
    Close(Option<(u16, &'static str)>),
}

impl Session {
    async fn serve(&mut self) {
        if let Some(registration) = &self.registration {
            // Boxed here and below: a task's future is as large as its largest await, and
            // every idle socket would otherwise pay for these rarely-taken paths.
            Box::pin(self.state.tracker.connect(registration)).await;
        }
        let closing = loop {
            let flow = tokio::select! {
                frame = topics::next(&mut self.subscriptions) => match frame {
                    None => Flow::Close(Some((close_code::TRY_AGAIN_LATER, "slow consumer: resume with since"))),
                    Some(frame) => self.send(Message::Text(frame)).await,
                },
                message = self.socket.recv() => Box::pin(self.on_message(message)).await,
                beat = self.heartbeat.next() => match beat {
                    Beat::Beat => Box::pin(self.on_heartbeat()).await,
                    Beat::Stopping => Flow::Close(Some((close_code::RESTART, "node restarting"))),
                },
            };
            if let Flow::Close(closing) = flow {
                break closing;
            }
        };
        let close_sent = match closing {
            Some((code, reason)) => Box::pin(send_close(&mut self.socket, code, reason)).await,
            None => false,
        };
        if let Some(registration) = self.registration.take() {
            Box::pin(self.state.tracker.disconnect(registration)).await;
        }
        self.slot = None;
        if close_sent {
            Box::pin(await_close_reply(&mut self.socket)).await;
        }
    }

    /// A message from the client (or the end of the socket).
    async fn on_message(&mut self, message: Option<Result<Message, axum::Error>>) -> Flow {
        let message = match message {
            None => return Flow::Close(None),
            Some(Err(e)) if e.to_string().contains("Space limit exceeded") => {
                return Flow::Close(Some((close_code::TOO_BIG, "message too big")));
            }
            Some(Err(_)) => return Flow::Close(None),
            Some(Ok(message)) => message,
        };
        self.last_heard = Instant::now();
        let text = match message {
            Message::Text(text) => Some(text),
            Message::Binary(_) => None,
            Message::Ping(_) | Message::Pong(_) => return Flow::Continue,
            Message::Close(_) => return Flow::Close(None),
        };
        match self.limiter.check(self.last_heard) {
            Verdict::Allow => {}
            Verdict::Limit => {
                let e = FrameError::new("rate_limited", "too many frames; slow down");
                return self.send(text_message(frames::error(&e, None))).await;
            }
            Verdict::Close => {
                return Flow::Close(Some((close_code::POLICY, "rate limit exceeded")))
            }
        }
        let reply = match text {
            None => vec![frames::error(
                &FrameError::new("invalid_frame", "binary frames are not supported"),
                None,
            )],
            Some(text) => {
                handle(
                    &self.state,
                    &self.caller,
                    &mut self.subscriptions,
                    self.project_id,
                    text.as_str(),
                )
                .await
            }
        };
        for frame in reply {
            if let Flow::Close(closing) = self.send(text_message(frame)).await {
                return Flow::Close(closing);
            }
        }
        Flow::Continue
    }

    /// Every heartbeat interval: drop a silent client, re-check an API key, ping.
    async fn on_heartbeat(&mut self) -> Flow {
        let every = self.state.config.heartbeat;
        if self.last_heard.elapsed() > every * 2 {
            return Flow::Close(Some((close_code::HEARTBEAT_TIMEOUT, "heartbeat timeout")));
        }
        if self.caller.api_key.is_some() && !self.caller.still_valid(&self.state).await {
            return Flow::Close(Some((close_code::POLICY, "the API key was deleted")));
        }
        if let Flow::Close(closing) = self.send(text_message(frames::heartbeat("ping"))).await {
            return Flow::Close(closing);
        }
        self.send(Message::Ping(Default::default())).await
    }

    /// Sends one message. A client that takes none for two heartbeat intervals (it stopped
    /// reading, or vanished without a FIN) is given up on: otherwise the blocked send would
    /// also stop the heartbeat that is meant to find such clients.
    async fn send(&mut self, message: Message) -> Flow {
        let limit = self.state.config.heartbeat * 2;
        // Boxed: the timer would otherwise enlarge every idle socket's task (see `serve`).
        let mut sending = Box::pin(self.socket.send(message));
        // Most sends complete at once: only a send that has to wait gets a timer.
        if let std::task::Poll::Ready(sent) = futures::poll!(sending.as_mut()) {
            return match sent {
                Ok(()) => Flow::Continue,
                Err(_) => Flow::Close(None),
            };
        }
        match Box::pin(tokio::time::timeout(limit, sending)).await {
            Ok(Ok(())) => Flow::Continue,
            _ => Flow::Close(None),
        }
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
        Ok(ClientFrame::Pong) => Vec::new(),
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
