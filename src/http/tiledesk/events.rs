//! `GET /v3/{pid}/events`: the project's events as Server-Sent Events (docs/protocol.md §7).
//!
//! Each event is `id: <event id>`, `event: <type>`, `data: <envelope>`. `Last-Event-ID` (or
//! `?since=`) replays what came after that event; if it is no longer retained, the stream
//! starts with `event: resync` and goes on live. `?types=a,b` filters by type. A comment line
//! keeps idle connections open every heartbeat interval. A client that does not read fast
//! enough is dropped (its stream ends) and may resume with `Last-Event-ID`.

use crate::domain::{EventType, Id, LogPosition};
use crate::error::{Error, Result};
use crate::events::{Listener, RenderedEvent, Resume, Topic, TopicKind};
use crate::heartbeat::{Beat, Heartbeat};
use crate::http::extract::parse_id;
use crate::http::extract::Path;
use crate::http::params::ProjectPath;
use crate::listener_session::{ListenerSession, Opening};
use crate::presence::Held;
use crate::service::Access;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

struct Query {
    token: Option<String>,
    types: Option<Vec<EventType>>,
    since: Option<String>,
}

impl Query {
    fn parse(raw: Option<&str>) -> Result<Query> {
        let mut query = Query {
            token: None,
            types: None,
            since: None,
        };
        for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "token" => query.token = Some(value.into_owned()),
                "since" => query.since = Some(value.into_owned()),
                "types" => {
                    let types = value
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(|t| t.parse::<EventType>())
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(|e| Error::bad_request(e.to_string()))?;
                    query.types.get_or_insert_with(Vec::new).extend(types);
                }
                _ => {}
            }
        }
        Ok(query)
    }
}

/// The project's events as a Server-Sent Events stream (agent and up, or an API key of the
/// project). Each event is `id: <event id>`, `event: <type>`, `data: <envelope>`; a
/// `: keep-alive` comment goes out every heartbeat. It never ends by itself.
#[utoipa::path(get, path = "/v3/{pid}/events", tag = "events",
    params(
        ProjectPath,
        ("types" = Option<String>, Query, description = "comma-separated event types to keep, e.g. `presence.online,presence.offline`"),
        ("since" = Option<uuid::Uuid>, Query, description = "replay the events after this event id"),
        ("token" = Option<String>, Query, description = "credentials for clients that cannot set headers (`JWT <jwt>`, a bare JWT, or an API key)"),
        ("Last-Event-ID" = Option<uuid::Uuid>, Header, description = "replay the events after this event id (wins over `since`)"),
    ),
    responses((status = 200, description = "the stream; it starts with `event: resync` when the resume point is no longer kept",
        content_type = "text/event-stream", body = String),
        (status = 429, description = "the user or API key holds `max_connections_per_user` sockets and streams on this node",
            body = crate::http::error::TiledeskError,
            headers(("Retry-After" = String, description = "seconds to wait before retrying")))))]
pub async fn stream(
    State(state): State<AppState>,
    Path(pid): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let query = Query::parse(raw.as_deref())?;
    let opening = Opening::authenticate(
        &state,
        query.token.as_deref(),
        headers.get(header::AUTHORIZATION),
    )
    .await?;
    let pid = parse_id(&pid, "project id")?;
    let topic = Topic {
        project_id: pid,
        kind: TopicKind::Events,
    };
    let access = Access::resolve(state.store.as_ref(), opening.principal.clone(), pid).await?;
    topic.authorize(&access)?;
    // A stream holds a connection open like a socket, so it counts with them.
    let session = opening.admit(&state, Held::Stream)?;
    let since = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(query.since);
    let since: Option<Id> = since
        .map(|s| parse_id(s.trim(), "event id (Last-Event-ID / since)"))
        .transpose()?;

    // Register before reading the log, so nothing between the replay and the live events is lost.
    let mut listener = state
        .events
        .hub()
        .listener(access.principal.actor_id(), query.types.clone());
    listener.subscribe(topic);
    let mut first = VecDeque::new();
    let mut replayed_up_to = None;
    if let Some(since) = since {
        let types = query.types.clone();
        let wanted =
            move |e: &RenderedEvent| types.as_ref().is_none_or(|t| t.contains(&e.event_type));
        match state.events.resume(since, pid, wanted).await? {
            Resume::Replay { missed, up_to } => {
                replayed_up_to = Some(up_to);
                first.extend(missed.iter().map(sse_event));
            }
            Resume::Resync => {
                first.push_back(Event::default().event("resync").data(r#"{"resync":true}"#))
            }
        }
    }
    let feed = Feed {
        listener,
        first,
        replayed_up_to,
        signals: state.heartbeats.subscribe(),
        state: state.clone(),
        session,
        project_id: pid,
        ending: false,
    };
    // Revoked while this request ran (from here on, the feed's signals tell it).
    if feed.revoked() {
        return Err(Error::forbidden("access revoked"));
    }
    Ok(Sse::new(feed.into_stream())
        .keep_alive(
            KeepAlive::new()
                .interval(state.config.heartbeat)
                .text("keep-alive"),
        )
        .into_response())
}

fn sse_event(e: &RenderedEvent) -> Event {
    Event::default()
        .id(e.id.to_string())
        .event(e.event_type.as_str())
        .data(e.envelope.get())
}

/// One SSE client's events: the replay first, then live events (minus those the replay sent),
/// until it falls behind, its access is revoked, or the node shuts down.
struct Feed {
    listener: Listener,
    first: VecDeque<Event>,
    replayed_up_to: Option<LogPosition>,
    /// The node's signals to every socket and stream: revocations and the stop.
    signals: Heartbeat,
    state: AppState,
    /// Who holds the stream, its place in the limits, its API key watched.
    session: ListenerSession,
    project_id: Id,
    /// Revoked: the events already queued go out (the one that revoked it last), then it ends.
    ending: bool,
}

impl Feed {
    fn revoked(&self) -> bool {
        let project_id = self.project_id;
        self.session.revoked(&self.state, |p| p == project_id)
    }
}

impl Feed {
    fn into_stream(self) -> impl Stream<Item = std::result::Result<Event, Infallible>> {
        stream::unfold(self, |mut feed| async move {
            if let Some(event) = feed.first.pop_front() {
                return Some((Ok(event), feed));
            }
            loop {
                let published = if feed.ending {
                    feed.listener.try_recv()?
                } else {
                    tokio::select! {
                        published = feed.listener.recv() => published?,
                        signal = feed.signals.next() => match signal {
                            Beat::Stopping => return None,
                            Beat::Revoked if feed.revoked() => {
                                feed.ending = true;
                                continue;
                            }
                            Beat::Revoked | Beat::Beat => continue,
                        },
                    }
                };
                let event: &Arc<RenderedEvent> = &published.event;
                if feed.replayed_up_to.is_some_and(|p| event.position <= p) {
                    continue;
                }
                return Some((Ok(sse_event(event)), feed));
            }
        })
    }
}
