//! Events across nodes on one private Redis or Redis Cluster: every subscriber on every node gets
//! each event exactly once, in order; webhook deliveries survive a SIGKILLed node.

use crate::common;

use common::receiver::Receiver;
use common::{
    spawn_app_with, token_query, unique_prefix, Agent, Backend, Engine, GatewayProcess, SseClient,
    TestApp,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(400);

async fn nodes(redis: &Backend, n: usize, overrides: &[(&str, &str)]) -> Vec<TestApp> {
    let prefix = unique_prefix();
    let mut nodes = Vec::new();
    for _ in 0..n {
        let engine = Engine::RedisAt {
            url: redis.url(),
            prefix: prefix.clone(),
        };
        nodes.push(spawn_app_with(engine, overrides).await);
    }
    nodes
}

async fn every_subscriber_on_every_node_gets_each_change_exactly_once_in_order(redis: Backend) {
    let nodes = nodes(
        &redis,
        2,
        &[("offline_grace_ms", "0"), ("node_ttl_ms", "1500")],
    )
    .await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let common::OwnerAndAgent {
        owner,
        agent,
        pid,
        puid,
    } = a.owner_and_agent().await;
    let watch = format!("{}&presence=false", token_query(&owner.token));
    let mut sockets: Vec<Agent> = Vec::new();
    let mut streams: Vec<SseClient> = Vec::new();
    for node in &nodes {
        let mut socket = node.ws(&watch).await;
        socket
            .subscribe(&format!("/{pid}/project_users"), None)
            .await;
        sockets.push(socket);
        streams.push(
            node.sse(&pid, Some(&owner.token), "", None)
                .await
                .expect("stream opens"),
        );
    }

    // Changes made on either node, by REST and by a tab opening and closing on node A.
    let path = format!("/v3/{pid}/project_users/{puid}");
    a.put(&path, &owner.token, json!({"user_available": false}))
        .await
        .expect(200);
    b.put(&path, &owner.token, json!({"profileStatus": "lunch"}))
        .await
        .expect(200);
    let tab = a.ws(&token_query(&agent.token)).await;
    b.wait_status(&pid, &puid, &owner.token, "online", WAIT)
        .await;
    tab.close().await;
    b.wait_status(&pid, &puid, &owner.token, "offline", WAIT)
        .await;
    b.put(&path, &owner.token, json!({"role": "supervisor"}))
        .await
        .expect(200);
    let expected = [
        "availability.update",
        "availability.update",
        "presence.online",
        "presence.offline",
        "project_user.update",
    ];

    let mut seen: Vec<Vec<Value>> = Vec::new();
    for socket in &mut sockets {
        let mut events = Vec::new();
        for _ in expected {
            events.push(socket.next_event().await);
        }
        socket.expect_silence(QUIET).await;
        seen.push(events);
    }
    for stream in &mut streams {
        let mut events = Vec::new();
        for _ in expected {
            let event = stream.next(WAIT).await;
            let envelope = event.json();
            assert_eq!(event.id.as_deref(), envelope["id"].as_str());
            events.push(envelope);
        }
        stream.expect_silence(QUIET).await;
        seen.push(events);
    }
    let types: Vec<&str> = seen[0]
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, expected);
    let seqs: Vec<u64> = seen[0].iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq {seqs:?}");
    for (i, events) in seen.iter().enumerate() {
        assert_eq!(
            events, &seen[0],
            "subscriber {i} got the same events, with the same ids, in the same order"
        );
    }
    let (on, off) = nodes.iter().fold((0, 0), |(on, off), n| {
        let (a, b) = n.state.tracker.transitions();
        (on + a, off + b)
    });
    assert_eq!((on, off), (1, 1), "one transition each way, cluster-wide");
}

/// A slow receiver and a burst of events on a gateway process; the process is SIGKILLed while
/// deliveries are in flight or not yet planned; another node starts; every event arrives.
async fn webhook_deliveries_of_a_sigkilled_node_are_completed_by_another(redis: Backend) {
    let prefix = unique_prefix();
    let engine = Engine::RedisAt {
        url: redis.url(),
        prefix: prefix.clone(),
    };
    let webhooks = [
        ("webhook_allow_private", "true"),
        ("webhook_retry_ms", "0,200,400"),
        ("webhook_timeout_ms", "1000"),
        ("node_ttl_ms", "1500"),
    ];
    // Set up through an in-process node, then stop it: the burst must go through the process.
    let setup = spawn_app_with(engine.clone(), &webhooks).await;
    let common::OwnerAndAgent {
        owner, pid, puid, ..
    } = setup.owner_and_agent().await;
    let receiver = Receiver::start().await;
    receiver.delay("/hook", Duration::from_millis(300));
    let subscription = setup
        .post(
            &format!("/v3/{pid}/subscriptions"),
            &owner.token,
            json!({"event": "*", "target": receiver.url("/hook")}),
        )
        .await
        .expect(200);
    receiver.set_secret("/hook", subscription["secret"].as_str().unwrap());
    setup.stop().await;

    let env: Vec<(String, &str)> = webhooks
        .iter()
        .map(|(k, v)| (format!("PRESENCE_{}", k.to_uppercase()), *v))
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let mut doomed = GatewayProcess::start(&redis.url(), &prefix, &env);
    doomed.wait_healthy().await;
    let http = common::http();
    let burst = 40;
    for i in 0..burst {
        let response = http
            .put(format!(
                "{}/v3/{pid}/project_users/{puid}",
                doomed.address()
            ))
            .header("Authorization", &owner.token)
            .json(&json!({"profileStatus": format!("burst-{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    doomed.kill();
    let delivered_before = distinct_ids(&receiver);
    println!("{delivered_before} of {burst} events delivered before the SIGKILL");
    assert!(
        delivered_before < burst,
        "the kill came too late to test anything"
    );

    let survivor = spawn_app_with(engine, &webhooks).await;
    let started = Instant::now();
    let all = common::eventually(Duration::from_secs(20), || async {
        distinct_ids(&receiver) >= burst
    })
    .await;
    assert!(
        all,
        "only {} of {burst} events arrived",
        distinct_ids(&receiver)
    );
    println!(
        "the rest arrived {:?} after the survivor started",
        started.elapsed()
    );
    let hits = receiver.hits("/hook");
    for hit in &hits {
        hit.assert_signed();
        assert_eq!(hit.header("webhook-id"), hit.json["id"].as_str().unwrap());
        assert_eq!(hit.json["type"], json!("availability.update"));
    }
    let statuses: HashSet<&str> = hits
        .iter()
        .map(|h| h.json["payload"]["profileStatus"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), burst, "every change's event arrived");
    drop(survivor);
}

fn distinct_ids(receiver: &Receiver) -> usize {
    receiver
        .hits("/hook")
        .iter()
        .filter_map(|h| h.headers.get("webhook-id").cloned())
        .collect::<HashSet<_>>()
        .len()
}

/// A key deleted through one node: its socket (4003) and its stream on another node end within
/// 1 s (that node learns it at its next check of its keys), with a heartbeat far longer than
/// that.
async fn a_key_deleted_on_one_node_is_cut_off_on_the_others(redis: Backend) {
    let nodes = nodes(&redis, 2, &[("heartbeat_ms", "60000")]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let common::OwnerAndAgent { owner, pid, .. } = a.owner_and_agent().await;
    let created = a
        .post(
            &format!("/v3/{pid}/keys"),
            &owner.token,
            json!({"role": "agent"}),
        )
        .await
        .expect(200);
    let key = created["key"].as_str().unwrap().to_string();
    let mut socket = b.ws(&format!("token={key}")).await;
    socket.subscribe(&format!("/{pid}/events"), None).await;
    let mut stream = b.sse(&pid, Some(&key), "", None).await.expect("opens");
    a.delete(
        &format!("/v3/{pid}/keys/{}", created["_id"].as_str().unwrap()),
        &owner.token,
    )
    .await
    .expect(200);
    let deleted = Instant::now();
    assert_eq!(socket.closed_with().await, Some(4003));
    let ended = stream.try_next(Duration::from_secs(3)).await;
    assert_eq!(ended, Ok(None), "the stream ends");
    let took = deleted.elapsed();
    println!("socket closed and stream ended {took:?} after the key's deletion");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

backend_tests!(
    every_subscriber_on_every_node_gets_each_change_exactly_once_in_order,
    webhook_deliveries_of_a_sigkilled_node_are_completed_by_another,
    a_key_deleted_on_one_node_is_cut_off_on_the_others,
);
