//! The store's presence rules, called directly and deterministically, on both engines:
//! stale writes, inactive teammates, grace periods, leases, reaping and clearing.

use crate::common;

use common::Engine;
use presence_gateway::domain::{
    Edge, EventType, LogPosition, PresenceKey, PresenceStatus, PresenceWrite, Role, SettleOutcome,
    Teammate, TeammateStatus, Transition, WriteOutcome,
};
use presence_gateway::store::{MemoryStore, PresenceStore, Store};
use std::sync::Arc;
use std::time::Duration;

const GRACE: Duration = Duration::from_millis(200);

struct Fixture {
    store: Arc<dyn Store>,
    teammate: Teammate,
    key: PresenceKey,
    prefix: Option<String>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(prefix) = &self.prefix {
            common::delete_prefix(common::SHARED_REDIS, prefix);
        }
    }
}

async fn fixture(engine: Engine) -> Fixture {
    let (store, prefix): (Arc<dyn Store>, _) = match engine {
        Engine::Memory => (Arc::new(MemoryStore::new()), None),
        Engine::RedisCluster => {
            let url = common::cluster::shared_cluster_url();
            let store = common::redis_store(&url, &common::unique_prefix());
            (Arc::new(store), None)
        }
        _ => {
            let prefix = common::unique_prefix();
            let store = common::redis_store(common::SHARED_REDIS, &prefix);
            (Arc::new(store), Some(prefix))
        }
    };
    let teammate = common::project_with_owner(store.as_ref()).await;
    for node in ["a", "b"] {
        store
            .renew_lease(node, Duration::from_secs(60))
            .await
            .unwrap();
    }
    let key = PresenceKey {
        project_id: teammate.project_id,
        teammate_id: teammate.id,
    };
    Fixture {
        store,
        teammate,
        key,
        prefix,
    }
}

fn write(key: PresenceKey, node: &str, epoch: u64, connections: u32, edge: Edge) -> PresenceWrite {
    PresenceWrite {
        key,
        node_id: node.into(),
        epoch,
        connections,
        channels: if connections > 0 {
            vec!["web".into()]
        } else {
            vec![]
        },
        edge,
    }
}

impl Fixture {
    async fn put(
        &self,
        node: &str,
        epoch: u64,
        connections: u32,
        edge: Edge,
        grace: Duration,
    ) -> WriteOutcome {
        self.store
            .write_presence(&write(self.key, node, epoch, connections, edge), grace)
            .await
            .unwrap()
    }

    async fn status(&self) -> (PresenceStatus, u64) {
        let p = self
            .store
            .read_presence(std::slice::from_ref(&self.teammate))
            .await
            .unwrap()
            .remove(0);
        (p.status, p.connections)
    }
}

async fn writes_that_arrive_late_are_ignored(engine: Engine) {
    let f = fixture(engine).await;
    assert_eq!(
        f.put("a", 10, 1, Edge::Connect, GRACE).await,
        WriteOutcome::Transition(Transition::Online)
    );
    // The node disconnected (epoch 11) and reconnected (epoch 12), but the writes crossed.
    assert_eq!(
        f.put("a", 12, 1, Edge::Connect, GRACE).await,
        WriteOutcome::Recorded
    );
    assert_eq!(
        f.put("a", 11, 0, Edge::Disconnect, Duration::ZERO).await,
        WriteOutcome::Stale
    );
    assert_eq!(
        f.put("a", 12, 0, Edge::Refresh, Duration::ZERO).await,
        WriteOutcome::Stale,
        "equal epochs too"
    );
    assert_eq!(f.status().await, (PresenceStatus::Online, 1));
}

async fn inactive_teammates_do_not_count(engine: Engine) {
    let f = fixture(engine).await;
    let mut disabled = f.teammate.clone();
    disabled.status = TeammateStatus::Disabled;
    disabled.version += 1;
    // The owner is the last owner; make a second one first so disabling is allowed.
    let mut other = Teammate::new(
        f.key.project_id,
        presence_gateway::domain::new_id(),
        Role::Owner,
        None,
    );
    other.version = 1;
    f.store.insert_teammate(&other).await.unwrap();
    f.store
        .update_teammate(&disabled, f.teammate.version, EventType::Disable)
        .await
        .unwrap();
    assert_eq!(
        f.put("a", 1, 1, Edge::Connect, GRACE).await,
        WriteOutcome::Inactive
    );
    let p = f.store.read_presence(&[disabled]).await.unwrap().remove(0);
    assert_eq!((p.status, p.connections), (PresenceStatus::Offline, 0));
}

async fn the_grace_period_runs_in_the_store(engine: Engine) {
    let f = fixture(engine).await;
    f.put("a", 1, 1, Edge::Connect, GRACE).await;
    let WriteOutcome::Pending { due_in_ms } = f.put("a", 2, 0, Edge::Disconnect, GRACE).await
    else {
        panic!("a disconnect edge with grace is pending");
    };
    assert!((150..=200).contains(&due_in_ms), "{due_in_ms}");
    assert_eq!(
        f.status().await,
        (PresenceStatus::Online, 0),
        "online during the grace period"
    );
    assert!(matches!(
        f.store.settle_presence(f.key).await.unwrap(),
        SettleOutcome::NotDue { .. }
    ));
    assert!(f.store.due_presence(10).await.unwrap().is_empty());
    tokio::time::sleep(GRACE + Duration::from_millis(30)).await;
    assert_eq!(f.store.due_presence(10).await.unwrap(), vec![f.key]);
    assert_eq!(
        f.store.settle_presence(f.key).await.unwrap(),
        SettleOutcome::Offline
    );
    assert_eq!(
        f.store.settle_presence(f.key).await.unwrap(),
        SettleOutcome::Nothing,
        "once"
    );
    assert_eq!(f.status().await, (PresenceStatus::Offline, 0));

    // A connection on another node during the grace period cancels the offline.
    f.put("a", 3, 1, Edge::Connect, GRACE).await;
    f.put("a", 4, 0, Edge::Disconnect, GRACE).await;
    assert_eq!(
        f.put("b", 1, 1, Edge::Connect, GRACE).await,
        WriteOutcome::Recorded
    );
    tokio::time::sleep(GRACE + Duration::from_millis(30)).await;
    assert_eq!(
        f.store.settle_presence(f.key).await.unwrap(),
        SettleOutcome::Nothing
    );
    assert_eq!(f.status().await, (PresenceStatus::Online, 1));
}

async fn dead_nodes_are_reaped_once(engine: Engine) {
    let f = fixture(engine).await;
    f.store
        .renew_lease("short", Duration::from_millis(100))
        .await
        .unwrap();
    f.put("short", 1, 2, Edge::Connect, GRACE).await;
    assert_eq!(f.status().await, (PresenceStatus::Online, 2));
    assert!(
        f.store
            .renew_lease("short", Duration::from_millis(100))
            .await
            .unwrap(),
        "live lease"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Expired: its connections stop counting at once, before anyone reaps it.
    assert_eq!(f.status().await, (PresenceStatus::Online, 0));
    assert!(f
        .store
        .dead_nodes()
        .await
        .unwrap()
        .contains(&"short".to_string()));
    let reaped = f.store.reap_node("short", true).await.unwrap();
    assert_eq!(reaped, vec![(f.key, Transition::Offline)]);
    assert!(
        f.store.reap_node("short", true).await.unwrap().is_empty(),
        "idempotent"
    );
    assert!(!f
        .store
        .dead_nodes()
        .await
        .unwrap()
        .contains(&"short".to_string()));
    assert_eq!(f.status().await, (PresenceStatus::Offline, 0));
    // A reaped node that comes back learns it must re-assert.
    assert!(!f
        .store
        .renew_lease("short", Duration::from_secs(1))
        .await
        .unwrap());
}

async fn reaping_respects_a_running_grace_period(engine: Engine) {
    let f = fixture(engine).await;
    f.put("a", 1, 1, Edge::Connect, GRACE).await;
    f.put("a", 2, 0, Edge::Disconnect, GRACE).await;
    assert!(
        f.store.reap_node("a", true).await.unwrap().is_empty(),
        "the handover keeps its grace period"
    );
    assert_eq!(f.status().await.0, PresenceStatus::Online);
    tokio::time::sleep(GRACE + Duration::from_millis(30)).await;
    assert_eq!(
        f.store.settle_presence(f.key).await.unwrap(),
        SettleOutcome::Offline
    );
}

async fn deactivating_drops_every_count_in_the_same_event(engine: Engine) {
    let f = fixture(engine).await;
    let mut other = Teammate::new(
        f.key.project_id,
        presence_gateway::domain::new_id(),
        Role::Owner,
        None,
    );
    other.version = 1;
    f.store.insert_teammate(&other).await.unwrap();
    f.put("a", 1, 1, Edge::Connect, GRACE).await;
    f.put("b", 1, 3, Edge::Connect, GRACE).await;
    let mut disabled = f.teammate.clone();
    disabled.status = TeammateStatus::Disabled;
    disabled.version += 1;
    f.store
        .update_teammate(&disabled, f.teammate.version, EventType::Disable)
        .await
        .unwrap();
    assert_eq!(f.status().await, (PresenceStatus::Offline, 0));
    let events = f
        .store
        .read_events(
            LogPosition::start(f.store.partitions().of(f.key.project_id)),
            100,
            Duration::ZERO,
        )
        .await
        .unwrap();
    let mine: Vec<_> = events.iter().filter(|e| e.key == f.key).collect();
    let types: Vec<_> = mine.iter().map(|e| e.event_type).collect();
    // One event per change: going offline is part of the disable, not an event of its own.
    assert_eq!(types, [EventType::PresenceOnline, EventType::Disable]);
    let disable = mine[1];
    assert_eq!(disable.presence.status, PresenceStatus::Offline);
    let before = disable.presence_before.as_ref().expect("presence changed");
    assert_eq!(
        (before.status, before.connections),
        (PresenceStatus::Online, 4)
    );
    assert!(mine[0].seq < disable.seq);
    assert_eq!(
        f.put("a", 2, 1, Edge::Connect, GRACE).await,
        WriteOutcome::Inactive
    );
}

engine_tests!(
    writes_that_arrive_late_are_ignored,
    inactive_teammates_do_not_count,
    the_grace_period_runs_in_the_store,
    dead_nodes_are_reaped_once,
    reaping_respects_a_running_grace_period,
    deactivating_drops_every_count_in_the_same_event,
);

/// A renewal whose answer never came back (it timed out here, or the cluster client re-sent it
/// after a failover) has already extended the lease. If a reaper dropped the node's counts just
/// before it ran, the node must still learn to re-assert. Two handles on one Redis renew for
/// the same node: the second one's answers are the ones the first never saw. (The memory engine
/// loses no answers.)
async fn a_lost_renewal_answer_still_makes_the_node_reassert(url: &str, prefix: &str) {
    let seen = common::redis_store(url, prefix);
    let lost = common::redis_store(url, prefix);
    let teammate = common::project_with_owner(&seen).await;
    let key = PresenceKey {
        project_id: teammate.project_id,
        teammate_id: teammate.id,
    };
    let short = Duration::from_millis(100);
    assert!(
        !seen.renew_lease("n", short).await.unwrap(),
        "a new node has no lease"
    );
    assert!(seen.renew_lease("n", short).await.unwrap(), "live lease");
    let online = seen
        .write_presence(&write(key, "n", 1, 1, Edge::Connect), GRACE)
        .await
        .unwrap();
    assert_eq!(online, WriteOutcome::Transition(Transition::Online));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        seen.reap_node("n", true).await.unwrap(),
        vec![(key, Transition::Offline)]
    );

    let long = Duration::from_secs(5);
    lost.renew_lease("n", long).await.unwrap();
    assert!(
        !seen.renew_lease("n", long).await.unwrap(),
        "the lease is live, but not the one this node was told about: it must re-assert"
    );
    assert!(
        seen.renew_lease("n", long).await.unwrap(),
        "and afterwards it is held again"
    );
}

mod lost_renewal_answers {
    use super::*;

    #[tokio::test]
    async fn redis() {
        let prefix = common::unique_prefix();
        a_lost_renewal_answer_still_makes_the_node_reassert(common::SHARED_REDIS, &prefix).await;
        common::delete_prefix(common::SHARED_REDIS, &prefix);
    }

    #[tokio::test]
    async fn redis_cluster() {
        let url = common::cluster::shared_cluster_url();
        a_lost_renewal_answer_still_makes_the_node_reassert(&url, &common::unique_prefix()).await;
    }
}
