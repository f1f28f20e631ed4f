//! Webhook subscriptions and the durable delivery schedule, both in the project's partition. A
//! delivery is made from an event of its project, so storing deliveries and acknowledging their
//! events is one script per partition.

use super::{decode, encode, RedisStore};
use crate::domain::{Delivery, Id, LogPosition, Partition, Subscription, Timestamp};
use crate::store::{StoreResult, WebhookStore};
use async_trait::async_trait;
use futures::future::try_join_all;
use redis::Script;
use std::collections::BTreeMap;
use std::sync::LazyLock;

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

#[async_trait]
impl WebhookStore for RedisStore {
    async fn put_subscription(&self, subscription: &Subscription) -> StoreResult<()> {
        let pid = subscription.project_id;
        let key = self.keys.of_project(pid).subscriptions(pid);
        self.hash_put(key, subscription.id, encode(subscription)?)
            .await
    }

    async fn list_subscriptions(&self, project_id: Id) -> StoreResult<Vec<Subscription>> {
        let key = self.keys.of_project(project_id).subscriptions(project_id);
        let mut list: Vec<Subscription> = self.hash_values(key).await?;
        list.sort_by_key(|s| (s.created_at, s.id));
        Ok(list)
    }

    async fn get_subscription(&self, project_id: Id, id: Id) -> StoreResult<Option<Subscription>> {
        let key = self.keys.of_project(project_id).subscriptions(project_id);
        self.hash_field(key, id).await
    }

    async fn delete_subscription(&self, project_id: Id, id: Id) -> StoreResult<bool> {
        let key = self.keys.of_project(project_id).subscriptions(project_id);
        self.hash_delete(key, id).await
    }

    /// Stores deliveries and acknowledges their events: one script per partition involved (a
    /// delivery is in its project's partition, like the event it was made from).
    async fn enqueue_deliveries(
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
    async fn lease_due_deliveries(
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

    async fn renew_delivery_lease(
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

    async fn save_delivery(
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

    async fn delivery_history(&self, project_id: Id, limit: usize) -> StoreResult<Vec<Delivery>> {
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
