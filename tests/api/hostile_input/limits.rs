//! Size limits and big teams (attack-review findings 1, 2 and 8, docs/security.md), on every
//! engine, through real sockets and HTTP: - an agent cannot cut the team topic off with huge
//! attributes, and a team of 5,000 gets its whole snapshot (finding 1); - every path that writes a
//! teammate's free-form fields (REST, the socket's `availability` frame, the Desk API) applies the
//! same limits, and the largest possible event is bounded (finding 2); - subscribing again to a
//! topic the socket holds sends no second snapshot (finding 8).

use crate::common::{token_query, Agent, Engine, TeamApp, TestApp};
use futures::{SinkExt, StreamExt};
use presence_gateway::domain::{Role, Teammate, Timestamp, User};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const KIB: usize = 1024;

/// An object whose compact JSON is exactly `bytes` long: `{"b":"xxx…"}`.
fn object_of(bytes: usize) -> Value {
    json!({"b": "x".repeat(bytes - 8)})
}

/// A socket that watches without counting.
async fn observer(app: &TestApp, token: &str) -> Agent {
    app.ws(&format!("{}&presence=false", token_query(token)))
        .await
}

/// Finding 1: `{"attributes":{"b":"x"*240000}}` from an agent was stored, and every subscriber
/// of the team topic was dropped without a close frame. Now it is refused (400), nothing is
/// emitted, and an update at the limit reaches the subscribers, whose sockets stay open.
async fn an_agent_cannot_cut_the_team_topic_off(engine: Engine) {
    let t = TeamApp::spawn(engine, &[]).await;
    let team = format!("/{}/project_users", t.pid);
    let mut watcher = observer(&t.app, &t.owner.token).await;
    watcher.subscribe(&team, None).await;
    let own = format!("/v3/{}/project_users/", t.pid);
    let huge = json!({"attributes": {"b": "x".repeat(240_000)}});
    t.app
        .put(&own, &t.agent.token, huge)
        .await
        .expect_error(400);
    watcher.expect_silence(Duration::from_millis(300)).await;

    let at_limit = object_of(16 * KIB);
    t.app
        .put(&own, &t.agent.token, json!({"attributes": at_limit}))
        .await
        .expect(200);
    let event = watcher.next_event().await;
    assert_eq!(event["payload"]["attributes"], at_limit);
    let mut late = observer(&t.app, &t.owner.token).await;
    let frames = late.subscribe(&team, None).await;
    let snapshot = frames.last().unwrap();
    assert_eq!(snapshot["payload"]["method"], json!("CREATE"), "{snapshot}");
    assert_eq!(snapshot["payload"]["message"].as_array().unwrap().len(), 2);
}

/// Finding 2: one rule for every path that writes `attributes`, `settings` or `profileStatus`
/// (REST own and admin updates, the socket's `availability` frame, the Desk API), refused
/// before anything is stored or emitted; and the largest event the limits allow is bounded.
async fn every_write_path_is_bounded(engine: Engine) {
    let t = TeamApp::spawn(engine, &[]).await;
    let (app, pid) = (&t.app, &t.pid);
    let own = format!("/v3/{pid}/project_users/");
    let admin = format!("/v3/{pid}/project_users/{}", t.puid);
    let bounds = log_bounds(app, pid).await;
    for (path, token) in [(&own, &t.agent.token), (&admin, &t.owner.token)] {
        for body in [
            json!({"attributes": object_of(16 * KIB + 1)}),
            json!({"settings": object_of(16 * KIB + 1)}),
            json!({"profileStatus": "é".repeat(201)}),
        ] {
            let refused = app.put(path, token, body).await.expect_error(400);
            let msg = refused["msg"].as_str().unwrap();
            assert!(msg.contains("at most"), "{msg}");
        }
    }
    // The socket's frame: 5,000 and 60,000 characters were stored before.
    let mut socket = observer(app, &t.agent.token).await;
    for length in [201, 5_000, 60_000] {
        let frame = json!({"action": "availability",
            "payload": {"project_id": pid, "profileStatus": "s".repeat(length)}});
        socket.send_json(frame).await;
        let answer = socket.recv_json().await;
        assert_eq!(answer["action"], json!("error"), "{length}: {answer}");
        assert_eq!(answer["payload"]["code"], json!("invalid_payload"));
    }
    // The Desk API merges its preferences into `settings`: a merge that would pass the limit is
    // refused in the Desk error shape.
    app.put(
        &admin,
        &t.owner.token,
        json!({"settings": object_of(16 * KIB - 4)}),
    )
    .await
    .expect(200);
    let key = app.new_key(pid, &t.owner.token, "admin").await;
    let desk = app
        .request(
            reqwest::Method::PATCH,
            &format!("/desk/api/v2/users/{}.json", t.agent.id),
            Some(&key),
            Some(json!({"user": {"timezoneId": 42}})),
        )
        .await;
    assert_eq!(desk.status.as_u16(), 400, "{}", desk.text);
    assert!(desk.text.contains("settings"), "{}", desk.text);
    let teammate = app.get(&admin, &t.owner.token).await.expect(200);
    assert_eq!(teammate["profileStatus"], json!(""));
    assert_eq!(teammate["attributes"], json!({}));
    // One event: the settings change that was allowed; none from the refusals.
    assert_eq!(events_since(app, pid, &t.owner.token, bounds).await, 1);

    // The largest event: attributes and settings both replaced at their limits, with a
    // profileStatus of 200 characters that JSON escapes to six bytes each.
    let mut watcher = observer(app, &t.owner.token).await;
    watcher
        .subscribe(&format!("/{pid}/project_users/{}", t.puid), None)
        .await;
    let max = json!({
        "attributes": object_of(16 * KIB),
        "settings": object_of(16 * KIB),
        "profileStatus": "\u{1}".repeat(200),
    });
    app.put(&admin, &t.owner.token, max).await.expect(200);
    let frame = watcher.recv_json().await;
    let envelope = frame["payload"]["event"].to_string();
    println!(
        "largest event: envelope {} bytes, frame {} bytes",
        envelope.len(),
        frame.to_string().len()
    );
    assert!(envelope.len() < 80 * KIB, "{}", envelope.len());
    assert!(frame.to_string().len() < 128 * KIB);
}

/// The event log's (first, last) positions of the project's partition, as event ids.
async fn log_bounds(app: &TestApp, pid: &str) -> Option<(String, String)> {
    let events = &app.state.events;
    let pid = pid.parse().unwrap();
    let partition = app.state.store.partitions().of(pid);
    let ids = events.ids().await.unwrap();
    app.state
        .store
        .log_bounds(partition)
        .await
        .unwrap()
        .map(|(first, last)| (ids.id_of(first).to_string(), ids.id_of(last).to_string()))
}

/// How many events of the project were logged after the last of `before`.
async fn events_since(
    app: &TestApp,
    pid: &str,
    token: &str,
    before: Option<(String, String)>,
) -> usize {
    let (_, last) = before.expect("the project's creation logged events");
    let mut sse = app
        .sse(pid, Some(token), "", Some(&last))
        .await
        .expect("the stream opens");
    let mut n = 0;
    while let Ok(Some(_)) = sse.try_next(Duration::from_millis(300)).await {
        n += 1;
    }
    n
}

/// Finding 1, without an attacker: a team of 5,000 (the first 100 with 6.5 KB of attributes)
/// was dropped at subscribe. Now its snapshot arrives whole, in parts of whole teammates, and
/// the socket goes on with live updates. Prints the time to the full snapshot.
async fn a_team_of_5000_gets_its_whole_snapshot(engine: Engine) {
    const TEAM: usize = 5_000;
    let t = TeamApp::spawn(engine, &[]).await;
    let pid: presence_gateway::domain::Id = t.pid.parse().unwrap();
    let store = t.app.state.store.clone();
    let started = Instant::now();
    futures::stream::iter(0..TEAM)
        .map(|i| {
            let store = store.clone();
            async move {
                let now = Timestamp::now();
                let mut attributes = Map::new();
                if i < 100 {
                    attributes.insert("notes".into(), json!("n".repeat(6_500)));
                }
                let user = User {
                    id: uuid::Uuid::new_v4(),
                    email: format!("member-{i}-{}@example.com", uuid::Uuid::new_v4().simple()),
                    // Never signs in: the team only needs to exist.
                    password_hash: "unused".into(),
                    firstname: format!("Member {i}"),
                    lastname: "Test".into(),
                    attributes: Map::new(),
                    created_at: now,
                    updated_at: now,
                };
                store.create_user(&user).await.unwrap();
                let mut teammate = Teammate::new(pid, user.id, Role::Agent, None);
                teammate.attributes = attributes;
                store.insert_teammate(&teammate).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    println!("{TEAM} teammates stored in {:?}", started.elapsed());

    let mut watcher = observer(&t.app, &t.owner.token).await;
    let topic = format!("/{}/project_users", t.pid);
    let subscribed = Instant::now();
    watcher
        .send_json(json!({"action": "subscribe", "payload": {"topic": topic}}))
        .await;
    assert_eq!(watcher.recv_json().await["action"], json!("subscribed"));
    let mut ids = std::collections::HashSet::new();
    let mut parts = 0;
    loop {
        let frame = watcher.recv_json().await;
        let payload = &frame["payload"];
        assert_eq!(
            payload["method"],
            json!("CREATE"),
            "{}",
            &frame.to_string()[..200]
        );
        parts += 1;
        for teammate in payload["message"].as_array().unwrap() {
            assert!(ids.insert(teammate["_id"].as_str().unwrap().to_string()));
        }
        if payload["part"].is_null() || payload["part"] == payload["parts"] {
            break;
        }
        assert_eq!(payload["part"], json!(parts));
    }
    let took = subscribed.elapsed();
    println!(
        "snapshot of {} teammates in {parts} parts: {took:?}",
        ids.len()
    );
    assert_eq!(ids.len(), TEAM + 2, "every teammate once");
    assert!(parts > 1);
    t.app
        .put(
            &format!("/v3/{}/project_users/", t.pid),
            &t.agent.token,
            json!({"profileStatus": "after the snapshot"}),
        )
        .await
        .expect(200);
    let event = watcher.next_event().await;
    assert_eq!(
        event["payload"]["profileStatus"],
        json!("after the snapshot")
    );
}

/// Finding 8: every repeat subscribe sent a full snapshot (1,500 subscribes, 150 KB in, gave
/// 5 MB out for a five-person team). Now each repeat answers `already_subscribed`, and the
/// socket keeps its one subscription.
async fn repeat_subscribes_send_no_second_snapshot(engine: Engine) {
    let t = TeamApp::spawn(engine, &[]).await;
    let topic = format!("/{}/project_users", t.pid);
    let mut watcher = observer(&t.app, &t.owner.token).await;
    watcher.subscribe(&topic, None).await;
    let subscribe = json!({"action": "subscribe", "payload": {"topic": topic}}).to_string();
    for _ in 0..1_500 {
        watcher
            .ws
            .feed(Message::text(subscribe.clone()))
            .await
            .unwrap();
    }
    watcher.ws.flush().await.unwrap();
    let mut bytes_out = 0;
    for _ in 0..1_500 {
        let frame = watcher.recv_json().await;
        bytes_out += frame.to_string().len();
        assert_eq!(frame["action"], json!("error"), "{frame}");
        assert_eq!(frame["payload"]["code"], json!("already_subscribed"));
        assert_eq!(frame["payload"]["topic"], json!(topic));
    }
    println!(
        "1,500 repeat subscribes ({} bytes in) answered with {bytes_out} bytes",
        1_500 * subscribe.len()
    );
    assert!(bytes_out < 1_500 * 250);
    t.app
        .put(
            &format!("/v3/{}/project_users/", t.pid),
            &t.agent.token,
            json!({"profileStatus": "once"}),
        )
        .await
        .expect(200);
    assert_eq!(
        watcher.next_event().await["payload"]["profileStatus"],
        json!("once")
    );
    watcher.expect_silence(Duration::from_millis(200)).await;
}

/// After finding 8's fix, the way around it: unsubscribe and subscribe again, in a loop, for a
/// snapshot each time. A socket may start 20 subscriptions at once, then one every 5 s; beyond
/// that a subscribe answers `rate_limited` and sends nothing else.
async fn subscription_cycles_are_limited(engine: Engine) {
    let t = TeamApp::spawn(engine, &[]).await;
    let topic = format!("/{}/project_users", t.pid);
    let mut watcher = observer(&t.app, &t.owner.token).await;
    let unsubscribe = json!({"action": "unsubscribe", "payload": {"topic": topic}});
    let mut snapshots = 0;
    for _ in 0..25 {
        let frames = watcher.subscribe(&topic, None).await;
        let last = frames.last().unwrap();
        if last["payload"]["method"] == json!("CREATE") {
            snapshots += 1;
            watcher.send_json(unsubscribe.clone()).await;
            assert_eq!(watcher.recv_json().await["action"], json!("unsubscribed"));
        } else {
            assert_eq!(last["payload"]["code"], json!("rate_limited"), "{last}");
        }
    }
    assert_eq!(snapshots, 20, "20 subscriptions at once, no more");
}

crate::engine_tests!(
    subscription_cycles_are_limited,
    an_agent_cannot_cut_the_team_topic_off,
    every_write_path_is_bounded,
    a_team_of_5000_gets_its_whole_snapshot,
    repeat_subscribes_send_no_second_snapshot,
);
