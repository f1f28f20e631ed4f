//! Agent sockets and presence on one node, against both engines, over real WebSockets.
//! Timings as the contract's tests run them: 300 ms grace, 500 ms heartbeat, 1,500 ms node TTL.

use crate::common;

use common::{token_query, Engine};
use serde_json::json;
use std::time::{Duration, Instant};

const FAST: &[(&str, &str)] = &[
    ("offline_grace_ms", "300"),
    ("heartbeat_ms", "500"),
    ("node_ttl_ms", "1500"),
];
const WAIT: Duration = Duration::from_secs(5);

type Setup = common::TeamApp;

async fn setup_with(engine: Engine, overrides: &[(&str, &str)]) -> Setup {
    common::TeamApp::spawn(engine, overrides).await
}

async fn setup(engine: Engine) -> Setup {
    setup_with(engine, FAST).await
}

async fn tabs_keep_a_teammate_online_until_the_last_closes(engine: Engine) {
    let s = setup(engine).await;
    let q = token_query(&s.agent.token);
    let first = s.app.ws(&q).await;
    let presence = s
        .app
        .wait_status(&s.pid, &s.puid, &s.owner.token, "online", WAIT)
        .await;
    assert_eq!(presence["connections"], json!(1));
    assert_eq!(presence["channels"], json!(["web"]));
    let online_since = presence["changedAt"].clone();

    let second = s.app.ws(&format!("{q}&channel=mobile")).await;
    let both = common::eventually(WAIT, || async {
        s.app.presence(&s.pid, &s.puid, &s.owner.token).await["connections"] == json!(2)
    })
    .await;
    assert!(both, "the second tab is counted");
    let presence = s.app.presence(&s.pid, &s.puid, &s.owner.token).await;
    assert_eq!(presence["channels"], json!(["mobile", "web"]));

    // Closing one tab never takes the teammate offline.
    first.close().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let presence = s.app.presence(&s.pid, &s.puid, &s.owner.token).await;
    assert_eq!(presence["status"], json!("online"));
    assert_eq!(presence["connections"], json!(1));
    assert_eq!(presence["channels"], json!(["mobile"]));
    assert_eq!(
        presence["changedAt"], online_since,
        "no transition happened"
    );

    // The last one does, after the grace period.
    let closed_at = Instant::now();
    second.close().await;
    let presence = s
        .app
        .wait_status(&s.pid, &s.puid, &s.owner.token, "offline", WAIT)
        .await;
    assert!(
        closed_at.elapsed() >= Duration::from_millis(250),
        "not before the grace period"
    );
    assert_eq!(presence["connections"], json!(0));
    assert_eq!(presence["channels"], json!([]));
    assert!(presence["lastSeenAt"].is_string());
    // The filter and the list agree.
    let offline = s
        .app
        .get(
            &format!("/v3/{}/project_users?presencestatus=offline", s.pid),
            &s.owner.token,
        )
        .await
        .expect(200);
    assert_eq!(offline.as_array().unwrap().len(), 2);
}

async fn a_reconnect_within_the_grace_period_cancels_the_offline(engine: Engine) {
    let s = setup_with(
        engine,
        &[("offline_grace_ms", "1000"), ("heartbeat_ms", "5000")],
    )
    .await;
    let q = token_query(&s.agent.token);
    let tab = s.app.ws(&q).await;
    let online = s
        .app
        .wait_status(&s.pid, &s.puid, &s.owner.token, "online", WAIT)
        .await;
    tab.close().await;
    // During the grace period: online with no connections.
    let during = s.app.presence(&s.pid, &s.puid, &s.owner.token).await;
    assert_eq!(during["status"], json!("online"));
    assert_eq!(during["connections"], json!(0));
    let tab = s.app.ws(&q).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = s.app.presence(&s.pid, &s.puid, &s.owner.token).await;
    assert_eq!(after["status"], json!("online"));
    assert_eq!(after["connections"], json!(1));
    assert_eq!(
        after["changedAt"], online["changedAt"],
        "never went offline"
    );
    drop(tab);
}

async fn a_silent_socket_is_closed_and_its_teammate_goes_offline(engine: Engine) {
    let s = setup(engine).await;
    // This client never reads, so it never answers pings: silent.
    let silent = s.app.ws(&token_query(&s.agent.token)).await;
    s.app
        .wait_status(&s.pid, &s.puid, &s.owner.token, "online", WAIT)
        .await;
    let started = Instant::now();
    s.app
        .wait_status(&s.pid, &s.puid, &s.owner.token, "offline", WAIT)
        .await;
    // Two 500 ms intervals, then the 300 ms grace.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

async fn a_responsive_socket_stays_open(engine: Engine) {
    let s = setup(engine).await;
    let mut agent = s.app.ws(&token_query(&s.agent.token)).await;
    // Reading answers the server's pings; the server's heartbeat frames arrive meanwhile.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1600) {
        agent
            .send_json(json!({"action": "heartbeat", "payload": {"message": {"text": "ping"}}}))
            .await;
        let pong = agent.recv_json().await;
        assert_eq!(pong["payload"]["message"]["text"], json!("pong"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let presence = s.app.presence(&s.pid, &s.puid, &s.owner.token).await;
    assert_eq!(presence["status"], json!("online"));
    assert_eq!(presence["connections"], json!(1));
}

async fn frames_are_answered_and_bad_ones_do_not_close_the_socket(engine: Engine) {
    let s = setup(engine).await;
    let mut agent = s.app.ws(&token_query(&s.agent.token)).await;
    let bad = [
        ("not json", "invalid_frame"),
        (r#"{"no":"action"}"#, "invalid_frame"),
        (
            r#"{"action":"publish","payload":{"topic":"/x","message":{}}}"#,
            "forbidden",
        ),
        (r#"{"action":"fly"}"#, "unknown_action"),
        (
            r#"{"action":"availability","payload":{"user_available":"maybe"}}"#,
            "invalid_payload",
        ),
        (
            r#"{"action":"availability","payload":{"project_id":"nope","user_available":true}}"#,
            "invalid_payload",
        ),
    ];
    for (text, code) in bad {
        agent.send_text(text).await;
        let frame = agent.recv_json().await;
        assert_eq!(frame["action"], json!("error"), "{text}: {frame}");
        assert_eq!(frame["payload"]["code"], json!(code), "{text}: {frame}");
    }
    {
        use futures::SinkExt;
        agent
            .ws
            .send(tokio_tungstenite::tungstenite::Message::binary(vec![
                1u8, 2, 3,
            ]))
            .await
            .unwrap();
    }
    assert_eq!(
        agent.recv_json().await["payload"]["code"],
        json!("invalid_frame")
    );
    // Still open and answering.
    agent
        .send_json(json!({"action": "heartbeat", "payload": {"message": {"text": "ping"}}}))
        .await;
    assert_eq!(
        agent.recv_json().await,
        json!({"action": "heartbeat", "payload": {"message": {"text": "pong"}}})
    );

    // The availability frame changes the teammate like PUT /project_users/.
    agent
        .send_json(json!({"action": "availability", "payload": {"user_available": false, "profileStatus": "lunch"}}))
        .await;
    let ack = agent.recv_json().await;
    assert_eq!(ack["action"], json!("availability"));
    assert_eq!(ack["payload"]["project_id"], json!(s.pid));
    assert_eq!(ack["payload"]["user_available"], json!(false));
    let tm = s
        .app
        .get(
            &format!("/v3/{}/project_users/{}", s.pid, s.puid),
            &s.owner.token,
        )
        .await
        .expect(200);
    assert_eq!(tm["user_available"], json!(false));
    assert_eq!(tm["profileStatus"], json!("lunch"));
}

async fn oversized_messages_close_with_1009(engine: Engine) {
    let s = setup(engine).await;
    let mut agent = s.app.ws(&token_query(&s.agent.token)).await;
    let big = format!(
        r#"{{"action":"heartbeat","payload":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    agent.send_text(&big).await;
    assert_eq!(agent.closed_with().await, Some(1009));
    s.app
        .wait_status(&s.pid, &s.puid, &s.owner.token, "offline", WAIT)
        .await;
}

async fn floods_are_rate_limited(engine: Engine) {
    let s = setup(engine).await;
    let mut agent = s.app.ws(&token_query(&s.agent.token)).await;
    let frame =
        json!({"action": "heartbeat", "payload": {"message": {"text": "ping"}}}).to_string();
    for _ in 0..2100 {
        agent.send_text(&frame).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    while pongs + limited < 2100 {
        let reply = agent.recv_json().await;
        match reply["action"].as_str() {
            Some("heartbeat") => pongs += 1,
            Some("error") => {
                assert_eq!(reply["payload"]["code"], json!("rate_limited"));
                limited += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pongs >= 2000, "the burst is allowed: {pongs}");
    assert!(
        limited >= 50,
        "beyond the burst, frames are refused: {limited}"
    );
}

async fn handshakes_are_checked(engine: Engine) {
    let s = setup_with(engine, &[("max_connections_per_user", "2")]).await;
    let app = &s.app;
    assert_eq!(app.ws_refused("").await, 401);
    assert_eq!(app.ws_refused("token=garbage").await, 401);
    assert_eq!(
        app.ws_refused(&format!("{}&project_id=xyz", token_query(&s.agent.token)))
            .await,
        400
    );
    assert_eq!(
        app.ws_refused(&format!("{}&channel=a%20b", token_query(&s.agent.token)))
            .await,
        400
    );
    let stranger = app.new_user("stranger").await;
    let q = format!("{}&project_id={}", token_query(&stranger.token), s.pid);
    assert_eq!(app.ws_refused(&q).await, 403);
    let unknown = format!(
        "{}&project_id={}",
        token_query(&s.agent.token),
        uuid::Uuid::new_v4()
    );
    assert_eq!(app.ws_refused(&unknown).await, 404);
    // A bare JWT and the Authorization-less `JWT ` form both work; the third socket is too many.
    let bare = s.agent.token.strip_prefix("JWT ").unwrap();
    let one = app.ws(&format!("token={bare}")).await;
    let two = app.ws(&token_query(&s.agent.token)).await;
    assert_eq!(app.ws_refused(&token_query(&s.agent.token)).await, 429);
    one.close().await;
    let three = app.ws(&token_query(&s.agent.token)).await;
    drop((two, three));
}

async fn observers_and_api_keys_never_count(engine: Engine) {
    let s = setup(engine).await;
    let key = s
        .app
        .post(
            &format!("/v3/{}/keys", s.pid),
            &s.owner.token,
            json!({"role": "admin"}),
        )
        .await
        .expect(200)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let observer = s
        .app
        .ws(&format!("{}&presence=false", token_query(&s.agent.token)))
        .await;
    let keyed = s.app.ws(&format!("token={key}")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let presence = s.app.presence(&s.pid, &s.puid, &s.owner.token).await;
    assert_eq!(presence["status"], json!("offline"));
    assert_eq!(presence["connections"], json!(0));
    // An API key on another project's socket is refused.
    let other_owner = s.app.new_user("other").await;
    let other = s.app.new_project(&other_owner).await;
    assert_eq!(
        s.app
            .ws_refused(&format!("token={key}&project_id={other}"))
            .await,
        403
    );
    drop((observer, keyed));
}

async fn a_socket_counts_for_its_project_or_for_all(engine: Engine) {
    let s = setup(engine).await;
    // The agent is also a teammate of a second project.
    let other_owner = s.app.new_user("other").await;
    let other_pid = s.app.new_project(&other_owner).await;
    let other_puid = s
        .app
        .add_member(&other_owner, &other_pid, &s.agent, "agent")
        .await["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let scoped = s
        .app
        .ws(&format!(
            "{}&project_id={}",
            token_query(&s.agent.token),
            s.pid
        ))
        .await;
    s.app
        .wait_status(&s.pid, &s.puid, &s.owner.token, "online", WAIT)
        .await;
    assert_eq!(
        s.app
            .presence(&other_pid, &other_puid, &other_owner.token)
            .await["status"],
        json!("offline")
    );
    let everywhere = s.app.ws(&token_query(&s.agent.token)).await;
    s.app
        .wait_status(&other_pid, &other_puid, &other_owner.token, "online", WAIT)
        .await;
    scoped.close().await;
    everywhere.close().await;
    s.app
        .wait_status(&s.pid, &s.puid, &s.owner.token, "offline", WAIT)
        .await;
    s.app
        .wait_status(&other_pid, &other_puid, &other_owner.token, "offline", WAIT)
        .await;
}

async fn removed_teammates_stop_counting_at_once(engine: Engine) {
    let s = setup_with(engine, &[("offline_grace_ms", "60000")]).await;
    let _tab = s.app.ws(&token_query(&s.agent.token)).await;
    s.app
        .wait_status(&s.pid, &s.puid, &s.owner.token, "online", WAIT)
        .await;
    // Disabling takes it offline at once (no 60 s grace), and its socket no longer counts.
    s.app
        .delete(
            &format!("/v3/{}/project_users/{}", s.pid, s.puid),
            &s.owner.token,
        )
        .await
        .expect(200);
    let presence = s.app.presence(&s.pid, &s.puid, &s.owner.token).await;
    assert_eq!(presence["status"], json!("offline"));
    assert_eq!(presence["connections"], json!(0));
    // Even after the flusher's next rounds.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.app.presence(&s.pid, &s.puid, &s.owner.token).await["status"],
        json!("offline")
    );
}

engine_tests!(
    tabs_keep_a_teammate_online_until_the_last_closes,
    a_reconnect_within_the_grace_period_cancels_the_offline,
    a_silent_socket_is_closed_and_its_teammate_goes_offline,
    a_responsive_socket_stays_open,
    frames_are_answered_and_bad_ones_do_not_close_the_socket,
    oversized_messages_close_with_1009,
    floods_are_rate_limited,
    handshakes_are_checked,
    observers_and_api_keys_never_count,
    a_socket_counts_for_its_project_or_for_all,
    removed_teammates_stop_counting_at_once,
);
