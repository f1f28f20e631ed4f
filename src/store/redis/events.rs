//! The event log as a Redis stream, the webhook consumer group over it, and the durable webhook
//! delivery schedule. Events are appended by the presence and teammate scripts themselves
//! (`scripts/event_log.lua`); this file reads them and runs the webhook bookkeeping.

use super::{decode, encode, parse_presence, RedisStore, MAX_BLOCK};
use crate::domain::{Delivery, Id, LogPosition, LoggedEvent, PresenceKey, Teammate, Timestamp};
use crate::store::{StoreError, StoreResult};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamRangeReply, StreamReadReply};
use redis::Script;
use std::sync::LazyLock;
use std::time::Duration;

/// The consumer group every node's webhook dispatcher reads the log through.
const GROUP: &str = "webhooks";
/// Ended deliveries kept per project for `/subscriptions/history`.
const HISTORY_LIMIT: usize = 1000;

static SAVE_DELIVERY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/save_delivery.lua")));
static LEASE_DELIVERIES: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/lease_deliveries.lua")));
static RENEW_DELIVERY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/renew_delivery.lua")));

impl RedisStore {
    pub(super) async fn salt(&self) -> StoreResult<u64> {
        let fresh = u64::from_le_bytes(crate::auth::random_bytes::<8>());
        let key = self.keys.event_salt();
        // SET NX then GET: the first node to start picks the salt, every other node reads it.
        let (salt,): (String,) = self
            .pipe(
                redis::pipe()
                    .cmd("SET")
                    .arg(&key)
                    .arg(fresh.to_string())
                    .arg("NX")
                    .ignore()
                    .cmd("GET")
                    .arg(&key),
            )
            .await?;
        salt.parse()
            .map_err(|_| StoreError::Internal(format!("corrupt event salt `{salt}`")))
    }

    pub(super) async fn bounds(&self) -> StoreResult<Option<(LogPosition, LogPosition)>> {
        let key = self.keys.events();
        let (first, last): (StreamRangeReply, StreamRangeReply) = self
            .pipe(
                redis::pipe()
                    .cmd("XRANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(1)
                    .cmd("XREVRANGE")
                    .arg(&key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
            )
            .await?;
        match (first.ids.first(), last.ids.first()) {
            (Some(first), Some(last)) => Ok(Some((position(&first.id)?, position(&last.id)?))),
            _ => Ok(None),
        }
    }

    pub(super) async fn events_after(
        &self,
        after: LogPosition,
        limit: usize,
        wait: Duration,
    ) -> StoreResult<Vec<LoggedEvent>> {
        let key = self.keys.events();
        if wait.is_zero() {
            let reply: StreamRangeReply = self
                .cmd(
                    redis::cmd("XRANGE")
                        .arg(&key)
                        .arg(format!("({after}"))
                        .arg("+")
                        .arg("COUNT")
                        .arg(limit),
                )
                .await?;
            return parse_all(&reply.ids);
        }
        let wait = wait.min(MAX_BLOCK);
        let reply: Option<StreamReadReply> = self
            .blocking(
                &self.tail_connection,
                redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(limit)
                    .arg("BLOCK")
                    .arg(wait.as_millis().max(1) as u64)
                    .arg("STREAMS")
                    .arg(&key)
                    .arg(after.to_string()),
                wait,
            )
            .await?;
        parse_read_reply(reply)
    }

    pub(super) async fn group_read(
        &self,
        consumer: &str,
        limit: usize,
        wait: Duration,
    ) -> StoreResult<Vec<LoggedEvent>> {
        let wait = wait.min(MAX_BLOCK);
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(limit);
        if !wait.is_zero() {
            read.arg("BLOCK").arg(wait.as_millis().max(1) as u64);
        }
        read.arg("STREAMS").arg(self.keys.events()).arg(">");
        match self.blocking(&self.group_connection, &read, wait).await {
            Ok(reply) => parse_read_reply(reply),
            Err(StoreError::Internal(e)) if e.contains("NOGROUP") => {
                self.create_group().await?;
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Creates the consumer group at the start of the retained log, so that no event appended
    /// before the first dispatcher started is skipped (subscriptions only take events newer than
    /// themselves, so old events reach no one twice).
    async fn create_group(&self) -> StoreResult<()> {
        let created: StoreResult<()> = self
            .cmd(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(self.keys.events())
                    .arg(GROUP)
                    .arg("0")
                    .arg("MKSTREAM"),
            )
            .await;
        match created {
            Err(StoreError::Internal(e)) if e.contains("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    pub(super) async fn group_claim(
        &self,
        consumer: &str,
        idle: Duration,
        limit: usize,
    ) -> StoreResult<Vec<LoggedEvent>> {
        let reply: StoreResult<StreamAutoClaimReply> = self
            .cmd(
                redis::cmd("XAUTOCLAIM")
                    .arg(self.keys.events())
                    .arg(GROUP)
                    .arg(consumer)
                    .arg(idle.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(limit),
            )
            .await;
        match reply {
            Ok(reply) => parse_all(&reply.claimed),
            Err(StoreError::Internal(e)) if e.contains("NOGROUP") => {
                self.create_group().await?;
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn enqueue(
        &self,
        deliveries: &[Delivery],
        lease_until: Timestamp,
        acknowledge: &[LogPosition],
    ) -> StoreResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for d in deliveries {
            pipe.cmd("HSET")
                .arg(self.keys.deliveries())
                .arg(d.id.to_string())
                .arg(encode(d)?)
                .ignore()
                .cmd("ZADD")
                .arg(self.keys.deliveries_due())
                .arg(lease_until.as_millis())
                .arg(d.id.to_string())
                .ignore();
        }
        if !acknowledge.is_empty() {
            pipe.cmd("XACK").arg(self.keys.events()).arg(GROUP);
            for p in acknowledge {
                pipe.arg(p.to_string());
            }
            pipe.ignore();
        }
        let _: () = self.pipe(&pipe).await?;
        Ok(())
    }

    pub(super) async fn lease_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        let mut invocation = LEASE_DELIVERIES.prepare_invoke();
        invocation
            .key(self.keys.deliveries_due())
            .key(self.keys.deliveries())
            .arg(now.as_millis())
            .arg(lease_until.as_millis())
            .arg(limit);
        let raws: Vec<String> = self.script(&invocation).await?;
        raws.iter().map(|r| decode(r)).collect()
    }

    pub(super) async fn renew_lease_of(
        &self,
        id: Id,
        held: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        let mut invocation = RENEW_DELIVERY.prepare_invoke();
        invocation
            .key(self.keys.deliveries_due())
            .arg(id.to_string())
            .arg(held.as_millis())
            .arg(until.as_millis());
        let renewed: i64 = self.script(&invocation).await?;
        Ok(renewed == 1)
    }

    pub(super) async fn save(
        &self,
        delivery: &Delivery,
        next_attempt: Option<Timestamp>,
        held: Timestamp,
    ) -> StoreResult<bool> {
        let mut invocation = SAVE_DELIVERY.prepare_invoke();
        invocation
            .key(self.keys.deliveries())
            .key(self.keys.deliveries_due())
            .key(self.keys.delivery_history(delivery.project_id))
            .arg(delivery.id.to_string())
            .arg(encode(delivery)?)
            .arg(
                next_attempt
                    .map(|t| t.as_millis().to_string())
                    .unwrap_or_default(),
            )
            .arg(HISTORY_LIMIT)
            .arg(held.as_millis());
        let saved: i64 = self.script(&invocation).await?;
        Ok(saved == 1)
    }

    /// A blocking command on its own connection, bounded by the block time plus the usual
    /// fail-fast timeout.
    async fn blocking<T: redis::FromRedisValue>(
        &self,
        connection: &redis::aio::ConnectionManager,
        cmd: &redis::Cmd,
        wait: Duration,
    ) -> StoreResult<T> {
        let mut connection = connection.clone();
        match tokio::time::timeout(self.timeout + wait, cmd.query_async(&mut connection)).await {
            Ok(result) => result.map_err(super::map_error),
            Err(_) => Err(StoreError::Unavailable(
                "Redis did not answer in time".into(),
            )),
        }
    }
}

fn position(id: &str) -> StoreResult<LogPosition> {
    id.parse()
        .map_err(|_| StoreError::Internal(format!("unexpected stream id `{id}`")))
}

fn parse_read_reply(reply: Option<StreamReadReply>) -> StoreResult<Vec<LoggedEvent>> {
    match reply.and_then(|r| r.keys.into_iter().next()) {
        Some(key) => parse_all(&key.ids),
        None => Ok(Vec::new()),
    }
}

fn parse_all(entries: &[StreamId]) -> StoreResult<Vec<LoggedEvent>> {
    entries.iter().map(parse_event).collect()
}

/// One stream entry (fields in `keys.rs`) back into a [`LoggedEvent`].
fn parse_event(entry: &StreamId) -> StoreResult<LoggedEvent> {
    let field = |name: &str| -> StoreResult<String> {
        entry.get::<String>(name).ok_or_else(|| {
            StoreError::Internal(format!("event {} has no field `{name}`", entry.id))
        })
    };
    let corrupt = |what: &str| StoreError::Internal(format!("event {}: corrupt {what}", entry.id));
    let teammate: Teammate = decode(&field("after")?)?;
    let before: Option<Teammate> = entry
        .get::<String>("before")
        .map(|raw| decode(&raw))
        .transpose()?;
    let presence_before = entry
        .get::<String>("presence_before")
        .map(|raw| parse_presence(&raw, teammate.created_at))
        .transpose()?;
    Ok(LoggedEvent {
        position: position(&entry.id)?,
        event_type: field("type")?.parse().map_err(|_| corrupt("type"))?,
        key: PresenceKey {
            project_id: field("pid")?.parse().map_err(|_| corrupt("pid"))?,
            teammate_id: field("tid")?.parse().map_err(|_| corrupt("tid"))?,
        },
        seq: field("seq")?.parse().map_err(|_| corrupt("seq"))?,
        at: Timestamp::from_millis(field("ts")?.parse().map_err(|_| corrupt("ts"))?),
        presence: parse_presence(&field("presence")?, teammate.created_at)?,
        teammate,
        before,
        presence_before,
    })
}
