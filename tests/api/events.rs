//! Events on one node, against both engines: WebSocket topics (ack, snapshot, updates, refusals,
//! replay with `since`, resync past retention, slow consumers) and the SSE stream.
//! The cluster side (several nodes, a SIGKILLed node) is in `tests/nodes/cluster_events.rs`.

use crate::common;

use common::{token_query, Agent, Engine, TestUser};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const FAST: &[(&str, &str)] = &[
    ("offline_grace_ms", "0"),
    ("heartbeat_ms", "500"),
    ("node_ttl_ms", "1500"),
];
const QUIET: Duration = Duration::from_millis(300);
const WAIT: Duration = Duration::from_secs(5);

type Setup = common::TeamApp;

async fn setup_with(engine: Engine, overrides: &[(&str, &str)]) -> Setup {
    common::TeamApp::spawn(engine, overrides).await
}

impl common::TeamApp {
    /// A socket that watches without counting.
    async fn observer(&self, user: &TestUser) -> Agent {
        self.app
            .ws(&format!("{}&presence=false", token_query(&user.token)))
            .await
    }

    /// Changes the agent's teammate through the admin route (one event per call that changes
    /// something).
    async fn change_agent(&self, body: Value) -> Value {
        self.app
            .put(
                &format!("/v3/{}/project_users/{}", self.pid, self.puid),
                &self.owner.token,
                body,
            )
            .await
            .expect(200)
    }
}

/// Asserts the envelope fields of docs/protocol.md §6.
#[track_caller]
fn assert_envelope(event: &Value, event_type: &str, pid: &str, puid: &str) {
    assert_eq!(event["type"], json!(event_type), "{event}");
    assert_eq!(event["project_id"], json!(pid));
    assert_eq!(event["project_user_id"], json!(puid));
    for field in ["id", "user_id", "timestamp"] {
        assert!(event[field].is_string(), "{field} in {event}");
    }
    assert!(event["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert!(event["seq"].is_u64(), "{event}");
    assert_eq!(event["payload"]["_id"], json!(puid));
    assert!(event["previous"].is_object(), "{event}");
}

async fn team_topic_acks_snapshots_then_sends_one_update_per_change(engine: Engine) {
    let s = setup_with(engine, FAST).await;
    let mut watcher = s.observer(&s.owner).await;
    let topic = format!("/{}/project_users", s.pid);
    let frames = watcher.subscribe(&topic, None).await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(
        frames[0],
        json!({"action": "subscribed", "payload": {"topic": topic}})
    );
    let snapshot = &frames[1]["payload"];
    assert_eq!(snapshot["topic"], json!(topic));
    assert!(snapshot.get("resync").is_none());
    let team = snapshot["message"]
        .as_array()
        .expect("the team as an array");
    assert_eq!(team.len(), 2);
    assert!(team.iter().any(|t| t["_id"] == json!(s.puid)));

    s.change_agent(json!({"user_available": false})).await;
    let availability = watcher.next_event().await;
    assert_envelope(&availability, "availability.update", &s.pid, &s.puid);
    assert_eq!(availability["user_id"], json!(s.agent.id));
    assert_eq!(availability["payload"]["user_available"], json!(false));
    let previous = availability["previous"].as_object().unwrap();
    assert_eq!(previous["user_available"], json!(true));
    let mut changed: Vec<&str> = previous.keys().map(String::as_str).collect();
    changed.sort_unstable();
    assert_eq!(changed, ["updatedAt", "user_available"]);

    let tab = s.app.ws(&token_query(&s.agent.token)).await;
    let online = watcher.next_event().await;
    assert_envelope(&online, "presence.online", &s.pid, &s.puid);
    assert_eq!(online["payload"]["presence"]["status"], json!("online"));
    assert_eq!(online["payload"]["presence"]["connections"], json!(1));
    assert_eq!(online["previous"]["presence"]["status"], json!("offline"));
    assert_eq!(online["previous"].as_object().unwrap().len(), 1);

    tab.close().await;
    let offline = watcher.next_event().await;
    assert_envelope(&offline, "presence.offline", &s.pid, &s.puid);
    assert_eq!(offline["payload"]["presence"]["status"], json!("offline"));
    assert_eq!(offline["payload"]["presence"]["channels"], json!([]));

    let seqs: Vec<u64> = [&availability, &online, &offline]
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq {seqs:?}");
    let ids: std::collections::HashSet<_> = [&availability, &online, &offline]
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(ids.len(), 3, "every event has its own id");
    // A request that changes nothing is no change, so no event.
    s.change_agent(json!({"user_available": false})).await;
    watcher.expect_silence(QUIET).await;
}

async fn every_kind_of_change_emits_exactly_one_event_of_its_type(engine: Engine) {
    let s = setup_with(engine, FAST).await;
    let carl = s.app.new_user("carl").await;
    let mut watcher = s.observer(&s.owner).await;
    watcher.subscribe(&format!("/{}/events", s.pid), None).await;
    let team = format!("/v3/{}/project_users", s.pid);
    let carl_puid = s.app.add_member(&s.owner, &s.pid, &carl, "agent").await["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("{team}/{carl_puid}");
    let owner = &s.owner.token;
    s.app
        .put(&path, owner, json!({"role": "supervisor"}))
        .await
        .expect(200);
    s.app
        .put(&path, owner, json!({"profileStatus": "lunch"}))
        .await
        .expect(200);
    s.app.delete(&path, owner).await.expect(200);
    s.app.add_member(&s.owner, &s.pid, &carl, "agent").await;
    s.app
        .delete(&format!("{path}?soft=true"), owner)
        .await
        .expect(200);
    s.app
        .put(&format!("{path}/restore"), owner, json!({}))
        .await
        .expect(200);
    s.app
        .delete(&format!("{path}?hard=true"), owner)
        .await
        .expect(200);
    // The agent's own change through its socket's `availability` frame.
    let mut tab = s.observer(&s.agent).await;
    tab.send_json(json!({"action": "availability", "payload": {"user_available": false}}))
        .await;
    assert_eq!(tab.recv_json().await["action"], json!("availability"));

    let expected = [
        ("project_user.invite", &carl_puid),
        ("project_user.update", &carl_puid),
        ("availability.update", &carl_puid),
        ("project_user.disable", &carl_puid),
        ("project_user.invite", &carl_puid),
        ("project_user.delete", &carl_puid),
        ("project_user.restore", &carl_puid),
        ("project_user.delete", &carl_puid),
        ("availability.update", &s.puid),
    ];
    let mut carl_seqs = Vec::new();
    for (event_type, puid) in expected {
        let event = watcher.next_event().await;
        assert_envelope(&event, event_type, &s.pid, puid);
        if *puid == carl_puid {
            carl_seqs.push(event["seq"].as_u64().unwrap());
        }
        match event_type {
            "project_user.disable" => {
                assert_eq!(event["payload"]["status"], json!("disabled"));
                assert_eq!(event["previous"]["status"], json!("active"));
            }
            "project_user.update" => {
                assert_eq!(event["previous"]["role"], json!("agent"));
                assert_eq!(event["payload"]["role"], json!("supervisor"));
            }
            _ => {}
        }
    }
    assert!(
        carl_seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "one teammate's seq counts its changes: {carl_seqs:?}"
    );
    watcher.expect_silence(QUIET).await;
}

async fn topics_are_authorized_as_the_contract_says(engine: Engine) {
    let s = setup_with(engine, FAST).await;
    let pid = &s.pid;
    let owner_puid = s
        .app
        .get(&format!("/v3/{pid}/project_users/me"), &s.owner.token)
        .await
        .expect(200)[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let elsewhere = s.app.new_project(&s.owner).await;
    let mut agent = s.observer(&s.agent).await;
    let refused = |frames: &[Value], code: &str, topic: &str| {
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["action"], json!("error"), "{frames:?}");
        assert_eq!(frames[0]["payload"]["code"], json!(code), "{frames:?}");
        assert_eq!(frames[0]["payload"]["topic"], json!(topic));
    };
    let allowed = |frames: &[Value]| {
        assert_eq!(frames[0]["action"], json!("subscribed"), "{frames:?}");
        assert_eq!(frames.len(), 2);
    };
    allowed(
        &agent
            .subscribe(&format!("/{pid}/project_users"), None)
            .await,
    );
    allowed(&agent.subscribe(&format!("/{pid}/events"), None).await);
    allowed(
        &agent
            .subscribe(&format!("/{pid}/project_users/{}", s.puid), None)
            .await,
    );
    allowed(
        &agent
            .subscribe(&format!("/{pid}/project_users/users/{}", s.owner.id), None)
            .await,
    );
    let other = format!("/{pid}/project_users/{owner_puid}");
    refused(&agent.subscribe(&other, None).await, "forbidden", &other);
    let foreign = format!("/{elsewhere}/project_users");
    refused(
        &agent.subscribe(&foreign, None).await,
        "forbidden",
        &foreign,
    );
    refused(
        &agent.subscribe("/nope", None).await,
        "invalid_topic",
        "/nope",
    );
    let own = format!("/{pid}/project_users/{}", s.puid);
    refused(
        &agent.subscribe(&own, Some("not-an-id")).await,
        "invalid_payload",
        &own,
    );
    // The socket stays usable after refusals.
    agent
        .send_json(json!({"action": "heartbeat", "payload": {"message": {"text": "ping"}}}))
        .await;
    assert_eq!(
        agent.recv_json().await["payload"]["message"]["text"],
        json!("pong")
    );

    // An admin may watch anyone; an API key may watch its own project's events only.
    let mut owner = s.observer(&s.owner).await;
    allowed(&owner.subscribe(&own, None).await);
    let key = s
        .app
        .post(
            &format!("/v3/{pid}/keys"),
            &s.owner.token,
            json!({"name": "crm", "role": "agent"}),
        )
        .await
        .expect(200)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let mut backend = s.app.ws(&format!("token={key}")).await;
    allowed(&backend.subscribe(&format!("/{pid}/events"), None).await);
    let foreign_events = format!("/{elsewhere}/events");
    refused(
        &backend.subscribe(&foreign_events, None).await,
        "forbidden",
        &foreign_events,
    );
}

async fn unsubscribing_stops_the_updates(engine: Engine) {
    let s = setup_with(engine, FAST).await;
    let mut agent = s.observer(&s.agent).await;
    let own = format!("/{}/project_users/{}", s.pid, s.puid);
    agent.subscribe(&own, None).await;
    s.change_agent(json!({"profileStatus": "busy"})).await;
    assert_eq!(
        agent.next_event().await["type"],
        json!("availability.update")
    );
    agent
        .send_json(json!({"action": "unsubscribe", "payload": {"topic": own}}))
        .await;
    assert_eq!(
        agent.recv_json().await,
        json!({"action": "unsubscribed", "payload": {"topic": own}})
    );
    s.change_agent(json!({"profileStatus": "free"})).await;
    agent.expect_silence(QUIET).await;
}

async fn resuming_with_since_replays_exactly_the_missed_events(engine: Engine) {
    let s = setup_with(engine, FAST).await;
    let topic = format!("/{}/project_users/{}", s.pid, s.puid);
    let mut first = s.observer(&s.owner).await;
    first.subscribe(&topic, None).await;
    s.change_agent(json!({"profileStatus": "a"})).await;
    let seen = first.next_event().await;
    first.close().await;

    // Missed while away: three changes of this teammate, and one of another (not on the topic).
    for status in ["b", "c", "d"] {
        s.change_agent(json!({"profileStatus": status})).await;
    }
    s.app
        .put(
            &format!("/v3/{}/project_users/", s.pid),
            &s.owner.token,
            json!({"profileStatus": "elsewhere"}),
        )
        .await
        .expect(200);

    let mut back = s.observer(&s.owner).await;
    back.send_json(
        json!({"action": "subscribe", "payload": {"topic": topic, "since": seen["id"]}}),
    )
    .await;
    assert_eq!(back.recv_json().await["action"], json!("subscribed"));
    let mut seq = seen["seq"].as_u64().unwrap();
    for status in ["b", "c", "d"] {
        let event = back.next_event().await;
        seq += 1;
        assert_eq!(event["seq"], json!(seq), "replayed in order, none skipped");
        assert_eq!(event["payload"]["profileStatus"], json!(status));
    }
    back.expect_silence(QUIET).await;
    s.change_agent(json!({"profileStatus": "e"})).await;
    let live = back.next_event().await;
    assert_eq!(live["seq"], json!(seq + 1));
    back.expect_silence(QUIET).await;

    // Resuming from the newest event replays nothing and sends no snapshot.
    let mut current = s.observer(&s.owner).await;
    current
        .send_json(json!({"action": "subscribe", "payload": {"topic": topic, "since": live["id"]}}))
        .await;
    assert_eq!(current.recv_json().await["action"], json!("subscribed"));
    current.expect_silence(QUIET).await;
}

async fn resuming_past_retention_gets_a_resync_snapshot(engine: Engine) {
    let overrides = [FAST, &[("event_retention", "5")]].concat();
    let s = setup_with(engine, &overrides).await;
    let topic = format!("/{}/project_users/{}", s.pid, s.puid);
    let mut first = s.observer(&s.owner).await;
    first.subscribe(&topic, None).await;
    s.change_agent(json!({"profileStatus": "0"})).await;
    let old = first.next_event().await;
    first.close().await;
    for i in 1..=8 {
        s.change_agent(json!({"profileStatus": i.to_string()}))
            .await;
    }
    for since in [old["id"].clone(), json!(uuid::Uuid::new_v4().to_string())] {
        let mut back = s.observer(&s.owner).await;
        let frames = back.subscribe(&topic, since.as_str()).await;
        assert_eq!(frames.len(), 2, "{frames:?}");
        let snapshot = &frames[1]["payload"];
        assert_eq!(snapshot["method"], json!("CREATE"));
        assert_eq!(snapshot["resync"], json!(true));
        assert_eq!(snapshot["message"]["profileStatus"], json!("8"));
        s.change_agent(json!({"profileStatus": "live"})).await;
        assert_eq!(
            back.next_event().await["payload"]["profileStatus"],
            json!("live")
        );
        s.change_agent(json!({"profileStatus": "8"})).await;
        back.next_event().await;
    }
    let mut sse = s
        .app
        .sse(&s.pid, Some(&s.owner.token), "", old["id"].as_str())
        .await
        .expect("stream opens");
    let resync = sse.next(WAIT).await;
    assert_eq!(resync.event.as_deref(), Some("resync"));
}

async fn sse_streams_filtered_events_and_replays_after_last_event_id(engine: Engine) {
    let s = setup_with(engine, FAST).await;
    let types = "types=availability.update,presence.online";
    let mut sse = s
        .app
        .sse(&s.pid, Some(&s.owner.token), types, None)
        .await
        .expect("stream opens");
    s.change_agent(json!({"role": "supervisor"})).await; // project_user.update: filtered out
    s.change_agent(json!({"user_available": false})).await;
    let tab = s.app.ws(&token_query(&s.agent.token)).await;
    let availability = sse.next(WAIT).await;
    let online = sse.next(WAIT).await;
    for (event, event_type) in [
        (&availability, "availability.update"),
        (&online, "presence.online"),
    ] {
        let envelope = event.json();
        assert_envelope(&envelope, event_type, &s.pid, &s.puid);
        assert_eq!(event.event.as_deref(), Some(event_type));
        assert_eq!(
            event.id.as_ref(),
            envelope["id"].as_str().map(String::from).as_ref()
        );
    }
    drop(sse);
    tab.close().await; // presence.offline: filtered out
    s.change_agent(json!({"user_available": true})).await;
    s.change_agent(json!({"profileStatus": "away"})).await;

    // Resume with the header, or with `?since=` and the token in the query.
    let since = online.id.clone().unwrap();
    let header = s
        .app
        .sse(&s.pid, Some(&s.owner.token), types, Some(&since))
        .await
        .expect("stream opens");
    let query = format!("{types}&since={since}&{}", token_query(&s.owner.token));
    let queried = s.app.sse(&s.pid, None, &query, None).await.expect("opens");
    for mut stream in [header, queried] {
        let first = stream.next(WAIT).await.json();
        assert_eq!(first["payload"]["user_available"], json!(true));
        let second = stream.next(WAIT).await.json();
        assert_eq!(second["payload"]["profileStatus"], json!("away"));
        assert!(second["seq"].as_u64() > first["seq"].as_u64());
        stream.expect_silence(QUIET).await;
    }
}

async fn sse_checks_credentials_and_input(engine: Engine) {
    let s = setup_with(engine, FAST).await;
    let pid = &s.pid;
    let refused = s.app.sse(pid, None, "", None).await.err().expect("refused");
    assert_eq!(refused.status, 401);
    assert!(refused.headers.contains_key("www-authenticate"));
    assert_eq!(refused.body["success"], json!(false));
    let stranger = s.app.new_user("stranger").await;
    let cases = [
        (pid.as_str(), Some(stranger.token.as_str()), "", 403),
        (
            pid.as_str(),
            Some(s.owner.token.as_str()),
            "types=nope",
            400,
        ),
        (pid.as_str(), Some(s.owner.token.as_str()), "since=123", 400),
        ("not-a-uuid", Some(s.owner.token.as_str()), "", 400),
        (pid.as_str(), Some("JWT not.a.jwt"), "", 401),
    ];
    for (project, auth, query, status) in cases {
        let refused = s.app.sse(project, auth, query, None).await.err();
        let refused = refused.unwrap_or_else(|| panic!("{query} opened a stream"));
        assert_eq!(refused.status.as_u16(), status, "{project} {query}");
        assert_eq!(refused.body["success"], json!(false));
    }
    // An agent of the project may read it, and idle streams get keep-alive comments.
    let mut sse = s
        .app
        .sse(pid, Some(&s.agent.token), "", None)
        .await
        .expect("an agent may stream");
    sse.expect_silence(Duration::from_millis(1200)).await;
    assert!(sse.comments >= 1, "keep-alive comments every heartbeat");
}

async fn a_subscriber_that_stops_reading_is_dropped_and_others_keep_up(engine: Engine) {
    // Big changes fill the socket buffers quickly; a short log keeps the shared Redis small; a
    // long heartbeat keeps the silent subscriber from being closed for its silence instead.
    let overrides = [
        ("offline_grace_ms", "0"),
        ("heartbeat_ms", "60000"),
        ("event_retention", "50"),
    ];
    let s = setup_with(engine, &overrides).await;
    let topic = format!("/{}/project_users/{}", s.pid, s.puid);
    let mut stalled = s.observer(&s.owner).await;
    stalled.subscribe(&topic, None).await;
    let mut reader = s.observer(&s.owner).await;
    reader.subscribe(&topic, None).await;
    let hub = s.app.state.events.hub().clone();
    assert_eq!(hub.registrations(), 2);

    // Just under the 16 KiB limit on attributes.
    let filler = "x".repeat(16 * 1024 - 64);
    let mut slowest = Duration::ZERO;
    let mut changes = 0;
    while hub.registrations() == 2 {
        assert!(
            changes < 3 * presence_gateway::events::LISTENER_QUEUE,
            "the stalled subscriber was never dropped"
        );
        changes += 1;
        let started = Instant::now();
        s.change_agent(json!({"attributes": {"n": changes, "filler": filler}}))
            .await;
        let event = reader.next_event().await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(event["payload"]["attributes"]["n"], json!(changes));
    }
    println!("dropped after {changes} changes; slowest change→reader {slowest:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "the reader kept up: {slowest:?}"
    );
    // The reader goes on as before; the stalled one, once it reads, finds the close.
    s.change_agent(json!({"attributes": {"n": 0}})).await;
    assert_eq!(
        reader.next_event().await["payload"]["attributes"]["n"],
        json!(0)
    );
    assert_eq!(stalled.closed_with().await, Some(1013));
}

async fn a_disabled_teammate_stops_receiving_at_once(engine: Engine) {
    let s = setup_with(engine, FAST).await;
    let mut agent = s.observer(&s.agent).await;
    let team = format!("/{}/project_users", s.pid);
    agent.subscribe(&team, None).await;
    let path = format!("/v3/{}/project_users/{}", s.pid, s.puid);
    s.app.delete(&path, &s.owner.token).await.expect(200);
    assert_eq!(
        agent.next_event().await["type"],
        json!("project_user.disable"),
        "the event that says so is the last one"
    );
    assert_eq!(
        agent.closed_with().await,
        Some(4003),
        "then the socket closes"
    );
    // Re-enabled, the teammate may connect and subscribe again.
    s.change_agent(json!({"status": "active"})).await;
    let mut agent = s.observer(&s.agent).await;
    let frames = agent.subscribe(&team, None).await;
    assert_eq!(frames[0]["action"], json!("subscribed"), "{frames:?}");
    s.app
        .put(
            &format!("/v3/{}/project_users/", s.pid),
            &s.owner.token,
            json!({"profileStatus": "visible"}),
        )
        .await
        .expect(200);
    assert_eq!(
        agent.next_event().await["payload"]["profileStatus"],
        json!("visible")
    );
}

engine_tests!(
    a_disabled_teammate_stops_receiving_at_once,
    team_topic_acks_snapshots_then_sends_one_update_per_change,
    every_kind_of_change_emits_exactly_one_event_of_its_type,
    topics_are_authorized_as_the_contract_says,
    unsubscribing_stops_the_updates,
    resuming_with_since_replays_exactly_the_missed_events,
    resuming_past_retention_gets_a_resync_snapshot,
    sse_streams_filtered_events_and_replays_after_last_event_id,
    sse_checks_credentials_and_input,
    a_subscriber_that_stops_reading_is_dropped_and_others_keep_up,
);
