//! The Redis key layout: one layout for a single Redis and for a Redis Cluster.
//!
//! Every key starts with the configured prefix (`pg` by default), so several deployments or test
//! runs can share one Redis without colliding. A project's data lives in its partition
//! ([`crate::domain::Partitions`]); a partition's keys share one hash tag, `{prefix}:{<tag>}:`, so
//! they sit in one cluster slot and every script touches one slot. Global lookups (users, the
//! email and API-key indexes, invitations, sign-in counters) carry no tag: each hashes to a slot
//! of its own. Every script receives each key it touches in `KEYS`; none builds a key name.
//!
//! Global keys:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{p}:layout` | hash | `version` (2), `partitions`, `salt` (of event ids); checked at start |
//! | `{p}:user:{uid}` | string | user JSON (with the Argon2 hash) |
//! | `{p}:email:{email}` | string | `uid|claimed_at_ms`: the user holding a lower-cased email |
//! | `{p}:user:{uid}:projects` | set | project ids where the user has (or had) a teammate |
//! | `{p}:apikey:{sha256}` | string | API key JSON, looked up by the hash of the presented secret |
//! | `{p}:invites:{email}` | hash | project id → pending invitation JSON |
//! | `{p}:signin_failures:{email}` | string | failed sign-in counter, expires with its window |
//!
//! Keys of partition `P` (all prefixed `{p}:{P's tag}:`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `project:{pid}` | string | project JSON |
//! | `project:{pid}:teammates` | hash | teammate id → teammate JSON (with `version`) |
//! | `project:{pid}:by_user` | hash | user id → teammate id (one teammate per user) |
//! | `project:{pid}:owners` | set | ids of active owner teammates (last-owner rule) |
//! | `project:{pid}:keys` | hash | API key id → SHA-256 of its secret |
//! | `project:{pid}:subscriptions` | hash | subscription id → webhook subscription JSON |
//! | `project:{pid}:teams` | hash | team id → (Dixa) team JSON |
//! | `project:{pid}:delivery_history` | list | ended deliveries' JSON, newest first, capped |
//! | `presence:{pid}:{tid}` | hash | `status`, `changed_at`, `last_seen_at` (ms) of a teammate |
//! | `presence:{pid}:{tid}:nodes` | hash | node id → `epoch|connections|channel,channel` |
//! | `presence_pending` | zset | `pid:tid` → due time (ms) of a pending offline (grace) |
//! | `nodes` | zset | node id → lease expiry (ms): every node's lease, mirrored per partition |
//! | `node:{id}:keys` | set | `pid:tid` of every teammate the node has written here |
//! | `events` | stream | the partition's event log, trimmed to `event_retention` entries; consumer group `webhooks` |
//! | `event_seq` | hash | `pid:tid` → the teammate's last event `seq` |
//! | `deliveries` | hash | delivery id → webhook delivery JSON (pending ones only) |
//! | `deliveries_due` | zset | delivery id → when its next attempt (or its lease) is due (ms) |
//!
//! An event entry's fields: `type`, `pid`, `tid`, `seq`, `ts` (ms), `after` (teammate JSON),
//! `before` (teammate JSON, for changes to the record), `presence` and `presence_before`
//! (`status|changed_at|last_seen_at|connections|channels`). All presence times come from Redis
//! `TIME`, so the nodes' clocks need not agree.
//!
//! The tags are chosen so that partition `P` of `N` hashes into the `P`-th `N`-th of the slot
//! space: a cluster whose masters hold equal slot ranges (what `redis-cli --cluster create`
//! makes) gets equal shares of the partitions.

use crate::domain::{Id, Partition, Partitions};
use std::sync::Arc;

/// Redis Cluster's slot count.
const SLOTS: u32 = 16_384;

/// The key names of one deployment.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: Arc<str>,
    /// `{prefix}:{tag}`, one per partition.
    partitions: Arc<[String]>,
    count: Partitions,
}

/// The keys of one partition.
#[derive(Clone, Copy, Debug)]
pub struct PartitionKeys<'a> {
    base: &'a str,
}

impl Keys {
    pub fn new(prefix: &str, partitions: Partitions) -> Self {
        let bases = partitions
            .all()
            .map(|p| format!("{prefix}:{{{}}}", tag_of(p, partitions.count())))
            .collect();
        Keys {
            prefix: prefix.into(),
            partitions: bases,
            count: partitions,
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn partitions(&self) -> Partitions {
        self.count
    }

    /// The keys of a partition.
    pub fn partition(&self, partition: Partition) -> PartitionKeys<'_> {
        PartitionKeys {
            base: &self.partitions[usize::from(partition)],
        }
    }

    /// The keys of a project's partition.
    pub fn of_project(&self, project_id: Id) -> PartitionKeys<'_> {
        self.partition(self.count.of(project_id))
    }

    pub fn layout(&self) -> String {
        format!("{}:layout", self.prefix)
    }
    /// Keys only the layout before partitions had: one of them in a Redis means that layout.
    pub fn previous_layout(&self) -> [String; 3] {
        ["event_salt", "events", "nodes"].map(|k| format!("{}:{k}", self.prefix))
    }
    pub fn user(&self, uid: Id) -> String {
        format!("{}:user:{uid}", self.prefix)
    }
    pub fn email(&self, email: &str) -> String {
        format!("{}:email:{email}", self.prefix)
    }
    pub fn user_projects(&self, uid: Id) -> String {
        format!("{}:user:{uid}:projects", self.prefix)
    }
    pub fn api_key(&self, secret_hash: &str) -> String {
        format!("{}:apikey:{secret_hash}", self.prefix)
    }
    pub fn invitations(&self, email: &str) -> String {
        format!("{}:invites:{email}", self.prefix)
    }
    pub fn signin_failures(&self, email: &str) -> String {
        format!("{}:signin_failures:{email}", self.prefix)
    }
}

impl PartitionKeys<'_> {
    pub fn project(self, pid: Id) -> String {
        format!("{}:project:{pid}", self.base)
    }
    pub fn teammates(self, pid: Id) -> String {
        format!("{}:project:{pid}:teammates", self.base)
    }
    pub fn teammate_by_user(self, pid: Id) -> String {
        format!("{}:project:{pid}:by_user", self.base)
    }
    pub fn owners(self, pid: Id) -> String {
        format!("{}:project:{pid}:owners", self.base)
    }
    pub fn project_keys(self, pid: Id) -> String {
        format!("{}:project:{pid}:keys", self.base)
    }
    pub fn subscriptions(self, pid: Id) -> String {
        format!("{}:project:{pid}:subscriptions", self.base)
    }
    pub fn teams(self, pid: Id) -> String {
        format!("{}:project:{pid}:teams", self.base)
    }
    pub fn delivery_history(self, pid: Id) -> String {
        format!("{}:project:{pid}:delivery_history", self.base)
    }
    pub fn presence(self, pid: Id, tid: Id) -> String {
        format!("{}:presence:{pid}:{tid}", self.base)
    }
    pub fn presence_nodes(self, pid: Id, tid: Id) -> String {
        format!("{}:presence:{pid}:{tid}:nodes", self.base)
    }
    pub fn presence_pending(self) -> String {
        format!("{}:presence_pending", self.base)
    }
    pub fn leases(self) -> String {
        format!("{}:nodes", self.base)
    }
    pub fn node_keys(self, node: &str) -> String {
        format!("{}:node:{node}:keys", self.base)
    }
    pub fn events(self) -> String {
        format!("{}:events", self.base)
    }
    pub fn event_seq(self) -> String {
        format!("{}:event_seq", self.base)
    }
    pub fn deliveries(self) -> String {
        format!("{}:deliveries", self.base)
    }
    pub fn deliveries_due(self) -> String {
        format!("{}:deliveries_due", self.base)
    }
}

/// The smallest number whose decimal form hashes into partition `p`'s share of the slots.
fn tag_of(p: Partition, count: u16) -> u32 {
    let (from, to) = (
        u32::from(p) * SLOTS / u32::from(count),
        (u32::from(p) + 1) * SLOTS / u32::from(count),
    );
    (0..)
        .find(|k: &u32| (from..to).contains(&slot_of(k.to_string().as_bytes())))
        .expect("every slot range has a tag")
}

/// Redis Cluster's slot of a key (CRC16/XMODEM of the key or of its hash tag, modulo 16,384).
pub fn slot_of(key: &[u8]) -> u32 {
    let hashed = match key.iter().position(|b| *b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|b| *b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    let mut crc: u16 = 0;
    for byte in hashed {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    u32::from(crc) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::cluster_routing::Slot;

    #[test]
    fn slots_match_redis() {
        // From the Redis Cluster specification, and the client's own computation.
        assert_eq!(slot_of(b"123456789"), 0x31c3);
        for key in [
            "foo",
            "bar",
            "{user1000}.following",
            "a{}b",
            "x{y",
            "pg:{7}:events",
        ] {
            assert_eq!(
                Slot::new(slot_of(key.as_bytes()) as u16),
                Some(Slot::for_key(key)),
                "{key}"
            );
        }
    }

    #[test]
    fn a_partition_keys_share_one_slot_in_its_share_of_the_slots() {
        let keys = Keys::new("pg", Partitions::new(16));
        let pid = crate::domain::new_id();
        let tid = crate::domain::new_id();
        for p in keys.partitions().all() {
            let k = keys.partition(p);
            let slot = slot_of(k.events().as_bytes());
            assert_eq!(slot / (SLOTS / 16), u32::from(p), "partition {p}");
            for key in [
                k.teammates(pid),
                k.presence_nodes(pid, tid),
                k.node_keys("n1"),
            ] {
                assert_eq!(slot_of(key.as_bytes()), slot, "{key}");
            }
        }
        let one = Keys::new("pg", Partitions::new(1));
        assert!(one.partition(0).events().starts_with("pg:{"));
    }
}
