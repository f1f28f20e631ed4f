//! The Redis engine: shared state for any number of gateway nodes.
//!
//! One [`ConnectionManager`] multiplexes every request over a single connection and reconnects
//! in the background after Redis restarts. Every call is bounded by `timeout`, so while Redis is
//! down requests fail fast with [`StoreError::Unavailable`] (503) instead of piling up.
//! Multi-key changes run as Lua scripts (`scripts/*.lua`), one round trip each.

mod keys;

pub use keys::Keys;

use super::{FailedSignins, Store, StoreError, StoreResult};
use crate::domain::{ApiKey, Id, PendingInvitation, Project, Teammate, User};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::LazyLock;
use std::time::Duration;

static CREATE_USER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/create_user.lua")));
static INSERT_TEAMMATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/insert_teammate.lua")));
static WRITE_TEAMMATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/write_teammate.lua")));
static COUNT_FAILURE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/count_failure.lua")));

#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    keys: Keys,
    timeout: Duration,
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
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError::Internal(format!("cannot set up Redis: {e}")))?;
        Ok(RedisStore {
            connection,
            keys: Keys::new(prefix),
            timeout,
        })
    }

    /// Bounds a Redis call by the fail-fast timeout and maps its errors.
    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> StoreResult<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(map_error),
            Err(_) => Err(StoreError::Unavailable(
                "Redis did not answer in time".into(),
            )),
        }
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
        stays_owner: bool,
    ) -> StoreResult<()> {
        let k = &self.keys;
        let mut invocation = WRITE_TEAMMATE.prepare_invoke();
        invocation
            .key(k.teammates(teammate.project_id))
            .key(k.owners(teammate.project_id))
            .key(k.teammate_by_user(teammate.project_id))
            .key(k.user_projects(teammate.user_id))
            .arg(teammate.id.to_string())
            .arg(expected_version)
            .arg(json.unwrap_or_default())
            .arg(if stays_owner { "1" } else { "0" })
            .arg(teammate.user_id.to_string())
            .arg(teammate.project_id.to_string());
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
            .arg(teammate.id.to_string())
            .arg(teammate.user_id.to_string())
            .arg(pid.to_string())
            .arg(encode(teammate)?)
            .arg(if teammate.is_active_owner() { "1" } else { "0" });
        let outcome: String = self.script(&invocation).await?;
        script_outcome(&outcome)
    }

    async fn update_teammate(&self, teammate: &Teammate, expected_version: u64) -> StoreResult<()> {
        let json = encode(teammate)?;
        self.write_teammate(
            teammate,
            expected_version,
            Some(json),
            teammate.is_active_owner(),
        )
        .await
    }

    async fn delete_teammate(&self, teammate: &Teammate, expected_version: u64) -> StoreResult<()> {
        self.write_teammate(teammate, expected_version, None, false)
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
}
