//! Presence in the in-memory engine: the same rules as `store/redis/scripts/*presence*.lua`,
//! applied under the engine's one lock.

use super::MemoryStore;
use crate::domain::{
    Presence, PresenceKey, PresenceStatus, PresenceWrite, SettleOutcome, Teammate, Timestamp,
    Transition, WriteOutcome,
};
use crate::store::{PresenceStore, StoreResult};
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

/// One node's count of one teammate.
struct NodeCount {
    epoch: u64,
    connections: u32,
    channels: Vec<String>,
}

#[derive(Default)]
struct Record {
    online: bool,
    changed_at: Option<i64>,
    last_seen_at: Option<i64>,
    nodes: HashMap<String, NodeCount>,
}

#[derive(Default)]
pub(super) struct PresenceState {
    records: HashMap<PresenceKey, Record>,
    /// Pending offlines: key → due time (ms).
    pending: HashMap<PresenceKey, i64>,
    /// Node leases: node → expiry (ms).
    leases: HashMap<String, i64>,
    /// Keys each node has written, so a dead node's counts can be found.
    node_keys: HashMap<String, HashSet<PresenceKey>>,
}

fn now_ms() -> i64 {
    Timestamp::now().as_millis()
}

impl PresenceState {
    fn alive(&self, node: &str, now: i64) -> bool {
        self.leases.get(node).is_some_and(|expiry| *expiry >= now)
    }

    /// Whether the node's lease is live now.
    pub(super) fn is_live(&self, node: &str) -> bool {
        self.alive(node, now_ms())
    }

    fn live_total(&self, key: &PresenceKey, now: i64) -> u64 {
        self.records.get(key).map_or(0, |r| {
            r.nodes
                .iter()
                .filter(|(node, _)| self.alive(node, now))
                .map(|(_, c)| u64::from(c.connections))
                .sum()
        })
    }

    fn go(&mut self, key: &PresenceKey, online: bool, now: i64) {
        let record = self.records.entry(*key).or_default();
        record.online = online;
        record.changed_at = Some(now);
    }

    pub(super) fn write(
        &mut self,
        w: &PresenceWrite,
        active: bool,
        grace: Duration,
    ) -> WriteOutcome {
        let now = now_ms();
        if !active {
            if let Some(r) = self.records.get_mut(&w.key) {
                r.nodes.remove(&w.node_id);
            }
            return WriteOutcome::Inactive;
        }
        let record = self.records.entry(w.key).or_default();
        if record
            .nodes
            .get(&w.node_id)
            .is_some_and(|c| c.epoch >= w.epoch)
        {
            return WriteOutcome::Stale;
        }
        record.nodes.insert(
            w.node_id.clone(),
            NodeCount {
                epoch: w.epoch,
                connections: w.connections,
                channels: w.channels.clone(),
            },
        );
        if w.edge != crate::domain::Edge::Refresh {
            record.last_seen_at = Some(now);
        }
        let online = record.online;
        self.node_keys
            .entry(w.node_id.clone())
            .or_default()
            .insert(w.key);
        if self.live_total(&w.key, now) > 0 {
            self.pending.remove(&w.key);
            if !online {
                self.go(&w.key, true, now);
                return WriteOutcome::Transition(Transition::Online);
            }
            return WriteOutcome::Recorded;
        }
        if !online || w.connections > 0 {
            return WriteOutcome::Recorded;
        }
        let grace = grace.as_millis() as i64;
        if grace == 0 {
            self.pending.remove(&w.key);
            self.go(&w.key, false, now);
            return WriteOutcome::Transition(Transition::Offline);
        }
        let due = match (w.edge, self.pending.get(&w.key)) {
            (crate::domain::Edge::Disconnect, _) | (_, None) => now + grace,
            (_, Some(existing)) => *existing,
        };
        self.pending.insert(w.key, due);
        WriteOutcome::Pending {
            due_in_ms: (due - now).max(0) as u64,
        }
    }

    pub(super) fn settle(&mut self, key: PresenceKey) -> SettleOutcome {
        let now = now_ms();
        let Some(due) = self.pending.get(&key).copied() else {
            return SettleOutcome::Nothing;
        };
        if due > now {
            return SettleOutcome::NotDue {
                due_in_ms: (due - now) as u64,
            };
        }
        self.pending.remove(&key);
        let online = self.records.get(&key).is_some_and(|r| r.online);
        if online && self.live_total(&key, now) == 0 {
            self.go(&key, false, now);
            return SettleOutcome::Offline;
        }
        SettleOutcome::Nothing
    }

    pub(super) fn due(&self, limit: usize) -> Vec<PresenceKey> {
        let now = now_ms();
        let mut due: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, due)| **due <= now)
            .map(|(k, due)| (*due, *k))
            .collect();
        due.sort();
        due.into_iter().take(limit).map(|(_, k)| k).collect()
    }

    pub(super) fn clear(&mut self, key: PresenceKey) -> Option<Transition> {
        self.pending.remove(&key);
        let record = self.records.get_mut(&key)?;
        record.nodes.clear();
        if record.online {
            self.go(&key, false, now_ms());
            return Some(Transition::Offline);
        }
        None
    }

    pub(super) fn read(&self, teammates: &[Teammate]) -> Vec<Presence> {
        teammates.iter().map(|t| self.read_one(t)).collect()
    }

    /// The keys a node has written (those a reap of it would touch).
    pub(super) fn keys_of(&self, node: &str) -> Vec<PresenceKey> {
        self.node_keys
            .get(node)
            .map(|keys| keys.iter().copied().collect())
            .unwrap_or_default()
    }

    pub(super) fn read_one(&self, t: &Teammate) -> Presence {
        let now = now_ms();
        let key = PresenceKey {
            project_id: t.project_id,
            teammate_id: t.id,
        };
        let Some(record) = self.records.get(&key) else {
            return Presence::never_connected(t.created_at);
        };
        let live = record
            .nodes
            .iter()
            .filter(|(node, c)| c.connections > 0 && self.alive(node, now));
        let channels: BTreeSet<&String> =
            live.clone().flat_map(|(_, c)| c.channels.iter()).collect();
        Presence {
            status: if record.online {
                PresenceStatus::Online
            } else {
                PresenceStatus::Offline
            },
            changed_at: record
                .changed_at
                .map_or(t.created_at, Timestamp::from_millis),
            connections: live.map(|(_, c)| u64::from(c.connections)).sum(),
            channels: channels.into_iter().cloned().collect(),
            last_seen_at: record.last_seen_at.map(Timestamp::from_millis),
        }
    }

    pub(super) fn renew_lease(&mut self, node: &str, ttl: Duration) -> bool {
        let now = now_ms();
        let was_alive = self.alive(node, now);
        self.leases
            .insert(node.to_string(), now + ttl.as_millis() as i64);
        was_alive
    }

    pub(super) fn dead_nodes(&self) -> Vec<String> {
        let now = now_ms();
        self.leases
            .iter()
            .filter(|(_, expiry)| **expiry < now)
            .map(|(node, _)| node.clone())
            .collect()
    }

    pub(super) fn reap(&mut self, node: &str) -> Vec<(PresenceKey, Transition)> {
        let now = now_ms();
        self.leases.remove(node);
        let keys = self.node_keys.remove(node).unwrap_or_default();
        let mut transitions = Vec::new();
        for key in keys {
            if let Some(record) = self.records.get_mut(&key) {
                record.nodes.remove(node);
            }
            let online = self.records.get(&key).is_some_and(|r| r.online);
            if online && !self.pending.contains_key(&key) && self.live_total(&key, now) == 0 {
                self.go(&key, false, now);
                transitions.push((key, Transition::Offline));
            }
        }
        transitions
    }
}

#[async_trait]
impl PresenceStore for MemoryStore {
    async fn write_presence(
        &self,
        write: &PresenceWrite,
        grace: Duration,
    ) -> StoreResult<WriteOutcome> {
        Ok(self.write(|s| {
            let active = s.is_active(&write.key);
            let before = s.presence_of(&write.key);
            let outcome = s.presence.write(write, active, grace);
            if let (WriteOutcome::Transition(t), Some(before)) = (outcome, before) {
                s.log_transition(&write.key, t, before);
            }
            outcome
        }))
    }

    async fn settle_presence(&self, key: PresenceKey) -> StoreResult<SettleOutcome> {
        Ok(self.write(|s| {
            let before = s.presence_of(&key);
            let outcome = s.presence.settle(key);
            if let (SettleOutcome::Offline, Some(before)) = (outcome, before) {
                s.log_transition(&key, Transition::Offline, before);
            }
            outcome
        }))
    }

    async fn due_presence(&self, limit: usize) -> StoreResult<Vec<PresenceKey>> {
        Ok(self.lock().presence.due(limit))
    }

    async fn read_presence(&self, teammates: &[Teammate]) -> StoreResult<Vec<Presence>> {
        Ok(self.lock().presence.read(teammates))
    }

    async fn renew_lease(&self, node_id: &str, ttl: Duration) -> StoreResult<bool> {
        Ok(self.lock().presence.renew_lease(node_id, ttl))
    }

    async fn dead_nodes(&self) -> StoreResult<Vec<String>> {
        Ok(self.lock().presence.dead_nodes())
    }

    async fn reap_node(
        &self,
        node_id: &str,
        only_if_expired: bool,
    ) -> StoreResult<Vec<(PresenceKey, Transition)>> {
        Ok(self.write(|s| {
            if only_if_expired && s.presence.is_live(node_id) {
                return Vec::new();
            }
            let before: HashMap<PresenceKey, Presence> = s
                .presence
                .keys_of(node_id)
                .into_iter()
                .filter_map(|key| Some((key, s.presence_of(&key)?)))
                .collect();
            let transitions = s.presence.reap(node_id);
            for (key, transition) in &transitions {
                if let Some(before) = before.get(key) {
                    s.log_transition(key, *transition, before.clone());
                }
            }
            transitions
        }))
    }
}
