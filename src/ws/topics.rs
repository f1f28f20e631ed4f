//! Topic subscriptions on an agent socket (docs/protocol.md §5): authorize, acknowledge, snapshot
//! or replay, then live `UPDATE` frames from the node's hub.

use super::frames::{self, frame_error, FrameError};
use super::rate::RateLimiter;
use crate::domain::{Id, LogPosition};
use crate::error::Error;
use crate::events::{publish, Listener, Published, RenderedEvent, Resume, Topic, TopicKind};
use crate::listener_session::Holder;
use crate::service::Access;
use crate::state::AppState;
use serde_json::Value;
use std::collections::HashMap;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// A socket's subscriptions, created at its first `subscribe`.
pub struct SocketTopics {
    listener: Listener,
    /// Per topic, the last event a replay sent: live copies of it and older ones are skipped.
    replayed: HashMap<Topic, LogPosition>,
}

/// Whether the socket watches a topic of `project_id`.
pub fn in_project(subscriptions: &Option<Box<SocketTopics>>, project_id: Id) -> bool {
    subscriptions.as_ref().is_some_and(|subs| {
        subs.listener
            .topics()
            .iter()
            .any(|t| t.project_id == project_id)
    })
}

/// The frames already waiting for the socket (never waits): what a socket whose access was
/// revoked still sends, the event that revoked it last.
pub fn waiting(subscriptions: &mut Option<Box<SocketTopics>>) -> Vec<Utf8Bytes> {
    let Some(subs) = subscriptions.as_mut() else {
        return Vec::new();
    };
    let mut frames = Vec::new();
    while let Some(published) = subs.listener.try_recv() {
        if subs.is_new(&published) {
            frames.push(published.frame);
        }
    }
    frames
}

impl SocketTopics {
    /// Whether a published event is not one a replay sent already.
    fn is_new(&self, published: &Published) -> bool {
        let seen = self.replayed.get(&published.topic);
        seen.is_none_or(|p| published.event.position > *p)
    }
}

/// The next frame to send for the socket's topics. Never resolves without subscriptions;
/// `None` once the socket fell behind and the hub dropped it.
pub async fn next(subscriptions: &mut Option<Box<SocketTopics>>) -> Option<Utf8Bytes> {
    let Some(subs) = subscriptions.as_mut() else {
        return std::future::pending().await;
    };
    loop {
        let published = subs.listener.recv().await?;
        if subs.is_new(&published) {
            return Some(published.frame);
        }
    }
}

/// `subscribe`: `subscribed`, then a `CREATE` snapshot (or, with `since`, the missed events, or a
/// snapshot with `resync` if they are gone), then live events. Refusals are `error` frames.
pub async fn subscribe(
    state: &AppState,
    caller: &Holder,
    subscriptions: &mut Option<Box<SocketTopics>>,
    limiter: &mut RateLimiter,
    text: &str,
    since: Option<&str>,
) -> Vec<String> {
    match try_subscribe(state, caller, subscriptions, limiter, text, since).await {
        Ok(frames) => frames,
        Err(e) => vec![frames::error(&e, Some(text))],
    }
}

async fn try_subscribe(
    state: &AppState,
    caller: &Holder,
    subscriptions: &mut Option<Box<SocketTopics>>,
    limiter: &mut RateLimiter,
    text: &str,
    since: Option<&str>,
) -> Result<Vec<String>, FrameError> {
    let topic = Topic::parse(text).ok_or_else(|| {
        FrameError::new(
            "invalid_topic",
            "topics are /{pid}/project_users, /{pid}/project_users/{puid}, \
             /{pid}/project_users/users/{user_id}, /{pid}/events and /{pid}/teams/{team_id}",
        )
    })?;
    let since: Option<Id> = since
        .map(|s| s.parse())
        .transpose()
        .map_err(|_| FrameError::new("invalid_payload", "since must be an event id (UUID)"))?;
    // A second snapshot of a topic the socket holds would tell it nothing new, and cost the
    // node a full team read and render per frame: 1,500 repeats once turned 150 KB in into 5 MB
    // out.
    if subscriptions
        .as_ref()
        .is_some_and(|subs| subs.listener.topics().contains(&topic))
    {
        return Err(FrameError::new(
            "already_subscribed",
            "this socket is subscribed to the topic already; unsubscribe first to start over",
        ));
    }
    let principal = caller.current(state).await.map_err(frame_error)?;
    let access = Access::resolve(state.store.as_ref(), principal, topic.project_id)
        .await
        .map_err(frame_error)?;
    topic.authorize(&access).map_err(frame_error)?;
    if !limiter.take_subscribe() {
        return Err(FrameError::new(
            "rate_limited",
            "too many subscriptions started; a socket may start 20 at once, then one every 5 s",
        ));
    }

    // Register first, then read: nothing that happens in between can be missed.
    let subs = subscriptions.get_or_insert_with(|| {
        Box::new(SocketTopics {
            listener: state.events.hub().listener(caller.principal_id(), None),
            replayed: HashMap::new(),
        })
    });
    subs.listener.subscribe(topic);
    subs.replayed.remove(&topic);
    let name = topic.to_string();
    let mut out = vec![frames::subscribed(&name)];
    match start(state, &access, &topic, since).await {
        Ok(Start::Replay { missed, up_to }) => {
            subs.replayed.insert(topic, up_to);
            out.extend(missed.iter().map(|e| publish::update(&topic, e)));
        }
        Ok(Start::Snapshot(frames)) => out.extend(frames),
        Err(e) => {
            // Refused after all: no live events for a topic whose start the client never got.
            subs.listener.unsubscribe(&topic);
            if subs.listener.topics().is_empty() {
                *subscriptions = None;
            }
            return Err(frame_error(e));
        }
    }
    Ok(out)
}

/// How a subscription starts: the events missed since `since`, or a snapshot (`resync` if
/// `since` could not be resumed from).
enum Start {
    Replay {
        missed: Vec<RenderedEvent>,
        up_to: LogPosition,
    },
    /// The snapshot's frames (one, or the parts of a large team).
    Snapshot(Vec<String>),
}

async fn start(
    state: &AppState,
    access: &Access,
    topic: &Topic,
    since: Option<Id>,
) -> Result<Start, Error> {
    if let Some(since) = since {
        let resume = state
            .events
            .resume(since, topic.project_id, |e| topic.matches(e))
            .await?;
        if let Resume::Replay { missed, up_to } = resume {
            return Ok(Start::Replay { missed, up_to });
        }
    }
    let message = snapshot(state, access, topic).await?;
    Ok(Start::Snapshot(frames::snapshot(
        &topic.to_string(),
        message,
        since.is_some(),
    )))
}

/// `unsubscribe`: stops the topic's events; answered with `unsubscribed` either way.
pub fn unsubscribe(subscriptions: &mut Option<Box<SocketTopics>>, text: &str) -> Vec<String> {
    let Some(topic) = Topic::parse(text) else {
        let e = FrameError::new("invalid_topic", "not a topic");
        return vec![frames::error(&e, Some(text))];
    };
    if let Some(subs) = subscriptions.as_mut() {
        subs.listener.unsubscribe(&topic);
        subs.replayed.remove(&topic);
        if subs.listener.topics().is_empty() {
            *subscriptions = None;
        }
    }
    vec![frames::unsubscribed(text)]
}

/// The topic's current state: the team (without trashed teammates) as an array, or one
/// teammate.
async fn snapshot(state: &AppState, access: &Access, topic: &Topic) -> Result<Value, Error> {
    let pid = topic.project_id;
    let teammate = match topic.kind {
        TopicKind::Team(team_id) => {
            let members = state.teams.members(access, team_id).await?;
            return Ok(Value::Array(state.render_teammates(&members).await?));
        }
        TopicKind::ProjectUsers | TopicKind::Events => {
            let team: Vec<_> = state
                .store
                .list_teammates(pid)
                .await?
                .into_iter()
                .filter(|t| !t.trashed)
                .collect();
            return Ok(Value::Array(state.render_teammates(&team).await?));
        }
        TopicKind::Teammate(id) => state.store.get_teammate(pid, id).await?,
        TopicKind::User(id) => state.store.find_teammate_by_user(pid, id).await?,
    };
    let teammate = teammate.ok_or_else(|| Error::not_found("teammate"))?;
    let mut rendered = state
        .render_teammates(std::slice::from_ref(&teammate))
        .await?;
    Ok(rendered.pop().unwrap_or_default())
}
