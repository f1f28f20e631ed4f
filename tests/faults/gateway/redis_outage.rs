//! Redis killed and restarted (empty, or with persistence) under gateway nodes with open tabs.

use super::*;

/// Two nodes, tabs on both; Redis is SIGKILLed for longer than the node TTL and two heartbeat
/// intervals, then restarted on the same port (and, with `persistent`, the same append-only
/// file, fsynced on every write).
///
/// Without persistence Redis comes back empty. Lost: users, e-mail index, projects, teammates,
/// API keys, invitations, webhook subscriptions and pending deliveries, the event log, every
/// `seq` counter and the event-id salt, presence state and node leases. Old tokens are still
/// valid JWTs but name users that no longer exist, and the open sockets count for teammates
/// that no longer exist. What stays observable: readiness, the open sockets (still answering),
/// the nodes re-registering their leases, and that the cluster works for new sign-ups.
async fn redis_outage(persistent: bool) {
    let _serial = exclusive().await;
    let test_started = Instant::now();
    let mut redis = RedisServer::start(persistent);
    let prefix = unique_prefix();
    let a = in_process_node(&redis.url(), &prefix).await;
    let b = in_process_node(&redis.url(), &prefix).await;
    let nodes = [Api::new(&a.address), Api::new(&b.address)];
    let (owner, pid, _) = nodes[0].new_project().await;
    let x = nodes[0].new_mate(&owner, &pid, "x").await;
    let y = nodes[1].new_mate(&owner, &pid, "y").await;
    let z = nodes[0].new_mate(&owner, &pid, "z").await;
    let w = nodes[1].new_mate(&owner, &pid, "w").await;
    // u's only tab is on B and stays open: nobody may reap B while Redis comes back.
    let u = nodes[1].new_mate(&owner, &pid, "u").await;

    let receiver = Receiver::start().await;
    let subscription = if persistent {
        // Slow answers, so that deliveries are in flight when Redis dies.
        receiver.delay("/hook", Duration::from_millis(600));
        let (id, secret) =
            subscribe(&nodes[1], &pid, &owner.token, "*", &receiver.url("/hook")).await;
        receiver.set_secret("/hook", &secret);
        Some(id)
    } else {
        None
    };
    let events = Collector::start(Nodes::new(&[a.port]), 0, &pid, &owner.token);
    events.connected().await;

    let mut x_a = Tab::open(a.port, &tab_query(&x.user.token, "web"))
        .await
        .unwrap();
    let y_b = Tab::open(b.port, &tab_query(&y.user.token, "web"))
        .await
        .unwrap();
    let mut z_a = Tab::open(a.port, &tab_query(&z.user.token, "web"))
        .await
        .unwrap();
    let mut u_b = Tab::open(b.port, &tab_query(&u.user.token, "web"))
        .await
        .unwrap();
    let z_b = Tab::open(b.port, &tab_query(&z.user.token, "mobile"))
        .await
        .unwrap();
    let before = [
        (x.puid.as_str(), truth("online", 1, &["web"])),
        (y.puid.as_str(), truth("online", 1, &["web"])),
        (z.puid.as_str(), truth("online", 2, &["mobile", "web"])),
        (w.puid.as_str(), truth("offline", 0, &[])),
        (u.puid.as_str(), truth("online", 1, &["web"])),
    ];
    converge(&nodes, &pid, &owner.token, &before, Duration::from_secs(5))
        .await
        .unwrap();

    // Changes accepted (200) just before the outage, on both nodes.
    let x_path = format!("/v3/{pid}/project_users/{}", x.puid);
    let accepted = 10;
    for i in 0..accepted {
        let answer = nodes[i % 2]
            .put(
                &x_path,
                &owner.token,
                json!({"profileStatus": format!("before-{i}")}),
            )
            .await;
        assert!(matches!(answer, Ok((200, _))), "{answer:?}");
    }
    let last = format!("before-{}", accepted - 1);
    assert!(
        events
            .wait_for(Duration::from_secs(5), |e| e["payload"]["profileStatus"]
                == json!(last))
            .await,
        "the accepted changes' events reached the SSE consumer"
    );
    let accepted_ids: HashSet<String> = events
        .events()
        .iter()
        .filter_map(|e| e.id.clone())
        .collect();
    // Deliveries recorded as done a moment before the kill; the others are pending in Redis
    // (the receiver answers after 600 ms, so most are in flight).
    let done_before_outage = match &subscription {
        Some(id) => delivered_ids(&nodes[0], &pid, &owner.token, id).await,
        None => HashSet::new(),
    };

    redis.kill();
    let killed = Instant::now();
    let mut not_ready_after = Vec::new();
    for node in &nodes {
        not_ready_after.push(ms(node.wait_ready(503, Duration::from_secs(5)).await));
    }
    // Changes attempted during the outage are refused, never accepted and lost.
    let mut refused = 0;
    for round in 0..2 {
        for (i, node) in nodes.iter().enumerate() {
            let answer = node
                .put(
                    &x_path,
                    &owner.token,
                    json!({"profileStatus": format!("during-{round}-{i}")}),
                )
                .await;
            assert!(
                matches!(answer, Ok((503, _))),
                "a change during the outage: {answer:?}"
            );
            refused += 1;
        }
    }
    // The truth changes while Redis is down: y's only tab and z's tab on B close.
    y_b.close().await;
    z_b.close().await;
    // Longer than the node TTL and than two heartbeat intervals: the remaining tabs must have
    // kept answering the server's pings, and must still answer.
    let outage = Duration::from_millis(2500);
    tokio::time::sleep(outage.saturating_sub(killed.elapsed())).await;
    for tab in [&mut x_a, &mut z_a, &mut u_b] {
        assert!(tab.is_open(), "a tab stayed open during the outage");
        tab.round_trip(Duration::from_secs(3))
            .await
            .expect("a heartbeat round trip during the outage");
    }
    for node in &nodes {
        assert_eq!(
            node.readyz().await,
            Some(503),
            "still not ready during the outage"
        );
    }

    redis.restart();
    let restarted = Instant::now();
    let mut ready_after = Vec::new();
    for node in &nodes {
        node.wait_ready(200, Duration::from_secs(10)).await;
        ready_after.push(ms(restarted.elapsed()));
    }
    for tab in [&mut x_a, &mut z_a, &mut u_b] {
        tab.round_trip(Duration::from_secs(3))
            .await
            .expect("a heartbeat round trip after the restart");
    }

    if persistent {
        let after = [
            (x.puid.as_str(), truth("online", 1, &["web"])),
            (y.puid.as_str(), truth("offline", 0, &[])),
            (z.puid.as_str(), truth("online", 1, &["web"])),
            (w.puid.as_str(), truth("offline", 0, &[])),
            (u.puid.as_str(), truth("online", 1, &["web"])),
        ];
        let converged = converge(&nodes, &pid, &owner.token, &after, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| {
                panic!("presence did not converge within 5 s of the restart:\n{e}")
            });
        let converged_in = restarted.elapsed();
        // Nothing refused during the outage was applied.
        let (_, teammate) = nodes[1].get(&x_path, &owner.token).await.unwrap();
        assert_eq!(
            teammate["profileStatus"],
            json!(last),
            "a refused change was not applied"
        );

        // Every event accepted before the outage is delivered after it.
        let subscription = subscription.unwrap();
        let pending_at_outage = accepted_ids.difference(&done_before_outage).count();
        assert!(
            pending_at_outage > 0,
            "every delivery was done before the outage: the test proved nothing"
        );
        let mut missing = accepted_ids.clone();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !missing.is_empty() && Instant::now() < deadline {
            let done = delivered_ids(&nodes[0], &pid, &owner.token, &subscription).await;
            missing.retain(|id| !done.contains(id));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            missing.is_empty(),
            "events accepted before the outage never delivered: {missing:?}"
        );
        let all_delivered_in = restarted.elapsed();
        let hits = receiver.hits("/hook");
        for hit in &hits {
            hit.assert_signed();
        }
        let received = received_ids(&receiver, "/hook");
        assert!(
            accepted_ids.is_subset(&received),
            "every accepted event reached the target"
        );
        let repeated = hits.len() - received.len();

        // Open tabs never read offline around the restart (this once failed: nodes reaped each
        // other before renewing; `a_redis_restart_turns_nobody_with_an_open_tab_offline`).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let envelopes = events.envelopes();
        let names = names_of(&[&x, &y, &z, &w, &u]);
        let flaps = envelopes
            .iter()
            .filter(|e| e["type"] == json!("presence.offline"))
            .filter(|e| ["x", "z", "u"].contains(&name_of(&names, e)))
            .count();
        assert_eq!(
            flaps,
            0,
            "false offline(s) after the restart:\n{}",
            presence_timeline(&envelopes, &names)
        );
        let y_offline = envelopes
            .iter()
            .filter(|e| {
                e["type"] == json!("presence.offline") && e["project_user_id"] == json!(y.puid)
            })
            .count();
        assert_eq!(y_offline, 1, "y went offline once, after the restart");
        println!(
            "redis outage (persistent): /readyz 503 after {not_ready_after:?} ms; {refused} changes \
             refused with 503; /readyz 200 {ready_after:?} ms after the restart; presence \
             converged on both nodes {} ms after the restart ({} ms after it was ready); \
             {pending_at_outage} of {} accepted events still undelivered at the outage, all \
             delivered {} ms after the restart ({repeated} repeated attempts); {flaps} false \
             offline(s)",
            ms(converged_in),
            converged.as_millis(),
            accepted_ids.len(),
            ms(all_delivered_in),
        );
    } else {
        // The old records are gone: the old owner's token names a user that does not exist.
        let (status, body) = nodes[0]
            .get(&format!("/v3/{pid}/project_users"), &owner.token)
            .await
            .unwrap();
        assert!(
            [401, 403, 404].contains(&status),
            "a project lost with Redis's data reads as missing, not as an error: {status} {body}"
        );
        // Both nodes re-register their leases.
        let node_ids = [
            a.state.config.node_id.clone(),
            b.state.config.node_id.clone(),
        ];
        let url = redis.url();
        let keys = common::redis_keys(&prefix);
        let leases_back = common::eventually(Duration::from_secs(5), || {
            let (url, keys, node_ids) = (url.clone(), keys.clone(), node_ids.clone());
            async move {
                let mut con = redis_connection(&url);
                // Every node's lease is mirrored into every partition.
                keys.partitions().all().all(|p| {
                    let leases: Vec<String> = redis::cmd("ZRANGE")
                        .arg(keys.partition(p).leases())
                        .arg(0)
                        .arg(-1)
                        .query(&mut con)
                        .unwrap_or_default();
                    node_ids.iter().all(|n| leases.contains(n))
                })
            }
        })
        .await;
        assert!(leases_back, "both nodes re-registered their leases");
        let leases_in = restarted.elapsed();
        // The cluster works for new sign-ups: presence on one node is seen on the other.
        let (owner2, pid2, _) = nodes[1].new_project().await;
        let v = nodes[0].new_mate(&owner2, &pid2, "v").await;
        let v_tab = Tab::open(b.port, &tab_query(&v.user.token, "web"))
            .await
            .unwrap();
        let online = [(v.puid.as_str(), truth("online", 1, &["web"]))];
        let seen_in = converge(
            &nodes,
            &pid2,
            &owner2.token,
            &online,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        v_tab.close().await;
        let offline = [(v.puid.as_str(), truth("offline", 0, &[]))];
        converge(
            &nodes,
            &pid2,
            &owner2.token,
            &offline,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        println!(
            "redis outage (empty restart): /readyz 503 after {not_ready_after:?} ms; {refused} \
             changes refused with 503; /readyz 200 {ready_after:?} ms after the restart; leases \
             back {} ms after it; the old owner's token now gets {status}; a new tab seen on \
             both nodes in {} ms",
            ms(leases_in),
            ms(seen_in)
        );
    }
    for tab in [&mut x_a, &mut z_a, &mut u_b] {
        assert!(tab.is_open(), "the tabs were never closed by the outage");
    }
    events.stop().await;
    println!(
        "redis outage (persistent: {persistent}) took {:?}",
        test_started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_empty() {
    redis_outage(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_with_persistence() {
    redis_outage(true).await;
}

/// BUG (reproduction): when Redis comes back after an outage longer than the node TTL with its
/// data (persistence, or a replica promoted), every node's lease has expired. Each node's
/// maintenance tick renews its own lease and then reaps the nodes whose lease is still expired,
/// so whichever node gets through first reaps the others before they could renew: teammates
/// whose only tabs are on a reaped node go offline (a `presence.offline` event, webhooks) and
/// back online a few to some tens of milliseconds later, when that node re-asserts its counts.
/// A node whose renewal failed (its connection not yet back) still reaps, so both directions
/// happen. The contract allows an offline only when the last tab closed, the holding node is
/// dead for the node TTL, or heartbeats stop; none of these happened.
///
/// Repeats the outage up to five times (on a 2-core machine the race is lost in a third to all
/// of the restarts) and fails at the first false offline, printing the presence events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_turns_nobody_with_an_open_tab_offline() {
    let _serial = exclusive().await;
    let mut redis = RedisServer::start(true);
    let prefix = unique_prefix();
    let a = in_process_node(&redis.url(), &prefix).await;
    let b = in_process_node(&redis.url(), &prefix).await;
    let nodes = [Api::new(&a.address), Api::new(&b.address)];
    let (owner, pid, _) = nodes[0].new_project().await;
    let p = nodes[0].new_mate(&owner, &pid, "p").await;
    let q = nodes[0].new_mate(&owner, &pid, "q").await;
    let events = Collector::start(Nodes::new(&[a.port]), 0, &pid, &owner.token);
    events.connected().await;
    let mut tabs = [
        Tab::open(a.port, &tab_query(&p.user.token, "web"))
            .await
            .unwrap(),
        Tab::open(b.port, &tab_query(&q.user.token, "web"))
            .await
            .unwrap(),
    ];
    let online = [
        (p.puid.as_str(), truth("online", 1, &["web"])),
        (q.puid.as_str(), truth("online", 1, &["web"])),
    ];
    converge(&nodes, &pid, &owner.token, &online, Duration::from_secs(5))
        .await
        .unwrap();
    let names = names_of(&[&p, &q]);
    for cycle in 1..=5 {
        redis.kill();
        tokio::time::sleep(Duration::from_millis(NODE_TTL_MS + 500)).await;
        redis.restart();
        for node in &nodes {
            node.wait_ready(200, Duration::from_secs(10)).await;
        }
        converge(&nodes, &pid, &owner.token, &online, Duration::from_secs(5))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        for tab in &mut tabs {
            tab.round_trip(Duration::from_secs(3)).await.unwrap();
        }
        let envelopes = events.envelopes();
        let offline = envelopes
            .iter()
            .filter(|e| e["type"] == json!("presence.offline"))
            .count();
        assert_eq!(
            offline,
            0,
            "restart {cycle}: teammates whose tabs never closed went offline:\n{}",
            presence_timeline(&envelopes, &names)
        );
        println!("restart {cycle}: no false offline");
    }
    events.stop().await;
}
