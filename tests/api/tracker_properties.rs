//! Property: for any interleaving of connects and disconnects across nodes (including
//! concurrent ones), once the dust settles a teammate is online iff some connection is open,
//! and its connection count and channels are exactly the open ones. Both engines.

use crate::common;

use presence_gateway::domain::{PresenceKey, PresenceStatus};
use presence_gateway::presence::{Registration, Tracker};
use presence_gateway::store::{MemoryStore, Store};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const NODES: usize = 3;
const CHANNELS: [&str; 3] = ["web", "mobile", "desktop"];

#[derive(Clone, Debug)]
enum Op {
    Connect {
        node: usize,
        channel: usize,
    },
    /// Closes the `pick`-th open connection of the node (modulo), if any.
    Disconnect {
        node: usize,
        pick: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..NODES, 0..CHANNELS.len()).prop_map(|(node, channel)| Op::Connect { node, channel }),
        (0..NODES, 0..8usize).prop_map(|(node, pick)| Op::Disconnect { node, pick }),
    ]
}

/// Ops grouped into batches; the ops of one batch run concurrently.
fn batches() -> impl Strategy<Value = Vec<Vec<Op>>> {
    prop::collection::vec(prop::collection::vec(op(), 1..6), 1..12)
}

async fn run(store: Arc<dyn Store>, batches: Vec<Vec<Op>>) -> Result<(), TestCaseError> {
    let teammate = common::project_with_owner(store.as_ref()).await;
    let key = PresenceKey {
        project_id: teammate.project_id,
        teammate_id: teammate.id,
    };
    let trackers: Vec<Tracker> = (0..NODES)
        .map(|i| {
            Tracker::new(
                format!("node{i}-{}", teammate.project_id.simple()),
                store.clone(),
                Duration::ZERO,
                presence_gateway::presence::ConnectionLimits {
                    per_user: 1000,
                    per_node: 100_000,
                },
            )
        })
        .collect();
    for t in &trackers {
        store
            .renew_lease(t.node_id(), Duration::from_secs(60))
            .await
            .unwrap();
    }
    // The model: open connections per node, by channel.
    let mut open: Vec<Vec<(usize, Registration)>> = (0..NODES).map(|_| Vec::new()).collect();
    for batch in batches {
        let mut connects = Vec::new();
        let mut disconnects = Vec::new();
        for op in batch {
            match op {
                Op::Connect { node, channel } => connects.push((node, channel)),
                Op::Disconnect { node, pick } => {
                    if !open[node].is_empty() {
                        let i = pick % open[node].len();
                        disconnects.push((node, open[node].swap_remove(i).1));
                    }
                }
            }
        }
        // Every op, and a flush of every node, runs as its own task: on the multi-thread
        // runtime their store writes really do race and overtake each other.
        let connected: Vec<_> = connects
            .iter()
            .map(|(node, channel)| {
                let tracker = trackers[*node].clone();
                let channel = CHANNELS[*channel].to_string();
                tokio::spawn(async move {
                    let registration = Registration::new(vec![key], channel);
                    tracker.connect(&registration).await;
                    registration
                })
            })
            .collect();
        let others: Vec<_> = disconnects
            .into_iter()
            .map(|(node, registration)| {
                let tracker = trackers[node].clone();
                tokio::spawn(async move { tracker.disconnect(registration).await })
            })
            .chain(trackers.iter().map(|t| {
                let tracker = t.clone();
                tokio::spawn(async move { tracker.flush().await })
            }))
            .collect();
        let registrations = futures::future::join_all(connected).await;
        futures::future::join_all(others).await;
        for ((node, channel), registration) in connects.into_iter().zip(registrations) {
            open[node].push((channel, registration.unwrap()));
        }
    }
    for t in &trackers {
        t.flush().await;
    }
    let presence = store.read_presence(&[teammate]).await.unwrap().remove(0);
    let total: usize = open.iter().map(Vec::len).sum();
    let channels: BTreeSet<String> = open
        .iter()
        .flatten()
        .map(|(c, _)| CHANNELS[*c].to_string())
        .collect();
    let expected = if total > 0 {
        PresenceStatus::Online
    } else {
        PresenceStatus::Offline
    };
    prop_assert_eq!(presence.status, expected);
    prop_assert_eq!(presence.connections, total as u64);
    prop_assert_eq!(presence.channels, channels.into_iter().collect::<Vec<_>>());
    // Every transition was decided exactly once: online and offline alternate, starting online.
    let (online, offline) = trackers.iter().fold((0, 0), |(a, b), t| {
        let (x, y) = t.transitions();
        (a + x, b + y)
    });
    prop_assert!(
        online == offline || online == offline + 1,
        "{online} online, {offline} offline"
    );
    prop_assert_eq!(online == offline + 1, total > 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn memory_engine_presence_matches_open_connections(batches in batches()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(run(Arc::new(MemoryStore::new()), batches))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn redis_engine_presence_matches_open_connections(batches in batches()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let prefix = common::unique_prefix();
        let result = rt.block_on(async {
            let store = common::redis_store(common::SHARED_REDIS, &prefix);
            run(Arc::new(store), batches).await
        });
        common::delete_prefix(common::SHARED_REDIS, &prefix);
        result?;
    }
}
