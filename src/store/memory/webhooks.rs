//! Webhook subscriptions and the delivery schedule in the memory engine. Events are handed to the
//! dispatcher and acknowledged at once: with one node there is nobody to take them over.

use super::MemoryStore;
use crate::domain::{Delivery, Id, LogPosition, Subscription, Timestamp};
use crate::store::{StoreResult, WebhookStore};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Ended deliveries kept per project for `/subscriptions/history`.
const HISTORY_LIMIT: usize = 1000;

#[async_trait]
impl WebhookStore for MemoryStore {
    async fn put_subscription(&self, subscription: &Subscription) -> StoreResult<()> {
        self.lock()
            .subscriptions
            .entry(subscription.project_id)
            .or_default()
            .insert(subscription.id, subscription.clone());
        Ok(())
    }

    async fn list_subscriptions(&self, project_id: Id) -> StoreResult<Vec<Subscription>> {
        let s = self.lock();
        let mut list: Vec<Subscription> = s
            .subscriptions
            .get(&project_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        list.sort_by_key(|s| (s.created_at, s.id));
        Ok(list)
    }

    async fn get_subscription(&self, project_id: Id, id: Id) -> StoreResult<Option<Subscription>> {
        let s = self.lock();
        Ok(s.subscriptions
            .get(&project_id)
            .and_then(|m| m.get(&id))
            .cloned())
    }

    async fn delete_subscription(&self, project_id: Id, id: Id) -> StoreResult<bool> {
        let mut s = self.lock();
        Ok(s.subscriptions
            .get_mut(&project_id)
            .and_then(|m| m.remove(&id))
            .is_some())
    }

    async fn enqueue_deliveries(
        &self,
        deliveries: &[Delivery],
        lease_until: Timestamp,
        _acknowledge: &[LogPosition],
    ) -> StoreResult<()> {
        let mut s = self.lock();
        for d in deliveries {
            s.deliveries.schedule(d.clone(), lease_until.as_millis());
        }
        Ok(())
    }

    async fn lease_due_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        Ok(self
            .lock()
            .deliveries
            .lease_due(now.as_millis(), lease_until.as_millis(), limit))
    }

    async fn renew_delivery_lease(
        &self,
        _project_id: Id,
        id: Id,
        held: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        let mut s = self.lock();
        Ok(s.deliveries.renew(id, held.as_millis(), until.as_millis()))
    }

    async fn save_delivery(
        &self,
        delivery: &Delivery,
        next_attempt: Option<Timestamp>,
        held: Timestamp,
    ) -> StoreResult<bool> {
        let mut s = self.lock();
        if !s.deliveries.holds(delivery.id, held.as_millis()) {
            return Ok(false);
        }
        match next_attempt {
            Some(at) => s.deliveries.schedule(delivery.clone(), at.as_millis()),
            None => s.deliveries.finish(delivery),
        }
        Ok(true)
    }

    async fn delivery_history(&self, project_id: Id, limit: usize) -> StoreResult<Vec<Delivery>> {
        Ok(self.lock().deliveries.history(project_id, limit))
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
