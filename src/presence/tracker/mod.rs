//! The local connection tracker.
//!
//! Each node counts its live agent connections per teammate in a sharded map. Only a teammate's
//! first local connection and its last local disconnect (the *edges*) are written to the store
//! at once, because only they can change the teammate's status. Other changes (a second tab, a
//! new channel) and writes that failed are marked dirty and written by the flusher a moment
//! later, so a burst of tabs costs one store round trip, not one per tab.
//!
//! Every write carries an epoch, taken under the map's shard lock together with the count it
//! describes, so the store can drop a write that arrives after a newer one from this node.

mod admission;

pub use admission::{ConnectionLimits, Held, TooManyConnections, UserSlot};

use crate::domain::{
    Edge, Id, PresenceKey, PresenceWrite, SettleOutcome, Transition, WriteOutcome,
};
use crate::store::PresenceStore;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many store writes the flusher keeps in flight at once.
const FLUSH_CONCURRENCY: usize = 64;

/// This node's live connections of one teammate.
#[derive(Default)]
struct LocalCount {
    connections: u32,
    /// Channel name → connections on it. A handful at most, so a vector beats a map.
    channels: Vec<(String, u32)>,
}

impl LocalCount {
    fn add(&mut self, channel: &str) {
        self.connections += 1;
        match self.channels.iter_mut().find(|(c, _)| c == channel) {
            Some((_, n)) => *n += 1,
            None => self.channels.push((channel.to_string(), 1)),
        }
    }

    fn remove(&mut self, channel: &str) {
        self.connections = self.connections.saturating_sub(1);
        if let Some(i) = self.channels.iter().position(|(c, _)| c == channel) {
            self.channels[i].1 -= 1;
            if self.channels[i].1 == 0 {
                self.channels.swap_remove(i);
            }
        }
    }

    fn channel_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.channels.iter().map(|(c, _)| c.clone()).collect();
        names.sort_unstable();
        names
    }
}

struct Inner {
    node_id: String,
    store: Arc<dyn PresenceStore>,
    grace: Duration,
    limits: ConnectionLimits,
    counts: DashMap<PresenceKey, LocalCount>,
    /// Agent sockets per user or API key on this node (for the per-user limit).
    principals: DashMap<Id, u32>,
    dirty: Mutex<HashSet<PresenceKey>>,
    epoch: AtomicU64,
    /// Open agent sockets, counted or not, and SSE streams: the connections the node holds open.
    sockets: AtomicUsize,
    /// Transitions this node's writes caused: [online, offline].
    transitions: [AtomicU64; 2],
}

/// Cheap to clone: one shared tracker per node.
#[derive(Clone)]
pub struct Tracker {
    inner: Arc<Inner>,
}

/// The teammates one socket counts for, on one channel: given to [`Tracker::connect`] when the
/// socket opens, and handed back to [`Tracker::disconnect`] when it closes.
#[derive(Debug)]
pub struct Registration {
    // Boxed slices: an idle socket holds this, and most count for one teammate.
    keys: Box<[PresenceKey]>,
    channel: Box<str>,
}

impl Registration {
    pub fn new(keys: Vec<PresenceKey>, channel: String) -> Self {
        Registration {
            keys: keys.into_boxed_slice(),
            channel: channel.into_boxed_str(),
        }
    }

    /// Whether the socket counts for a teammate of `project_id`.
    pub fn counts_in(&self, project_id: Id) -> bool {
        self.keys.iter().any(|k| k.project_id == project_id)
    }
}

impl Tracker {
    pub fn new(
        node_id: String,
        store: Arc<dyn PresenceStore>,
        grace: Duration,
        limits: ConnectionLimits,
    ) -> Self {
        // Epochs start at the wall clock in microseconds, so a node restarted with the same
        // PRESENCE_NODE_ID still writes newer epochs than its previous life.
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        Tracker {
            inner: Arc::new(Inner {
                node_id,
                store,
                grace,
                limits,
                counts: DashMap::new(),
                principals: DashMap::new(),
                dirty: Mutex::new(HashSet::new()),
                epoch: AtomicU64::new(start),
                sockets: AtomicUsize::new(0),
                transitions: [AtomicU64::new(0), AtomicU64::new(0)],
            }),
        }
    }

    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    pub fn store(&self) -> &Arc<dyn PresenceStore> {
        &self.inner.store
    }

    /// Teammates with at least one live connection on this node.
    pub fn counted_teammates(&self) -> usize {
        self.inner.counts.len()
    }

    /// Transitions decided on this node's writes, settles and reaps so far: (online, offline).
    pub fn transitions(&self) -> (u64, u64) {
        let [online, offline] = &self.inner.transitions;
        (
            online.load(Ordering::Relaxed),
            offline.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn record(&self, key: PresenceKey, transition: Transition) {
        let index = match transition {
            Transition::Online => 0,
            Transition::Offline => 1,
        };
        self.inner.transitions[index].fetch_add(1, Ordering::Relaxed);
        record_transition(key, transition);
    }

    fn next_epoch(&self) -> u64 {
        self.inner.epoch.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn write_for(&self, key: PresenceKey, count: Option<&LocalCount>, edge: Edge) -> PresenceWrite {
        PresenceWrite {
            key,
            node_id: self.inner.node_id.clone(),
            epoch: self.next_epoch(),
            connections: count.map_or(0, |c| c.connections),
            channels: count.map_or_else(Vec::new, LocalCount::channel_names),
            edge,
        }
    }

    /// Counts a new connection for each key. Edges are written before this returns.
    pub async fn connect(&self, registration: &Registration) {
        let Registration { keys, channel } = registration;
        for key in keys.iter() {
            let (edge, write) = {
                let mut count = self.inner.counts.entry(*key).or_default();
                count.add(channel);
                let edge = count.connections == 1;
                let write = edge.then(|| self.write_for(*key, Some(&count), Edge::Connect));
                (edge, write)
            };
            metrics::counter!("presence_local_changes_total", "kind" => "connect").increment(1);
            match write {
                Some(write) if edge => {
                    metrics::counter!("presence_edges_total", "edge" => "connect").increment(1);
                    self.apply(write).await
                }
                _ => self.mark_dirty(*key),
            }
        }
    }

    /// Uncounts a closed connection. Edges are written before this returns; the grace period
    /// of a teammate whose last connection closed starts in the store.
    pub async fn disconnect(&self, registration: Registration) {
        let Registration { keys, channel } = registration;
        for key in keys.into_vec() {
            let write = match self.inner.counts.entry(key) {
                Entry::Vacant(_) => None,
                Entry::Occupied(mut entry) => {
                    entry.get_mut().remove(&channel);
                    if entry.get().connections == 0 {
                        let write = self.write_for(key, None, Edge::Disconnect);
                        entry.remove();
                        Some(write)
                    } else {
                        None
                    }
                }
            };
            metrics::counter!("presence_local_changes_total", "kind" => "disconnect").increment(1);
            match write {
                Some(write) => {
                    metrics::counter!("presence_edges_total", "edge" => "disconnect").increment(1);
                    self.apply(write).await
                }
                None => self.mark_dirty(key),
            }
        }
    }

    fn mark_dirty(&self, key: PresenceKey) {
        self.inner
            .dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
    }

    /// After the store lost this node's lease (Redis restarted, or the node was partitioned
    /// long enough to be reaped): every local count must be written again.
    pub fn mark_all_dirty(&self) {
        let keys: Vec<PresenceKey> = self.inner.counts.iter().map(|e| *e.key()).collect();
        let mut dirty = self.inner.dirty.lock().unwrap_or_else(|e| e.into_inner());
        dirty.extend(keys);
    }

    /// Writes the current local count of every dirty key (a key with no local connections is
    /// written as zero). Keys whose write fails stay dirty for the next round.
    pub async fn flush(&self) {
        let keys: Vec<PresenceKey> = {
            let mut dirty = self.inner.dirty.lock().unwrap_or_else(|e| e.into_inner());
            dirty.drain().collect()
        };
        if keys.is_empty() {
            return;
        }
        futures::stream::iter(keys)
            .map(|key| {
                // Read the count and take the epoch under the shard lock, so no connect or
                // disconnect of this key can slip in between.
                let write = match self.inner.counts.entry(key) {
                    Entry::Occupied(entry) => self.write_for(key, Some(entry.get()), Edge::Refresh),
                    Entry::Vacant(_) => self.write_for(key, None, Edge::Refresh),
                };
                self.apply(write)
            })
            .buffer_unordered(FLUSH_CONCURRENCY)
            .for_each(|()| async {})
            .await;
    }

    /// Sends one write and acts on the store's decision.
    async fn apply(&self, write: PresenceWrite) {
        let key = write.key;
        match self
            .inner
            .store
            .write_presence(&write, self.inner.grace)
            .await
        {
            Ok(WriteOutcome::Transition(transition)) => self.record(key, transition),
            Ok(WriteOutcome::Pending { due_in_ms }) => self.settle_later(key, due_in_ms),
            Ok(WriteOutcome::Recorded | WriteOutcome::Stale | WriteOutcome::Inactive) => {}
            Err(e) => {
                metrics::counter!("presence_write_errors_total").increment(1);
                tracing::warn!(%key, error = %e, "presence write failed; will retry");
                self.mark_dirty(key);
            }
        }
    }

    /// Ends the grace period when it is due. If this node dies first, any node's sweeper does it.
    fn settle_later(&self, key: PresenceKey, due_in_ms: u64) {
        let tracker = self.clone();
        tokio::spawn(async move {
            let mut wait = due_in_ms;
            loop {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                match tracker.inner.store.settle_presence(key).await {
                    Ok(SettleOutcome::Offline) => {
                        tracker.record(key, Transition::Offline);
                        return;
                    }
                    Ok(SettleOutcome::NotDue { due_in_ms }) => wait = due_in_ms.max(1),
                    Ok(SettleOutcome::Nothing) | Err(_) => return,
                }
            }
        });
    }
}

/// Logs and counts a transition decided by the store.
pub(crate) fn record_transition(key: PresenceKey, transition: Transition) {
    let to = match transition {
        Transition::Online => "online",
        Transition::Offline => "offline",
    };
    metrics::counter!("presence_transitions_total", "to" => to).increment(1);
    tracing::debug!(%key, to, "presence transition");
}
