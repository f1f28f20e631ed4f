//! Access that ends: a teammate disabled, trashed or deleted, an API key deleted. Within a second,
//! on every node, every socket and SSE stream that the teammate or key holds for that project
//! ends: sockets close with 4003, streams finish.
//!
//! How each node learns of it:
//! - a teammate's removal is an event in the log, which every node's tailer reads within
//!   milliseconds (`Events::run_tailers` calls [`Revocations::revoke`]);
//! - a deleted key has no event: each node checks the keys its own sockets and streams use,
//!   every [`KEY_CHECK_INTERVAL`] (a handful of keys at most: they are backends' credentials).
//!
//! A revocation unregisters the principal's listeners at once (the event that says so is the
//! last one they get), records itself, and wakes every socket and stream through the heartbeat
//! clock; each checks whether it is concerned. A socket whose handshake was still running checks
//! at its start against the revocations recorded since its handshake began.

use super::Hub;
use crate::domain::{ApiKey, Id};
use crate::heartbeat::HeartbeatClock;
use crate::store::AccountStore;
use dashmap::DashMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often a node checks that the API keys of its sockets and streams still exist.
pub const KEY_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// How long a revocation is remembered: longer than any handshake takes (a socket checks, at
/// its start, the revocations recorded since its handshake began).
const REMEMBERED_FOR: Duration = Duration::from_secs(30);

/// The node's revocations; cheap to clone.
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Arc<Hub>,
    clock: HeartbeatClock,
    recent: Mutex<VecDeque<Revoked>>,
    /// Revocations recorded so far: the sequence number of the latest.
    count: AtomicU64,
    /// The API keys that sockets and streams on this node use, by key id.
    keys: DashMap<Id, WatchedKey>,
}

struct Revoked {
    seq: u64,
    project_id: Id,
    principal: Id,
    at: Instant,
}

struct WatchedKey {
    secret_hash: String,
    project_id: Id,
    holders: usize,
    revoked: bool,
}

/// A socket's or stream's hold on its API key: the key is checked while one is held.
pub struct KeyWatch {
    revocations: Revocations,
    key_id: Id,
}

impl Drop for KeyWatch {
    fn drop(&mut self) {
        let keys = &self.revocations.inner.keys;
        if let dashmap::Entry::Occupied(mut entry) = keys.entry(self.key_id) {
            entry.get_mut().holders -= 1;
            if entry.get().holders == 0 {
                entry.remove();
            }
        }
    }
}

impl Revocations {
    pub fn new(hub: Arc<Hub>, clock: HeartbeatClock) -> Self {
        Revocations {
            inner: Arc::new(Inner {
                hub,
                clock,
                recent: Mutex::default(),
                count: AtomicU64::new(0),
                keys: DashMap::new(),
            }),
        }
    }

    /// Where a new socket or stream starts heeding revocations. Taken before its access is
    /// checked, so a revocation between the check and its start is not missed.
    pub fn mark(&self) -> u64 {
        self.inner.count.load(Ordering::Acquire)
    }

    /// Cuts `principal` (a user's or an API key's id) off `project_id` on this node.
    pub fn revoke(&self, project_id: Id, principal: Id) {
        self.inner.hub.revoke(project_id, principal);
        {
            let mut recent = self.inner.recent.lock().unwrap_or_else(|e| e.into_inner());
            while recent
                .front()
                .is_some_and(|r| r.at.elapsed() > REMEMBERED_FOR)
            {
                recent.pop_front();
            }
            let seq = self.inner.count.fetch_add(1, Ordering::AcqRel) + 1;
            recent.push_back(Revoked {
                seq,
                project_id,
                principal,
                at: Instant::now(),
            });
        }
        metrics::counter!("access_revocations_total").increment(1);
        self.inner.clock.revoked();
    }

    /// Whether a revocation recorded after `since` cuts `principal` off a project that
    /// `involves` says the socket or stream is in.
    pub fn concerns(&self, since: u64, principal: Id, involves: impl Fn(Id) -> bool) -> bool {
        let recent = self.inner.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent
            .iter()
            .any(|r| r.seq > since && r.principal == principal && involves(r.project_id))
    }

    /// Checks `key` while the returned guard lives.
    pub fn watch_key(&self, key: &ApiKey) -> KeyWatch {
        self.inner
            .keys
            .entry(key.id)
            .or_insert_with(|| WatchedKey {
                secret_hash: key.secret_hash.clone(),
                project_id: key.project_id,
                holders: 0,
                revoked: false,
            })
            .holders += 1;
        KeyWatch {
            revocations: self.clone(),
            key_id: key.id,
        }
    }

    /// Revokes, every [`KEY_CHECK_INTERVAL`], the watched keys that no longer exist, until
    /// `stop`. A store that cannot answer is no verdict: only a key that is gone is revoked.
    pub async fn run_key_checks(self, store: Arc<dyn AccountStore>, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(KEY_CHECK_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.is_cancelled() {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.cancelled() => return,
            }
            let watched: Vec<(Id, Id, String)> = self
                .inner
                .keys
                .iter()
                .filter(|k| !k.revoked)
                .map(|k| (*k.key(), k.project_id, k.secret_hash.clone()))
                .collect();
            let checks = watched.iter().map(|(_, _, hash)| store.find_api_key(hash));
            let found = futures::future::join_all(checks).await;
            for ((key_id, project_id, _), found) in watched.iter().zip(found) {
                if matches!(found, Ok(None)) {
                    if let Some(mut key) = self.inner.keys.get_mut(key_id) {
                        key.revoked = true;
                    }
                    self.revoke(*project_id, *key_id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::new_id;

    #[test]
    fn a_revocation_concerns_only_its_principal_project_and_later_starts() {
        let revocations = Revocations::new(Hub::new(), HeartbeatClock::new(Duration::from_secs(1)));
        let (user, project, other) = (new_id(), new_id(), new_id());
        let before = revocations.mark();
        revocations.revoke(project, user);
        let after = revocations.mark();
        assert!(revocations.concerns(before, user, |p| p == project));
        assert!(!revocations.concerns(before, user, |p| p == other));
        assert!(!revocations.concerns(before, other, |p| p == project));
        // A socket that started after the revocation (a restored teammate reconnecting).
        assert!(!revocations.concerns(after, user, |p| p == project));
    }
}
