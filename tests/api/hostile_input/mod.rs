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

mod close_codes;
use crate::common;
mod limits;
mod raw_ws;
mod timeouts;

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

// ---- the route table ----------------------------------------------------------------------------

/// Which error shape a route answers in.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Family {
    /// `{"success":false,"msg"}`; wrong field types are 400.
    Tiledesk,
    /// Sign-up and sign-in: the Tiledesk shape, but a well-formed body with mistyped fields is 422.
    Auth,
    /// `{"message"}`.
    Dixa,
    /// `{"errors":[{"code","message","field"?}]}`.
    Desk,
}

/// The JSON type a field takes.
#[derive(Clone, Copy, Debug)]
enum Ty {
    Str,
    Bool,
    Int,
    Obj,
    /// An array of UUID strings (`agentIds`).
    Ids,
}

/// Who calls.
#[derive(Clone, Copy, Debug)]
enum Who {
    Nobody,
    Owner,
    AdminKey,
}

/// What a rejected request must leave as it was.
#[derive(Clone, Copy, Debug)]
enum Snap {
    /// The signed-up users (by the free sign-up email).
    Signup,
    /// The owner's account.
    OwnerAccount,
    /// The owner's projects (teammates in the store) and account.
    Projects,
    /// The whole team, trashed included.
    Team,
    /// The team and the pending invitations of the free invitation email.
    Invite,
    Keys,
    Subscriptions,
    /// The Dixa teams and the fixture team's members.
    Teams,
    /// The team and the agent's account.
    Desk,
}

struct Route {
    name: &'static str,
    method: Method,
    /// `{pid}`, `{puid}`, `{sub}`, `{team}` and `{user}` are the fixture's ids.
    template: &'static str,
    who: Who,
    family: Family,
    snap: Snap,
    /// A valid body, often with real changes: a request that mistypes one field must not apply
    /// the others either.
    base: Value,
    fields: Vec<(&'static str, Ty)>,
    /// Desk: the fields go under `"user"` (the bare object is accepted too).
    wrapper: Option<&'static str>,
    /// An empty (or `null`) body is a valid request (`POST /v3/{pid}/keys`).
    empty_ok: bool,
}

const PLACEHOLDERS: [&str; 5] = ["{pid}", "{puid}", "{sub}", "{team}", "{user}"];

impl Fx {
    fn id_of(&self, placeholder: &str) -> &str {
        match placeholder {
            "{pid}" => &self.pid,
            "{puid}" => &self.puid,
            "{sub}" => &self.sub,
            "{team}" => &self.team,
            "{user}" => &self.agent.id,
            other => panic!("unknown placeholder {other}"),
        }
    }

    /// The template with the fixture's ids, except `replace` = `(placeholder, value)`.
    fn path(&self, template: &str, replace: Option<(&str, &str)>) -> String {
        let mut path = template.to_string();
        for p in PLACEHOLDERS {
            let value = match replace {
                Some((which, value)) if which == p => value,
                _ => self.id_of(p),
            };
            path = path.replace(p, value);
        }
        path
    }

    fn auth(&self, who: Who) -> Option<&str> {
        match who {
            Who::Nobody => None,
            Who::Owner => Some(&self.owner.token),
            Who::AdminKey => Some(&self.admin_key),
        }
    }
}

const TEAMMATE_FIELDS: [(&str, Ty); 9] = [
    ("user_available", Ty::Bool),
    ("profileStatus", Ty::Str),
    ("max_served_chat", Ty::Int),
    ("max_assigned_chat", Ty::Int),
    ("attributes", Ty::Obj),
    ("settings", Ty::Obj),
    ("role", Ty::Str),
    ("status", Ty::Str),
    ("number_assigned_requests", Ty::Int),
];

const SUBSCRIPTION_FIELDS: [(&str, Ty); 3] = [
    ("event", Ty::Str),
    ("target", Ty::Str),
    ("enabled", Ty::Bool),
];

const DESK_FIELDS: [(&str, Ty); 13] = [
    ("firstName", Ty::Str),
    ("lastName", Ty::Str),
    ("email", Ty::Str),
    ("role", Ty::Str),
    ("state", Ty::Str),
    ("timezoneId", Ty::Int),
    ("editMethod", Ty::Str),
    ("ticketReplyRedirect", Ty::Str),
    ("isPartTime", Ty::Bool),
    ("reviewer", Ty::Bool),
    ("sendPushNotifications", Ty::Bool),
    ("sendWebNotifications", Ty::Bool),
    ("autoFollowOnCC", Ty::Bool),
];

/// Every `/v3` POST/PUT route, the Dixa routes with a body, and the Desk update.
fn body_routes(fx: &Fx) -> Vec<Route> {
    let route =
        |name, method, template, who, family, snap, base, fields: &[(&'static str, Ty)]| Route {
            name,
            method,
            template,
            who,
            family,
            snap,
            base,
            fields: fields.to_vec(),
            wrapper: None,
            empty_ok: false,
        };
    let teammate_change =
        json!({"profileStatus": "hacked", "max_served_chat": 3, "attributes": {"x": 1}});
    vec![
        route(
            "sign-up",
            Method::POST,
            "/v3/auth/signup",
            Who::Nobody,
            Family::Auth,
            Snap::Signup,
            json!({"email": fx.signup_email, "password": PASSWORD, "firstname": "Eve", "lastname": "X"}),
            &[
                ("email", Ty::Str),
                ("password", Ty::Str),
                ("firstname", Ty::Str),
                ("lastname", Ty::Str),
            ],
        ),
        route(
            "sign-in",
            Method::POST,
            "/v3/auth/signin",
            Who::Nobody,
            Family::Auth,
            Snap::OwnerAccount,
            json!({"email": fx.owner.email, "password": PASSWORD}),
            &[("email", Ty::Str), ("password", Ty::Str)],
        ),
        route(
            "user update",
            Method::PUT,
            "/v3/users",
            Who::Owner,
            Family::Tiledesk,
            Snap::OwnerAccount,
            json!({"firstname": "Mallory", "attributes": {"x": 1}}),
            &[
                ("firstname", Ty::Str),
                ("lastname", Ty::Str),
                ("attributes", Ty::Obj),
            ],
        ),
        route(
            "project creation",
            Method::POST,
            "/v3/projects",
            Who::Owner,
            Family::Tiledesk,
            Snap::Projects,
            json!({"name": "Hostile"}),
            &[("name", Ty::Str)],
        ),
        route(
            "own teammate update",
            Method::PUT,
            "/v3/{pid}/project_users",
            Who::Owner,
            Family::Tiledesk,
            Snap::Team,
            teammate_change,
            &TEAMMATE_FIELDS,
        ),
        route(
            "invite",
            Method::POST,
            "/v3/{pid}/project_users/invite",
            Who::Owner,
            Family::Tiledesk,
            Snap::Invite,
            json!({"email": fx.invite_email, "role": "agent", "user_available": false}),
            &[
                ("email", Ty::Str),
                ("role", Ty::Str),
                ("firstname", Ty::Str),
                ("lastname", Ty::Str),
                ("user_available", Ty::Bool),
            ],
        ),
        route(
            "teammate update",
            Method::PUT,
            "/v3/{pid}/project_users/{puid}",
            Who::Owner,
            Family::Tiledesk,
            Snap::Team,
            json!({"profileStatus": "hacked", "role": "admin", "number_assigned_requests": 7}),
            &TEAMMATE_FIELDS,
        ),
        Route {
            empty_ok: true,
            ..route(
                "key creation",
                Method::POST,
                "/v3/{pid}/keys",
                Who::Owner,
                Family::Tiledesk,
                Snap::Keys,
                json!({"name": "k", "role": "admin"}),
                &[("name", Ty::Str), ("role", Ty::Str)],
            )
        },
        route(
            "subscription creation",
            Method::POST,
            "/v3/{pid}/subscriptions",
            Who::Owner,
            Family::Tiledesk,
            Snap::Subscriptions,
            json!({"event": "*", "target": "http://127.0.0.1:9/other", "enabled": true}),
            &SUBSCRIPTION_FIELDS,
        ),
        route(
            "subscription update",
            Method::PUT,
            "/v3/{pid}/subscriptions/{sub}",
            Who::Owner,
            Family::Tiledesk,
            Snap::Subscriptions,
            json!({"event": "*", "enabled": false}),
            &SUBSCRIPTION_FIELDS,
        ),
        route(
            "team creation",
            Method::POST,
            "/beta/teams",
            Who::AdminKey,
            Family::Dixa,
            Snap::Teams,
            json!({"name": "Tier 2"}),
            &[("name", Ty::Str)],
        ),
        route(
            "team members added",
            Method::PATCH,
            "/beta/teams/{team}/agents",
            Who::AdminKey,
            Family::Dixa,
            Snap::Teams,
            json!({"agentIds": [fx.owner.id]}),
            &[("agentIds", Ty::Ids)],
        ),
        route(
            "team members removed",
            Method::DELETE,
            "/beta/teams/{team}/agents",
            Who::AdminKey,
            Family::Dixa,
            Snap::Teams,
            json!({"agentIds": [fx.agent.id]}),
            &[("agentIds", Ty::Ids)],
        ),
        Route {
            wrapper: Some("user"),
            ..route(
                "desk user update",
                Method::PATCH,
                "/desk/api/v2/users/{user}.json",
                Who::AdminKey,
                Family::Desk,
                Snap::Desk,
                json!({"firstName": "Mallory", "role": "admin", "timezoneId": 7, "isPartTime": true}),
                &DESK_FIELDS,
            )
        },
    ]
}

/// Routes with ids in the path but no body: only the id attacks apply.
fn bodyless_id_routes() -> Vec<Route> {
    let route = |name, method, template, who, family, snap| Route {
        name,
        method,
        template,
        who,
        family,
        snap,
        base: Value::Null,
        fields: vec![],
        wrapper: None,
        empty_ok: true,
    };
    vec![
        route(
            "restore",
            Method::PUT,
            "/v3/{pid}/project_users/{puid}/restore",
            Who::Owner,
            Family::Tiledesk,
            Snap::Team,
        ),
        route(
            "event stream",
            Method::GET,
            "/v3/{pid}/events",
            Who::Owner,
            Family::Tiledesk,
            Snap::Team,
        ),
        route(
            "team deletion",
            Method::DELETE,
            "/beta/teams/{team}",
            Who::AdminKey,
            Family::Dixa,
            Snap::Teams,
        ),
    ]
}

/// Values of the wrong JSON type for a field of type `ty`.
fn wrong_values(ty: Ty, fx: &Fx) -> Vec<Value> {
    match ty {
        Ty::Str => vec![
            json!(123),
            json!(-1.5),
            json!(true),
            json!({}),
            json!(["x"]),
        ],
        Ty::Bool => vec![json!("true"), json!(1), json!(0), json!({}), json!([])],
        Ty::Int => vec![
            json!("5"),
            json!(1.5),
            // 1e3 is a whole number, which JSON Schema (and so the OpenAPI document) calls an
            // integer, and is accepted; a whole float out of range is not.
            json!(1e300),
            json!(u64::MAX),
            json!(-1e19),
            json!(true),
            json!({}),
            json!([1]),
        ],
        Ty::Obj => vec![json!("x"), json!(5), json!(true), json!([]), json!([1, 2])],
        Ty::Ids => vec![
            json!("x"),
            json!(5),
            json!({}),
            json!([5]),
            json!([null]),
            json!([{}]),
            json!([[]]),
            // A valid id beside a mistyped one: nothing is applied.
            json!([fx.owner.id, 5]),
            json!([fx.owner.id, fx.agent.id, true]),
        ],
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

// ---- attack generators --------------------------------------------------------------------------

/// Malformed JSON, in every family answered 400.
fn malformed(route: &Route, fx: &Fx) -> Vec<Attack> {
    let mut bodies: Vec<(&str, Vec<u8>)> = vec![
        ("unclosed object", b"{".to_vec()),
        ("missing value", b"{\"a\":}".to_vec()),
        ("not JSON", b"not json".to_vec()),
        ("trailing comma", b"{\"a\":1,}".to_vec()),
        ("single quotes", b"{'a':1}".to_vec()),
        ("trailing garbage", b"{\"a\":1} trailing".to_vec()),
        ("two documents", b"{}{}".to_vec()),
        ("byte order mark", b"\xef\xbb\xbf{}".to_vec()),
        ("NaN", b"{\"a\":NaN}".to_vec()),
        ("unterminated string", b"{\"a\":\"abc}".to_vec()),
        ("NUL byte", b"\x00".to_vec()),
        ("unclosed array", b"[1,2".to_vec()),
        (
            "control character in a string",
            b"{\"a\":\"x\x01y\"}".to_vec(),
        ),
    ];
    if !route.empty_ok {
        bodies.push(("empty", b"".to_vec()));
        bodies.push(("whitespace", b"  \n ".to_vec()));
    }
    let path = fx.path(route.template, None);
    bodies
        .into_iter()
        .map(|(label, body)| Attack {
            label: format!("malformed JSON: {label}"),
            path: path.clone(),
            body,
            expect: Expect::status(400),
        })
        .collect()
}

/// The body with `field` set to `value` (under the Desk wrapper when `wrapped`).
fn with_field(route: &Route, field: &str, value: Value, wrapped: bool) -> Value {
    let mut inner = route.base.clone();
    inner[field] = value;
    match (route.wrapper, wrapped) {
        (Some(wrapper), true) => json!({ wrapper: inner }),
        _ => inner,
    }
}

/// Each field with each wrong type; and bodies that are not objects.
fn wrong_types(route: &Route, fx: &Fx) -> Vec<Attack> {
    let path = fx.path(route.template, None);
    let status = if route.family == Family::Auth {
        422
    } else {
        400
    };
    let dixa_message = (route.family == Family::Dixa).then_some("Invalid value for: body");
    let forms: &[bool] = if route.wrapper.is_some() {
        &[true, false]
    } else {
        &[false]
    };
    let mut attacks = Vec::new();
    for &(field, ty) in &route.fields {
        for value in wrong_values(ty, fx) {
            for &wrapped in forms {
                let body = with_field(route, field, value.clone(), wrapped);
                attacks.push(Attack {
                    label: format!("{field} = {value} (wrapped: {wrapped})"),
                    path: path.clone(),
                    body: body.to_string().into_bytes(),
                    expect: Expect {
                        statuses: vec![status],
                        desk_field: (route.family == Family::Desk).then_some(field),
                        dixa_message,
                    },
                });
            }
        }
    }
    let mut not_objects = vec![json!(5), json!("text"), json!(true), json!([])];
    if !route.empty_ok {
        // `null`, like an empty body, is a valid request where the body is optional.
        not_objects.push(json!(null));
    }
    if let Some(wrapper) = route.wrapper {
        for value in [json!(5), json!("text"), json!(true), json!([]), json!([1])] {
            attacks.push(Attack {
                label: format!("{wrapper} = {value}"),
                path: path.clone(),
                body: json!({ wrapper: value }).to_string().into_bytes(),
                expect: Expect {
                    statuses: vec![400],
                    desk_field: Some(wrapper),
                    dixa_message: None,
                },
            });
        }
    } else {
        not_objects.push(json!([{}]));
    }
    for value in not_objects {
        attacks.push(Attack {
            label: format!("body = {value}"),
            path: path.clone(),
            body: value.to_string().into_bytes(),
            expect: Expect {
                statuses: vec![status],
                desk_field: None,
                dixa_message,
            },
        });
    }
    attacks
}

/// `{"<field>": <value>}` as bytes, for the byte-level attacks: the first string field (so that
/// the value is decoded as a string, not skipped or refused for its type), inside an array for
/// `agentIds`, under the wrapper for Desk; a filler key if the route has no fields.
fn raw_body(route: &Route, value: &[u8]) -> Vec<u8> {
    let target = route
        .fields
        .iter()
        .find(|(_, ty)| matches!(ty, Ty::Str))
        .or_else(|| route.fields.first());
    let (field, in_array) = match target {
        Some((field, ty)) => (*field, matches!(ty, Ty::Ids)),
        None => ("x", false),
    };
    let mut body = Vec::new();
    if let Some(wrapper) = route.wrapper {
        body.extend_from_slice(format!("{{\"{wrapper}\":").as_bytes());
    }
    body.extend_from_slice(format!("{{\"{field}\":").as_bytes());
    if in_array {
        body.push(b'[');
    }
    body.extend_from_slice(value);
    if in_array {
        body.push(b']');
    }
    body.push(b'}');
    if route.wrapper.is_some() {
        body.push(b'}');
    }
    body
}

/// `nested` where the route really decodes it: inside its first object field (`attributes`,
/// `settings`), else as [`raw_body`] does. (A deep value under an unknown key is skipped without
/// recursion, like any unknown field, and the request is valid.)
fn deep_body(route: &Route, nested: &[u8]) -> Vec<u8> {
    match route.fields.iter().find(|(_, ty)| matches!(ty, Ty::Obj)) {
        Some((field, _)) => {
            let mut body = format!("{{\"{field}\":{{\"a\":").into_bytes();
            body.extend_from_slice(nested);
            body.extend_from_slice(b"}}");
            body
        }
        None => raw_body(route, nested),
    }
}

/// Over 1 MiB (413), 10,000-deep nesting and invalid UTF-8 (400).
fn bytes_attacks(route: &Route, fx: &Fx) -> Vec<Attack> {
    let path = fx.path(route.template, None);
    let attack = |label: &str, body: Vec<u8>, status: u16| Attack {
        label: label.to_string(),
        path: path.clone(),
        body,
        expect: Expect::status(status),
    };
    let huge_string = format!("\"{}\"", "x".repeat(OVERSIZED));
    let deep_arrays = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(DEPTH), "}".repeat(DEPTH));
    vec![
        attack("over 1 MiB", raw_body(route, huge_string.as_bytes()), 413),
        attack(
            "over 1 MiB of spaces",
            format!("{}{{}}", " ".repeat(OVERSIZED)).into_bytes(),
            413,
        ),
        attack(
            "10,000 nested arrays",
            deep_arrays.clone().into_bytes(),
            400,
        ),
        attack(
            "10,000 nested arrays in a field",
            deep_body(route, deep_arrays.as_bytes()),
            400,
        ),
        attack(
            "10,000 nested objects in a field",
            deep_body(route, deep_objects.as_bytes()),
            400,
        ),
        attack(
            "100,000 unclosed arrays",
            "[".repeat(100_000).into_bytes(),
            400,
        ),
        attack(
            "invalid UTF-8 in a string",
            raw_body(route, b"\"\xff\xfe\""),
            400,
        ),
        attack(
            "overlong UTF-8 encoding",
            raw_body(route, b"\"\xc0\xaf\""),
            400,
        ),
        attack(
            "UTF-8 encoded surrogate",
            raw_body(route, b"\"\xed\xa0\x80\""),
            400,
        ),
        attack(
            "truncated UTF-8 sequence",
            raw_body(route, b"\"\xe2\x82\""),
            400,
        ),
        attack(
            "lone surrogate escape",
            raw_body(route, br#""\ud800""#),
            400,
        ),
        attack("number out of range", raw_body(route, b"1e400"), 400),
        attack("invalid UTF-8 in a key", b"{\"\xc3\x28\":1}".to_vec(), 400),
        // JSON text must be UTF-8 (RFC 8259) even where the route ignores the field.
        attack(
            "invalid UTF-8 in an ignored field",
            b"{\"name\":\"\xff\xfe\"}".to_vec(),
            400,
        ),
        attack(
            "invalid UTF-8 deep in an ignored field",
            b"{\"zz_unknown\":[{\"a\":\"ok\"},{\"b\":\"\xc0\xaf\"}]}".to_vec(),
            400,
        ),
        attack("bare invalid bytes", b"\xff\xfe\xfd".to_vec(), 400),
    ]
}

/// Malformed ids that are valid UTF-8 once percent-decoded.
fn malformed_ids(valid: &str) -> Vec<String> {
    vec![
        "not-a-uuid".to_string(),
        "12345".to_string(),
        "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz".to_string(),
        format!("{valid}0"),
        valid[..valid.len() - 1].to_string(),
        "%00".to_string(),
        "a%20b".to_string(),
        "9".repeat(2_000),
    ]
}

/// Ids whose percent-decoding is not UTF-8 (see `non_utf8_ids_in_paths`).
fn non_utf8_ids(_valid: &str) -> Vec<String> {
    vec![
        "%FF".to_string(),
        "%C3%28".to_string(),
        "%ED%A0%80".to_string(),
    ]
}

/// Each id of the path replaced by each of `bad` (400; Desk: 404 or 400, its id is part of
/// `{id}.json`), and, with `unknown`, by a well-formed unknown UUID (404).
fn id_attacks_with(
    route: &Route,
    fx: &Fx,
    bad: fn(&str) -> Vec<String>,
    unknown: bool,
) -> Vec<Attack> {
    let body = match &route.base {
        Value::Null => Vec::new(),
        base => base.to_string().into_bytes(),
    };
    let mut attacks = Vec::new();
    for placeholder in PLACEHOLDERS {
        if !route.template.contains(placeholder) {
            continue;
        }
        for value in bad(fx.id_of(placeholder)) {
            let (statuses, dixa_message) = match route.family {
                Family::Desk => (vec![400, 404], None),
                Family::Dixa => (vec![400], Some("Invalid value for: path parameter teamId")),
                _ => (vec![400], None),
            };
            attacks.push(Attack {
                label: format!(
                    "malformed {placeholder} `{}`",
                    value.chars().take(40).collect::<String>()
                ),
                path: fx.path(route.template, Some((placeholder, &value))),
                body: body.clone(),
                expect: Expect {
                    statuses,
                    desk_field: None,
                    dixa_message,
                },
            });
        }
        if unknown {
            let unknown = uuid::Uuid::new_v4().to_string();
            attacks.push(Attack {
                label: format!("unknown {placeholder}"),
                path: fx.path(route.template, Some((placeholder, &unknown))),
                body: body.clone(),
                expect: Expect::status(404),
            });
        }
    }
    attacks
}

fn id_attacks(route: &Route, fx: &Fx) -> Vec<Attack> {
    id_attacks_with(route, fx, malformed_ids, true)
}

// ---- the table tests ----------------------------------------------------------------------------

async fn attack_routes(fx: &Fx, names: &[&str], with_ids: bool) {
    let started = Instant::now();
    let (mut total, mut failures) = (0, Vec::new());
    for route in body_routes(fx) {
        if !names.contains(&route.name) {
            continue;
        }
        let mut attacks = malformed(&route, fx);
        attacks.extend(wrong_types(&route, fx));
        let mut bytes = bytes_attacks(&route, fx);
        if route.name == "key creation" {
            // Known bug: its 413 is plain text (`oversized_key_bodies` keeps the check).
            bytes.retain(|a| a.expect.statuses != [413]);
        }
        attacks.extend(bytes);
        if with_ids {
            attacks.extend(id_attacks(&route, fx));
        }
        total += attacks.len();
        failures.extend(run_attacks(fx, &route, attacks).await);
    }
    println!(
        "{total} hostile requests on {names:?} in {:?}",
        started.elapsed()
    );
    assert_no_failures(&failures, total);
}

async fn account_and_project_bodies(engine: Engine) {
    let fx = fixture(engine).await;
    attack_routes(
        &fx,
        &["sign-up", "sign-in", "user update", "project creation"],
        true,
    )
    .await;
}

async fn teammate_bodies(engine: Engine) {
    let fx = fixture(engine).await;
    attack_routes(
        &fx,
        &["own teammate update", "invite", "teammate update"],
        true,
    )
    .await;
}

async fn key_and_subscription_bodies(engine: Engine) {
    let fx = fixture(engine).await;
    attack_routes(
        &fx,
        &[
            "key creation",
            "subscription creation",
            "subscription update",
        ],
        true,
    )
    .await;
}

/// Dixa and Desk, without the malformed ids (`ids_in_paths` has them).
async fn dixa_and_desk_bodies(engine: Engine) {
    let fx = fixture(engine).await;
    attack_routes(
        &fx,
        &[
            "team creation",
            "team members added",
            "team members removed",
            "desk user update",
        ],
        false,
    )
    .await;
}

/// Malformed and unknown ids on the Dixa and Desk routes and on the body-less id routes.
async fn ids_in_paths(engine: Engine) {
    let fx = fixture(engine).await;
    let mut routes: Vec<Route> = body_routes(&fx)
        .into_iter()
        .filter(|r| matches!(r.family, Family::Dixa | Family::Desk))
        .collect();
    routes.extend(bodyless_id_routes());
    let (mut total, mut failures) = (0, Vec::new());
    for route in routes {
        let attacks = id_attacks(&route, &fx);
        total += attacks.len();
        failures.extend(run_attacks(&fx, &route, attacks).await);
    }
    assert_no_failures(&failures, total);
}

/// A JSON array is not an object, even when its elements are the body's fields in order: a
/// body is never read positionally. Every route is tried before the verdict, which lists all
/// that accept such a body.
async fn positional_array_bodies(engine: Engine) {
    let fx = fixture(engine).await;
    let positional: Vec<(&str, Value)> = vec![
        ("project creation", json!(["Hostile"])),
        ("user update", json!(["Mallory", "X", {}])),
        ("key creation", json!(["k", "admin"])),
        (
            "invite",
            json!([fx.invite_email, "agent", null, null, false]),
        ),
        (
            "own teammate update",
            json!([false, "hacked", 3, null, null, null, null, null, null]),
        ),
        (
            "teammate update",
            json!([false, "hacked", 3, null, null, null, "admin", null, null]),
        ),
        (
            "subscription creation",
            json!(["*", "http://127.0.0.1:9/other", true]),
        ),
        ("subscription update", json!(["*", null, false])),
        ("team creation", json!(["Tier 2"])),
        ("team members added", json!([[fx.owner.id]])),
        ("team members removed", json!([[fx.agent.id]])),
        ("desk user update", json!(["Mallory"])),
    ];
    let routes = body_routes(&fx);
    let mut accepted = Vec::new();
    for (name, body) in positional {
        let route = routes.iter().find(|r| r.name == name).unwrap();
        let path = fx.path(route.template, None);
        let label = format!("{name} ({} {path}) with {body}", route.method);
        let before = snapshot(&fx, route.snap).await;
        let resp = send(
            &fx,
            &route.method,
            &path,
            route.who,
            body.to_string().into_bytes(),
            &label,
        )
        .await;
        let status = resp.status.as_u16();
        assert!(status < 500, "{label}: {status} {}", resp.text);
        let changed = snapshot(&fx, route.snap).await != before;
        if status != 400 || changed {
            accepted.push(format!("{label}: {status}, changed: {changed}"));
        } else {
            assert_error_shape(route.family, &resp, &label);
        }
    }
    assert!(
        accepted.is_empty(),
        "array bodies read as objects:\n{}",
        accepted.join("\n")
    );
}

/// Ids whose percent-decoding is not UTF-8, on every route with ids in its path: 400 (Desk: 404)
/// in the family's shape.
async fn non_utf8_ids_in_paths(engine: Engine) {
    let fx = fixture(engine).await;
    let mut routes = body_routes(&fx);
    routes.extend(bodyless_id_routes());
    let (mut total, mut failures) = (0, Vec::new());
    for route in routes {
        let attacks = id_attacks_with(&route, &fx, non_utf8_ids, false);
        total += attacks.len();
        failures.extend(run_attacks(&fx, &route, attacks).await);
    }
    assert_no_failures(&failures, total);
}

/// `POST /v3/{pid}/keys` over 1 MiB: 413 in the Tiledesk shape, nothing created.
async fn oversized_key_bodies(engine: Engine) {
    let fx = fixture(engine).await;
    let route = body_routes(&fx)
        .into_iter()
        .find(|r| r.name == "key creation")
        .unwrap();
    let mut attacks = bytes_attacks(&route, &fx);
    attacks.retain(|a| a.expect.statuses == [413]);
    let total = attacks.len();
    let failures = run_attacks(&fx, &route, attacks).await;
    assert_no_failures(&failures, total);
}

// ---- arbitrary bytes ------------------------------------------------------------------------------

/// Arbitrary bodies: raw bytes, arbitrary text, and JSON objects whose keys are the routes'
/// fields with arbitrary values.
fn arbitrary_body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        any::<String>().prop_map(Value::from),
    ];
    let json = leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![
            prop::sample::select(vec![
                "profileStatus",
                "max_served_chat",
                "attributes",
                "agentIds",
                "user",
                "timezoneId",
                "isPartTime",
                "firstName",
            ])
            .prop_map(str::to_string),
            any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6)
                .prop_map(|f| Value::Object(f.into_iter().collect())),
        ]
    });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        any::<String>().prop_map(String::into_bytes),
        json.prop_map(|v| v.to_string().into_bytes()),
    ]
}

/// Proptest over arbitrary bodies on three routes (one per family): never a 5xx, never a dropped
/// connection, and every 4xx in the family's shape. Valid bodies may apply, so no snapshot.
async fn arbitrary_bytes_never_5xx(engine: Engine) {
    let fx = Arc::new(fixture(engine).await);
    let targets: Vec<(Method, String, Who, Family)> = vec![
        (
            Method::PUT,
            fx.path("/v3/{pid}/project_users/{puid}", None),
            Who::Owner,
            Family::Tiledesk,
        ),
        (
            Method::PATCH,
            fx.path("/beta/teams/{team}/agents", None),
            Who::AdminKey,
            Family::Dixa,
        ),
        (
            Method::PATCH,
            fx.path("/desk/api/v2/users/{user}.json", None),
            Who::AdminKey,
            Family::Desk,
        ),
    ];
    let handle = tokio::runtime::Handle::current();
    // The runner is synchronous; it runs on a blocking thread and drives each request on the
    // test's runtime (whose thread keeps driving I/O while it waits for this one).
    tokio::task::spawn_blocking(move || {
        for (method, path, who, family) in targets {
            let mut runner = TestRunner::new(ProptestConfig {
                cases: 32,
                failure_persistence: None,
                ..ProptestConfig::default()
            });
            let result = runner.run(&arbitrary_body(), |body| {
                let label = format!("{method} {path} with {} arbitrary bytes", body.len());
                let resp = handle.block_on(send(&fx, &method, &path, who, body, &label));
                let status = resp.status.as_u16();
                prop_assert!(status < 500, "{label}: {status} {}", resp.text);
                if status >= 400 {
                    let problem = shape_problem(family, &resp);
                    prop_assert!(problem.is_none(), "{label}: {problem:?}: {}", resp.text);
                }
                let health = handle.block_on(fx.app.request(Method::GET, "/healthz", None, None));
                prop_assert_eq!(health.status.as_u16(), 200);
                Ok::<(), TestCaseError>(())
            });
            if let Err(e) = result {
                panic!("{method} {path}: {e}");
            }
        }
    })
    .await
    .expect("the property runner");
}

// ---- sockets ------------------------------------------------------------------------------------

const HEARTBEAT: &str = r#"{"action":"heartbeat","payload":{"message":{"text":"ping"}}}"#;

/// Hostile frames get error frames with a known code; the socket stays open and answers.
async fn hostile_frames_get_error_frames(engine: Engine) {
    let app = spawn_app(engine).await;
    let team = app.owner_and_agent().await;
    let mut agent = app.ws(&token_query(&team.agent.token)).await;
    let deep = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let frames: Vec<(String, &str)> = vec![
        ("not json".into(), "invalid_frame"),
        ("".into(), "invalid_frame"),
        (deep.clone(), "invalid_frame"),
        (
            format!(r#"{{"action":"subscribe","payload":{deep}}}"#),
            "invalid_frame",
        ),
        (
            "[".repeat(100_000).chars().take(60_000).collect(),
            "invalid_frame",
        ),
        (r#"{"action":5}"#.into(), "invalid_frame"),
        (r#"{"action":{"a":1}}"#.into(), "invalid_frame"),
        (r#"{"action":"x","payload":1e400}"#.into(), "invalid_frame"),
        (
            r#"{"action":"publish","payload":{"topic":"/x","message":{}}}"#.into(),
            "forbidden",
        ),
        (
            format!(r#"{{"action":"{}"}}"#, "a".repeat(30_000)),
            "unknown_action",
        ),
        (
            r#"{"action":"subscribe","payload":{"topic":5}}"#.into(),
            "invalid_payload",
        ),
        (
            r#"{"action":"subscribe","payload":"x"}"#.into(),
            "invalid_payload",
        ),
        (r#"{"action":"unsubscribe"}"#.into(), "invalid_payload"),
        (
            r#"{"action":"availability","payload":{"user_available":"yes"}}"#.into(),
            "invalid_payload",
        ),
        (
            r#"{"action":"availability","payload":{"profileStatus":{}}}"#.into(),
            "invalid_payload",
        ),
        (
            r#"{"action":"availability","payload":{"project_id":7,"user_available":false}}"#.into(),
            "invalid_payload",
        ),
        ("\u{0}\u{feff}\u{10ffff}".into(), "invalid_frame"),
    ];
    for (text, code) in &frames {
        agent.send_text(text).await;
        let reply = agent.recv_json().await;
        let shown: String = text.chars().take(60).collect();
        assert_eq!(reply["action"], json!("error"), "{shown}: {reply}");
        assert_eq!(reply["payload"]["code"], json!(code), "{shown}: {reply}");
        assert!(reply["payload"]["message"].is_string(), "{shown}: {reply}");
    }
    agent
        .ws
        .send(Message::binary(b"\xff\xfe\x00{}".to_vec()))
        .await
        .unwrap();
    let reply = agent.recv_json().await;
    assert_eq!(reply["payload"]["code"], json!("invalid_frame"), "{reply}");
    // Still open and answering; nothing changed.
    agent.send_text(HEARTBEAT).await;
    let pong = agent.recv_json().await;
    assert_eq!(pong["payload"]["message"]["text"], json!("pong"), "{pong}");
    let tm = app
        .get(
            &format!("/v3/{}/project_users/{}", team.pid, team.puid),
            &team.owner.token,
        )
        .await
        .expect(200);
    assert_eq!(tm["user_available"], json!(true));
    agent.close().await;
    app.request(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
}

/// One client floods its socket (a burst of 3,000 frames, then about 10,000 frames a second):
/// it gets `rate_limited` error frames. Meanwhile another client's heartbeat round trips on the
/// same node stay fast: p99 of 50 under 200 ms.
async fn socket_flood_is_limited_and_others_stay_fast(engine: Engine) {
    let app = spawn_app(engine).await;
    let team = app.owner_and_agent().await;
    let flooder = app
        .ws(&format!(
            "{}&presence=false",
            token_query(&team.owner.token)
        ))
        .await;
    let mut calm = app.ws(&token_query(&team.agent.token)).await;
    calm.send_text(HEARTBEAT).await;
    calm.recv_json().await;

    let (mut sink, mut stream) = flooder.ws.split();
    let limited = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let limited = limited.clone();
        tokio::spawn(async move {
            let (mut pongs, mut others, mut close) = (0usize, Vec::new(), None);
            while let Some(Ok(message)) = stream.next().await {
                match message {
                    Message::Text(text) => {
                        let v: Value = serde_json::from_str(&text).expect("JSON frame");
                        if v["payload"]["code"] == json!("rate_limited") {
                            limited.fetch_add(1, Ordering::Relaxed);
                        } else if v["payload"]["message"]["text"] == json!("pong") {
                            pongs += 1;
                        } else if v["payload"]["message"]["text"] != json!("ping") {
                            others.push(v);
                        }
                    }
                    Message::Close(frame) => {
                        close = frame.map(|f| u16::from(f.code));
                        break;
                    }
                    _ => {}
                }
            }
            (pongs, others, close)
        })
    };
    let flood_started = Instant::now();
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut sent = 0usize;
            for _ in 0..3_000 {
                sink.feed(Message::text(HEARTBEAT)).await.expect("flood");
                sent += 1;
            }
            sink.flush().await.expect("flood");
            // Bounded: at most 8 s of flooding (the limiter closes after 10 s).
            let deadline = Instant::now() + Duration::from_secs(8);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                for _ in 0..50 {
                    sink.feed(Message::text(HEARTBEAT)).await.expect("flood");
                }
                sink.flush().await.expect("flood");
                sent += 50;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = sink.close().await;
            sent
        })
    };
    // Measure once the flooder is being refused.
    let refused = common::eventually(Duration::from_secs(10), || {
        let limited = limited.clone();
        async move { limited.load(Ordering::Relaxed) > 0 }
    })
    .await;
    assert!(refused, "the flood was never rate limited");
    let mut samples = Vec::with_capacity(50);
    for _ in 0..50 {
        let sent = Instant::now();
        calm.send_text(HEARTBEAT).await;
        let reply = calm.recv_json().await;
        samples.push(sent.elapsed());
        assert_eq!(
            reply["payload"]["message"]["text"],
            json!("pong"),
            "the calm client is never limited: {reply}"
        );
    }
    let limited_during = limited.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let sent = writer.await.expect("the flood writer");
    let (pongs, others, close) = tokio::time::timeout(Duration::from_secs(15), reader)
        .await
        .expect("the flooder's socket closes")
        .expect("the flood reader");
    // Until the last answer: the limiter refills while the node works through the backlog.
    let flood_secs = flood_started.elapsed().as_secs_f64();
    let limited = limited.load(Ordering::Relaxed);

    samples.sort();
    let p50 = samples[samples.len() / 2];
    let p99 = samples[(samples.len() * 99).div_ceil(100) - 1];
    println!(
        "flood: {sent} frames in {flood_secs:.2} s ({:.0}/s), {pongs} answered, {limited} \
         rate_limited ({limited_during} while measuring); calm heartbeat p50 {p50:?}, p99 {p99:?}",
        sent as f64 / flood_secs
    );
    assert!(others.is_empty(), "unexpected frames: {others:?}");
    assert_ne!(close, Some(1008), "closed for flooding within 10 s");
    assert!(
        limited >= 500,
        "beyond the burst, frames are refused: {limited}"
    );
    let allowed = 2_000.0 + 50.0 * (flood_secs + 1.0);
    assert!(
        (pongs as f64) <= allowed,
        "{pongs} frames answered, the limit allows {allowed:.0}"
    );
    assert!(pongs >= 2_000, "the burst is answered: {pongs}");
    assert!(
        p99 < Duration::from_millis(200),
        "another client's heartbeat p99 {p99:?} during the flood"
    );
    // The calm client and the node are fine.
    calm.send_text(HEARTBEAT).await;
    assert_eq!(
        calm.recv_json().await["payload"]["message"]["text"],
        json!("pong")
    );
    calm.close().await;
    app.request(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
}

engine_tests!(
    positional_array_bodies,
    non_utf8_ids_in_paths,
    oversized_key_bodies,
    account_and_project_bodies,
    teammate_bodies,
    key_and_subscription_bodies,
    dixa_and_desk_bodies,
    ids_in_paths,
    arbitrary_bytes_never_5xx,
    hostile_frames_get_error_frames,
    socket_flood_is_limited_and_others_stay_fast,
);
