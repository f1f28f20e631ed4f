//! The Redis engine: shared state for any number of gateway nodes.
//!
//! One [`ConnectionManager`] multiplexes every request over a single connection and reconnects
//! in the background after Redis restarts. Every call is bounded by `timeout`, so while Redis is
//! down requests fail fast with [`StoreError::Unavailable`] (503) instead of piling up.
//! Multi-key changes run as Lua scripts (`scripts/*.lua`), one round trip each.

mod events;
mod keys;

pub use keys::Keys;

use super::{FailedSignins, Store, StoreError, StoreResult};
use crate::domain::{
    ApiKey, Delivery, EventType, Id, LogPosition, LoggedEvent, PendingInvitation, Presence,
    PresenceKey, PresenceStatus, PresenceWrite, Project, SettleOutcome, Subscription, Team,
    Teammate, Timestamp, Transition, User, WriteOutcome,
};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::LazyLock;
use std::time::Duration;

static CREATE_USER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/create_user.lua")));
static CHANGE_EMAIL: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/change_email.lua")));
static COUNT_FAILURE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/count_failure.lua")));

/// A presence script: the shared preludes (presence helpers, then the event-log helpers)
/// followed by the script's body.
macro_rules! presence_script {
    ($name:ident, $file:literal) => {
        static $name: LazyLock<Script> = LazyLock::new(|| {
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

/// Events kept in the log unless `with_retention` says otherwise.
const DEFAULT_RETENTION: usize = 100_000;

/// The longest a blocking log read waits; the blocking connections' response timeout allows it.
const MAX_BLOCK: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct RedisStore {
    /// Every ordinary call, multiplexed.
    connection: ConnectionManager,
    /// Blocking reads park a connection, so the log tailer and the webhook consumer each get one
    /// of their own: a blocked `XREAD` on the shared connection would stall every other call.
    tail_connection: ConnectionManager,
    group_connection: ConnectionManager,
    keys: Keys,
    timeout: Duration,
    retention: usize,
}

impl RedisStore {
    /// Prepares the engine without waiting for Redis: a gateway may start while Redis is down
    /// and reports 503 on `/readyz` until it is reachable.
    pub fn connect(url: &str, prefix: &str, timeout: Duration) -> StoreResult<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Internal(format!("invalid Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let blocking = config
            .clone()
            .set_response_timeout(Some(timeout + MAX_BLOCK));
        let manager = |config| {
            ConnectionManager::new_lazy_with_config(client.clone(), config)
                .map_err(|e| StoreError::Internal(format!("cannot set up Redis: {e}")))
        };
        Ok(RedisStore {
            connection: manager(config)?,
            tail_connection: manager(blocking.clone())?,
            group_connection: manager(blocking)?,
            keys: Keys::new(prefix),
            timeout,
            retention: DEFAULT_RETENTION,
        })
    }

    /// Keeps the last `retention` events in the log (the `event_retention` setting).
    pub fn with_retention(mut self, retention: usize) -> Self {
        self.retention = retention.max(1);
        self
    }

    /// Bounds a Redis call by the fail-fast timeout, maps its errors, and records its round
    /// trip (`redis_call_duration_seconds`) and failures (`store_errors_total{kind}`).
    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> StoreResult<T> {
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(map_error),
            Err(_) => Err(StoreError::Unavailable(
                "Redis did not answer in time".into(),
            )),
        };
        metrics::histogram!("redis_call_duration_seconds").record(started.elapsed().as_secs_f64());
        match &result {
            Err(StoreError::Unavailable(_)) => {
                metrics::counter!("store_errors_total", "kind" => "unavailable").increment(1)
            }
            Err(StoreError::Internal(_)) => {
                metrics::counter!("store_errors_total", "kind" => "internal").increment(1)
            }
            _ => {}
        }
        result
    }

    async fn cmd<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> StoreResult<T> {
        self.timed(cmd.query_async(&mut self.connection.clone()))
            .await
    }

    async fn pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> StoreResult<T> {
        self.timed(pipe.query_async(&mut self.connection.clone()))
            .await
    }

    async fn script<T: FromRedisValue + Send>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> StoreResult<T> {
        self.timed(invocation.invoke_async(&mut self.connection.clone()))
            .await
    }

    async fn get_json<T: DeserializeOwned>(&self, key: String) -> StoreResult<Option<T>> {
        let raw: Option<String> = self.cmd(redis::cmd("GET").arg(key)).await?;
        raw.map(|s| decode(&s)).transpose()
    }

    async fn write_teammate(
        &self,
        teammate: &Teammate,
        expected_version: u64,
        json: Option<String>,
        event: EventType,
    ) -> StoreResult<()> {
        let k = &self.keys;
        let (pid, tid) = (teammate.project_id, teammate.id);
        let stays_owner = json.is_some() && teammate.is_active_owner();
        let mut invocation = WRITE_TEAMMATE.prepare_invoke();
        invocation
            .key(k.teammates(pid))
            .key(k.owners(pid))
            .key(k.teammate_by_user(pid))
            .key(k.user_projects(teammate.user_id))
            .key(k.presence(pid, tid))
            .key(k.leases())
            .key(k.presence_pending())
            .arg(tid.to_string())
            .arg(expected_version)
            .arg(json.unwrap_or_default())
            .arg(if stays_owner { "1" } else { "0" })
            .arg(teammate.user_id.to_string())
            .arg(pid.to_string())
            .arg(event.as_str())
            .arg(k.prefix())
            .arg(self.retention);
        let outcome: String = self.script(&invocation).await?;
        script_outcome(&outcome)
    }
}

fn map_error(e: redis::RedisError) -> StoreError {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Internal(e.to_string())
    }
}

fn script_outcome(outcome: &str) -> StoreResult<()> {
    match outcome {
        "ok" => Ok(()),
        "not_found" => Err(StoreError::NotFound),
        "conflict" => Err(StoreError::Conflict),
        "last_owner" => Err(StoreError::LastOwner),
        other => Err(StoreError::Internal(format!(
            "unexpected script result `{other}`"
        ))),
    }
}

/// `pid:tid`, the member naming a teammate in the presence sets.
fn member(key: &PresenceKey) -> String {
    key.to_string()
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
fn parse_presence(raw: &str, created_at: Timestamp) -> StoreResult<Presence> {
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

fn encode<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Internal(e.to_string()))
}

fn decode<T: DeserializeOwned>(raw: &str) -> StoreResult<T> {
    serde_json::from_str(raw).map_err(|e| StoreError::Internal(format!("corrupt record: {e}")))
}

fn decode_all<T: DeserializeOwned>(raws: Vec<String>) -> StoreResult<Vec<T>> {
    raws.iter().map(|s| decode(s)).collect()
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        let _: String = self.cmd(&redis::cmd("PING")).await?;
        Ok(())
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let mut invocation = CREATE_USER.prepare_invoke();
        invocation
            .key(self.keys.email(&user.email))
            .key(self.keys.user(user.id))
            .arg(user.id.to_string())
            .arg(encode(user)?);
        let created: i64 = self.script(&invocation).await?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn get_user(&self, id: Id) -> StoreResult<Option<User>> {
        self.get_json(self.keys.user(id)).await
    }

    async fn get_users(&self, ids: &[Id]) -> StoreResult<Vec<Option<User>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.keys.user(*id)).collect();
        let raws: Vec<Option<String>> = self.cmd(redis::cmd("MGET").arg(keys)).await?;
        raws.into_iter()
            .map(|raw| raw.map(|s| decode(&s)).transpose())
            .collect()
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let id: Option<String> = self
            .cmd(redis::cmd("GET").arg(self.keys.email(email)))
            .await?;
        match id.and_then(|s| s.parse::<Id>().ok()) {
            Some(id) => self.get_user(id).await,
            None => Ok(None),
        }
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let current = self.get_user(user.id).await?.ok_or(StoreError::NotFound)?;
        let updated = User {
            email: current.email,
            ..user.clone()
        };
        let _: () = self
            .cmd(
                redis::cmd("SET")
                    .arg(self.keys.user(user.id))
                    .arg(encode(&updated)?),
            )
            .await?;
        Ok(())
    }

    async fn change_user_email(&self, user: &User) -> StoreResult<()> {
        let current = self.get_user(user.id).await?.ok_or(StoreError::NotFound)?;
        let mut invocation = CHANGE_EMAIL.prepare_invoke();
        invocation
            .key(self.keys.email(&current.email))
            .key(self.keys.email(&user.email))
            .key(self.keys.user(user.id))
            .arg(user.id.to_string())
            .arg(encode(user)?);
        let outcome: String = self.script(&invocation).await?;
        match outcome.as_str() {
            "ok" => Ok(()),
            "conflict" => Err(StoreError::Conflict),
            "not_found" => Err(StoreError::NotFound),
            other => Err(StoreError::Internal(format!(
                "change_email answered `{other}`"
            ))),
        }
    }

    async fn put_team(&self, team: &Team) -> StoreResult<()> {
        let _: () = self
            .cmd(
                redis::cmd("HSET")
                    .arg(self.keys.teams(team.project_id))
                    .arg(team.id.to_string())
                    .arg(encode(team)?),
            )
            .await?;
        Ok(())
    }

    async fn list_teams(&self, project_id: Id) -> StoreResult<Vec<Team>> {
        let raws: Vec<String> = self
            .cmd(redis::cmd("HVALS").arg(self.keys.teams(project_id)))
            .await?;
        let mut list: Vec<Team> = decode_all(raws)?;
        list.sort_by_key(|t| (t.created_at, t.id));
        Ok(list)
    }

    async fn get_team(&self, project_id: Id, id: Id) -> StoreResult<Option<Team>> {
        let raw: Option<String> = self
            .cmd(
                redis::cmd("HGET")
                    .arg(self.keys.teams(project_id))
                    .arg(id.to_string()),
            )
            .await?;
        raw.map(|r| decode(&r)).transpose()
    }

    async fn delete_team(&self, project_id: Id, id: Id) -> StoreResult<bool> {
        let removed: i64 = self
            .cmd(
                redis::cmd("HDEL")
                    .arg(self.keys.teams(project_id))
                    .arg(id.to_string()),
            )
            .await?;
        Ok(removed == 1)
    }

    async fn create_project(&self, project: &Project, owner: &Teammate) -> StoreResult<()> {
        let k = &self.keys;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(k.project(project.id))
            .arg(encode(project)?)
            .ignore()
            .cmd("HSET")
            .arg(k.teammates(project.id))
            .arg(owner.id.to_string())
            .arg(encode(owner)?)
            .ignore()
            .cmd("HSET")
            .arg(k.teammate_by_user(project.id))
            .arg(owner.user_id.to_string())
            .arg(owner.id.to_string())
            .ignore()
            .cmd("SADD")
            .arg(k.user_projects(owner.user_id))
            .arg(project.id.to_string())
            .ignore()
            .cmd("SADD")
            .arg(k.owners(project.id))
            .arg(owner.id.to_string())
            .ignore();
        let _: () = self.pipe(&pipe).await?;
        Ok(())
    }

    async fn get_project(&self, id: Id) -> StoreResult<Option<Project>> {
        self.get_json(self.keys.project(id)).await
    }

    async fn list_teammates(&self, project_id: Id) -> StoreResult<Vec<Teammate>> {
        let raws: Vec<String> = self
            .cmd(redis::cmd("HVALS").arg(self.keys.teammates(project_id)))
            .await?;
        let mut list: Vec<Teammate> = decode_all(raws)?;
        list.sort_by_key(|t| (t.created_at, t.id));
        Ok(list)
    }

    async fn get_teammate(&self, project_id: Id, teammate_id: Id) -> StoreResult<Option<Teammate>> {
        let raw: Option<String> = self
            .cmd(
                redis::cmd("HGET")
                    .arg(self.keys.teammates(project_id))
                    .arg(teammate_id.to_string()),
            )
            .await?;
        raw.map(|s| decode(&s)).transpose()
    }

    async fn find_teammate_by_user(
        &self,
        project_id: Id,
        user_id: Id,
    ) -> StoreResult<Option<Teammate>> {
        let tid: Option<String> = self
            .cmd(
                redis::cmd("HGET")
                    .arg(self.keys.teammate_by_user(project_id))
                    .arg(user_id.to_string()),
            )
            .await?;
        match tid.and_then(|s| s.parse::<Id>().ok()) {
            Some(tid) => self.get_teammate(project_id, tid).await,
            None => Ok(None),
        }
    }

    async fn list_user_teammates(&self, user_id: Id) -> StoreResult<Vec<Teammate>> {
        let pids: Vec<String> = self
            .cmd(redis::cmd("SMEMBERS").arg(self.keys.user_projects(user_id)))
            .await?;
        let mut out = Vec::with_capacity(pids.len());
        for pid in pids.iter().filter_map(|p| p.parse::<Id>().ok()) {
            if let Some(t) = self.find_teammate_by_user(pid, user_id).await? {
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn insert_teammate(&self, teammate: &Teammate) -> StoreResult<()> {
        let k = &self.keys;
        let pid = teammate.project_id;
        let mut invocation = INSERT_TEAMMATE.prepare_invoke();
        invocation
            .key(k.project(pid))
            .key(k.teammates(pid))
            .key(k.teammate_by_user(pid))
            .key(k.user_projects(teammate.user_id))
            .key(k.owners(pid))
            .key(k.presence(pid, teammate.id))
            .key(k.leases())
            .arg(teammate.id.to_string())
            .arg(teammate.user_id.to_string())
            .arg(pid.to_string())
            .arg(encode(teammate)?)
            .arg(if teammate.is_active_owner() { "1" } else { "0" })
            .arg(k.prefix())
            .arg(self.retention);
        let outcome: String = self.script(&invocation).await?;
        script_outcome(&outcome)
    }

    async fn update_teammate(
        &self,
        teammate: &Teammate,
        expected_version: u64,
        event: EventType,
    ) -> StoreResult<()> {
        let json = encode(teammate)?;
        self.write_teammate(teammate, expected_version, Some(json), event)
            .await
    }

    async fn delete_teammate(&self, teammate: &Teammate, expected_version: u64) -> StoreResult<()> {
        self.write_teammate(teammate, expected_version, None, EventType::Delete)
            .await
    }

    async fn put_invitation(&self, invitation: &PendingInvitation) -> StoreResult<()> {
        let _: () = self
            .cmd(
                redis::cmd("HSET")
                    .arg(self.keys.invitations(&invitation.email))
                    .arg(invitation.project_id.to_string())
                    .arg(encode(invitation)?),
            )
            .await?;
        Ok(())
    }

    async fn list_invitations(&self, email: &str) -> StoreResult<Vec<PendingInvitation>> {
        let raws: Vec<String> = self
            .cmd(redis::cmd("HVALS").arg(self.keys.invitations(email)))
            .await?;
        let mut list: Vec<PendingInvitation> = decode_all(raws)?;
        list.sort_by_key(|i| i.created_at);
        Ok(list)
    }

    async fn delete_invitation(&self, email: &str, project_id: Id) -> StoreResult<()> {
        let _: () = self
            .cmd(
                redis::cmd("HDEL")
                    .arg(self.keys.invitations(email))
                    .arg(project_id.to_string()),
            )
            .await?;
        Ok(())
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(self.keys.api_key(&key.secret_hash))
            .arg(encode(key)?)
            .ignore()
            .cmd("HSET")
            .arg(self.keys.project_keys(key.project_id))
            .arg(key.id.to_string())
            .arg(&key.secret_hash)
            .ignore();
        let _: () = self.pipe(&pipe).await?;
        Ok(())
    }

    async fn list_api_keys(&self, project_id: Id) -> StoreResult<Vec<ApiKey>> {
        let hashes: Vec<String> = self
            .cmd(redis::cmd("HVALS").arg(self.keys.project_keys(project_id)))
            .await?;
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = hashes.iter().map(|h| self.keys.api_key(h)).collect();
        let raws: Vec<Option<String>> = self.cmd(redis::cmd("MGET").arg(keys)).await?;
        let mut list: Vec<ApiKey> = decode_all(raws.into_iter().flatten().collect())?;
        list.sort_by_key(|k| (k.created_at, k.id));
        Ok(list)
    }

    async fn delete_api_key(&self, project_id: Id, key_id: Id) -> StoreResult<Option<ApiKey>> {
        let index = self.keys.project_keys(project_id);
        let hash: Option<String> = self
            .cmd(redis::cmd("HGET").arg(&index).arg(key_id.to_string()))
            .await?;
        let Some(hash) = hash else {
            return Ok(None);
        };
        let key: Option<ApiKey> = self.get_json(self.keys.api_key(&hash)).await?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(self.keys.api_key(&hash))
            .ignore()
            .cmd("HDEL")
            .arg(&index)
            .arg(key_id.to_string())
            .ignore();
        let _: () = self.pipe(&pipe).await?;
        Ok(key)
    }

    async fn find_api_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKey>> {
        self.get_json(self.keys.api_key(secret_hash)).await
    }

    async fn failed_signins(&self, email: &str) -> StoreResult<FailedSignins> {
        let key = self.keys.signin_failures(email);
        let (count, ttl): (Option<u64>, i64) = self
            .pipe(redis::pipe().cmd("GET").arg(&key).cmd("PTTL").arg(&key))
            .await?;
        Ok(FailedSignins {
            count: count.unwrap_or(0),
            resets_in: Duration::from_millis(ttl.max(0) as u64),
        })
    }

    async fn record_failed_signin(
        &self,
        email: &str,
        window: Duration,
    ) -> StoreResult<FailedSignins> {
        let mut invocation = COUNT_FAILURE.prepare_invoke();
        invocation
            .key(self.keys.signin_failures(email))
            .arg(window.as_millis() as u64);
        let (count, ttl): (u64, i64) = self.script(&invocation).await?;
        Ok(FailedSignins {
            count,
            resets_in: Duration::from_millis(ttl.max(0) as u64),
        })
    }

    async fn clear_failed_signins(&self, email: &str) -> StoreResult<()> {
        let _: () = self
            .cmd(redis::cmd("DEL").arg(self.keys.signin_failures(email)))
            .await?;
        Ok(())
    }

    async fn write_presence(
        &self,
        write: &PresenceWrite,
        grace: Duration,
    ) -> StoreResult<WriteOutcome> {
        let k = &self.keys;
        let PresenceKey {
            project_id,
            teammate_id,
        } = write.key;
        let mut invocation = WRITE_PRESENCE.prepare_invoke();
        invocation
            .key(k.presence(project_id, teammate_id))
            .key(k.presence_nodes(project_id, teammate_id))
            .key(k.leases())
            .key(k.presence_pending())
            .key(k.node_keys(&write.node_id))
            .key(k.teammates(project_id))
            .arg(&write.node_id)
            .arg(write.epoch)
            .arg(write.connections)
            .arg(write.channels.join(","))
            .arg(write.edge.as_str())
            .arg(grace.as_millis() as u64)
            .arg(teammate_id.to_string())
            .arg(member(&write.key))
            .arg(k.prefix())
            .arg(self.retention);
        let (outcome, due_in_ms): (String, u64) = self.script(&invocation).await?;
        Ok(match outcome.as_str() {
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
        })
    }

    async fn settle_presence(&self, key: PresenceKey) -> StoreResult<SettleOutcome> {
        let k = &self.keys;
        let mut invocation = SETTLE_PRESENCE.prepare_invoke();
        invocation
            .key(k.presence(key.project_id, key.teammate_id))
            .key(k.presence_nodes(key.project_id, key.teammate_id))
            .key(k.leases())
            .key(k.presence_pending())
            .key(k.teammates(key.project_id))
            .arg(member(&key))
            .arg(k.prefix())
            .arg(self.retention)
            .arg(key.project_id.to_string())
            .arg(key.teammate_id.to_string());
        let (outcome, due_in_ms): (String, u64) = self.script(&invocation).await?;
        Ok(match outcome.as_str() {
            "offline" => SettleOutcome::Offline,
            "not_due" => SettleOutcome::NotDue { due_in_ms },
            _ => SettleOutcome::Nothing,
        })
    }

    async fn due_presence(&self, limit: usize) -> StoreResult<Vec<PresenceKey>> {
        let mut invocation = DUE_PRESENCE.prepare_invoke();
        invocation.key(self.keys.presence_pending()).arg(limit);
        let members: Vec<String> = self.script(&invocation).await?;
        Ok(members.iter().filter_map(|m| parse_member(m)).collect())
    }

    async fn read_presence(&self, teammates: &[Teammate]) -> StoreResult<Vec<Presence>> {
        if teammates.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = READ_PRESENCE.prepare_invoke();
        invocation.key(self.keys.leases()).arg(self.keys.prefix());
        for t in teammates {
            invocation.arg(format!("{}:{}", t.project_id, t.id));
        }
        let rows: Vec<String> = self.script(&invocation).await?;
        teammates
            .iter()
            .zip(rows)
            .map(|(t, row)| parse_presence(&row, t.created_at))
            .collect()
    }

    async fn renew_lease(&self, node_id: &str, ttl: Duration) -> StoreResult<bool> {
        let mut invocation = RENEW_LEASE.prepare_invoke();
        invocation
            .key(self.keys.leases())
            .arg(node_id)
            .arg(ttl.as_millis() as u64);
        let alive: i64 = self.script(&invocation).await?;
        Ok(alive == 1)
    }

    async fn dead_nodes(&self) -> StoreResult<Vec<String>> {
        let mut invocation = DEAD_NODES.prepare_invoke();
        invocation.key(self.keys.leases());
        self.script(&invocation).await
    }

    async fn reap_node(
        &self,
        node_id: &str,
        only_if_expired: bool,
    ) -> StoreResult<Vec<(PresenceKey, Transition)>> {
        let k = &self.keys;
        let mut invocation = REAP_NODE.prepare_invoke();
        invocation
            .key(k.leases())
            .key(k.presence_pending())
            .key(k.node_keys(node_id))
            .arg(node_id)
            .arg(k.prefix())
            .arg(self.retention)
            .arg(if only_if_expired { "1" } else { "0" });
        let members: Vec<String> = self.script(&invocation).await?;
        Ok(members
            .iter()
            .filter_map(|m| parse_member(m))
            .map(|key| (key, Transition::Offline))
            .collect())
    }

    async fn event_salt(&self) -> StoreResult<u64> {
        self.salt().await
    }

    async fn log_bounds(&self) -> StoreResult<Option<(LogPosition, LogPosition)>> {
        self.bounds().await
    }

    async fn read_events(
        &self,
        after: LogPosition,
        limit: usize,
        wait: Duration,
    ) -> StoreResult<Vec<LoggedEvent>> {
        self.events_after(after, limit, wait).await
    }

    async fn consume_events(
        &self,
        consumer: &str,
        limit: usize,
        wait: Duration,
    ) -> StoreResult<Vec<LoggedEvent>> {
        self.group_read(consumer, limit, wait).await
    }

    async fn claim_stale_events(
        &self,
        consumer: &str,
        idle: Duration,
        limit: usize,
    ) -> StoreResult<Vec<LoggedEvent>> {
        self.group_claim(consumer, idle, limit).await
    }

    async fn put_subscription(&self, subscription: &Subscription) -> StoreResult<()> {
        let _: () = self
            .cmd(
                redis::cmd("HSET")
                    .arg(self.keys.subscriptions(subscription.project_id))
                    .arg(subscription.id.to_string())
                    .arg(encode(subscription)?),
            )
            .await?;
        Ok(())
    }

    async fn list_subscriptions(&self, project_id: Id) -> StoreResult<Vec<Subscription>> {
        let raws: Vec<String> = self
            .cmd(redis::cmd("HVALS").arg(self.keys.subscriptions(project_id)))
            .await?;
        let mut list: Vec<Subscription> = decode_all(raws)?;
        list.sort_by_key(|s| (s.created_at, s.id));
        Ok(list)
    }

    async fn get_subscription(&self, project_id: Id, id: Id) -> StoreResult<Option<Subscription>> {
        let raw: Option<String> = self
            .cmd(
                redis::cmd("HGET")
                    .arg(self.keys.subscriptions(project_id))
                    .arg(id.to_string()),
            )
            .await?;
        raw.map(|s| decode(&s)).transpose()
    }

    async fn delete_subscription(&self, project_id: Id, id: Id) -> StoreResult<bool> {
        let removed: i64 = self
            .cmd(
                redis::cmd("HDEL")
                    .arg(self.keys.subscriptions(project_id))
                    .arg(id.to_string()),
            )
            .await?;
        Ok(removed == 1)
    }

    async fn enqueue_deliveries(
        &self,
        deliveries: &[Delivery],
        lease_until: Timestamp,
        acknowledge: &[LogPosition],
    ) -> StoreResult<()> {
        self.enqueue(deliveries, lease_until, acknowledge).await
    }

    async fn lease_due_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        self.lease_due(now, lease_until, limit).await
    }

    async fn renew_delivery_lease(
        &self,
        id: Id,
        held: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        self.renew_lease_of(id, held, until).await
    }

    async fn save_delivery(
        &self,
        delivery: &Delivery,
        next_attempt: Option<Timestamp>,
        held: Timestamp,
    ) -> StoreResult<bool> {
        self.save(delivery, next_attempt, held).await
    }

    async fn delivery_history(&self, project_id: Id, limit: usize) -> StoreResult<Vec<Delivery>> {
        let raws: Vec<String> = self
            .cmd(
                redis::cmd("LRANGE")
                    .arg(self.keys.delivery_history(project_id))
                    .arg(0)
                    .arg(limit.saturating_sub(1)),
            )
            .await?;
        decode_all(raws)
    }
}
