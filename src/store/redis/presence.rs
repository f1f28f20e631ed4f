//! Presence on Redis: edges, grace periods, node leases and reaping, each script inside one
//! partition.
//!
//! A presence script decides liveness (which nodes' counts still count) within its own slot, so
//! every node's lease is mirrored into every partition: a renewal is one small script per
//! partition, sent concurrently, and a lease counts as live only where it was renewed. A node that
//! finds its lease gone in any partition (a failover lost it, or it was reaped after a stall)
//! re-asserts all its counts (`leases.rs` says how it knows). Reaping a dead node is per
//! partition too, and idempotent in each.

use super::{RedisStore, StoreResult};
use crate::domain::{
    Partition, Presence, PresenceKey, PresenceStatus, PresenceWrite, SettleOutcome, Teammate,
    Timestamp, Transition, WriteOutcome,
};
use crate::store::{PresenceStore, StoreError};
use async_trait::async_trait;
use futures::future::{join_all, try_join_all};
use redis::Script;
use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::Duration;

/// A presence script: the shared preludes (presence helpers, then the event-log helpers)
/// followed by the script's body.
macro_rules! presence_script {
    ($name:ident, $file:literal) => {
        pub(super) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("scripts/presence_prelude.lua"),
                include_str!("scripts/event_log.lua"),
                include_str!($file)
            ))
        });
    };
}
presence_script!(INSERT_TEAMMATE, "scripts/insert_teammate.lua");
presence_script!(WRITE_TEAMMATE, "scripts/write_teammate.lua");
presence_script!(WRITE_PRESENCE, "scripts/write_presence.lua");
presence_script!(SETTLE_PRESENCE, "scripts/settle_presence.lua");
presence_script!(DUE_PRESENCE, "scripts/due_presence.lua");
presence_script!(READ_PRESENCE, "scripts/read_presence.lua");
presence_script!(RENEW_LEASE, "scripts/renew_lease.lua");
presence_script!(DEAD_NODES, "scripts/dead_nodes.lua");
presence_script!(REAP_NODE, "scripts/reap_node.lua");

/// Members of a dead node reaped per script call (each brings three keys).
const REAP_BATCH: usize = 200;

#[async_trait]
impl PresenceStore for RedisStore {
    async fn write_presence(
        &self,
        write: &PresenceWrite,
        grace: Duration,
    ) -> StoreResult<WriteOutcome> {
        let PresenceKey {
            project_id,
            teammate_id,
        } = write.key;
        let k = self.keys.of_project(project_id);
        let state = k.presence(project_id, teammate_id);
        let mut invocation = WRITE_PRESENCE.prepare_invoke();
        invocation
            .key(&state)
            .key(k.presence_nodes(project_id, teammate_id))
            .key(k.leases())
            .key(k.presence_pending())
            .key(k.node_keys(&write.node_id))
            .key(k.teammates(project_id))
            .key(k.events())
            .key(k.event_seq())
            .arg(&write.node_id)
            .arg(write.epoch)
            .arg(write.connections)
            .arg(write.channels.join(","))
            .arg(write.edge.as_str())
            .arg(grace.as_millis() as u64)
            .arg(teammate_id.to_string())
            .arg(write.key.to_string())
            .arg(self.retention);
        let (outcome, due_in_ms): (String, u64) = self.script(&invocation).await?;
        let outcome = match outcome.as_str() {
            "stale" => WriteOutcome::Stale,
            "inactive" => WriteOutcome::Inactive,
            "recorded" => WriteOutcome::Recorded,
            "online" => WriteOutcome::Transition(Transition::Online),
            "offline" => WriteOutcome::Transition(Transition::Offline),
            "pending" => WriteOutcome::Pending { due_in_ms },
            other => {
                return Err(StoreError::Internal(format!(
                    "unexpected presence outcome `{other}`"
                )))
            }
        };
        // Counts too: a count lost in a failover would let another node's disconnect turn the
        // teammate offline while this node still holds sockets.
        self.replicated(&state).await?;
        Ok(outcome)
    }

    async fn settle_presence(&self, key: PresenceKey) -> StoreResult<SettleOutcome> {
        let k = self.keys.of_project(key.project_id);
        let state = k.presence(key.project_id, key.teammate_id);
        let mut invocation = SETTLE_PRESENCE.prepare_invoke();
        invocation
            .key(&state)
            .key(k.presence_nodes(key.project_id, key.teammate_id))
            .key(k.leases())
            .key(k.presence_pending())
            .key(k.teammates(key.project_id))
            .key(k.events())
            .key(k.event_seq())
            .arg(key.to_string())
            .arg(self.retention)
            .arg(key.project_id.to_string())
            .arg(key.teammate_id.to_string());
        let (outcome, due_in_ms): (String, u64) = self.script(&invocation).await?;
        Ok(match outcome.as_str() {
            "offline" => {
                self.replicated(&state).await?;
                SettleOutcome::Offline
            }
            "not_due" => SettleOutcome::NotDue { due_in_ms },
            _ => SettleOutcome::Nothing,
        })
    }

    /// Due grace periods, from every partition (concurrently), at most `limit` in all.
    async fn due_presence(&self, limit: usize) -> StoreResult<Vec<PresenceKey>> {
        let per_partition = try_join_all(self.keys.partitions().all().map(|p| async move {
            let mut invocation = DUE_PRESENCE.prepare_invoke();
            invocation
                .key(self.keys.partition(p).presence_pending())
                .arg(limit);
            let members: Vec<String> = self.script(&invocation).await?;
            Ok::<_, StoreError>(members)
        }))
        .await?;
        Ok(per_partition
            .iter()
            .flatten()
            .filter_map(|m| parse_member(m))
            .take(limit)
            .collect())
    }

    /// Presence of teammates of any projects: one script per partition involved.
    async fn read_presence(&self, teammates: &[Teammate]) -> StoreResult<Vec<Presence>> {
        let partitions = self.keys.partitions();
        let involved: BTreeSet<Partition> = teammates
            .iter()
            .map(|t| partitions.of(t.project_id))
            .collect();
        let mut rows = vec![String::new(); teammates.len()];
        let answers = try_join_all(involved.into_iter().map(|p| async move {
            let k = self.keys.partition(p);
            let mut invocation = READ_PRESENCE.prepare_invoke();
            invocation.key(k.leases());
            let mut indices = Vec::new();
            for (i, t) in teammates.iter().enumerate() {
                if partitions.of(t.project_id) == p {
                    indices.push(i);
                    invocation
                        .key(k.presence(t.project_id, t.id))
                        .key(k.presence_nodes(t.project_id, t.id));
                }
            }
            let answer: Vec<String> = self.script(&invocation).await?;
            Ok::<_, StoreError>((indices, answer))
        }))
        .await?;
        for (indices, answer) in answers {
            for (i, row) in indices.into_iter().zip(answer) {
                rows[i] = row;
            }
        }
        teammates
            .iter()
            .zip(rows)
            .map(|(t, row)| parse_presence(&row, t.created_at))
            .collect()
    }

    /// Renews the node's lease in every partition; `true` only if this process's lease was held
    /// in all of them. Each partition's answer is kept even when another partition fails, so a
    /// partial failure does not make the next renewal re-assert needlessly.
    async fn renew_lease(&self, node_id: &str, ttl: Duration) -> StoreResult<bool> {
        let ttl_ms = ttl.as_millis() as u64;
        let answers = join_all(self.keys.partitions().all().map(|p| async move {
            let acknowledged = self.acknowledged_leases.get(node_id, p);
            let mut invocation = RENEW_LEASE.prepare_invoke();
            invocation
                .key(self.keys.partition(p).leases())
                .arg(node_id)
                .arg(ttl_ms)
                .arg(acknowledged.map(|e| e.to_string()).unwrap_or_default());
            let (held, expiry): (i64, i64) = self.script(&invocation).await?;
            self.acknowledged_leases.set(node_id, p, expiry);
            StoreResult::Ok(held == 1)
        }))
        .await;
        let mut all_held = true;
        for answer in answers {
            all_held &= answer?;
        }
        Ok(all_held)
    }

    /// Nodes whose lease expired (and was not reaped) in any partition.
    async fn dead_nodes(&self) -> StoreResult<Vec<String>> {
        let per_partition = try_join_all(self.keys.partitions().all().map(|p| async move {
            let mut invocation = DEAD_NODES.prepare_invoke();
            invocation.key(self.keys.partition(p).leases());
            self.script::<Vec<String>>(&invocation).await
        }))
        .await?;
        let dead: BTreeSet<String> = per_partition.into_iter().flatten().collect();
        Ok(dead.into_iter().collect())
    }

    /// Reaps a node in every partition (each one idempotently, in batches of members).
    async fn reap_node(
        &self,
        node_id: &str,
        only_if_expired: bool,
    ) -> StoreResult<Vec<(PresenceKey, Transition)>> {
        let per_partition = try_join_all(
            self.keys
                .partitions()
                .all()
                .map(|p| self.reap_in(p, node_id, only_if_expired)),
        )
        .await?;
        Ok(per_partition
            .into_iter()
            .flatten()
            .map(|key| (key, Transition::Offline))
            .collect())
    }
}

impl RedisStore {
    async fn reap_in(
        &self,
        partition: Partition,
        node_id: &str,
        only_if_expired: bool,
    ) -> StoreResult<Vec<PresenceKey>> {
        let k = self.keys.partition(partition);
        let node_keys = k.node_keys(node_id);
        let mut offline = Vec::new();
        loop {
            let members: Vec<String> = self
                .cmd(redis::cmd("SRANDMEMBER").arg(&node_keys).arg(REAP_BATCH))
                .await?;
            let mut invocation = REAP_NODE.prepare_invoke();
            invocation
                .key(k.leases())
                .key(k.presence_pending())
                .key(&node_keys)
                .key(k.events())
                .key(k.event_seq())
                .arg(node_id)
                .arg(self.retention)
                .arg(if only_if_expired { "1" } else { "0" });
            let parsed: Vec<PresenceKey> = members.iter().filter_map(|m| parse_member(m)).collect();
            for (member, key) in members.iter().zip(&parsed) {
                invocation
                    .key(k.presence(key.project_id, key.teammate_id))
                    .key(k.presence_nodes(key.project_id, key.teammate_id))
                    .key(k.teammates(key.project_id))
                    .arg(member);
            }
            if parsed.len() != members.len() {
                return Err(StoreError::Internal(format!(
                    "corrupt member in `{node_keys}`"
                )));
            }
            let (done, turned): (i64, Vec<String>) = self.script(&invocation).await?;
            offline.extend(turned.iter().filter_map(|m| parse_member(m)));
            if done == 1 {
                self.replicated(&node_keys).await?;
                return Ok(offline);
            }
        }
    }
}

fn parse_member(member: &str) -> Option<PresenceKey> {
    let (pid, tid) = member.split_once(':')?;
    Some(PresenceKey {
        project_id: pid.parse().ok()?,
        teammate_id: tid.parse().ok()?,
    })
}

fn parse_millis(raw: &str) -> Option<Timestamp> {
    raw.parse().ok().map(Timestamp::from_millis)
}

/// Parses `status|changed_at|last_seen_at|connections|channels` (`presence_of` in
/// `event_log.lua`). A teammate that never connected has empty fields.
pub(super) fn parse_presence(raw: &str, created_at: Timestamp) -> StoreResult<Presence> {
    let mut parts = raw.splitn(5, '|');
    let mut next = || {
        parts
            .next()
            .ok_or_else(|| StoreError::Internal(format!("corrupt presence `{raw}`")))
    };
    let (status, changed_at, last_seen_at, connections, channels) =
        (next()?, next()?, next()?, next()?, next()?);
    Ok(Presence {
        status: if status == "online" {
            PresenceStatus::Online
        } else {
            PresenceStatus::Offline
        },
        changed_at: parse_millis(changed_at).unwrap_or(created_at),
        connections: connections.parse().unwrap_or(0),
        channels: channels
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
        last_seen_at: parse_millis(last_seen_at),
    })
}
