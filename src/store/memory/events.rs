//! The in-memory event log: a bounded ring of events, per-teammate `seq` counters and one
//! consumer-group cursor, all in partition 0 (the only one). One node only, so there is no crash
//! recovery: what is in memory dies with the process.

use super::MemoryStore;
use crate::domain::{
    EventType, LogPosition, LoggedEvent, Partition, Partitions, Presence, PresenceKey, Teammate,
    Timestamp,
};
use crate::store::{EventLog, StoreResult};
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

pub(super) struct Ring {
    events: VecDeque<LoggedEvent>,
    retention: usize,
    last: LogPosition,
    seqs: HashMap<PresenceKey, u64>,
    /// The webhook consumer group's cursor: events after it have not been handed out.
    group_cursor: LogPosition,
    pub(super) salt: u64,
}

impl Ring {
    pub(super) fn new(retention: usize) -> Self {
        Ring {
            events: VecDeque::new(),
            retention: retention.max(1),
            last: LogPosition::start(0),
            seqs: HashMap::new(),
            group_cursor: LogPosition::start(0),
            salt: rand_u64(),
        }
    }

    /// Appends one event: the next position and the teammate's next `seq`.
    pub(super) fn append(
        &mut self,
        event_type: EventType,
        teammate: &Teammate,
        before: Option<&Teammate>,
        presence: Presence,
        presence_before: Option<Presence>,
    ) {
        let now = Timestamp::now();
        let millis = now.as_millis().max(0) as u64;
        let position = if millis > self.last.millis {
            LogPosition {
                partition: 0,
                millis,
                n: 0,
            }
        } else {
            self.last.successor()
        };
        self.last = position;
        let key = PresenceKey {
            project_id: teammate.project_id,
            teammate_id: teammate.id,
        };
        let seq = self.seqs.entry(key).or_insert(0);
        *seq += 1;
        self.events.push_back(LoggedEvent {
            position,
            event_type,
            key,
            seq: *seq,
            at: now,
            teammate: teammate.clone(),
            before: before.cloned(),
            presence,
            presence_before,
        });
        while self.events.len() > self.retention {
            self.events.pop_front();
        }
    }

    pub(super) fn bounds(&self) -> Option<(LogPosition, LogPosition)> {
        Some((self.events.front()?.position, self.events.back()?.position))
    }

    /// The events after `after`: none if it names another partition (there is only one here).
    pub(super) fn after(&self, after: LogPosition, limit: usize) -> Vec<LoggedEvent> {
        if after.partition != 0 {
            return Vec::new();
        }
        let start = self.events.partition_point(|e| e.position <= after);
        self.events.range(start..).take(limit).cloned().collect()
    }

    pub(super) fn consume(&mut self, limit: usize) -> Vec<LoggedEvent> {
        let events = self.after(self.group_cursor, limit);
        if let Some(last) = events.last() {
            self.group_cursor = last.position;
        }
        events
    }
}

fn rand_u64() -> u64 {
    let bytes = crate::auth::random_bytes::<8>();
    u64::from_le_bytes(bytes)
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn event_salt(&self) -> StoreResult<u64> {
        Ok(self.lock().log.salt)
    }

    fn partitions(&self) -> Partitions {
        Partitions::new(1)
    }

    async fn log_bounds(
        &self,
        partition: Partition,
    ) -> StoreResult<Option<(LogPosition, LogPosition)>> {
        Ok(self.lock().log.bounds().filter(|_| partition == 0))
    }

    async fn read_events(
        &self,
        after: LogPosition,
        limit: usize,
        wait: Duration,
    ) -> StoreResult<Vec<LoggedEvent>> {
        Ok(self
            .wait_for_events(wait, |s| s.log.after(after, limit))
            .await)
    }

    async fn consume_events(
        &self,
        partition: Partition,
        _consumer: &str,
        limit: usize,
        wait: Duration,
    ) -> StoreResult<Vec<LoggedEvent>> {
        if partition != 0 {
            return Ok(Vec::new());
        }
        Ok(self.wait_for_events(wait, |s| s.log.consume(limit)).await)
    }

    async fn claim_stale_events(
        &self,
        _partition: Partition,
        _consumer: &str,
        _idle: Duration,
        _limit: usize,
    ) -> StoreResult<Vec<LoggedEvent>> {
        Ok(Vec::new())
    }
}
