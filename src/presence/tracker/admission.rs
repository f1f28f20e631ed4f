//! The connection limits: how many sockets and SSE streams one user or API key, and the whole
//! node, may hold. A [`UserSlot`] is one admitted connection's place; dropping it frees it.

use super::Tracker;
use crate::domain::Id;
use dashmap::Entry;
use std::sync::atomic::Ordering;

/// How many long-lived connections (agent sockets and SSE streams) one node admits.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Per user, and per API key.
    pub per_user: u32,
    /// All sockets together: beyond it a node keeps its file descriptors for everything else.
    pub per_node: usize,
}

/// A socket limit was reached.
#[derive(Debug, PartialEq, Eq)]
pub enum TooManyConnections {
    /// The user's, or the API key's.
    Principal,
    Node,
}

/// What an admitted connection is (each kind has its own gauge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    Socket,
    Stream,
}

impl Held {
    fn gauge(self) -> &'static str {
        match self {
            Held::Socket => "agent_sockets",
            Held::Stream => "sse_streams",
        }
    }
}

/// One admitted socket or stream of a user or an API key; frees its places in the limits when
/// dropped.
pub struct UserSlot {
    tracker: Tracker,
    principal: Id,
    held: Held,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        self.tracker.inner.sockets.fetch_sub(1, Ordering::Relaxed);
        if let Entry::Occupied(mut e) = self.tracker.inner.principals.entry(self.principal) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
        metrics::gauge!(self.held.gauge()).decrement(1.0);
    }
}

impl Tracker {
    /// Admits one more socket or SSE stream of `principal` (a user's or an API key's id) unless
    /// the node or the principal is at its limit. Streams count with sockets: both hold a
    /// connection (a file descriptor) open for as long as the client likes.
    pub fn admit(&self, principal: Id, held: Held) -> Result<UserSlot, TooManyConnections> {
        let limits = self.inner.limits;
        let admitted = self
            .inner
            .sockets
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limits.per_node).then_some(n + 1)
            });
        if admitted.is_err() {
            return Err(TooManyConnections::Node);
        }
        let mut count = self.inner.principals.entry(principal).or_insert(0);
        if *count >= limits.per_user {
            drop(count);
            self.inner.sockets.fetch_sub(1, Ordering::AcqRel);
            return Err(TooManyConnections::Principal);
        }
        *count += 1;
        drop(count);
        metrics::gauge!(held.gauge()).increment(1.0);
        Ok(UserSlot {
            tracker: self.clone(),
            principal,
            held,
        })
    }
}
