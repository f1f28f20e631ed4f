//! Node leases on Redis: a node renews its lease in every partition (see `presence.rs` for why
//! each partition mirrors it), and learns there when it must re-assert its counts.
//!
//! "Was my lease live?" cannot be answered by the renewal alone: a renewal whose answer is lost
//! (it timed out on our side, or the cluster client sent it again after a failover) has already
//! extended the lease, and the next renewal would find it live even if a reaper had dropped the
//! node's counts just before. So each renewal also sends the expiry this process last saw
//! acknowledged for that partition, and the lease counts as held only if Redis still has exactly
//! that one. Only renewals write a node's lease, so any other value means an answer went missing,
//! and the node re-asserts (which is idempotent, and costs one flush).

use super::presence::RENEW_LEASE;
use super::{RedisStore, StoreResult};
use crate::domain::Partition;
use futures::future::join_all;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Per node id (one process may renew for several, as tests do) and partition, the lease expiry
/// (ms) the last acknowledged renewal wrote.
#[derive(Clone, Default)]
pub(super) struct AcknowledgedLeases(Arc<Mutex<HashMap<(String, Partition), i64>>>);

impl AcknowledgedLeases {
    fn get(&self, node_id: &str, partition: Partition) -> Option<i64> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(node_id.to_owned(), partition)).copied()
    }

    fn set(&self, node_id: &str, partition: Partition, expiry: i64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert((node_id.to_owned(), partition), expiry);
    }
}

impl RedisStore {
    /// Renews the node's lease in every partition; `true` only if this process's lease was held
    /// in all of them. Each partition's answer is kept even when another partition fails, so a
    /// partial failure does not make the next renewal re-assert needlessly.
    pub(super) async fn renew_leases(&self, node_id: &str, ttl: Duration) -> StoreResult<bool> {
        let ttl_ms = ttl.as_millis() as u64;
        let answers = join_all(self.keys.partitions().all().map(|p| async move {
            let acknowledged = self.acknowledged_leases.get(node_id, p);
            let mut invocation = RENEW_LEASE.prepare_invoke();
            invocation
                .key(self.keys.partition(p).leases())
                .arg(node_id)
                .arg(ttl_ms)
                .arg(acknowledged.map(|e| e.to_string()).unwrap_or_default());
            let (held, expiry): (i64, i64) = self.script(&invocation).await?;
            self.acknowledged_leases.set(node_id, p, expiry);
            StoreResult::Ok(held == 1)
        }))
        .await;
        let mut all_held = true;
        for answer in answers {
            all_held &= answer?;
        }
        Ok(all_held)
    }
}
