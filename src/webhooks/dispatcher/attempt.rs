//! One attempt at a delivery: take it (renew its lease, the fencing token), sign and post it,
//! save the outcome under the lease, and schedule the retry or end it.

use super::*;

impl Dispatcher {
    /// Queues an attempt of `delivery`, held under the lease that ends at `lease`. A delivery
    /// already queued here only takes the newer lease; one whose subscription has too many
    /// queued here stays leased and comes due again when the lease ends.
    pub(super) fn spawn_attempt(&self, delivery: Delivery, lease: Timestamp) {
        match self.0.in_flight.entry(delivery.id) {
            dashmap::Entry::Occupied(mut held) => {
                *held.get_mut() = lease.as_millis();
                return;
            }
            dashmap::Entry::Vacant(slot) => {
                slot.insert(lease.as_millis());
            }
        }
        let slots = self
            .0
            .per_target
            .entry(delivery.subscription_id)
            .or_insert_with(|| {
                Arc::new(TargetSlots {
                    running: Arc::new(Semaphore::new(PER_TARGET)),
                    queued: AtomicUsize::new(0),
                })
            })
            .clone();
        if slots.queued.fetch_add(1, Ordering::AcqRel) >= QUEUE_PER_TARGET {
            slots.queued.fetch_sub(1, Ordering::AcqRel);
            self.0.in_flight.remove(&delivery.id);
            metrics::counter!("webhook_deliveries_deferred_total").increment(1);
            return;
        }
        metrics::gauge!("webhook_queue_depth").increment(1.0);
        let this = self.clone();
        tokio::spawn(async move {
            let id = delivery.id;
            let permits = async {
                let target = slots.running.clone().acquire_owned().await.ok()?;
                let node = this.0.per_node.clone().acquire_owned().await.ok()?;
                Some((target, node))
            };
            if let Some(_permits) = permits.await {
                if let Err(e) = this.attempt(delivery).await {
                    tracing::warn!(error = %e, "webhooks: cannot record a delivery attempt; it will be retried");
                }
            }
            this.0.in_flight.remove(&id);
            slots.queued.fetch_sub(1, Ordering::AcqRel);
            metrics::gauge!("webhook_queue_depth").decrement(1.0);
        });
    }

    /// Renews this node's lease on a delivery for one attempt. `None` if another node took it
    /// over (or it ended) while it waited here.
    async fn take_for_attempt(&self, delivery: &Delivery) -> StoreResult<Option<Timestamp>> {
        let id = delivery.id;
        let lease = later(self.lease());
        // Two tries: the schedule may hand this node a newer lease between the read and the
        // renewal.
        for _ in 0..2 {
            let Some(held) = self.0.in_flight.get(&id).map(|held| *held) else {
                return Ok(None);
            };
            let held = Timestamp::from_millis(held);
            if self
                .0
                .webhooks
                .renew_delivery_lease(delivery.project_id, id, held, lease)
                .await?
            {
                self.0.in_flight.insert(id, lease.as_millis());
                return Ok(Some(lease));
            }
        }
        metrics::counter!("webhook_deliveries_taken_over_total").increment(1);
        Ok(None)
    }

    /// One attempt, then the delivery's next state: delivered, gone (410), failed (schedule
    /// exhausted), cancelled (subscription removed or disabled), or pending the next attempt.
    /// Nothing is sent, and nothing saved, under a lease this node no longer holds.
    async fn attempt(&self, mut delivery: Delivery) -> StoreResult<()> {
        let store = &self.0.webhooks;
        let Some(lease) = self.take_for_attempt(&delivery).await? else {
            return Ok(());
        };
        let subscription = store
            .get_subscription(delivery.project_id, delivery.subscription_id)
            .await?;
        let Some(subscription) = subscription.filter(|s| s.enabled) else {
            delivery.state = DeliveryState::Cancelled;
            delivery.updated_at = Timestamp::now();
            return store.save_delivery(&delivery, None, lease).await.map(drop);
        };
        let attempt = self.send(&delivery, &subscription).await;
        let status = attempt.status;
        delivery.attempts.push(attempt);
        delivery.updated_at = Timestamp::now();
        let outcome = match status {
            Some(200..=299) => "delivered",
            Some(410) => "gone",
            Some(_) => "http_error",
            None => "no_answer",
        };
        metrics::counter!("webhook_attempts_total", "outcome" => outcome).increment(1);
        let next_attempt = match status {
            Some(200..=299) => {
                delivery.state = DeliveryState::Delivered;
                None
            }
            Some(410) => {
                // Re-read, so that an edit made during the attempt is kept.
                let current = store
                    .get_subscription(delivery.project_id, delivery.subscription_id)
                    .await?;
                if let Some(current) = current {
                    let disabled = Subscription {
                        enabled: false,
                        updated_at: Timestamp::now(),
                        ..current
                    };
                    store.put_subscription(&disabled).await?;
                }
                delivery.state = DeliveryState::Gone;
                None
            }
            _ => match self.0.config.retry_schedule.get(delivery.attempts.len()) {
                Some(delay) => Some(later(*delay)),
                None => {
                    metrics::counter!("webhook_deliveries_failed_total").increment(1);
                    delivery.state = DeliveryState::Failed;
                    None
                }
            },
        };
        if !store.save_delivery(&delivery, next_attempt, lease).await? {
            tracing::warn!(delivery = %delivery.id, "webhooks: lost the lease during an attempt; another node retries it");
        }
        Ok(())
    }

    async fn send(&self, delivery: &Delivery, subscription: &Subscription) -> Attempt {
        let started = Instant::now();
        let at = Timestamp::now();
        let result = self.post(delivery, subscription).await;
        let elapsed = started.elapsed();
        metrics::histogram!("webhook_attempt_duration_seconds").record(elapsed.as_secs_f64());
        let (status, error) = match result {
            Ok(status) => (Some(status), None),
            Err(error) => (None, Some(error)),
        };
        Attempt {
            at,
            status,
            error,
            duration_ms: elapsed.as_millis() as u64,
        }
    }

    async fn post(&self, delivery: &Delivery, subscription: &Subscription) -> Result<u16, String> {
        // The target is checked again at delivery time: its DNS may have changed since it was
        // saved. Names are also filtered by the client's resolver, so no rebinding in between.
        // The subscription's target as it is now: an admin may have fixed it since the delivery
        // was created.
        let url = guard::parse_target(&subscription.target).map_err(|e| e.to_string())?;
        if !self.0.config.allow_private {
            guard::check_target(&url, false)
                .await
                .map_err(|e| e.to_string())?;
        }
        let id = delivery.event_id.to_string();
        let timestamp = Timestamp::now().as_millis() / 1000;
        let signature = signing::sign(&subscription.secret, &id, timestamp, &delivery.body);
        let response = self
            .0
            .client
            .post(url)
            .timeout(self.0.config.timeout)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(describe)?;
        Ok(response.status().as_u16())
    }
}

fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    }
}
