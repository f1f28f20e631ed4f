//! Hostile input, on both engines: every route that takes a JSON body gets malformed JSON, each
//! field with the wrong JSON types, a body over 1 MiB, 10,000-deep nesting, invalid UTF-8, and
//! (where the path has ids) malformed and unknown UUIDs. Each is answered with a 4xx in its API
//! family's error shape (never a 5xx or a dropped connection), the gateway still answers
//! `/healthz`, and a snapshot of the affected resources (plus the event log's bounds) is the same
//! after every rejected request as before: nothing is stored half-way.
//!
//! Also: arbitrary bytes as bodies (proptest), hostile socket frames, and a socket flood that is
//! rate limited while another client's heartbeats on the same node stay fast.
//!
//! `positional_array_bodies`, `non_utf8_ids_in_paths` and `oversized_key_bodies` found gateway
//! bugs (now fixed) and stay as regressions.

mod arbitrary;
mod attacks;
mod bodies;
mod close_codes;
mod limits;
mod raw_ws;
mod routes;
mod sockets;
mod timeouts;

use crate::common;
use attacks::*;
use routes::*;

use common::{spawn_app, spawn_app_with, token_query, Engine, OwnerAndAgent, TestApp, TestUser};
use common::{Resp, PASSWORD};
use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Over the 1 MiB body limit.
const OVERSIZED: usize = 1024 * 1024 + 1024;
/// How deep the nesting attacks go.
const DEPTH: usize = 10_000;

// ---- fixture ------------------------------------------------------------------------------------

/// A project with an owner, an agent, an admin API key, a Dixa team holding the agent and a
/// webhook subscription; plus emails nobody has (for sign-up and invitations).
struct Fx {
    app: TestApp,
    owner: TestUser,
    agent: TestUser,
    pid: String,
    /// The agent's teammate id.
    puid: String,
    admin_key: String,
    team: String,
    sub: String,
    signup_email: String,
    invite_email: String,
}

async fn fixture(engine: Engine) -> Fx {
    let app = spawn_app_with(engine, &[("webhook_allow_private", "true")]).await;
    let OwnerAndAgent {
        owner,
        agent,
        pid,
        puid,
    } = app.owner_and_agent().await;
    let admin_key = app
        .post(
            &format!("/v3/{pid}/keys"),
            &owner.token,
            json!({"name": "hostile", "role": "admin"}),
        )
        .await
        .expect(200)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let team = app
        .post("/beta/teams", &admin_key, json!({"name": "Tier 1"}))
        .await
        .expect(201)["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.request(
        Method::PATCH,
        &format!("/beta/teams/{team}/agents"),
        Some(&admin_key),
        Some(json!({"agentIds": [agent.id]})),
    )
    .await
    .expect(200);
    let sub = app
        .post(
            &format!("/v3/{pid}/subscriptions"),
            &owner.token,
            json!({"event": "project_user.restore", "target": "http://127.0.0.1:9/hostile"}),
        )
        .await
        .expect(200)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let nobody = uuid::Uuid::new_v4().simple();
    Fx {
        app,
        owner,
        agent,
        pid,
        puid,
        admin_key,
        team,
        sub,
        signup_email: format!("eve-{nobody}@example.com"),
        invite_email: format!("invitee-{nobody}@example.com"),
    }
}

// ---- one attack ---------------------------------------------------------------------------------

/// The statuses an attack may get, and for Desk field errors the field that must be named.
struct Expect {
    statuses: Vec<u16>,
    desk_field: Option<&'static str>,
    dixa_message: Option<&'static str>,
}

impl Expect {
    fn status(status: u16) -> Self {
        Expect {
            statuses: vec![status],
            desk_field: None,
            dixa_message: None,
        }
    }
}

struct Attack {
    label: String,
    path: String,
    body: Vec<u8>,
    expect: Expect,
}

/// Whether an error answer is JSON in the family's error shape.
fn shape_problem(family: Family, resp: &Resp) -> Option<String> {
    let content_type = resp
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Some(format!("the error is not JSON ({content_type:?})"));
    }
    let body = &resp.body;
    let ok = match family {
        Family::Tiledesk | Family::Auth => {
            body["success"] == json!(false) && body["msg"].is_string()
        }
        Family::Dixa => body["message"].is_string() && body.get("success").is_none(),
        Family::Desk => body["errors"].as_array().is_some_and(|errors| {
            !errors.is_empty()
                && errors
                    .iter()
                    .all(|e| e["code"].is_string() && e["message"].is_string())
        }),
    };
    (!ok).then(|| format!("not the {family:?} error shape"))
}

#[track_caller]
fn assert_error_shape(family: Family, resp: &Resp, label: &str) {
    if let Some(problem) = shape_problem(family, resp) {
        panic!("{label}: {problem}: {} {}", resp.status, resp.text);
    }
}

/// Sends raw bytes; a dropped connection fails the test with the attack's label.
async fn send(fx: &Fx, method: &Method, path: &str, who: Who, body: Vec<u8>, label: &str) -> Resp {
    let mut req = fx
        .app
        .client
        .request(method.clone(), format!("{}{}", fx.app.address, path))
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(auth) = fx.auth(who) {
        req = req.header("Authorization", auth);
    }
    let response = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{label}: no answer (dropped connection?): {e:?}"));
    let status = response.status();
    let headers = response.headers().clone();
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("{label}: the answer was cut: {e:?}"));
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        body,
    }
}

/// What `snap` covers, plus every event log's bounds (a rejected request emits nothing).
async fn snapshot(fx: &Fx, snap: Snap) -> Value {
    let app = &fx.app;
    let store = &app.state.store;
    let mut log = Vec::new();
    for partition in store.partitions().all() {
        log.push(format!(
            "{:?}",
            store.log_bounds(partition).await.expect("log bounds")
        ));
    }
    let pid = &fx.pid;
    let team = || async {
        app.get(
            &format!("/v3/{pid}/project_users?trashed=true"),
            &fx.owner.token,
        )
        .await
        .expect(200)
    };
    let what = match snap {
        Snap::Signup => json!(store
            .find_user_by_email(&fx.signup_email)
            .await
            .unwrap()
            .is_some()),
        Snap::OwnerAccount => app.get("/v3/users", &fx.owner.token).await.expect(200),
        Snap::Projects => json!({
            "projects": store
                .list_user_teammates(fx.owner.id.parse().unwrap())
                .await
                .unwrap()
                .len(),
            "account": app.get("/v3/users", &fx.owner.token).await.expect(200),
        }),
        Snap::Team => team().await,
        Snap::Invite => json!({
            "team": team().await,
            "pending": store.list_invitations(&fx.invite_email).await.unwrap().len(),
        }),
        Snap::Keys => app
            .get(&format!("/v3/{pid}/keys"), &fx.owner.token)
            .await
            .expect(200),
        Snap::Subscriptions => app
            .get(&format!("/v3/{pid}/subscriptions"), &fx.owner.token)
            .await
            .expect(200),
        Snap::Teams => json!({
            "teams": app.get("/beta/teams", &fx.admin_key).await.expect(200),
            "members": app
                .get(&format!("/beta/teams/{}/agents", fx.team), &fx.admin_key)
                .await
                .expect(200),
        }),
        Snap::Desk => json!({
            "team": team().await,
            "account": app.get("/v3/users", &fx.agent.token).await.expect(200),
        }),
    };
    json!({"log": log, "state": what})
}

/// Runs the attacks on `route`: each must get an expected 4xx in the family's shape, change
/// nothing and leave the gateway healthy. Returns what went wrong (every attack runs).
async fn run_attacks(fx: &Fx, route: &Route, attacks: Vec<Attack>) -> Vec<String> {
    let mut before = snapshot(fx, route.snap).await;
    let mut failures = Vec::new();
    for attack in attacks {
        let label = format!(
            "{} ({} {}): {}",
            route.name,
            route.method,
            attack.path.chars().take(120).collect::<String>(),
            attack.label
        );
        let resp = send(
            fx,
            &route.method,
            &attack.path,
            route.who,
            attack.body,
            &label,
        )
        .await;
        let status = resp.status.as_u16();
        let text: String = resp.text.chars().take(300).collect();
        if !(400..500).contains(&status) {
            failures.push(format!("{label}: not a 4xx: {status} {text}"));
        } else if !attack.expect.statuses.contains(&status) {
            failures.push(format!(
                "{label}: {status}, expected {:?}: {text}",
                attack.expect.statuses
            ));
        } else if let Some(problem) = shape_problem(route.family, &resp) {
            failures.push(format!("{label}: {problem}: {status} {text}"));
        } else if let Some(field) = attack.expect.desk_field {
            let named = resp.body["errors"].as_array().is_some_and(|errors| {
                errors
                    .iter()
                    .any(|e| e["field"] == json!(field) && e["code"] == json!("invalid"))
            });
            if !named {
                failures.push(format!("{label}: no `invalid` entry for {field}: {text}"));
            }
        } else if let Some(message) = attack.expect.dixa_message {
            if resp.body["message"] != json!(message) {
                failures.push(format!("{label}: message is not {message:?}: {text}"));
            }
        }
        let after = snapshot(fx, route.snap).await;
        if after != before {
            failures.push(format!(
                "{label}: the rejected request changed something:\n  before {before}\n  after  {after}"
            ));
            before = after;
        }
        let health = fx.app.request(Method::GET, "/healthz", None, None).await;
        assert_eq!(health.status, 200, "{label}: /healthz afterwards");
    }
    failures
}

/// Fails with every failure, one a line.
#[track_caller]
fn assert_no_failures(failures: &[String], attacks: usize) {
    assert!(
        failures.is_empty(),
        "{} of {attacks} hostile requests were mishandled:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
