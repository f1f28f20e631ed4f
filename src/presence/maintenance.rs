//! Per-node background work that keeps the cluster's presence right:
//!
//! * renew this node's lease every TTL/3; if the lease was gone (Redis lost its data, or this
//!   node was reaped after a stall) re-assert every local count;
//! * reap nodes whose lease expired: their counts stop counting and teammates only they kept
//!   online turn offline (idempotent, so every node may do it);
//! * settle grace periods that are due cluster-wide (normally the disconnecting node's timer
//!   does it; this covers a node that shut down or died during the grace period);
//! * flush dirty local counts every 100 ms.

use super::Tracker;
use crate::domain::{SettleOutcome, Transition};
use std::time::{Duration, Instant};
use tokio::time::{interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug)]
pub struct MaintenanceTimings {
    pub node_ttl: Duration,
    pub flush_every: Duration,
}

impl MaintenanceTimings {
    pub fn new(node_ttl: Duration) -> Self {
        MaintenanceTimings {
            node_ttl,
            flush_every: Duration::from_millis(100),
        }
    }

    /// Lease renewal and reaping run three times per TTL, so a live node never looks dead and a
    /// dead one is found within TTL + TTL/3.
    pub fn lease_every(&self) -> Duration {
        (self.node_ttl / 3).max(Duration::from_millis(30))
    }
}

/// Renews the lease once; re-asserts the local counts if it had been lost. `true` if the lease
/// was live and is renewed; `false` if it had been lost or could not be renewed.
pub async fn renew_lease(tracker: &Tracker, ttl: Duration) -> bool {
    match tracker.store().renew_lease(tracker.node_id(), ttl).await {
        Ok(true) => true,
        Ok(false) => {
            if tracker.counted_teammates() > 0 {
                tracing::warn!("this node's lease was lost; re-asserting its connections");
            }
            metrics::counter!("presence_lease_reasserts_total").increment(1);
            tracker.mark_all_dirty();
            tracker.flush().await;
            false
        }
        Err(e) => {
            metrics::counter!("presence_lease_errors_total").increment(1);
            tracing::warn!(error = %e, "cannot renew the node lease");
            false
        }
    }
}

async fn reap_dead_nodes(tracker: &Tracker) {
    let dead = match tracker.store().dead_nodes().await {
        Ok(dead) => dead,
        Err(_) => return,
    };
    for node in dead.iter().filter(|n| *n != tracker.node_id()) {
        match tracker.store().reap_node(node, true).await {
            Ok(transitions) => {
                metrics::counter!("presence_reaper_runs_total").increment(1);
                tracing::info!(node, offline = transitions.len(), "reaped a dead node");
                for (key, transition) in transitions {
                    tracker.record(key, transition);
                }
            }
            Err(e) => tracing::warn!(node, error = %e, "cannot reap a dead node"),
        }
    }
}

async fn settle_due(tracker: &Tracker) {
    let Ok(due) = tracker.store().due_presence(256).await else {
        return;
    };
    for key in due {
        if let Ok(SettleOutcome::Offline) = tracker.store().settle_presence(key).await {
            tracker.record(key, Transition::Offline);
        }
    }
}

/// Runs until `stop` turns true.
pub async fn run_maintenance(
    tracker: Tracker,
    timings: MaintenanceTimings,
    stop: CancellationToken,
) {
    let mut flush = interval(timings.flush_every);
    let mut lease = interval(timings.lease_every());
    // A node reaps only after its own lease has been healthy for a whole TTL. After a Redis
    // outage longer than the TTL every lease has expired, live nodes' too; reaping at once would
    // take down the nodes that have not renewed yet (a false offline and online for each of
    // their teammates). Within a TTL every live node has renewed.
    let mut reap_from = Instant::now();
    flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
    lease.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = flush.tick() => tracker.flush().await,
            _ = lease.tick() => {
                if !renew_lease(&tracker, timings.node_ttl).await {
                    reap_from = Instant::now() + timings.node_ttl;
                }
                if Instant::now() >= reap_from {
                    reap_dead_nodes(&tracker).await;
                }
                settle_due(&tracker).await;
            }
            _ = stop.cancelled() => return,
        }
    }
}
