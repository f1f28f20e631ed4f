//! The webhook dispatcher, one per node.
//!
//! ```text
//! event log ──consumer group──► plan: event × matching subscription ──► store the deliveries
//!                                  (and acknowledge the events, one step) ──► attempt now
//! delivery schedule ──lease what is due (retries, and deliveries of dead nodes)──► attempt
//! ```
//!
//! At least once: an event stays pending in the consumer group until its deliveries are stored,
//! and another node claims it if this one dies first; a stored delivery is leased to one node at
//! a time, and comes due again if that node dies mid-attempt.
//!
//! One attempt at a time per delivery: a delivery is queued on a node at most once
//! (`in_flight`), and its lease is renewed right before the attempt and checked when the outcome
//! is saved, with the lease's end time as fencing token. A delivery whose lease ran out while it
//! waited here, and that another node took over, is left to that node.
//!
//! Each subscription has its own concurrency limit and queue cap, so one slow or dead target
//! cannot hold up the others: beyond the cap its deliveries stay in the durable schedule and come
//! back when their lease ends.

mod attempt;

use super::{guard, signing};
use crate::config::WebhookConfig;
use crate::domain::{
    Attempt, Delivery, DeliveryState, Id, LogPosition, LoggedEvent, Partition, Subscription,
    Timestamp,
};
use crate::events::{Events, RenderedEvent};
use crate::store::{EventLog, StoreResult, WebhookStore};
use dashmap::DashMap;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Events taken from the log per round trip.
const BATCH: usize = 256;
/// Attempts in flight per subscription (one target), and on the whole node.
const PER_TARGET: usize = 32;
const PER_NODE: usize = 1024;
/// Deliveries queued on this node per subscription (running or waiting for a slot); more are
/// left in the schedule.
const QUEUE_PER_TARGET: usize = 1024;
/// How often due deliveries (retries, orphans) are looked for, and stale events claimed.
const LEASE_EVERY: Duration = Duration::from_millis(200);
const CLAIM_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Dispatcher(Arc<Inner>);

struct Inner {
    /// Read through the webhooks' consumer group.
    log: Arc<dyn EventLog>,
    /// Subscriptions and the delivery schedule.
    webhooks: Arc<dyn WebhookStore>,
    events: Events,
    config: WebhookConfig,
    node_id: String,
    /// An event received but not acknowledged for this long belongs to a dead node.
    orphan_after: Duration,
    client: reqwest::Client,
    per_target: DashMap<Id, Arc<TargetSlots>>,
    per_node: Arc<Semaphore>,
    /// Deliveries queued or running on this node → the lease (its end, in ms) they hold.
    in_flight: DashMap<Id, i64>,
}

/// One subscription's share of this node: attempts at once, and deliveries queued.
struct TargetSlots {
    running: Arc<Semaphore>,
    queued: AtomicUsize,
}

impl Dispatcher {
    pub fn new(
        log: Arc<dyn EventLog>,
        webhooks: Arc<dyn WebhookStore>,
        events: Events,
        config: WebhookConfig,
        node_id: String,
        node_ttl: Duration,
    ) -> anyhow::Result<Self> {
        let client = crate::net::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(guard::GuardedResolver {
                allow_private: config.allow_private,
            }))
            .connect_timeout(config.timeout)
            .pool_max_idle_per_host(PER_TARGET)
            .build()?;
        Ok(Dispatcher(Arc::new(Inner {
            log,
            webhooks,
            events,
            config,
            node_id,
            orphan_after: node_ttl.max(Duration::from_secs(1)),
            client,
            per_target: DashMap::new(),
            per_node: Arc::new(Semaphore::new(PER_NODE)),
            in_flight: DashMap::new(),
        })))
    }

    /// A delivery is leased for two attempt timeouts and a second: long enough for its attempt,
    /// short enough that another node retries soon after this one dies.
    fn lease(&self) -> Duration {
        self.0.config.timeout * 2 + Duration::from_secs(1)
    }

    /// Consumes every partition's log (one task each) and works the schedule until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let consumers: Vec<_> = self
            .0
            .log
            .partitions()
            .all()
            .map(|partition| tokio::spawn(self.clone().consume(partition, shutdown.clone())))
            .collect();
        let schedule = tokio::spawn(self.clone().work_schedule(shutdown));
        let _ = tokio::join!(futures::future::join_all(consumers), schedule);
    }

    async fn consume(self, partition: Partition, shutdown: CancellationToken) {
        let mut last_claim = Instant::now();
        loop {
            let claimed = if last_claim.elapsed() >= CLAIM_EVERY {
                last_claim = Instant::now();
                self.0
                    .log
                    .claim_stale_events(partition, &self.0.node_id, self.0.orphan_after, BATCH)
                    .await
            } else {
                Ok(Vec::new())
            };
            let batch = match claimed {
                Ok(events) if !events.is_empty() => Ok(events),
                Ok(_) => tokio::select! {
                    read = self.0.log.consume_events(partition, &self.0.node_id, BATCH, Duration::from_millis(500)) => read,
                    _ = shutdown.cancelled() => return,
                },
                Err(e) => Err(e),
            };
            let outcome = match batch {
                Ok(events) if events.is_empty() => Ok(()),
                Ok(events) => self.plan(&events).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = outcome {
                tracing::warn!(partition, error = %e, "webhooks: cannot take events from the log; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
    }

    /// Turns events into deliveries (one per matching subscription), stores them leased to this
    /// node together with the events' acknowledgement, then starts their first attempts.
    async fn plan(&self, events: &[LoggedEvent]) -> crate::error::Result<()> {
        let rendered = self.0.events.render_all(events).await?;
        let mut subscriptions: HashMap<Id, Vec<Subscription>> = HashMap::new();
        let mut deliveries = Vec::new();
        for event in &rendered {
            let project_subscriptions = match subscriptions.entry(event.project_id) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(slot) => {
                    slot.insert(self.0.webhooks.list_subscriptions(event.project_id).await?)
                }
            };
            for s in project_subscriptions.iter() {
                // A subscription receives the events that happen after it was created.
                if s.enabled && s.event.matches(event.event_type) && event.at >= s.created_at {
                    deliveries.push(new_delivery(event, s));
                }
            }
        }
        let positions: Vec<LogPosition> = events.iter().map(|e| e.position).collect();
        // The schedule's first delay is normally 0: attempt at once, leased to this node.
        let first_delay = self.0.config.retry_schedule[0];
        let at_once = first_delay.is_zero();
        let due = if at_once {
            later(self.lease())
        } else {
            later(first_delay)
        };
        self.0
            .webhooks
            .enqueue_deliveries(&deliveries, due, &positions)
            .await?;
        metrics::counter!("webhook_deliveries_created_total").increment(deliveries.len() as u64);
        if at_once {
            for delivery in deliveries {
                self.spawn_attempt(delivery, due);
            }
        }
        Ok(())
    }

    /// Leases due deliveries (retries, and those whose node died) and attempts them.
    async fn work_schedule(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(LEASE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let available = self.0.per_node.available_permits().min(BATCH);
            if available == 0 {
                continue;
            }
            let lease = later(self.lease());
            match self
                .0
                .webhooks
                .lease_due_deliveries(Timestamp::now(), lease, available)
                .await
            {
                Ok(due) => {
                    for delivery in due {
                        self.spawn_attempt(delivery, lease);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "webhooks: cannot read the delivery schedule"),
            }
        }
    }
}

fn later(delay: Duration) -> Timestamp {
    Timestamp::from_millis(Timestamp::now().as_millis() + delay.as_millis() as i64)
}

/// The delivery of one event to one subscription: the envelope plus `hook`, rendered once.
fn new_delivery(event: &RenderedEvent, s: &Subscription) -> Delivery {
    let hook = serde_json::json!({
        "id": s.id.to_string(),
        "event": s.event.as_str(),
        "target": s.target,
    });
    // `hook` goes in as the envelope's last field, spliced before its closing brace: a raw
    // envelope cannot be flattened into a struct, and parsing it again for every delivery
    // would cost a full parse where this costs a copy.
    let envelope = event.envelope.get().trim_end();
    let body = match envelope.strip_suffix('}') {
        Some(open) => format!("{open},\"hook\":{hook}}}"),
        None => envelope.to_string(),
    };
    let now = Timestamp::now();
    Delivery {
        id: crate::domain::new_id(),
        project_id: event.project_id,
        subscription_id: s.id,
        event_id: event.id,
        event_type: event.event_type,
        target: s.target.clone(),
        body,
        state: DeliveryState::Pending,
        attempts: Vec::new(),
        created_at: now,
        updated_at: now,
    }
}
