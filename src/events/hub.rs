//! The node-local fan-out: topic → the listeners (agent sockets, SSE streams) subscribed to it.
//!
//! Each listener has one bounded queue. Publishing never waits: a listener whose queue is full is
//! a slow consumer; it is marked and unregistered, and nobody else is slowed down. It finds out at
//! its next `recv` (it cannot be waiting in `recv` then: its queue is full).
//! Each event's frame for a topic is built once, however many listeners share the topic.
//!
//! Access is checked when a listener subscribes. When it is revoked, [`Hub::revoke`] takes the
//! principal's listeners off the project's topics at once (see `revocation.rs`).

use super::{RenderedEvent, Topic};
use crate::domain::{EventType, Id};
use dashmap::DashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Frames a listener may have waiting before it counts as a slow consumer.
pub const LISTENER_QUEUE: usize = 1024;

/// One event on one topic, as a listener receives it.
#[derive(Clone, Debug)]
pub struct Published {
    pub topic: Topic,
    pub event: Arc<RenderedEvent>,
    /// The WebSocket `publish`/`UPDATE` frame for this topic, shared: sending it to another
    /// socket copies a pointer, not the text.
    pub frame: Utf8Bytes,
}

#[derive(Default)]
pub struct Hub {
    topics: DashMap<Topic, Vec<Arc<Subscriber>>>,
    next_id: AtomicU64,
}

/// One listener's place on one topic.
struct Subscriber {
    id: u64,
    /// Who is listening: the user's id, or the API key's.
    principal: Id,
    queue: mpsc::Sender<Published>,
    /// Event types this listener wants; `None` = all.
    types: Option<Vec<EventType>>,
    /// Set when the listener's queue overflowed.
    overflowed: Arc<AtomicBool>,
}

impl Hub {
    pub fn new() -> Arc<Self> {
        Arc::new(Hub::default())
    }

    /// A new listener for `principal` (a user's or an API key's id) with an empty queue and no
    /// topics.
    pub fn listener(self: &Arc<Self>, principal: Id, types: Option<Vec<EventType>>) -> Listener {
        let (queue, receiver) = mpsc::channel(LISTENER_QUEUE);
        Listener {
            hub: self.clone(),
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            principal,
            queue,
            receiver,
            types,
            overflowed: Arc::default(),
            topics: Vec::new(),
        }
    }

    /// Hands an event to every listener of its topics.
    pub fn publish(&self, event: Arc<RenderedEvent>) {
        let mut dropped = Vec::new();
        for topic in Topic::of(&event) {
            let Some(registrations) = self.topics.get(&topic) else {
                continue;
            };
            let frame = Utf8Bytes::from(super::publish::update(&topic, &event));
            for r in registrations.iter() {
                if r.types
                    .as_ref()
                    .is_some_and(|t| !t.contains(&event.event_type))
                {
                    continue;
                }
                let published = Published {
                    topic,
                    event: event.clone(),
                    frame: frame.clone(),
                };
                match r.queue.try_send(published) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        r.overflowed.store(true, Ordering::Release);
                        metrics::counter!("subscribers_dropped_total").increment(1);
                        dropped.push((topic, r.id));
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => dropped.push((topic, r.id)),
                }
            }
        }
        for (topic, id) in dropped {
            self.remove(&topic, id);
        }
    }

    /// Unregisters every listener of `principal` (a user or an API key that lost its access)
    /// from every topic of `project_id`.
    pub fn revoke(&self, project_id: Id, principal: Id) {
        let topics: Vec<Topic> = self
            .topics
            .iter()
            .filter(|entry| entry.key().project_id == project_id)
            .map(|entry| *entry.key())
            .collect();
        for topic in topics {
            if let dashmap::Entry::Occupied(mut entry) = self.topics.entry(topic) {
                entry.get_mut().retain(|r| r.principal != principal);
                if entry.get().is_empty() {
                    entry.remove();
                }
            }
        }
    }

    fn remove(&self, topic: &Topic, id: u64) {
        if let dashmap::Entry::Occupied(mut entry) = self.topics.entry(*topic) {
            entry.get_mut().retain(|r| r.id != id);
            if entry.get().is_empty() {
                entry.remove();
            }
        }
    }

    /// Listeners registered on this node, all topics together.
    pub fn registrations(&self) -> usize {
        self.topics.iter().map(|e| e.value().len()).sum()
    }
}

/// One client's subscriptions: a bounded queue fed by the hub. Dropping it unregisters
/// everything.
pub struct Listener {
    hub: Arc<Hub>,
    id: u64,
    principal: Id,
    queue: mpsc::Sender<Published>,
    receiver: mpsc::Receiver<Published>,
    types: Option<Vec<EventType>>,
    overflowed: Arc<AtomicBool>,
    topics: Vec<Topic>,
}

impl Listener {
    /// Starts receiving `topic`'s events (from now on). `false` if it was subscribed already.
    pub fn subscribe(&mut self, topic: Topic) -> bool {
        let new = !self.topics.contains(&topic);
        if new {
            self.topics.push(topic);
        }
        self.hub.remove(&topic, self.id);
        self.hub
            .topics
            .entry(topic)
            .or_default()
            .push(Arc::new(Subscriber {
                id: self.id,
                principal: self.principal,
                queue: self.queue.clone(),
                types: self.types.clone(),
                overflowed: self.overflowed.clone(),
            }));
        new
    }

    /// `false` if it was not subscribed.
    pub fn unsubscribe(&mut self, topic: &Topic) -> bool {
        let before = self.topics.len();
        self.topics.retain(|t| t != topic);
        self.hub.remove(topic, self.id);
        self.topics.len() != before
    }

    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    /// The next published event; `None` once the listener fell behind and was dropped.
    pub async fn recv(&mut self) -> Option<Published> {
        if self.is_dropped() {
            return None;
        }
        self.receiver.recv().await
    }

    /// A published event that is waiting already, if any (never waits).
    pub fn try_recv(&mut self) -> Option<Published> {
        self.receiver.try_recv().ok()
    }

    /// The listener fell behind (its queue filled up) and gets no more events.
    pub fn is_dropped(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        for topic in std::mem::take(&mut self.topics) {
            self.hub.remove(&topic, self.id);
        }
    }
}
