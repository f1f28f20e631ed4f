//! Node leases on Redis: a node renews its lease in every partition (see `presence.rs` for why
//! each partition mirrors it), and learns there when it must re-assert its counts.
//!
//! "Was my lease live?" cannot be answered by the renewal alone: a renewal whose answer is lost
//! (it timed out on our side, or the cluster client sent it again after a failover) has already
//! extended the lease, and the next renewal would find it live even if a reaper had dropped the
//! node's counts just before. So each renewal also sends the expiry this process last saw
//! acknowledged for that partition, and the lease counts as held only if Redis still has exactly
//! that one. Only renewals write a node's lease, so any other value means an answer went missing,
//! and the node re-asserts (which is idempotent, and costs one flush). The renewal is
//! `PresenceStore::renew_lease` in `presence.rs`.

use crate::domain::Partition;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Per node id (one process may renew for several, as tests do) and partition, the lease expiry
/// (ms) the last acknowledged renewal wrote.
#[derive(Clone, Default)]
pub(super) struct AcknowledgedLeases(Arc<Mutex<HashMap<(String, Partition), i64>>>);

impl AcknowledgedLeases {
    pub(super) fn get(&self, node_id: &str, partition: Partition) -> Option<i64> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(node_id.to_owned(), partition)).copied()
    }

    pub(super) fn set(&self, node_id: &str, partition: Partition, expiry: i64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert((node_id.to_owned(), partition), expiry);
    }
}
