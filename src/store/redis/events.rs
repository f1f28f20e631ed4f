//! The event logs as Redis streams (one per partition) and the webhook consumer group over each.
//! Events are appended by the presence and teammate scripts themselves (`scripts/event_log.lua`);
//! this file reads them.

use super::presence::parse_presence;
use super::{decode, RedisStore, MAX_BLOCK};
use crate::domain::{
    LogPosition, LoggedEvent, Partition, Partitions, PresenceKey, Teammate, Timestamp,
};
use crate::store::{EventLog, StoreError, StoreResult};
use async_trait::async_trait;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamRangeReply, StreamReadReply};
use std::time::Duration;

/// The consumer group every node's webhook dispatcher reads each log through.
const GROUP: &str = "webhooks";

#[async_trait]
impl EventLog for RedisStore {
    fn partitions(&self) -> Partitions {
        self.keys.partitions()
    }

    async fn event_salt(&self) -> StoreResult<u64> {
        Ok(self.layout().await?.salt)
    }

    async fn log_bounds(
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

    async fn read_events(
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

    async fn consume_events(
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

    async fn claim_stale_events(
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
}

impl RedisStore {
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
