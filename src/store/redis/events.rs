//! The event logs as Redis streams (one per partition), the webhook consumer group over each, and
//! the durable webhook delivery schedule (per partition too). Events are appended by the presence
//! and teammate scripts themselves (`scripts/event_log.lua`); this file reads them and runs the
//! webhook bookkeeping.

use super::presence::parse_presence;
use super::{decode, encode, RedisStore, MAX_BLOCK};
use crate::domain::{
    Delivery, Id, LogPosition, LoggedEvent, Partition, PresenceKey, Teammate, Timestamp,
};
use crate::store::{StoreError, StoreResult};
use futures::future::try_join_all;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamRangeReply, StreamReadReply};
use redis::Script;
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

/// The consumer group every node's webhook dispatcher reads each log through.
const GROUP: &str = "webhooks";
/// Ended deliveries kept per project for `/subscriptions/history`.
const HISTORY_LIMIT: usize = 1000;

static SAVE_DELIVERY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/save_delivery.lua")));
static LEASE_DELIVERIES: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/lease_deliveries.lua")));
static RENEW_DELIVERY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/renew_delivery.lua")));
static ENQUEUE_DELIVERIES: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/enqueue_deliveries.lua")));

impl RedisStore {
    pub(super) async fn salt(&self) -> StoreResult<u64> {
        Ok(self.layout().await?.salt)
    }

    pub(super) async fn bounds(
        &self,
        partition: Partition,
    ) -> StoreResult<Option<(LogPosition, LogPosition)>> {
        let key = self.keys.partition(partition).events();
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
            (Some(first), Some(last)) => Ok(Some((
                position(partition, &first.id)?,
                position(partition, &last.id)?,
            ))),
            _ => Ok(None),
        }
    }

    pub(super) async fn events_after(
        &self,
        after: LogPosition,
        limit: usize,
        wait: Duration,
    ) -> StoreResult<Vec<LoggedEvent>> {
        let partition = after.partition;
        if partition >= self.keys.partitions().count() {
            return Ok(Vec::new());
        }
        let key = self.keys.partition(partition).events();
        if wait.is_zero() {
            let reply: StreamRangeReply = self
                .cmd(
                    redis::cmd("XRANGE")
                        .arg(&key)
                        .arg(format!("({}", after.stream_id()))
                        .arg("+")
                        .arg("COUNT")
                        .arg(limit),
                )
                .await?;
            return parse_all(partition, &reply.ids);
        }
        let wait = wait.min(MAX_BLOCK);
        let reply: Option<StreamReadReply> = self
            .blocking(
                partition,
                false,
                redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(limit)
                    .arg("BLOCK")
                    .arg(wait.as_millis().max(1) as u64)
                    .arg("STREAMS")
                    .arg(&key)
                    .arg(after.stream_id()),
                wait,
            )
            .await?;
        parse_read_reply(partition, reply)
    }

    pub(super) async fn group_read(
        &self,
        partition: Partition,
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
        read.arg("STREAMS")
            .arg(self.keys.partition(partition).events())
            .arg(">");
        match self.blocking(partition, true, &read, wait).await {
            Ok(reply) => parse_read_reply(partition, reply),
            Err(StoreError::Internal(e)) if e.contains("NOGROUP") => {
                self.create_group(partition).await?;
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Creates the consumer group at the start of the retained log, so that no event appended
    /// before the first dispatcher started is skipped (subscriptions only take events newer than
    /// themselves, so old events reach no one twice).
    async fn create_group(&self, partition: Partition) -> StoreResult<()> {
        let created: StoreResult<()> = self
            .cmd(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(self.keys.partition(partition).events())
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
        partition: Partition,
        consumer: &str,
        idle: Duration,
        limit: usize,
    ) -> StoreResult<Vec<LoggedEvent>> {
        let reply: StoreResult<StreamAutoClaimReply> = self
            .cmd(
                redis::cmd("XAUTOCLAIM")
                    .arg(self.keys.partition(partition).events())
                    .arg(GROUP)
                    .arg(consumer)
                    .arg(idle.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(limit),
            )
            .await;
        match reply {
            Ok(reply) => parse_all(partition, &reply.claimed),
            Err(StoreError::Internal(e)) if e.contains("NOGROUP") => {
                self.create_group(partition).await?;
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Stores deliveries and acknowledges their events: one script per partition involved (a
    /// delivery is in its project's partition, like the event it was made from).
    pub(super) async fn enqueue(
        &self,
        deliveries: &[Delivery],
        lease_until: Timestamp,
        acknowledge: &[LogPosition],
    ) -> StoreResult<()> {
        let partitions = self.keys.partitions();
        let mut work: BTreeMap<Partition, (Vec<&Delivery>, Vec<LogPosition>)> = BTreeMap::new();
        for d in deliveries {
            work.entry(partitions.of(d.project_id))
                .or_default()
                .0
                .push(d);
        }
        for p in acknowledge {
            work.entry(p.partition).or_default().1.push(*p);
        }
        try_join_all(
            work.into_iter()
                .map(|(partition, (deliveries, acks))| async move {
                    let k = self.keys.partition(partition);
                    let mut invocation = ENQUEUE_DELIVERIES.prepare_invoke();
                    invocation
                        .key(k.deliveries())
                        .key(k.deliveries_due())
                        .key(k.events())
                        .arg(lease_until.as_millis())
                        .arg(deliveries.len());
                    for d in deliveries {
                        invocation.arg(d.id.to_string()).arg(encode(d)?);
                    }
                    for p in acks {
                        invocation.arg(p.stream_id());
                    }
                    let _: String = self.script(&invocation).await?;
                    self.replicated(&k.deliveries()).await
                }),
        )
        .await?;
        Ok(())
    }

    /// Leases due deliveries from every partition (concurrently), at most `limit` in all.
    pub(super) async fn lease_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        let count = usize::from(self.keys.partitions().count());
        let share = limit.div_ceil(count).max(1);
        let per_partition = try_join_all(self.keys.partitions().all().map(|p| async move {
            let k = self.keys.partition(p);
            let mut invocation = LEASE_DELIVERIES.prepare_invoke();
            invocation
                .key(k.deliveries_due())
                .key(k.deliveries())
                .arg(now.as_millis())
                .arg(lease_until.as_millis())
                .arg(share);
            let raws: Vec<String> = self.script(&invocation).await?;
            raws.iter()
                .map(|r| decode(r))
                .collect::<StoreResult<Vec<Delivery>>>()
        }))
        .await?;
        Ok(per_partition.into_iter().flatten().collect())
    }

    pub(super) async fn renew_lease_of(
        &self,
        project_id: Id,
        id: Id,
        held: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        let mut invocation = RENEW_DELIVERY.prepare_invoke();
        invocation
            .key(self.keys.of_project(project_id).deliveries_due())
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
        let pid = delivery.project_id;
        let k = self.keys.of_project(pid);
        let mut invocation = SAVE_DELIVERY.prepare_invoke();
        invocation
            .key(k.deliveries())
            .key(k.deliveries_due())
            .key(k.delivery_history(pid))
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
        self.replicated(&k.deliveries()).await?;
        Ok(saved == 1)
    }

    pub(super) async fn history(&self, project_id: Id, limit: usize) -> StoreResult<Vec<Delivery>> {
        let raws: Vec<String> = self
            .cmd(
                redis::cmd("LRANGE")
                    .arg(
                        self.keys
                            .of_project(project_id)
                            .delivery_history(project_id),
                    )
                    .arg(0)
                    .arg(limit.saturating_sub(1)),
            )
            .await?;
        super::decode_all(raws)
    }
}

fn position(partition: Partition, id: &str) -> StoreResult<LogPosition> {
    LogPosition::parse(partition, id)
        .ok_or_else(|| StoreError::Internal(format!("unexpected stream id `{id}`")))
}

fn parse_read_reply(
    partition: Partition,
    reply: Option<StreamReadReply>,
) -> StoreResult<Vec<LoggedEvent>> {
    match reply.and_then(|r| r.keys.into_iter().next()) {
        Some(key) => parse_all(partition, &key.ids),
        None => Ok(Vec::new()),
    }
}

fn parse_all(partition: Partition, entries: &[StreamId]) -> StoreResult<Vec<LoggedEvent>> {
    entries.iter().map(|e| parse_event(partition, e)).collect()
}

/// One stream entry (fields in `keys.rs`) back into a [`LoggedEvent`].
fn parse_event(partition: Partition, entry: &StreamId) -> StoreResult<LoggedEvent> {
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
        position: position(partition, &entry.id)?,
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
