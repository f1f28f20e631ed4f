//! Webhooks (docs/protocol.md §8), black box, against both engines: the subscriptions API, and real
//! deliveries to a local HTTP receiver that records every request, answers a scripted status,
//! and verifies every Standard Webhooks signature itself (its own HMAC, not the gateway's).

use crate::common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::receiver::{verify_signature, Hit, Receiver};
use common::{spawn_app_with, Engine, TestApp, TestUser};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

/// Fast deliveries to loopback: three attempts 0, 100 and 200 ms apart, a 500 ms timeout.
const FAST: &[(&str, &str)] = &[
    ("webhook_allow_private", "true"),
    ("webhook_retry_ms", "0,100,200"),
    ("webhook_timeout_ms", "500"),
];

/// The receiver's verifier itself: it accepts the Standard Webhooks example and rejects any
/// change to it, so a valid signature in the tests below means something.
#[test]
fn the_receivers_verifier_follows_the_specification() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (id, ts, body) = (
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        br#"{"test": 2432232314}"#,
    );
    let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    assert_eq!(verify_signature(secret, id, ts, body, good), Ok(()));
    assert_eq!(
        verify_signature(secret, id, ts, body, &format!("v1,bm9wZQ== {good}")),
        Ok(())
    );
    assert!(verify_signature(secret, id, ts, br#"{"test": 2432232315}"#, good).is_err());
    assert!(verify_signature(secret, id, "1614265331", body, good).is_err());
    assert!(verify_signature(secret, "msg_other", ts, body, good).is_err());
    assert!(verify_signature(secret, id, ts, body, &good.replace("v1,", "v2,")).is_err());
    assert!(verify_signature(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        id,
        ts,
        body,
        good
    )
    .is_err());
}

// ---- the gateway side ---------------------------------------------------------------------------

struct Setup {
    app: TestApp,
    owner: TestUser,
    agent: TestUser,
    pid: String,
    /// The agent's teammate id.
    puid: String,
    rx: Receiver,
}

async fn setup(engine: Engine, overrides: &[(&str, &str)]) -> Setup {
    let app = spawn_app_with(engine, overrides).await;
    let common::OwnerAndAgent {
        owner,
        agent,
        pid,
        puid,
    } = app.owner_and_agent().await;
    Setup {
        app,
        owner,
        agent,
        pid,
        puid,
        rx: Receiver::start().await,
    }
}

/// A created subscription.
struct Sub {
    id: String,
    secret: String,
    target: String,
}

impl Setup {
    /// Subscribes `event` to the receiver's `path` and tells the receiver the secret.
    async fn subscribe(&self, event: &str, path: &str) -> Sub {
        let target = self.rx.url(path);
        let body = self
            .app
            .post(
                &format!("/v3/{}/subscriptions", self.pid),
                &self.owner.token,
                json!({"event": event, "target": target}),
            )
            .await
            .expect(200);
        let secret = body["secret"].as_str().unwrap().to_string();
        self.rx.set_secret(path, &secret);
        Sub {
            id: body["_id"].as_str().unwrap().to_string(),
            secret,
            target,
        }
    }

    /// Sets the agent's `user_available` as the owner: one `availability.update`.
    async fn set_available(&self, available: bool) {
        let teammate = self
            .app
            .put(
                &format!("/v3/{}/project_users/{}", self.pid, self.puid),
                &self.owner.token,
                json!({"user_available": available}),
            )
            .await
            .expect(200);
        assert_eq!(teammate["user_available"], json!(available));
    }

    async fn subscription(&self, id: &str) -> Value {
        self.app
            .get(
                &format!("/v3/{}/subscriptions/{id}", self.pid),
                &self.owner.token,
            )
            .await
            .expect(200)
    }

    async fn history(&self) -> Vec<Value> {
        self.app
            .get(
                &format!("/v3/{}/subscriptions/history", self.pid),
                &self.owner.token,
            )
            .await
            .expect(200)
            .as_array()
            .expect("history is an array")
            .clone()
    }

    /// Waits until the history holds a delivery for `subscription` in `status`; returns it.
    async fn wait_history(&self, subscription: &str, status: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let history = self.history().await;
            let found = history
                .iter()
                .find(|d| d["id_subscription"] == json!(subscription));
            if let Some(delivery) = found.filter(|d| d["status"] == json!(status)) {
                return delivery.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {status} delivery for {subscription} in the history after {WAIT:?}: {:#}",
                json!(history)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn status_codes(delivery: &Value) -> Vec<Value> {
    delivery["attempts"]
        .as_array()
        .expect("attempts is an array")
        .iter()
        .map(|a| a["status_code"].clone())
        .collect()
}

/// Every attempt of a history entry has the documented shape.
#[track_caller]
fn assert_attempts_shape(delivery: &Value) {
    for attempt in delivery["attempts"].as_array().unwrap() {
        assert!(attempt["at"].is_string(), "{attempt}");
        assert!(attempt["duration_ms"].is_u64(), "{attempt}");
        assert!(attempt["status_code"].is_u64(), "{attempt}");
        assert_eq!(
            attempt["error"],
            Value::Null,
            "an answered attempt has no error"
        );
    }
}

// ---- 1. the subscriptions API -------------------------------------------------------------------

async fn subscriptions_api_creates_lists_updates_and_deletes_and_shows_the_secret_once(
    engine: Engine,
) {
    // Default settings: private targets are refused, so these use public address literals (no
    // event is produced here, so nothing is ever sent to them).
    let app = spawn_app_with(engine, &[]).await;
    let t = app.owner_and_agent().await;
    let base = format!("/v3/{}/subscriptions", t.pid);
    let created = app
        .request(
            reqwest::Method::POST,
            &base,
            Some(&t.owner.token),
            Some(json!({"event": "availability.update", "target": "https://1.1.1.1/hook"})),
        )
        .await;
    let header = created
        .headers
        .get("x-hook-secret")
        .map(|v| v.to_str().unwrap().to_string());
    let first = created.expect(200);
    let secret = first["secret"]
        .as_str()
        .expect("secret in the body")
        .to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        STANDARD
            .decode(&secret["whsec_".len()..])
            .map(|k| k.len() >= 24),
        Ok(true),
        "whsec_ + base64 of a long enough key: {secret}"
    );
    assert_eq!(header.as_deref(), Some(secret.as_str()), "x-hook-secret");
    let id = first["_id"].as_str().unwrap().to_string();
    assert_eq!(first["id"], json!(id));
    assert_eq!(first["id_project"], json!(t.pid));
    assert_eq!(first["event"], json!("availability.update"));
    assert_eq!(first["target"], json!("https://1.1.1.1/hook"));
    assert_eq!(first["enabled"], json!(true));

    let second = app
        .post(
            &base,
            &t.owner.token,
            json!({"event": "*", "target": "http://8.8.8.8/other"}),
        )
        .await
        .expect(200);
    let other_secret = second["secret"].as_str().unwrap().to_string();
    assert!(other_secret.starts_with("whsec_"));
    assert_ne!(other_secret, secret, "each subscription has its own secret");
    let second_id = second["_id"].as_str().unwrap().to_string();

    let secrets = [secret.as_str(), other_secret.as_str()];
    let no_secret = |what: &str, resp: &common::Resp| {
        for s in secrets {
            assert!(
                !resp.text.contains(s),
                "{what} shows a secret: {}",
                resp.text
            );
        }
        for (name, value) in &resp.headers {
            assert!(
                !secrets
                    .iter()
                    .any(|s| value.to_str().unwrap_or("").contains(s)),
                "{what} shows a secret in `{name}`"
            );
        }
    };

    // List.
    let list = app.get(&base, &t.owner.token).await;
    no_secret("list", &list);
    let list = list.expect(200);
    let ids: BTreeSet<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(s.get("secret").is_none(), "{s}");
            s["_id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(ids, BTreeSet::from([id.as_str(), second_id.as_str()]));

    // Get.
    let one = app.get(&format!("{base}/{id}"), &t.owner.token).await;
    no_secret("get", &one);
    let one = one.expect(200);
    assert_eq!(one["_id"], json!(id));
    assert_eq!(one["event"], json!("availability.update"));
    assert_eq!(one["target"], json!("https://1.1.1.1/hook"));
    assert_eq!(one["enabled"], json!(true));

    // Put: event, target and enabled change; the secret is neither shown nor needed.
    let put = app
        .put(
            &format!("{base}/{id}"),
            &t.owner.token,
            json!({"event": "presence.offline", "target": "https://9.9.9.9/new", "enabled": false}),
        )
        .await;
    no_secret("put", &put);
    let put = put.expect(200);
    assert_eq!(put["_id"], json!(id));
    assert_eq!(put["event"], json!("presence.offline"));
    assert_eq!(put["target"], json!("https://9.9.9.9/new"));
    assert_eq!(put["enabled"], json!(false));
    let again = app
        .get(&format!("{base}/{id}"), &t.owner.token)
        .await
        .expect(200);
    assert_eq!(again["event"], json!("presence.offline"));
    assert_eq!(again["target"], json!("https://9.9.9.9/new"));
    assert_eq!(again["enabled"], json!(false));
    // A partial put keeps the rest.
    let partial = app
        .put(
            &format!("{base}/{id}"),
            &t.owner.token,
            json!({"enabled": true}),
        )
        .await
        .expect(200);
    assert_eq!(partial["enabled"], json!(true));
    assert_eq!(partial["event"], json!("presence.offline"));
    assert_eq!(partial["target"], json!("https://9.9.9.9/new"));

    // History is reachable (and empty: nothing happened).
    let history = app.get(&format!("{base}/history"), &t.owner.token).await;
    no_secret("history", &history);
    assert_eq!(history.expect(200), json!([]));

    // The agent may do none of it.
    let agent = &t.agent.token;
    let body = json!({"event": "*", "target": "https://1.1.1.1/agent"});
    app.post(&base, agent, body.clone()).await.expect_error(403);
    app.get(&base, agent).await.expect_error(403);
    app.get(&format!("{base}/{id}"), agent)
        .await
        .expect_error(403);
    app.put(&format!("{base}/{id}"), agent, json!({"enabled": false}))
        .await
        .expect_error(403);
    app.delete(&format!("{base}/{id}"), agent)
        .await
        .expect_error(403);
    app.get(&format!("{base}/history"), agent)
        .await
        .expect_error(403);

    // Bad input.
    let owner = &t.owner.token;
    app.post(
        &base,
        owner,
        json!({"event": "presence.maybe", "target": "https://1.1.1.1/"}),
    )
    .await
    .expect_error(400);
    app.post(&base, owner, json!({"event": "*"}))
        .await
        .expect_error(400);
    app.post(&base, owner, json!({"target": "https://1.1.1.1/"}))
        .await
        .expect_error(400);
    app.post(
        &base,
        owner,
        json!({"event": "*", "target": "ftp://1.1.1.1/"}),
    )
    .await
    .expect_error(400);
    app.put(&format!("{base}/{id}"), owner, json!({"event": "nope"}))
        .await
        .expect_error(400);
    app.get(&format!("{base}/not-a-uuid"), owner)
        .await
        .expect_error(400);
    app.put(
        &format!("{base}/not-a-uuid"),
        owner,
        json!({"enabled": true}),
    )
    .await
    .expect_error(400);
    app.delete(&format!("{base}/not-a-uuid"), owner)
        .await
        .expect_error(400);
    let unknown = uuid::Uuid::new_v4();
    app.get(&format!("{base}/{unknown}"), owner)
        .await
        .expect_error(404);
    app.put(
        &format!("{base}/{unknown}"),
        owner,
        json!({"enabled": true}),
    )
    .await
    .expect_error(404);
    app.delete(&format!("{base}/{unknown}"), owner)
        .await
        .expect_error(404);
    // Nothing was created by the refused calls.
    assert_eq!(
        app.get(&base, owner)
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Delete.
    let deleted = app.delete(&format!("{base}/{id}"), owner).await;
    no_secret("delete", &deleted);
    assert_eq!(deleted.expect(200)["_id"], json!(id));
    app.get(&format!("{base}/{id}"), owner)
        .await
        .expect_error(404);
    app.delete(&format!("{base}/{id}"), owner)
        .await
        .expect_error(404);
    let list = app.get(&base, owner).await.expect(200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["_id"], json!(second_id));
}

async fn private_targets_are_refused_unless_allowed(engine: Engine) {
    let app = spawn_app_with(engine.clone(), &[]).await;
    let t = app.owner_and_agent().await;
    let base = format!("/v3/{}/subscriptions", t.pid);
    for target in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.0.0.1/",
        "http://192.168.1.20/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/hook",
        "http://0.0.0.0/",
    ] {
        let refused = app
            .post(
                &base,
                &t.owner.token,
                json!({"event": "*", "target": target}),
            )
            .await;
        assert_eq!(
            refused.status.as_u16(),
            400,
            "{target} must be refused: {}",
            refused.text
        );
        refused.expect_error(400);
    }
    // Nor can a public subscription be moved onto one.
    let public = app
        .post(
            &base,
            &t.owner.token,
            json!({"event": "*", "target": "https://1.1.1.1/hook"}),
        )
        .await
        .expect(200);
    let id = public["_id"].as_str().unwrap();
    app.put(
        &format!("{base}/{id}"),
        &t.owner.token,
        json!({"target": "http://127.0.0.1:9/hook"}),
    )
    .await
    .expect_error(400);
    let kept = app
        .get(&format!("{base}/{id}"), &t.owner.token)
        .await
        .expect(200);
    assert_eq!(kept["target"], json!("https://1.1.1.1/hook"));
    let list = app.get(&base, &t.owner.token).await.expect(200);
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "refused targets are not saved"
    );
    drop(app);

    // With the setting, the same loopback target is accepted.
    let app = spawn_app_with(engine, &[("webhook_allow_private", "true")]).await;
    let t = app.owner_and_agent().await;
    let accepted = app
        .post(
            &format!("/v3/{}/subscriptions", t.pid),
            &t.owner.token,
            json!({"event": "*", "target": "http://127.0.0.1:9/hook"}),
        )
        .await
        .expect(200);
    assert_eq!(accepted["target"], json!("http://127.0.0.1:9/hook"));
}

// ---- 2. delivery -------------------------------------------------------------------------------

const ENVELOPE_KEYS: [&str; 10] = [
    "hook",
    "id",
    "payload",
    "previous",
    "project_id",
    "project_user_id",
    "seq",
    "timestamp",
    "type",
    "user_id",
];

async fn a_change_is_delivered_signed_to_matching_subscriptions(engine: Engine) {
    let s = setup(engine, FAST).await;
    let all = s.subscribe("*", "/all").await;
    let avail = s.subscribe("availability.update", "/avail").await;
    let update = s.subscribe("project_user.update", "/update").await;
    let online = s.subscribe("presence.online", "/online").await;
    let subs = [
        ("/all", &all, "*"),
        ("/avail", &avail, "availability.update"),
        ("/update", &update, "project_user.update"),
        ("/online", &online, "presence.online"),
    ];

    s.set_available(false).await;
    let is_availability = |h: &Hit| h.event_type() == "availability.update";
    let mut event_ids = BTreeSet::new();
    for (path, sub, event) in &subs[..3] {
        let hits = s.rx.wait_for(path, 1, is_availability).await;
        assert_eq!(hits.len(), 1, "{path}: delivered once");
        let hit = &hits[0];
        hit.assert_signed();
        assert!(
            hit.header("content-type").starts_with("application/json"),
            "{path}"
        );
        let body = hit.json.as_object().expect("a JSON object body");
        let keys: BTreeSet<&str> = body.keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(ENVELOPE_KEYS), "{path}: {}", hit.body);
        assert_eq!(hit.header("webhook-id"), body["id"].as_str().unwrap());
        assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
        event_ids.insert(body["id"].as_str().unwrap().to_string());
        assert_eq!(body["type"], json!("availability.update"));
        assert!(body["timestamp"].is_string());
        assert_eq!(body["project_id"], json!(s.pid));
        assert_eq!(body["project_user_id"], json!(s.puid));
        assert_eq!(body["user_id"], json!(s.agent.id));
        assert!(body["seq"].is_u64(), "seq: {}", body["seq"]);
        assert_eq!(body["payload"]["_id"], json!(s.puid));
        assert_eq!(body["payload"]["user_available"], json!(false));
        assert_eq!(body["previous"]["user_available"], json!(true));
        assert!(
            body["previous"].get("updatedAt").is_some(),
            "{}",
            body["previous"]
        );
        assert_eq!(
            body["hook"],
            json!({"id": sub.id, "event": event, "target": sub.target}),
            "{path}"
        );
        // The secret signs the request; it never travels with it.
        assert!(
            !hit.body.contains(&sub.secret),
            "{path}: secret in the body"
        );
        assert!(
            !hit.headers.values().any(|v| v.contains(&sub.secret)),
            "{path}: secret in a header"
        );
    }
    assert_eq!(event_ids.len(), 1, "one event, the same id everywhere");

    // A presence change: `project_user.update` and `presence.online` get it, `availability.update`
    // does not.
    let socket = s.app.ws(&common::token_query(&s.agent.token)).await;
    let is_online = |h: &Hit| h.event_type() == "presence.online";
    for path in ["/online", "/update", "/all"] {
        let hits = s.rx.wait_for(path, 1, is_online).await;
        let hit = &hits[0];
        hit.assert_signed();
        assert_eq!(hit.json["project_user_id"], json!(s.puid));
        assert_eq!(hit.json["payload"]["presence"]["status"], json!("online"));
        assert_eq!(hit.json["previous"]["presence"]["status"], json!("offline"));
        assert_eq!(hit.header("webhook-id"), hit.json["id"].as_str().unwrap());
    }
    let online_hits = s.rx.hits("/online");
    assert!(
        online_hits.iter().all(is_online),
        "presence.online received other events: {:?}",
        online_hits.iter().map(Hit::event_type).collect::<Vec<_>>()
    );
    let avail_hits = s.rx.hits("/avail");
    assert!(
        avail_hits.iter().all(is_availability),
        "availability.update received other events: {:?}",
        avail_hits.iter().map(Hit::event_type).collect::<Vec<_>>()
    );
    // Everything the receiver got was signed.
    for hit in s.rx.all_hits() {
        hit.assert_signed();
    }
    socket.close().await;
}

// ---- 3. retries ---------------------------------------------------------------------------------

async fn failed_attempts_are_retried_with_the_same_id_until_delivered(engine: Engine) {
    let s = setup(engine, FAST).await;
    s.rx.answer("/flaky", &[500, 500], 200);
    let sub = s.subscribe("availability.update", "/flaky").await;
    s.set_available(false).await;

    let hits = s.rx.wait_hits("/flaky", 3).await;
    let id = hits[0].header("webhook-id").to_string();
    for hit in &hits {
        hit.assert_signed();
        assert_eq!(
            hit.header("webhook-id"),
            id,
            "the same webhook-id on every attempt"
        );
        assert_eq!(hit.json["id"], json!(id));
        assert_eq!(hit.json["type"], json!("availability.update"));
        assert_eq!(hit.json["hook"]["id"], json!(sub.id));
    }
    // The same event: the bodies are identical.
    assert!(hits.iter().all(|h| h.body == hits[0].body));
    // The schedule is respected: no attempt before its delay.
    assert!(
        hits[1].at.duration_since(hits[0].at) >= Duration::from_millis(90),
        "second attempt too early: {:?}",
        hits[1].at.duration_since(hits[0].at)
    );
    assert!(
        hits[2].at.duration_since(hits[1].at) >= Duration::from_millis(190),
        "third attempt too early: {:?}",
        hits[2].at.duration_since(hits[1].at)
    );

    let delivery = s.wait_history(&sub.id, "delivered").await;
    assert_eq!(delivery["event_id"], json!(id));
    assert_eq!(delivery["event_type"], json!("availability.update"));
    assert_eq!(delivery["id_subscription"], json!(sub.id));
    assert_eq!(delivery["id_project"], json!(s.pid));
    assert_eq!(delivery["target"], json!(sub.target));
    assert_eq!(delivery["_id"], delivery["id"]);
    assert!(delivery["createdAt"].is_string() && delivery["updatedAt"].is_string());
    assert_eq!(
        status_codes(&delivery),
        [json!(500), json!(500), json!(200)]
    );
    assert_attempts_shape(&delivery);
    assert_eq!(
        s.history().await.len(),
        1,
        "one delivery, however many attempts"
    );

    // Delivered means done: no further attempt.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.rx.hits("/flaky").len(), 3);
}

// ---- 4. 410 Gone --------------------------------------------------------------------------------

async fn gone_disables_the_subscription(engine: Engine) {
    let s = setup(engine, FAST).await;
    s.rx.answer("/gone", &[], 410);
    let gone = s.subscribe("*", "/gone").await;
    let control = s.subscribe("*", "/control").await;

    s.set_available(false).await;
    let hits = s.rx.wait_hits("/gone", 1).await;
    hits[0].assert_signed();
    let delivery = s.wait_history(&gone.id, "gone").await;
    assert_eq!(status_codes(&delivery), [json!(410)], "410 is not retried");
    assert_attempts_shape(&delivery);
    assert_eq!(s.subscription(&gone.id).await["enabled"], json!(false));
    assert_eq!(s.subscription(&control.id).await["enabled"], json!(true));

    // Later events go to the control subscription only.
    s.set_available(true).await;
    s.set_available(false).await;
    let control_hits = s.rx.wait_hits("/control", 3).await;
    control_hits.iter().for_each(Hit::assert_signed);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.rx.hits("/gone").len(),
        1,
        "a disabled subscription received later events"
    );
    assert_eq!(s.subscription(&gone.id).await["enabled"], json!(false));
    let for_gone: Vec<Value> = s
        .history()
        .await
        .into_iter()
        .filter(|d| d["id_subscription"] == json!(gone.id))
        .collect();
    assert_eq!(for_gone.len(), 1, "history: {for_gone:?}");
}

// ---- 5. the schedule runs out ---------------------------------------------------------------------

async fn a_delivery_fails_after_the_last_attempt(engine: Engine) {
    let s = setup(engine, FAST).await;
    s.rx.answer("/down", &[], 500);
    let sub = s.subscribe("availability.update", "/down").await;
    s.set_available(false).await;

    let hits = s.rx.wait_hits("/down", 3).await;
    let id = hits[0].header("webhook-id").to_string();
    for hit in &hits {
        hit.assert_signed();
        assert_eq!(hit.header("webhook-id"), id);
    }
    let delivery = s.wait_history(&sub.id, "failed").await;
    assert_eq!(delivery["event_id"], json!(id));
    assert_eq!(delivery["event_type"], json!("availability.update"));
    assert_eq!(
        status_codes(&delivery),
        [json!(500), json!(500), json!(500)]
    );
    assert_attempts_shape(&delivery);
    // Three delays on the schedule, three attempts, no more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.rx.hits("/down").len(), 3);
    // A failed delivery does not disable the subscription.
    assert_eq!(s.subscription(&sub.id).await["enabled"], json!(true));
}

// ---- 6. isolation ---------------------------------------------------------------------------------

async fn a_slow_target_does_not_delay_another(engine: Engine) {
    const N: usize = 20;
    // Attempts time out after 3 s; the slow target takes 10 s. If the slow target held up the
    // other, the fast one would wait at least 3 s per event.
    let s = setup(
        engine,
        &[
            ("webhook_allow_private", "true"),
            ("webhook_retry_ms", "0,100,200"),
            ("webhook_timeout_ms", "3000"),
        ],
    )
    .await;
    s.rx.delay("/slow", Duration::from_secs(10));
    let _slow = s.subscribe("*", "/slow").await;
    let _fast = s.subscribe("*", "/fast").await;

    let mut sent = Vec::with_capacity(N);
    for i in 0..N {
        sent.push(Instant::now());
        s.set_available(i % 2 == 1).await;
    }
    let started = sent[0];
    let mut fast = s.rx.wait_hits("/fast", N).await;
    let all_in = started.elapsed();
    assert!(
        !s.rx.hits("/slow").is_empty(),
        "the slow target was being delivered to meanwhile"
    );
    fast.sort_by_key(|h| h.json["seq"].as_u64().unwrap());
    let ids: BTreeSet<&str> = fast.iter().map(|h| h.header("webhook-id")).collect();
    assert_eq!(ids.len(), N, "N distinct events");
    let mut worst = Duration::ZERO;
    for (hit, at) in fast.iter().zip(&sent) {
        hit.assert_signed();
        worst = worst.max(hit.at.saturating_duration_since(*at));
    }
    assert!(
        worst < Duration::from_millis(1500),
        "an event took {worst:?} to reach the fast target (all {N} in {all_in:?})"
    );
    assert!(
        all_in < Duration::from_millis(2500),
        "the fast target got {N} events in {all_in:?}"
    );
}

engine_tests!(
    subscriptions_api_creates_lists_updates_and_deletes_and_shows_the_secret_once,
    private_targets_are_refused_unless_allowed,
    a_change_is_delivered_signed_to_matching_subscriptions,
    failed_attempts_are_retried_with_the_same_id_until_delivered,
    gone_disables_the_subscription,
    a_delivery_fails_after_the_last_attempt,
    a_slow_target_does_not_delay_another,
);
