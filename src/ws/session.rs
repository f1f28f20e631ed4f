//! One agent socket: counts the connection, answers frames, keeps the connection alive, and
//! uncounts it when it closes.
//!
//! One task per socket runs a single `select!` loop over the socket, its topics and the node's
//! heartbeat clock (which also says when the node shuts down). An idle socket therefore costs
//! one task (holding a [`Session`]) and the WebSocket's buffers, nothing more;
//! docs/benchmarks.md has the profile, owner by owner.

use super::answers::answer;
use super::frames::{self, FrameError};
use super::rate::{RateLimiter, Verdict};
use super::topics::{self, SocketTopics};
use super::upgrade::{self, Socket};
use crate::domain::{Id, PresenceKey};
use crate::heartbeat::{Beat, Heartbeat};
use crate::listener_session::ListenerSession;
use crate::presence::Registration;
use crate::state::AppState;
use futures::{SinkExt, StreamExt};
use std::future::Future;
use std::time::Instant;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub mod close_code {
    /// Silent for two heartbeat intervals.
    pub const HEARTBEAT_TIMEOUT: u16 = 1001;
    /// A protocol violation: an unmasked frame, reserved bits or opcode, a control frame over
    /// 125 bytes or fragmented.
    pub const PROTOCOL: u16 = 1002;
    /// A text frame that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// Kept flooding past the rate limit.
    pub const POLICY: u16 = 1008;
    /// A message over the size cap.
    pub const TOO_BIG: u16 = 1009;
    /// Something the server could not send (never expected: every frame is bounded).
    pub const INTERNAL: u16 = 1011;
    /// The node is shutting down: reconnect (to another node) within the grace period.
    pub const RESTART: u16 = 1012;
    /// The socket did not read its topics' events fast enough and was dropped; reconnect and
    /// resume with `since`. Also: the node is full; connect to another node or try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Access revoked: the teammate was disabled, trashed or deleted in a project the socket is
    /// in, or its API key was deleted. A client may reconnect: it then counts only where it
    /// still may.
    pub const REVOKED: u16 = 4003;
}

/// Who is on the socket and what it counts for, as the handshake found it.
pub struct SessionSetup {
    /// Who is on the socket, its place in the limits, where it heeds revocations.
    pub listener: ListenerSession,
    /// `project_id` of the handshake, if any.
    pub project_id: Option<Id>,
    pub channel: String,
    /// The teammates this socket counts for (empty for API keys and `presence=false`).
    pub keys: Vec<PresenceKey>,
}

/// What an open socket holds between frames: everything an idle socket costs, besides the
/// kernel's socket and the WebSocket's own buffers.
struct Session {
    socket: Socket,
    state: AppState,
    listener: ListenerSession,
    project_id: Option<Id>,
    registration: Option<Registration>,
    heartbeat: Heartbeat,
    last_heard: Instant,
    limiter: RateLimiter,
    subscriptions: Option<Box<SocketTopics>>,
}

/// Runs one agent socket until it closes.
///
/// Not an `async fn`: the session is built here, outside the future, and the future only owns
/// it and borrows it. An `async fn` would keep its arguments and the locals they are moved into
/// side by side in its state (rust-lang/rust#62958), and every idle socket's task would pay for
/// both copies.
pub fn run(
    socket: Socket,
    state: AppState,
    setup: SessionSetup,
) -> impl Future<Output = ()> + Send {
    let SessionSetup {
        listener,
        project_id,
        channel,
        keys,
    } = setup;
    let now = Instant::now();
    let mut session = Session {
        registration: (!keys.is_empty()).then(|| Registration::new(keys, channel)),
        heartbeat: state.heartbeats.subscribe(),
        socket,
        state,
        listener,
        project_id,
        last_heard: now,
        limiter: RateLimiter::new(now),
        subscriptions: None,
    };
    async move { session.serve().await }
}

/// What the session loop does after one wakeup.
enum Flow {
    Continue,
    Close(Closing),
}

/// How a socket ends.
#[derive(Clone, Copy)]
enum Closing {
    /// The server closes it: a close frame with this code and reason, then a linger.
    Code(u16, &'static str),
    /// The client sent its close frame: answer it and close the connection.
    Answer,
    /// The client is gone: nothing can be sent.
    Gone,
}

impl Session {
    async fn serve(&mut self) {
        // Revoked while the handshake ran: close before counting.
        let revoked = self.revoked();
        if let (false, Some(registration)) = (revoked, &self.registration) {
            // Boxed here and below: a task's future is as large as its largest await, and
            // every idle socket would otherwise pay for these rarely-taken paths.
            Box::pin(self.state.tracker.connect(registration)).await;
        }
        let closing = if revoked {
            Closing::Code(close_code::REVOKED, "access revoked")
        } else {
            self.run().await
        };
        // Uncount first: the close handshake may take up to a second.
        if let Some(registration) = self.registration.take() {
            Box::pin(self.state.tracker.disconnect(registration)).await;
        }
        self.listener.release_slot();
        match closing {
            Closing::Code(code, reason) => {
                Box::pin(upgrade::close(&mut self.socket, code, reason)).await;
            }
            Closing::Answer => Box::pin(upgrade::finish(&mut self.socket)).await,
            Closing::Gone => {}
        }
    }

    /// Serves the socket until it has to close.
    async fn run(&mut self) -> Closing {
        loop {
            let flow = tokio::select! {
                frame = topics::next(&mut self.subscriptions) => match frame {
                    None => Flow::Close(Closing::Code(close_code::TRY_AGAIN_LATER, "slow consumer: resume with since")),
                    Some(frame) => self.send(Message::Text(frame)).await,
                },
                message = self.socket.next() => Box::pin(self.on_message(message)).await,
                beat = self.heartbeat.next() => match beat {
                    Beat::Beat => Box::pin(self.on_heartbeat()).await,
                    Beat::Revoked if self.revoked() => Box::pin(self.on_revoked()).await,
                    Beat::Revoked => Flow::Continue,
                    Beat::Stopping => Flow::Close(Closing::Code(close_code::RESTART, "node restarting")),
                },
            };
            if let Flow::Close(closing) = flow {
                return closing;
            }
        }
    }

    /// A message from the client (or the end of the socket).
    async fn on_message(&mut self, message: Option<Result<Message, WsError>>) -> Flow {
        let message = match message {
            None => return Flow::Close(Closing::Gone),
            Some(Err(e)) => return Flow::Close(closing_for(&e)),
            Some(Ok(message)) => message,
        };
        self.last_heard = Instant::now();
        let text = match message {
            Message::Text(text) => Some(text),
            Message::Binary(_) => None,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Flow::Continue,
            Message::Close(_) => return Flow::Close(Closing::Answer),
        };
        match self.limiter.check(self.last_heard) {
            Verdict::Allow => {}
            Verdict::Limit => {
                let e = FrameError::new("rate_limited", "too many frames; slow down");
                return self.send(text_message(frames::error(&e, None))).await;
            }
            Verdict::Close => {
                return Flow::Close(Closing::Code(close_code::POLICY, "rate limit exceeded"))
            }
        }
        let reply = match text {
            None => vec![frames::error(
                &FrameError::new("invalid_frame", "binary frames are not supported"),
                None,
            )],
            Some(text) => {
                answer(
                    &self.state,
                    &self.listener.holder,
                    &mut self.subscriptions,
                    &mut self.limiter,
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

    /// Whether a revocation since the handshake concerns this socket: its user or key, in a
    /// project it counts for, named at its handshake, or watches a topic of.
    fn revoked(&self) -> bool {
        self.listener.revoked(&self.state, |project_id| {
            self.project_id == Some(project_id)
                || self
                    .registration
                    .as_ref()
                    .is_some_and(|r| r.counts_in(project_id))
                || topics::in_project(&self.subscriptions, project_id)
        })
    }

    /// Access revoked: the frames already queued go out (the event that revoked it is the last
    /// one), then the socket closes with 4003.
    async fn on_revoked(&mut self) -> Flow {
        for frame in topics::waiting(&mut self.subscriptions) {
            if let Flow::Close(closing) = self.send(Message::Text(frame)).await {
                return Flow::Close(closing);
            }
        }
        Flow::Close(Closing::Code(close_code::REVOKED, "access revoked"))
    }

    /// Every heartbeat interval: drop a silent client, ping.
    async fn on_heartbeat(&mut self) -> Flow {
        let every = self.state.config.heartbeat;
        if self.last_heard.elapsed() > every * 2 {
            return Flow::Close(Closing::Code(
                close_code::HEARTBEAT_TIMEOUT,
                "heartbeat timeout",
            ));
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
            return sent_flow(sent);
        }
        match Box::pin(tokio::time::timeout(limit, sending)).await {
            Ok(sent) => sent_flow(sent),
            Err(_) => Flow::Close(Closing::Code(
                close_code::TRY_AGAIN_LATER,
                "not reading: resume with since",
            )),
        }
    }
}

fn sent_flow(sent: Result<(), WsError>) -> Flow {
    match sent {
        Ok(()) => Flow::Continue,
        // A frame larger than the write buffer: every frame the gateway builds is bounded well
        // below it, so this is a bug, and the client is told rather than cut off.
        Err(WsError::WriteBufferFull(_)) => {
            tracing::error!("a frame did not fit the socket's write buffer");
            Flow::Close(Closing::Code(close_code::INTERNAL, "frame too large"))
        }
        Err(_) => Flow::Close(Closing::Gone),
    }
}

/// The close code for a read that failed (RFC 6455 §7.4.1): the client learns why.
fn closing_for(error: &WsError) -> Closing {
    match error {
        WsError::Capacity(_) => Closing::Code(close_code::TOO_BIG, "message too big"),
        WsError::Utf8(_) => Closing::Code(close_code::INVALID_DATA, "text frames must be UTF-8"),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Closing::Gone,
        WsError::Protocol(_) => Closing::Code(close_code::PROTOCOL, "protocol error"),
        _ => Closing::Gone,
    }
}

/// A socket the node has no room for: closed at once with 1013 (try again later).
pub async fn refuse_node_full(mut socket: Socket) {
    upgrade::close(
        &mut socket,
        close_code::TRY_AGAIN_LATER,
        "node full: try again later",
    )
    .await;
}

fn text_message(text: String) -> Message {
    Message::Text(text.into())
}
