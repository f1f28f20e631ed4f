//! Redis Cluster faults under load, with two gateway nodes:
//!
//! * a master SIGKILLed (3 masters, 3 replicas, cluster-node-timeout 1 s): agent sockets stay
//!   open, `/readyz` reports the outage and recovers without a restart, presence is right again
//!   within cluster-node-timeout + node TTL + 1 s, no event is duplicated or reordered per
//!   teammate, and, with `redis_wait_replicas = 1`, no acknowledged change is lost (with the
//!   default 0 the test reports how many the crash lost);
//! * a live `redis-cli --cluster reshard` of a busy project's slot: every request succeeds
//!   (MOVED and ASK are followed), and nothing is lost, duplicated or reordered.
//!
//! Run one at a time (a file-wide lock): each starts up to six Redis processes and two gateways,
//! and the timing assertions should measure the cluster, not a crowded machine.

mod common;

use common::chaos::{converge, tab_query, truth, Api, Collector, Nodes, Tab};
use common::cluster::RedisCluster;
use common::{redis_keys, spawn_app_with, unique_prefix, Engine};
use presence_gateway::store::redis::slot_of;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODE_TIMEOUT_MS: u64 = 1000;
const NODE_TTL_MS: u64 = 1500;

/// `/readyz` answers over time (`None`: no answer).
type Readings = Vec<(Instant, Option<u16>)>;

/// A value written and what the write answered (status, or the transport error).
type Written = (String, Result<u16, String>);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn master_killed_under_churn(wait_replicas: &str) {
    let _one_at_a_time = SERIAL.lock().await;
    let mut cluster = RedisCluster::start(3, 1, NODE_TIMEOUT_MS);
    let prefix = unique_prefix();
    let settings = [
        ("offline_grace_ms", "300"),
        ("node_ttl_ms", "1500"),
        ("heartbeat_ms", "500"),
        ("redis_timeout_ms", "500"),
        ("redis_wait_replicas", wait_replicas),
    ];
    let mut apps = Vec::new();
    for _ in 0..2 {
        let engine = Engine::RedisAt {
            url: cluster.url(),
            prefix: prefix.clone(),
        };
        apps.push(spawn_app_with(engine, &settings).await);
    }
    let nodes = Nodes::new(&[apps[0].port, apps[1].port]);
    let api = nodes.api(0);
    let (owner, pid, owner_puid) = api.new_project().await;
    let steady = api.new_mate(&owner, &pid, "steady").await;
    let mut churners = Vec::new();
    for i in 0..3 {
        churners.push(api.new_mate(&owner, &pid, &format!("churner{i}")).await);
    }
    let slot = slot_of(
        redis_keys(&prefix)
            .of_project(pid.parse().unwrap())
            .events()
            .as_bytes(),
    );
    let doomed = cluster
        .master_of(slot as u16)
        .expect("the project's master");

    let events = Collector::start(nodes.clone(), 1, &pid, &owner.token);
    events.connected().await;
    let mut steady_tab = Tab::open(nodes.ports[0], &tab_query(&steady.user.token, "web"))
        .await
        .unwrap();

    // Churn: each churner opens and closes a tab, on alternating nodes, until the kill (the tabs
    // open then close during the outage).
    let stop = Arc::new(AtomicBool::new(false));
    let stop_churn = Arc::new(AtomicBool::new(false));
    let mut churn = Vec::new();
    for (i, mate) in churners.iter().enumerate() {
        let (stop, nodes, token) = (stop_churn.clone(), nodes.clone(), mate.user.token.clone());
        churn.push(tokio::spawn(async move {
            let mut round = i;
            while !stop.load(Ordering::SeqCst) {
                let port = nodes.ports[round % 2];
                if let Ok(tab) = Tab::open(port, &tab_query(&token, "web")).await {
                    tokio::time::sleep(Duration::from_millis(60)).await;
                    tab.close().await;
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
                round += 1;
            }
        }));
    }
    // REST changes through the failover: the steady agent's profileStatus, one at a time; which
    // ones answered 200.
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let writer = {
        let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
        let (api, pid, puid, token) = (
            nodes.api(1),
            pid.clone(),
            steady.puid.clone(),
            owner.token.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let value = format!("v{n}");
                let path = format!("/v3/{pid}/project_users/{puid}");
                if let Ok((200, _)) = api
                    .put(&path, &token, json!({"profileStatus": value}))
                    .await
                {
                    acknowledged.lock().unwrap().push(value);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // Readiness, as a load balancer would poll it.
    let readiness: Arc<Mutex<Readings>> = Arc::default();
    let poller = {
        let (stop, readiness, api) = (stop.clone(), readiness.clone(), nodes.api(0));
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let status = api.readyz().await;
                readiness.lock().unwrap().push((Instant::now(), status));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = Instant::now();
    cluster.kill(doomed);
    stop_churn.store(true, Ordering::SeqCst);
    // With WAIT 1 the promoted replica has no replica of its own until the old master returns.
    let promoted = common::eventually(Duration::from_secs(10), || async {
        cluster.master_of(slot as u16).is_some_and(|m| m != doomed)
    })
    .await;
    assert!(promoted, "a replica took over the slot");
    let failed_over_in = killed_at.elapsed();
    if wait_replicas != "0" {
        cluster.restart(doomed);
    }
    for task in churn {
        task.await.unwrap();
    }

    // Presence is right again everywhere: the steady agent online on one tab, churners offline.
    let mut expected = vec![(steady.puid.as_str(), truth("online", 1, &["web"]))];
    for mate in &churners {
        expected.push((mate.puid.as_str(), truth("offline", 0, &[])));
    }
    let apis: Vec<Api> = (0..2).map(|i| nodes.api(i)).collect();
    let settled = converge(
        &apis,
        &pid,
        &owner.token,
        &expected,
        Duration::from_secs(20),
    )
    .await;
    settled.expect("presence converges");
    let right_after_kill = killed_at.elapsed();
    println!(
        "wait_replicas={wait_replicas}: failover in {failed_over_in:?}; presence right \
         {right_after_kill:?} after the kill"
    );
    // With WAIT 1 the slot takes writes only once the old master is back as a replica, so the
    // budget is for the default.
    let budget = Duration::from_millis(NODE_TIMEOUT_MS + NODE_TTL_MS + 1000);
    if wait_replicas == "0" {
        assert!(
            right_after_kill <= budget,
            "presence right within node timeout + TTL + 1 s of the kill: {right_after_kill:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    poller.await.unwrap();

    // The agent's socket never closed, and still answers.
    assert!(steady_tab.is_open(), "the steady socket stayed open");
    steady_tab
        .round_trip(Duration::from_secs(2))
        .await
        .expect("the steady socket still answers");

    // /readyz reported the outage, then recovered by itself.
    let readiness = readiness.lock().unwrap().clone();
    let down = readiness
        .iter()
        .position(|(at, s)| *at > killed_at && *s == Some(503));
    assert!(down.is_some(), "readyz reported the outage: {readiness:?}");
    let ready_again = api.wait_ready(200, Duration::from_secs(10)).await;
    println!("readyz 200 {ready_again:?} after the writes stopped");

    // A final marker, so that every earlier event has reached the consumer.
    let marker = api
        .put(
            &format!("/v3/{pid}/project_users/{owner_puid}"),
            &owner.token,
            json!({"profileStatus": "marker"}),
        )
        .await;
    assert!(matches!(marker, Ok((200, _))), "{marker:?}");
    let got_marker = events
        .wait_for(Duration::from_secs(10), |e| {
            e["payload"]["profileStatus"] == json!("marker")
        })
        .await;
    assert!(got_marker, "the consumer got the marker");
    let envelopes: Vec<Value> = events
        .stop()
        .await
        .iter()
        .filter(|e| e.event.as_deref() != Some("resync"))
        .map(|e| e.json())
        .collect();
    // No event twice, and per teammate strictly increasing seq.
    let mut ids = HashSet::new();
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    for e in &envelopes {
        assert!(ids.insert(e["id"].to_string()), "event twice: {e}");
        let puid = e["payload"]["_id"].as_str().unwrap_or_default().to_string();
        let seq = e["seq"].as_u64().expect("seq");
        if let Some(previous) = last_seq.insert(puid.clone(), seq) {
            assert!(seq > previous, "seq of {puid} went {previous} -> {seq}");
        }
    }
    // Acknowledged changes that are gone: none with WAIT 1; counted with 0.
    let acknowledged = acknowledged.lock().unwrap().clone();
    let seen: HashSet<String> = envelopes
        .iter()
        .filter(|e| e["payload"]["_id"] == json!(steady.puid))
        .filter_map(|e| e["payload"]["profileStatus"].as_str().map(str::to_string))
        .collect();
    let lost: Vec<&String> = acknowledged.iter().filter(|v| !seen.contains(*v)).collect();
    println!(
        "wait_replicas={wait_replicas}: {} acknowledged changes, {} lost: {lost:?}",
        acknowledged.len(),
        lost.len()
    );
    assert!(
        acknowledged.len() > 20,
        "changes went on around the failover"
    );
    if wait_replicas != "0" {
        assert!(lost.is_empty(), "an acknowledged change was lost: {lost:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_under_churn_with_wait_0() {
    master_killed_under_churn("0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_under_churn_with_wait_1() {
    master_killed_under_churn("1").await;
}

fn node_id(cluster: &RedisCluster, node: usize) -> String {
    let myid = redis::cmd("CLUSTER").arg("MYID").to_owned();
    common::cluster::query(&cluster.nodes[node].url(), myid).expect("a node id")
}

/// The master's node id, and the first slot of its range that holds `slot`.
fn range_of(cluster: &RedisCluster, slot: u16) -> (String, u16) {
    let owner = cluster.master_of(slot).expect("an owner");
    let slots = redis::cmd("CLUSTER").arg("SLOTS").to_owned();
    let raw: redis::Value = common::cluster::query(&cluster.nodes[owner].url(), slots).unwrap();
    let redis::Value::Array(ranges) = raw else {
        panic!("CLUSTER SLOTS answered {raw:?}")
    };
    let start = ranges
        .iter()
        .find_map(|range| match range {
            redis::Value::Array(f) => match (f.first(), f.get(1)) {
                (Some(redis::Value::Int(a)), Some(redis::Value::Int(b)))
                    if (*a..=*b).contains(&i64::from(slot)) =>
                {
                    Some(*a as u16)
                }
                _ => None,
            },
            _ => None,
        })
        .expect("a range holds the slot");
    (node_id(cluster, owner), start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_projects_slot_resharded_under_traffic_loses_nothing() {
    let _one_at_a_time = SERIAL.lock().await;
    let cluster = RedisCluster::start(3, 0, 2000);
    let prefix = unique_prefix();
    let settings = [("offline_grace_ms", "200"), ("heartbeat_ms", "500")];
    let mut apps = Vec::new();
    for _ in 0..2 {
        let engine = Engine::RedisAt {
            url: cluster.url(),
            prefix: prefix.clone(),
        };
        apps.push(spawn_app_with(engine, &settings).await);
    }
    let nodes = Nodes::new(&[apps[0].port, apps[1].port]);
    let api = nodes.api(0);
    let keys = redis_keys(&prefix);
    // A project whose slot is near the start of its master's range, so that the reshard moves
    // it among few others (redis-cli moves a source's slots lowest first).
    let (owner, pid, owner_puid, slot, moved) = loop {
        let (owner, pid, owner_puid) = api.new_project().await;
        let slot = slot_of(keys.of_project(pid.parse().unwrap()).events().as_bytes()) as u16;
        let (_, start) = range_of(&cluster, slot);
        if slot - start < 300 {
            break (owner, pid, owner_puid, slot, slot - start + 1);
        }
    };
    let source = cluster.master_of(slot).unwrap();
    let target = (source + 1) % 3;
    let (source_id, _) = range_of(&cluster, slot);
    let target_id = node_id(&cluster, target);
    let agent = api.new_mate(&owner, &pid, "agent").await;
    let steady = api.new_mate(&owner, &pid, "steady").await;
    let events = Collector::start(nodes.clone(), 1, &pid, &owner.token);
    events.connected().await;
    let steady_tab = Tab::open(nodes.ports[0], &tab_query(&steady.user.token, "web"))
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (stop, nodes, token) = (stop.clone(), nodes.clone(), agent.user.token.clone());
        tokio::spawn(async move {
            let mut round = 0;
            while !stop.load(Ordering::SeqCst) {
                if let Ok(tab) = Tab::open(nodes.ports[round % 2], &tab_query(&token, "web")).await
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    tab.close().await;
                }
                round += 1;
            }
        })
    };
    let answers: Arc<Mutex<Vec<Written>>> = Arc::default();
    let writer = {
        let (stop, answers) = (stop.clone(), answers.clone());
        let (api, pid, puid, token) = (
            nodes.api(1),
            pid.clone(),
            steady.puid.clone(),
            owner.token.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let value = format!("v{n}");
                let path = format!("/v3/{pid}/project_users/{puid}");
                let answer = api
                    .put(&path, &token, json!({"profileStatus": value}))
                    .await;
                answers
                    .lock()
                    .unwrap()
                    .push((value, answer.map(|(status, _)| status)));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let reshard = tokio::task::spawn_blocking(move || {
        std::process::Command::new("redis-cli")
            .args([
                "--cluster",
                "reshard",
                &format!("127.0.0.1:{}", cluster.nodes[0].port),
            ])
            .args(["--cluster-from", &source_id, "--cluster-to", &target_id])
            .args(["--cluster-slots", &moved.to_string(), "--cluster-yes"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .map(|out| (out, cluster))
    })
    .await
    .unwrap();
    let (out, cluster) = reshard.expect("redis-cli runs");
    assert!(
        out.status.success(),
        "reshard: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resharded_in = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    churn.await.unwrap();
    writer.await.unwrap();
    assert_eq!(
        cluster.master_of(slot),
        Some(target),
        "the project's slot moved"
    );

    let answers = answers.lock().unwrap().clone();
    let failed: Vec<_> = answers.iter().filter(|(_, a)| *a != Ok(200)).collect();
    println!(
        "reshard of {moved} slots in {resharded_in:?}: {} writes, {} not 200: {failed:?}",
        answers.len(),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "every write succeeded during the reshard: {failed:?}"
    );
    let apis: Vec<Api> = (0..2).map(|i| nodes.api(i)).collect();
    let expected = [
        (steady.puid.as_str(), truth("online", 1, &["web"])),
        (agent.puid.as_str(), truth("offline", 0, &[])),
    ];
    converge(&apis, &pid, &owner.token, &expected, Duration::from_secs(5))
        .await
        .expect("presence right after the reshard");
    assert!(steady_tab.is_open(), "the steady socket stayed open");

    let marker = api
        .put(
            &format!("/v3/{pid}/project_users/{owner_puid}"),
            &owner.token,
            json!({"profileStatus": "marker"}),
        )
        .await;
    assert!(matches!(marker, Ok((200, _))), "{marker:?}");
    assert!(
        events
            .wait_for(Duration::from_secs(10), |e| e["payload"]["profileStatus"]
                == json!("marker"))
            .await,
        "the consumer got the marker"
    );
    let envelopes: Vec<Value> = events
        .stop()
        .await
        .iter()
        .filter(|e| e.event.as_deref() != Some("resync"))
        .map(|e| e.json())
        .collect();
    let mut ids = HashSet::new();
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    for e in &envelopes {
        assert!(ids.insert(e["id"].to_string()), "event twice: {e}");
        let puid = e["payload"]["_id"].as_str().unwrap_or_default().to_string();
        let seq = e["seq"].as_u64().expect("seq");
        if let Some(previous) = last_seq.insert(puid.clone(), seq) {
            assert!(seq > previous, "seq of {puid} went {previous} -> {seq}");
        }
    }
    let seen: HashSet<String> = envelopes
        .iter()
        .filter(|e| e["payload"]["_id"] == json!(steady.puid))
        .filter_map(|e| e["payload"]["profileStatus"].as_str().map(str::to_string))
        .collect();
    let lost: Vec<&String> = answers
        .iter()
        .map(|(v, _)| v)
        .filter(|v| !seen.contains(*v))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged changes without their event: {lost:?}"
    );
}
