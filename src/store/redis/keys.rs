//! The Redis key layout. Every key starts with the configured prefix (`pg` by default), so several
//! deployments or test runs can share one Redis without colliding.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{p}:user:{uid}` | string | user JSON (with the Argon2 hash) |
//! | `{p}:email:{email}` | string | user id for a lower-cased email (uniqueness) |
//! | `{p}:user:{uid}:projects` | set | project ids where the user has a teammate |
//! | `{p}:project:{pid}` | string | project JSON |
//! | `{p}:project:{pid}:teammates` | hash | teammate id → teammate JSON (with `version`) |
//! | `{p}:project:{pid}:by_user` | hash | user id → teammate id (one teammate per user) |
//! | `{p}:project:{pid}:owners` | set | ids of active owner teammates (last-owner rule) |
//! | `{p}:project:{pid}:keys` | hash | API key id → SHA-256 of its secret |
//! | `{p}:apikey:{sha256}` | string | API key JSON, looked up by the hash of the presented secret |
//! | `{p}:invites:{email}` | hash | project id → pending invitation JSON |
//! | `{p}:signin_failures:{email}` | string | failed sign-in counter, expires with its window |
//! | `{p}:presence:{pid}:{tid}` | hash | `status`, `changed_at`, `last_seen_at` (ms) of a teammate |
//! | `{p}:presence:{pid}:{tid}:nodes` | hash | node id → `epoch|connections|channel,channel` |
//! | `{p}:presence_pending` | zset | `pid:tid` → due time (ms) of a pending offline (grace) |
//! | `{p}:nodes` | zset | node id → lease expiry (ms) |
//! | `{p}:node:{id}:keys` | set | `pid:tid` of every teammate the node has written |
//! | `{p}:events` | stream | the event log (fields below), trimmed to `event_retention` entries; consumer group `webhooks` |
//! | `{p}:event_seq` | hash | `pid:tid` → the teammate's last event `seq` |
//! | `{p}:event_salt` | string | the random salt of this deployment's event ids |
//! | `{p}:project:{pid}:subscriptions` | hash | subscription id → webhook subscription JSON |
//! | `{p}:deliveries` | hash | delivery id → webhook delivery JSON (pending ones only) |
//! | `{p}:deliveries_due` | zset | delivery id → when its next attempt (or its lease) is due (ms) |
//! | `{p}:project:{pid}:delivery_history` | list | ended deliveries' JSON, newest first, capped |
//! | `{p}:project:{pid}:teams` | hash | team id → (Dixa) team JSON; members are listed on the teammates (`teams`) |
//!
//! An event entry's fields: `type`, `pid`, `tid`, `seq`, `ts` (ms), `after` (teammate JSON),
//! `before` (teammate JSON, for changes to the record), `presence` and `presence_before`
//! (`status|changed_at|last_seen_at|connections|channels`).
//!
//! The presence scripts build some key names from the prefix at run time (`reap_node`,
//! `read_presence`), so the engine needs a single Redis (with replicas if you like), not Redis
//! Cluster. All presence times come from Redis `TIME`, so the nodes' clocks need not agree.

use crate::domain::Id;

#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
        }
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
    pub fn project(&self, pid: Id) -> String {
        format!("{}:project:{pid}", self.prefix)
    }
    pub fn teammates(&self, pid: Id) -> String {
        format!("{}:project:{pid}:teammates", self.prefix)
    }
    pub fn teammate_by_user(&self, pid: Id) -> String {
        format!("{}:project:{pid}:by_user", self.prefix)
    }
    pub fn owners(&self, pid: Id) -> String {
        format!("{}:project:{pid}:owners", self.prefix)
    }
    pub fn project_keys(&self, pid: Id) -> String {
        format!("{}:project:{pid}:keys", self.prefix)
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

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    pub fn presence(&self, pid: Id, tid: Id) -> String {
        format!("{}:presence:{pid}:{tid}", self.prefix)
    }
    pub fn presence_nodes(&self, pid: Id, tid: Id) -> String {
        format!("{}:presence:{pid}:{tid}:nodes", self.prefix)
    }
    pub fn presence_pending(&self) -> String {
        format!("{}:presence_pending", self.prefix)
    }
    pub fn leases(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    pub fn node_keys(&self, node: &str) -> String {
        format!("{}:node:{node}:keys", self.prefix)
    }
    pub fn events(&self) -> String {
        format!("{}:events", self.prefix)
    }
    pub fn event_salt(&self) -> String {
        format!("{}:event_salt", self.prefix)
    }
    pub fn subscriptions(&self, pid: Id) -> String {
        format!("{}:project:{pid}:subscriptions", self.prefix)
    }
    pub fn deliveries(&self) -> String {
        format!("{}:deliveries", self.prefix)
    }
    pub fn deliveries_due(&self) -> String {
        format!("{}:deliveries_due", self.prefix)
    }
    pub fn delivery_history(&self, pid: Id) -> String {
        format!("{}:project:{pid}:delivery_history", self.prefix)
    }
    pub fn teams(&self, pid: Id) -> String {
        format!("{}:project:{pid}:teams", self.prefix)
    }
}
