//! A rolling restart of the gateway nodes under churn.

use super::*;

/// What the always-connected teammate's client saw at each handover.
#[derive(Debug)]
struct Handover {
    from: usize,
    to: usize,
    code: Option<u16>,
    /// From the close frame to the new socket's handshake done.
    gap: Duration,
}

/// Three gateway processes (fixed node ids, as a StatefulSet would give them) restarted one by
/// one with SIGTERM on the same port, under churn. One teammate always has a tab on a live node
/// (it moves after each 1012 close); four others connect and disconnect continuously. An SSE
/// consumer reads the whole run, resuming with `Last-Event-ID` whenever its node goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_churn() {
    let _serial = exclusive().await;
    let test_started = Instant::now();
    let redis = RedisServer::start(false);
    let prefix = unique_prefix();
    let log = log_file("rolling");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let node_ids: Vec<String> = (0..3)
        .map(|i| format!("roll-{i}-{}", uuid::Uuid::new_v4().simple()))
        .collect();
    let start_node = |i: usize| {
        process_node(
            &redis.url(),
            &prefix,
            ports[i],
            &[("PRESENCE_NODE_ID", node_ids[i].as_str())],
            &log,
        )
    };
    let mut processes: Vec<Option<GatewayProcess>> = (0..3).map(|i| Some(start_node(i))).collect();
    for process in processes.iter().flatten() {
        process.wait_healthy().await;
    }
    let nodes = Nodes::new(&ports);
    for i in 0..3 {
        nodes.api(i).wait_ready(200, Duration::from_secs(10)).await;
    }
    let api = nodes.api(0);
    let (owner, pid, owner_puid) = api.new_project().await;
    // Before any event, so it sees the whole log.
    let events = Collector::start(nodes.clone(), 0, &pid, &owner.token);
    events.connected().await;
    let steady = api.new_mate(&owner, &pid, "steady").await;
    let mut churners = Vec::new();
    for i in 0..4 {
        churners.push(api.new_mate(&owner, &pid, &format!("churn{i}")).await);
    }
    let stop = Arc::new(AtomicBool::new(false));

    // The always-connected tab: on close, straight to the next live node.
    let handovers: Arc<Mutex<Vec<Handover>>> = Arc::default();
    let mut first_tab = Tab::open(ports[0], &tab_query(&steady.user.token, "web"))
        .await
        .unwrap();
    first_tab.round_trip(Duration::from_secs(3)).await.unwrap();
    let keeper = tokio::spawn({
        let (nodes, stop, handovers) = (nodes.clone(), stop.clone(), handovers.clone());
        let query = tab_query(&steady.user.token, "web");
        async move {
            let mut tab = first_tab;
            let mut node = 0;
            loop {
                let stopped = async {
                    while !stop.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                };
                let closed = tokio::select! {
                    code = tab.wait_closed() => Some(code),
                    _ = stopped => None,
                };
                let Some(code) = closed else {
                    return tab;
                };
                let closed = Instant::now();
                let from = node;
                let reopened = loop {
                    node = nodes.next_up(node);
                    match Tab::open(nodes.ports[node], &query).await {
                        Ok(tab) => break tab,
                        Err(_) if closed.elapsed() < Duration::from_secs(10) => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        Err(e) => panic!("the steady tab could not reconnect: {e}"),
                    }
                };
                handovers.lock().unwrap().push(Handover {
                    from,
                    to: node,
                    code,
                    gap: closed.elapsed(),
                });
                tab = reopened;
            }
        }
    });
    let steady_online = [(steady.puid.as_str(), truth("online", 1, &["web"]))];
    converge(
        std::slice::from_ref(&api),
        &pid,
        &owner.token,
        &steady_online,
        Duration::from_secs(5),
    )
    .await
    .unwrap();

    // The steady teammate's presence, read on a live node every 30 ms.
    let readings: Arc<Mutex<Vec<(Instant, usize, Value)>>> = Arc::default();
    let unavailable = Arc::new(AtomicUsize::new(0));
    let poller = tokio::spawn({
        let (nodes, stop, readings, unavailable) = (
            nodes.clone(),
            stop.clone(),
            readings.clone(),
            unavailable.clone(),
        );
        let path = format!("/v3/{pid}/project_users/{}", steady.puid);
        let token = owner.token.clone();
        async move {
            let apis: Vec<Api> = (0..3).map(|i| nodes.api(i)).collect();
            let mut node = 0;
            while !stop.load(Ordering::SeqCst) {
                node = nodes.next_up(node);
                match apis[node].get(&path, &token).await {
                    Ok((200, teammate)) => readings.lock().unwrap().push((
                        Instant::now(),
                        node,
                        teammate["presence"].clone(),
                    )),
                    _ => {
                        unavailable.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    });

    // Churn: each churner opens a tab on a random live node, holds it a while, closes it.
    let seed = seed();
    println!("rolling restart: churn seed {seed} (FAULTS_SEED to replay)");
    let mut churn_tasks = Vec::new();
    // Churn tabs open per node, so that each restart finds some to close.
    let open_on: Arc<Vec<AtomicUsize>> = Arc::new((0..3).map(|_| AtomicUsize::new(0)).collect());
    for (k, mate) in churners.iter().enumerate() {
        let (nodes, stop, open_on) = (nodes.clone(), stop.clone(), open_on.clone());
        let query = tab_query(&mate.user.token, if k % 2 == 0 { "web" } else { "mobile" });
        let mut rng = Rng(seed.wrapping_add(k as u64 * 7919) | 1);
        churn_tasks.push(tokio::spawn(async move {
            let (mut cycles, mut restarts) = (0usize, 0usize);
            while !stop.load(Ordering::SeqCst) {
                let node = nodes.next_up(rng.below(3) as usize);
                if let Ok(mut tab) = Tab::open(nodes.ports[node], &query).await {
                    let hold = Duration::from_millis(50 + rng.below(350));
                    open_on[node].fetch_add(1, Ordering::SeqCst);
                    let code = tokio::select! {
                        _ = tokio::time::sleep(hold) => None,
                        code = tab.wait_closed() => code,
                    };
                    open_on[node].fetch_sub(1, Ordering::SeqCst);
                    restarts += usize::from(code == Some(1012));
                    tab.close().await;
                    cycles += 1;
                }
                // Half of the pauses outlast the grace period: an offline and an online each.
                tokio::time::sleep(Duration::from_millis(rng.below(2 * GRACE_MS + 100))).await;
            }
            (cycles, restarts)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // Restart each node in turn.
    let mut phases = Vec::new();
    for i in 0..3 {
        // Besides the random churn, one churner's tab is surely on the node going away.
        let churner = &churners[i];
        let mut victim = Tab::open(ports[i], &tab_query(&churner.user.token, "victim"))
            .await
            .unwrap();
        victim.round_trip(Duration::from_secs(3)).await.unwrap();
        let churn_open = open_on[i].load(Ordering::SeqCst);
        nodes.set_up(i, false);
        let mut process = processes[i].take().unwrap();
        let started = Instant::now();
        let code = tokio::task::spawn_blocking(move || process.terminate())
            .await
            .unwrap();
        let stopped_in = started.elapsed();
        let victim_code = tokio::time::timeout(Duration::from_secs(2), victim.wait_closed()).await;
        assert_eq!(
            victim_code,
            Ok(Some(1012)),
            "a tab on the node going away closes with 1012"
        );
        drop(victim);
        assert_eq!(
            code,
            Some(0),
            "node {i} exits 0 after SIGTERM (log {})",
            log.display()
        );
        let restarted = Instant::now();
        let process = start_node(i);
        process.wait_healthy().await;
        nodes.api(i).wait_ready(200, Duration::from_secs(10)).await;
        let ready_in = restarted.elapsed();
        processes[i] = Some(process);
        nodes.set_up(i, true);
        phases.push((ms(stopped_in), ms(ready_in), churn_open));
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }

    stop.store(true, Ordering::SeqCst);
    let mut cycles = Vec::new();
    for task in churn_tasks {
        cycles.push(task.await.unwrap());
    }
    poller.await.unwrap();
    let steady_tab = keeper.await.unwrap();
    // The churners' last offlines, then a marker: once the consumer has it, it has everything.
    tokio::time::sleep(Duration::from_millis(GRACE_MS + 700)).await;
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
    let mut con = redis_connection(&redis.url());
    let keys = common::redis_keys(&prefix);
    let partition = keys.of_project(pid.parse().unwrap());
    let log_length: usize = redis::cmd("XLEN")
        .arg(partition.events())
        .query(&mut con)
        .unwrap();
    let last_seqs: HashMap<String, u64> = redis::cmd("HGETALL")
        .arg(partition.event_seq())
        .query(&mut con)
        .unwrap();
    let streams = events.streams.lock().unwrap().clone();
    let received = events.stop().await;
    assert!(got_marker, "the SSE consumer got the final marker");

    // The steady teammate: every handover was a 1012 close, reconnected within the grace period,
    // and it never read offline.
    let handovers = std::mem::take(&mut *handovers.lock().unwrap());
    assert_eq!(
        handovers.iter().map(|h| (h.from, h.to)).collect::<Vec<_>>(),
        [(0, 1), (1, 2), (2, 0)],
        "the steady tab moved once per restart: {handovers:?}"
    );
    for h in &handovers {
        assert_eq!(
            h.code,
            Some(1012),
            "a node going away closes with 1012: {h:?}"
        );
        assert!(
            h.gap < Duration::from_millis(GRACE_MS),
            "the client reconnected within the grace period, else an offline would be right: {h:?}"
        );
    }
    let readings = std::mem::take(&mut *readings.lock().unwrap());
    let offline: Vec<&(Instant, usize, Value)> = readings
        .iter()
        .filter(|(_, _, p)| p["status"] != json!("online"))
        .collect();
    assert!(
        readings.len() > 50,
        "the steady teammate was polled {} times",
        readings.len()
    );
    assert!(
        offline.is_empty(),
        "the always-connected teammate read offline: {offline:?}"
    );
    let by_node: BTreeMap<usize, usize> =
        readings.iter().fold(BTreeMap::new(), |mut m, (_, n, _)| {
            *m.entry(*n).or_default() += 1;
            m
        });

    // The SSE consumer's view: no resync, no duplicate, per-teammate seq 1, 2, 3, … with no gap,
    // exactly the log's length, and no offline for the steady teammate.
    assert!(
        received
            .iter()
            .all(|e| e.event.as_deref() != Some("resync")),
        "no resync on resume"
    );
    let envelopes: Vec<Value> = received.iter().map(SseEvent::json).collect();
    let ids: HashSet<&str> = received.iter().map(|e| e.id.as_deref().unwrap()).collect();
    assert_eq!(ids.len(), received.len(), "no event id twice");
    for (event, envelope) in received.iter().zip(&envelopes) {
        assert_eq!(event.id.as_deref(), envelope["id"].as_str());
    }
    assert_eq!(
        received.len(),
        log_length,
        "the consumer got every event of the log"
    );
    let mut seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for envelope in &envelopes {
        seqs.entry(envelope["project_user_id"].as_str().unwrap().to_string())
            .or_default()
            .push(envelope["seq"].as_u64().unwrap());
    }
    for (puid, list) in &seqs {
        let expected: Vec<u64> = (1..=list.len() as u64).collect();
        assert_eq!(
            list, &expected,
            "seq of {puid}: strictly increasing, no gap"
        );
        assert_eq!(
            last_seqs.get(&format!("{pid}:{puid}")),
            list.last(),
            "the last seq of {puid}"
        );
    }
    let steady_offline = envelopes
        .iter()
        .filter(|e| {
            e["project_user_id"] == json!(steady.puid) && e["type"] == json!("presence.offline")
        })
        .count();
    assert_eq!(
        steady_offline, 0,
        "no presence.offline for the always-connected teammate"
    );
    let churn_events: usize = churners
        .iter()
        .map(|m| seqs.get(&m.puid).map_or(0, Vec::len))
        .sum();
    assert!(churn_events > 20, "the churn made {churn_events} events");
    println!(
        "rolling restart: phases (SIGTERM to exit ms, restart to ready ms, random churn tabs \
         on the node) {phases:?}; handovers {:?} ms; {} polls of the steady teammate \
         ({by_node:?} per node), {} unavailable, none offline; churn (cycles, tabs closed by a \
         restart) {cycles:?}; {} events over {} SSE streams, seq gap-free for {} teammates",
        handovers.iter().map(|h| ms(h.gap)).collect::<Vec<_>>(),
        readings.len(),
        unavailable.load(Ordering::SeqCst),
        received.len(),
        streams.len(),
        seqs.len(),
    );
    drop(steady_tab);
    let _ = std::fs::remove_file(&log);
    println!("rolling restart test took {:?}", test_started.elapsed());
}
