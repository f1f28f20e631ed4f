//! A gateway node SIGKILLed under load.

use super::*;

/// A gateway process holds tabs of six teammates and takes a steady stream of REST changes;
/// it is SIGKILLed. Seen from the surviving node: the four whose only tabs were on it go
/// offline within node TTL + grace + 1 s; the two who also have a tab on the survivor never
/// read offline; every event (webhook deliveries pending on the dead node included) is
/// delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_sigkilled_under_load() {
    let _serial = exclusive().await;
    let test_started = Instant::now();
    let redis = RedisServer::start(false);
    let prefix = unique_prefix();
    let survivor = in_process_node(&redis.url(), &prefix).await;
    let log = log_file("sigkill");
    let mut doomed = process_node(&redis.url(), &prefix, free_port(), &[], &log);
    doomed.wait_healthy().await;
    let s_api = Api::new(&survivor.address);
    let d_api = Api::new(&doomed.address());

    let (owner, pid, _) = s_api.new_project().await;
    let mut solos = Vec::new();
    for i in 0..4 {
        solos.push(s_api.new_mate(&owner, &pid, &format!("solo{i}")).await);
    }
    let mut boths = Vec::new();
    for i in 0..2 {
        boths.push(s_api.new_mate(&owner, &pid, &format!("both{i}")).await);
    }
    let target = s_api.new_mate(&owner, &pid, "target").await;

    let receiver = Receiver::start().await;
    // Slow answers: deliveries are in flight on the doomed node when it dies.
    receiver.delay("/hook", Duration::from_millis(400));
    let (subscription, secret) =
        subscribe(&s_api, &pid, &owner.token, "*", &receiver.url("/hook")).await;
    receiver.set_secret("/hook", &secret);
    let events = Collector::start(Nodes::new(&[survivor.port]), 0, &pid, &owner.token);
    events.connected().await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut tabs = Vec::new();
    for mate in &solos {
        for channel in ["web", "mobile"] {
            tabs.push(
                Tab::open(doomed.port, &tab_query(&mate.user.token, channel))
                    .await
                    .unwrap(),
            );
        }
    }
    for mate in &boths {
        tabs.push(
            Tab::open(doomed.port, &tab_query(&mate.user.token, "mobile"))
                .await
                .unwrap(),
        );
        tabs.push(
            Tab::open(survivor.port, &tab_query(&mate.user.token, "web"))
                .await
                .unwrap(),
        );
    }
    let mut expected: Vec<(&str, Truth)> = solos
        .iter()
        .map(|m| (m.puid.as_str(), truth("online", 2, &["mobile", "web"])))
        .collect();
    expected.extend(
        boths
            .iter()
            .map(|m| (m.puid.as_str(), truth("online", 2, &["mobile", "web"]))),
    );
    converge(
        &[s_api.clone(), d_api.clone()],
        &pid,
        &owner.token,
        &expected,
        Duration::from_secs(5),
    )
    .await
    .unwrap();

    // The survivor's view, polled all along: (when, teammate id, status).
    let stop = Arc::new(AtomicBool::new(false));
    let readings: Arc<Mutex<Vec<(Instant, String, String)>>> = Arc::default();
    let poller = tokio::spawn({
        let (api, pid, token) = (s_api.clone(), pid.clone(), owner.token.clone());
        let (stop, readings) = (stop.clone(), readings.clone());
        async move {
            while !stop.load(Ordering::SeqCst) {
                if let Ok(all) = api.presences(&pid, &token).await {
                    let now = Instant::now();
                    let mut readings = readings.lock().unwrap();
                    for (puid, presence) in all {
                        readings.push((
                            now,
                            puid,
                            presence["status"].as_str().unwrap_or("?").to_string(),
                        ));
                    }
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    });
    // A steady stream of changes, through the doomed node until it dies, then the survivor.
    let killed_flag = Arc::new(AtomicBool::new(false));
    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let stream = tokio::spawn({
        let (d_api, s_api) = (d_api.clone(), s_api.clone());
        let path = format!("/v3/{pid}/project_users/{}", target.puid);
        let token = owner.token.clone();
        let (stop, killed_flag, accepted) = (stop.clone(), killed_flag.clone(), accepted.clone());
        async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let api = if killed_flag.load(Ordering::SeqCst) {
                    &s_api
                } else {
                    &d_api
                };
                let value = format!("load-{i}");
                if let Ok((200, _)) = api
                    .put(&path, &token, json!({"profileStatus": value}))
                    .await
                {
                    accepted.lock().unwrap().push(value);
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let accepted_before_kill = accepted.lock().unwrap().len();
    doomed.kill();
    let killed = Instant::now();
    killed_flag.store(true, Ordering::SeqCst);
    let received_before_kill = received_ids(&receiver, "/hook");
    // Events logged before the kill whose delivery was not recorded as done: pending then.
    let done_at_kill = delivered_ids(&s_api, &pid, &owner.token, &subscription).await;
    let pending_at_kill: HashSet<String> = events
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, _)| *at < killed)
        .filter_map(|(_, e)| e.id.clone())
        .filter(|id| !done_at_kill.contains(id))
        .collect();

    // The solos go offline as seen from the survivor; then watch a while longer.
    let solo_ids: Vec<String> = solos.iter().map(|m| m.puid.clone()).collect();
    let all_offline = common::eventually(Duration::from_secs(8), || async {
        let readings = readings.lock().unwrap();
        solo_ids.iter().all(|id| {
            readings
                .iter()
                .any(|(at, p, s)| *at > killed && p == id && s == "offline")
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    poller.await.unwrap();
    stream.await.unwrap();
    assert!(
        all_offline,
        "the dead node's teammates went offline on the survivor"
    );

    let readings = readings.lock().unwrap().clone();
    let budget = Duration::from_millis(NODE_TTL_MS + GRACE_MS + 1000);
    let mut offline_after = Vec::new();
    for mate in &solos {
        let first = readings
            .iter()
            .find(|(at, p, s)| *at > killed && *p == mate.puid && s == "offline")
            .map(|(at, _, _)| *at - killed)
            .unwrap();
        assert!(
            first <= budget,
            "{} read offline {first:?} after the SIGKILL (budget {budget:?})",
            mate.name
        );
        offline_after.push(ms(first));
    }
    for mate in &boths {
        let polls = readings.iter().filter(|(_, p, _)| *p == mate.puid).count();
        let offline = readings
            .iter()
            .filter(|(_, p, s)| *p == mate.puid && s != "online")
            .count();
        assert!(polls > 20, "{} was polled {polls} times", mate.name);
        assert_eq!(
            offline, 0,
            "{} has a tab on the survivor and never reads offline",
            mate.name
        );
    }
    let boths_now: Vec<(&str, Truth)> = boths
        .iter()
        .map(|m| (m.puid.as_str(), truth("online", 1, &["web"])))
        .collect();
    converge(
        std::slice::from_ref(&s_api),
        &pid,
        &owner.token,
        &boths_now,
        Duration::from_secs(3),
    )
    .await
    .expect("the dead node's tabs no longer count");

    // Every accepted change has its event; every event is delivered, signed.
    let accepted = accepted.lock().unwrap().clone();
    let logged = common::eventually(Duration::from_secs(5), || async {
        let statuses: HashSet<String> = events
            .envelopes()
            .iter()
            .filter_map(|e| e["payload"]["profileStatus"].as_str().map(String::from))
            .collect();
        accepted.iter().all(|v| statuses.contains(v))
    })
    .await;
    assert!(logged, "every accepted change's event is in the log");
    let event_ids: HashSet<String> = events
        .events()
        .iter()
        .filter_map(|e| e.id.clone())
        .collect();
    let mut missing = event_ids.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !missing.is_empty() && Instant::now() < deadline {
        let done = delivered_ids(&s_api, &pid, &owner.token, &subscription).await;
        missing.retain(|id| !done.contains(id));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_delivered_in = killed.elapsed();
    assert!(
        missing.is_empty(),
        "{} of {} events never delivered: {missing:?}",
        missing.len(),
        event_ids.len()
    );
    let hits = receiver.hits("/hook");
    for hit in &hits {
        hit.assert_signed();
        assert_eq!(hit.header("webhook-id"), hit.json["id"].as_str().unwrap());
    }
    let received = received_ids(&receiver, "/hook");
    assert!(event_ids.is_subset(&received));
    let redelivered = hits
        .iter()
        .filter(|h| h.at > killed && received_before_kill.contains(h.header("webhook-id")))
        .count();
    let first_after_kill = received.difference(&received_before_kill).count();
    assert!(
        !pending_at_kill.is_empty(),
        "the kill left nothing pending: the test proved nothing"
    );
    assert!(pending_at_kill.iter().all(|id| event_ids.contains(id)));
    println!(
        "sigkill: {accepted_before_kill} changes accepted by the doomed node before the kill, \
         {} in all; solos offline on the survivor {offline_after:?} ms after the SIGKILL (budget \
         {} ms); {} events, {} of them pending at the kill, all delivered {} ms after the kill \
         ({first_after_kill} first sent after the kill, {redelivered} sent again after it); log \
         {}",
        accepted.len(),
        ms(budget),
        event_ids.len(),
        pending_at_kill.len(),
        ms(all_delivered_in),
        log.display()
    );
    events.stop().await;
    drop(tabs);
    let _ = std::fs::remove_file(&log);
    println!("sigkill test took {:?}", test_started.elapsed());
}
