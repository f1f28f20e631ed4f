//! The in-memory event log and webhook schedule: a bounded ring of events, per-teammate `seq`
//! counters, one consumer-group cursor, and the delivery queue, all in partition 0 (the only one).
//! One node only, so there is no crash recovery: what is in memory dies with the process.

use crate::domain::{
    Delivery, EventType, Id, LogPosition, LoggedEvent, Presence, PresenceKey, Teammate, Timestamp,
};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Ended deliveries kept per project for `/subscriptions/history`.
pub(super) const HISTORY_LIMIT: usize = 1000;

pub(super) struct EventLog {
    events: VecDeque<LoggedEvent>,
    retention: usize,
    last: LogPosition,
    seqs: HashMap<PresenceKey, u64>,
    /// The webhook consumer group's cursor: events after it have not been handed out.
    group_cursor: LogPosition,
    pub(super) salt: u64,
}

impl EventLog {
    pub(super) fn new(retention: usize) -> Self {
        EventLog {
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

/// Webhook deliveries: the schedule (due time per delivery) and the ended ones.
#[derive(Default)]
pub(super) struct DeliveryQueue {
    pending: HashMap<Id, (Delivery, i64)>,
    /// Due time (ms), delivery id: the order in which deliveries come due.
    due: BTreeMap<(i64, Id), ()>,
    history: HashMap<Id, VecDeque<Delivery>>,
}

impl DeliveryQueue {
    pub(super) fn schedule(&mut self, delivery: Delivery, due_ms: i64) {
        self.unschedule(delivery.id);
        self.due.insert((due_ms, delivery.id), ());
        self.pending.insert(delivery.id, (delivery, due_ms));
    }

    fn unschedule(&mut self, id: Id) {
        if let Some((_, due)) = self.pending.remove(&id) {
            self.due.remove(&(due, id));
        }
    }

    pub(super) fn lease_due(&mut self, now_ms: i64, until_ms: i64, limit: usize) -> Vec<Delivery> {
        let ids: Vec<Id> = self
            .due
            .range(..=(now_ms, Id::max()))
            .take(limit)
            .map(|((_, id), _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| {
                let (delivery, _) = self.pending.get(&id)?.clone();
                self.schedule(delivery.clone(), until_ms);
                Some(delivery)
            })
            .collect()
    }

    /// Whether the delivery is pending under the lease that ends at `held_ms`.
    pub(super) fn holds(&self, id: Id, held_ms: i64) -> bool {
        self.pending
            .get(&id)
            .is_some_and(|(_, due)| *due == held_ms)
    }

    /// Extends the lease `held_ms` to `until_ms`; `false` if it is no longer that lease.
    pub(super) fn renew(&mut self, id: Id, held_ms: i64, until_ms: i64) -> bool {
        if !self.holds(id, held_ms) {
            return false;
        }
        let (delivery, _) = self.pending[&id].clone();
        self.schedule(delivery, until_ms);
        true
    }

    /// Ends a pending delivery and keeps it in the history.
    pub(super) fn finish(&mut self, delivery: &Delivery) {
        self.unschedule(delivery.id);
        let history = self.history.entry(delivery.project_id).or_default();
        history.push_front(delivery.clone());
        history.truncate(HISTORY_LIMIT);
    }

    pub(super) fn history(&self, project_id: Id, limit: usize) -> Vec<Delivery> {
        self.history
            .get(&project_id)
            .map(|h| h.iter().take(limit).cloned().collect())
            .unwrap_or_default()
    }
}

fn rand_u64() -> u64 {
    let bytes = crate::auth::random_bytes::<8>();
    u64::from_le_bytes(bytes)
}
