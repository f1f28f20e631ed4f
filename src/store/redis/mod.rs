//! The Redis engine: shared state for any number of gateway nodes, on one Redis or on a Redis
//! Cluster, with one key layout for both (`keys.rs`).
//!
//! Every call is bounded by `timeout`, so while Redis is down requests fail fast with
//! [`StoreError::Unavailable`] (503) instead of piling up. Multi-key changes run as Lua scripts
//! (`scripts/*.lua`), one round trip each, and every script's keys share one slot: a project's
//! partition. Changes that span slots (a user and its email, a teammate and its user's
//! memberships index) are ordered steps that are safe to crash between (docs/architecture.md).
//!
//! One file per concern, each implementing its trait of [`crate::store`] directly:
//! `accounts.rs` ([`AccountStore`]: users, emails, invitations, API keys, sign-in counters),
//! `projects.rs` ([`ProjectStore`]: projects, teammates, teams), `presence.rs`
//! ([`PresenceStore`]: edges, grace, leases, reaping; `leases.rs` keeps what renewals were told),
//! `events.rs` ([`EventLog`]: the logs and their consumer groups), `webhooks.rs`
//! ([`WebhookStore`]: subscriptions and deliveries). Beside them: `connection.rs` (single or
//! cluster), `keys.rs` (the key layout), `layout.rs` (the check before first use), and this file
//! (the shared command helpers and [`Store::ping`]).

mod accounts;
mod connection;
mod events;
mod keys;
mod layout;
mod leases;
mod presence;
mod projects;
mod webhooks;

pub use connection::Target;
pub use keys::{slot_of, Keys};

use super::Store;
#[cfg(doc)]
use super::{AccountStore, EventLog, PresenceStore, ProjectStore, WebhookStore};
use super::{StoreError, StoreResult};
use crate::domain::{Id, Partition, Partitions};
use async_trait::async_trait;
use connection::Connection;
use futures::future::try_join_all;
use layout::Layout;
use redis::FromRedisValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Events kept in each partition's log unless `with_retention` says otherwise.
const DEFAULT_RETENTION: usize = 100_000;

/// The longest a blocking log read waits; the blocking connections' response timeout allows it.
const MAX_BLOCK: Duration = Duration::from_secs(5);

/// How the engine connects, and how it acknowledges writes.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    pub prefix: String,
    /// The fail-fast timeout of one call.
    pub timeout: Duration,
    pub partitions: Partitions,
    /// Replicas that must have a change before it is acknowledged (`WAIT`); 0 = don't wait.
    pub wait_replicas: u32,
}

#[derive(Clone)]
pub struct RedisStore {
    /// Every ordinary call, multiplexed.
    connection: Connection,
    /// Blocking reads park a connection, so each partition's log tailer and webhook consumer
    /// get one of their own: a blocked `XREAD` on the shared connection would stall every other
    /// call to that Redis.
    blocking: Arc<[BlockingConnections]>,
    keys: Keys,
    timeout: Duration,
    retention: usize,
    wait_replicas: u32,
    /// The layout check's outcome, once it could be made (a refusal is kept too).
    layout: Arc<OnceCell<Result<Layout, String>>>,
    /// What this process's lease renewals were last told (`leases.rs`).
    acknowledged_leases: leases::AcknowledgedLeases,
}

#[derive(Clone)]
struct BlockingConnections {
    tail: Connection,
    group: Connection,
}

impl RedisStore {
    /// Prepares the engine without waiting for Redis: a gateway may start while Redis is down
    /// and reports 503 on `/readyz` until it is reachable. `url` is checked by [`Target::parse`].
    pub fn connect(url: &str, settings: &RedisSettings) -> StoreResult<Self> {
        let target = Target::parse(url).map_err(StoreError::Internal)?;
        let timeout = settings.timeout;
        let open = |response_timeout| {
            Connection::open(&target, timeout, response_timeout)
                .map_err(|e| StoreError::Internal(format!("cannot set up Redis: {e}")))
        };
        let blocking = settings
            .partitions
            .all()
            .map(|_| {
                Ok(BlockingConnections {
                    tail: open(timeout + MAX_BLOCK)?,
                    group: open(timeout + MAX_BLOCK)?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(RedisStore {
            connection: open(timeout)?,
            blocking: blocking.into(),
            keys: Keys::new(&settings.prefix, settings.partitions),
            timeout,
            retention: DEFAULT_RETENTION,
            wait_replicas: settings.wait_replicas,
            layout: Arc::new(OnceCell::new()),
            acknowledged_leases: leases::AcknowledgedLeases::default(),
        })
    }

    /// Keeps the last `retention` events in each partition's log (the `event_retention` setting).
    pub fn with_retention(mut self, retention: usize) -> Self {
        self.retention = retention.max(1);
        self
    }

    /// Checks the layout record (creating it in an empty Redis). `Refused` for a Redis this node
    /// must not use; `Unavailable` while Redis cannot be reached (the check is retried on the
    /// next call).
    pub async fn prepare(&self) -> StoreResult<()> {
        self.layout().await.map(|_| ())
    }

    async fn layout(&self) -> StoreResult<Layout> {
        let outcome = self
            .layout
            .get_or_try_init(|| async {
                let mut connection = self.connection.clone();
                let check = layout::check(&mut connection, &self.keys);
                // Bounded like any call, so a request answers 503 within `redis_timeout_ms`
                // even before the first check could be made.
                match tokio::time::timeout(self.timeout, check).await {
                    Ok(Ok(layout)) => Ok(Ok(layout)),
                    Ok(Err(StoreError::Refused(why))) => Ok(Err(why)),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(StoreError::Unavailable(
                        "Redis did not answer in time".into(),
                    )),
                }
            })
            .await?;
        outcome.clone().map_err(StoreError::Refused)
    }

    /// Bounds a Redis call by the fail-fast timeout, maps its errors, and records its round
    /// trip (`redis_call_duration_seconds`) and failures (`store_errors_total{kind}`). Nothing
    /// is sent before the layout has been checked.
    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
        extra: Duration,
    ) -> StoreResult<T> {
        self.layout().await?;
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.timeout + extra, call).await {
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
        self.timed(
            cmd.query_async(&mut self.connection.clone()),
            Duration::ZERO,
        )
        .await
    }

    /// A pipeline of reads of one slot (in a cluster a pipeline goes to one node, and a
    /// redirect re-sends all of it, so writes go through scripts instead).
    async fn pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> StoreResult<T> {
        self.timed(
            pipe.query_async(&mut self.connection.clone()),
            Duration::ZERO,
        )
        .await
    }

    async fn script<T: FromRedisValue + Send>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> StoreResult<T> {
        self.timed(
            invocation.invoke_async(&mut self.connection.clone()),
            Duration::ZERO,
        )
        .await
    }

    /// A blocking command on a partition's own connection, bounded by the block time plus the
    /// usual fail-fast timeout.
    async fn blocking<T: FromRedisValue>(
        &self,
        partition: Partition,
        group: bool,
        cmd: &redis::Cmd,
        wait: Duration,
    ) -> StoreResult<T> {
        let connections = &self.blocking[usize::from(partition)];
        let mut connection = if group {
            connections.group.clone()
        } else {
            connections.tail.clone()
        };
        self.timed(cmd.query_async(&mut connection), wait).await
    }

    /// Waits, after a change written to `key`'s slot, until `wait_replicas` replicas have it
    /// (`PRESENCE_REDIS_WAIT_REPLICAS`). A change that did not reach them in time answers 503:
    /// the client was not told it succeeded, so a failover may lose it.
    async fn replicated(&self, key: &str) -> StoreResult<()> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let mut connection = self.connection.clone();
        let acked = self
            .timed(
                connection.wait_for_replicas(key, self.wait_replicas, self.timeout),
                self.timeout,
            )
            .await?;
        metrics::histogram!("redis_wait_replicas_acked").record(f64::from(acked));
        if acked < self.wait_replicas {
            return Err(StoreError::Unavailable(format!(
                "the change reached {acked} of {} replicas in time",
                self.wait_replicas
            )));
        }
        Ok(())
    }

    async fn get_json<T: DeserializeOwned>(&self, key: String) -> StoreResult<Option<T>> {
        let raw: Option<String> = self.cmd(redis::cmd("GET").arg(key)).await?;
        raw.map(|s| decode(&s)).transpose()
    }

    /// `SET`, acknowledged once replicated.
    async fn set(&self, key: &str, value: String) -> StoreResult<()> {
        let _: () = self.cmd(redis::cmd("SET").arg(key).arg(value)).await?;
        self.replicated(key).await
    }

    // Hashes of records by id (teammates, teams, subscriptions, invitations, key indexes).

    pub(super) async fn hash_values<T: DeserializeOwned>(
        &self,
        key: String,
    ) -> StoreResult<Vec<T>> {
        let raws: Vec<String> = self.cmd(redis::cmd("HVALS").arg(key)).await?;
        decode_all(raws)
    }

    pub(super) async fn hash_field<T: DeserializeOwned>(
        &self,
        key: String,
        id: Id,
    ) -> StoreResult<Option<T>> {
        let raw: Option<String> = self
            .cmd(redis::cmd("HGET").arg(key).arg(id.to_string()))
            .await?;
        raw.map(|r| decode(&r)).transpose()
    }

    pub(super) async fn hash_put(&self, key: String, id: Id, json: String) -> StoreResult<()> {
        let _: () = self
            .cmd(redis::cmd("HSET").arg(&key).arg(id.to_string()).arg(json))
            .await?;
        self.replicated(&key).await
    }

    pub(super) async fn hash_delete(&self, key: String, id: Id) -> StoreResult<bool> {
        let removed: i64 = self
            .cmd(redis::cmd("HDEL").arg(&key).arg(id.to_string()))
            .await?;
        self.replicated(&key).await?;
        Ok(removed == 1)
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        // A keyed read per partition: in a cluster each reaches the master of its slot, so a
        // master that is down shows here (a plain PING would ask any node).
        try_join_all(self.keys.partitions().all().map(|p| async move {
            let key = self.keys.partition(p).leases();
            self.cmd::<bool>(redis::cmd("EXISTS").arg(key)).await
        }))
        .await?;
        Ok(())
    }
}

fn map_error(e: redis::RedisError) -> StoreError {
    use redis::{ErrorKind, ServerErrorKind};
    let unreachable = matches!(
        e.kind(),
        ErrorKind::ClusterConnectionNotFound
            | ErrorKind::Server(
                ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::Moved
                    | ServerErrorKind::Ask
            )
    );
    if unreachable
        || e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
    {
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
