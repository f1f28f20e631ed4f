//! Security properties, black-box over real HTTP and WebSockets:
//!
//! 1. `authorization_matrix`: every route × every kind of caller (both engines), plus a check,
//!    parsed from the router sources at test time, that the table lists every route.
//! 2. `jwt_edge_cases`: forged, expired, unsigned and foreign tokens are 401 on REST, SSE and
//!    the socket handshake; a backend-minted token (Tiledesk `_id`) works.
//! 3. `signin_brute_force_is_limited`: the per-email sign-in limit (sign-in and Basic share it).
//! 4. `connection_limits_*`: per-user 429 at the handshake, per-node close 1013.
//! 5. `webhook_ssrf_*`: private targets refused; redirects never followed.
//! 6. `secrets_never_reach_the_logs`: the real binary at `trace` level logs no credential.
//! 7. `revoked_credentials_lose_access`: a disabled teammate and a deleted API key lose access
//!    at once (both engines).
//!
//! The regressions at the end reproduce gateway bugs this suite found (now fixed).
//!
//! Constant-time comparisons are a code-review item and are not tested here.

use crate::common;
mod emails;
mod invitations;
mod socket_caps;
mod ssrf_ipv6;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::jwt::{assert_refused_everywhere, b64_json, hs256, mint, mint_with, now};
use common::{
    spawn_app_with, token_query, Engine, GatewayProcess, Resp, TestApp, TestUser, JWT_SECRET,
    PASSWORD,
};
use futures::{SinkExt, StreamExt};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, Message};

const WAIT: Duration = Duration::from_secs(10);

// ---- shared helpers -----------------------------------------------------------------------------

fn fresh_email(name: &str) -> String {
    format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// The outcome of a WebSocket handshake: the socket, or the refusal's status and headers.
async fn ws_connect(
    port: u16,
    path_and_query: &str,
) -> Result<common::WsStream, (u16, tungstenite::http::HeaderMap)> {
    let url = format!("ws://127.0.0.1:{port}{path_and_query}");
    match tokio_tungstenite::connect_async(url).await {
        Ok((ws, response)) => {
            assert_eq!(response.status().as_u16(), 101);
            Ok(ws)
        }
        Err(tungstenite::Error::Http(response)) => {
            Err((response.status().as_u16(), response.headers().clone()))
        }
        Err(e) => panic!("unexpected handshake error on {path_and_query}: {e}"),
    }
}

/// Sends a heartbeat and reads until its pong (true) or a close frame (false).
async fn answers_heartbeat(ws: &mut common::WsStream) -> bool {
    let ping = json!({"action": "heartbeat", "payload": {"message": {"text": "ping"}}});
    if ws.send(Message::text(ping.to_string())).await.is_err() {
        return false;
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Err(_) => panic!("no answer to a heartbeat within 5 s"),
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return false,
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["payload"]["message"]["text"] == json!("pong") {
                    return true;
                }
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Reads until the server's close frame; its code.
async fn close_code(ws: &mut common::WsStream) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Err(_) => panic!("the server did not close the socket within 5 s"),
            Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

// ---- 1. authorization matrix --------------------------------------------------------------------

/// Teammate roles, each including those below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Agent,
    Supervisor,
    Admin,
    Owner,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Owner,
    Admin,
    Supervisor,
    Agent,
    /// A user who belongs to another project only.
    Outsider,
    AdminKey,
    AgentKey,
    /// An admin API key of another project.
    OtherAdminKey,
}

const CALLERS: [Caller; 9] = [
    Caller::Anonymous,
    Caller::Owner,
    Caller::Admin,
    Caller::Supervisor,
    Caller::Agent,
    Caller::Outsider,
    Caller::AdminKey,
    Caller::AgentKey,
    Caller::OtherAdminKey,
];

impl Caller {
    fn user_role(self) -> Option<Role> {
        match self {
            Caller::Owner => Some(Role::Owner),
            Caller::Admin => Some(Role::Admin),
            Caller::Supervisor => Some(Role::Supervisor),
            Caller::Agent => Some(Role::Agent),
            _ => None,
        }
    }

    /// The role of an API key of the project.
    fn key_role(self) -> Option<Role> {
        match self {
            Caller::AdminKey => Some(Role::Admin),
            Caller::AgentKey => Some(Role::Agent),
            _ => None,
        }
    }

    fn is_user(self) -> bool {
        self.user_role().is_some() || self == Caller::Outsider
    }

    /// Callers from outside the project, who must never see its ids.
    fn is_foreign(self) -> bool {
        matches!(
            self,
            Caller::Anonymous | Caller::Outsider | Caller::OtherAdminKey
        )
    }
}

/// The minimum credential a route takes.
#[derive(Clone, Copy, Debug)]
enum Need {
    /// Anyone, credentials or not.
    Public,
    /// Any valid credential: a user of any project or an API key of any project.
    Credential,
    /// A signed-in user of any project; API keys get 403.
    User,
    /// A user teammate or an API key of the project (`{pid}` in the path) with this role.
    Member(Role),
    /// A user teammate of the project with this role; API keys get 403 (they have no teammate).
    Teammate(Role),
    /// A project API key with this role, scoped to the key's own project (users get 401): a
    /// collection, which another project's key reads or writes in its own project.
    Key(Role),
    /// Like `Key`, for a path naming something of the project: another project's key gets 404,
    /// so it learns nothing about the project.
    KeyScoped(Role),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Http,
    Sse,
    Socket,
}

/// One route of the table. `{name}` in the path and `$name` in the body are filled in per cell
/// (see [`World::value`]); names starting with `fresh_`, `victim` and `trashed` are created anew
/// for every cell, because the call consumes them.
struct Row {
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    need: Need,
    kind: Kind,
    /// The success status.
    ok: u16,
}

const fn http(
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    need: Need,
    ok: u16,
) -> Row {
    Row {
        method,
        path,
        body,
        need,
        kind: Kind::Http,
        ok,
    }
}

const fn sse(path: &'static str, need: Need) -> Row {
    Row {
        method: "GET",
        path,
        body: None,
        need,
        kind: Kind::Sse,
        ok: 200,
    }
}

const fn socket(path: &'static str, need: Need) -> Row {
    Row {
        method: "GET",
        path,
        body: None,
        need,
        kind: Kind::Socket,
        ok: 101,
    }
}

/// A disabled subscription to a public address: valid under the default SSRF rules and never
/// delivered to.
const SUB_BODY: &str = r#"{"event":"*","target":"https://1.1.1.1/matrix","enabled":false}"#;

use Need::{Credential, Key, KeyScoped, Member, Public, Teammate, User};
use Role::{Admin as RAdmin, Agent as RAgent};

/// Every route of the gateway, with its minimum credential.
const ROUTES: &[Row] = &[
    // Tiledesk /v3 (src/http/tiledesk/mod.rs)
    http(
        "POST",
        "/v3/auth/signup",
        Some(r#"{"email":"$email","password":"$password","firstname":"New"}"#),
        Public,
        200,
    ),
    http(
        "POST",
        "/v3/auth/signin",
        Some(r#"{"email":"$signin_email","password":"$password"}"#),
        Public,
        200,
    ),
    http("GET", "/v3/users", None, User, 200),
    http(
        "PUT",
        "/v3/users",
        Some(r#"{"attributes":{"matrix":true}}"#),
        User,
        200,
    ),
    http(
        "POST",
        "/v3/projects",
        Some(r#"{"name":"Matrix"}"#),
        User,
        200,
    ),
    http("GET", "/v3/projects", None, User, 200),
    http("GET", "/v3/projects/{pid}", None, Member(RAgent), 200),
    http("GET", "/v3/{pid}/teams", None, Member(RAgent), 200),
    http(
        "GET",
        "/v3/projects/{pid}/users/availables",
        None,
        Member(RAgent),
        200,
    ),
    http("GET", "/v3/{pid}/project_users", None, Member(RAgent), 200),
    http(
        "PUT",
        "/v3/{pid}/project_users",
        Some(r#"{"profileStatus":"matrix"}"#),
        Teammate(RAgent),
        200,
    ),
    http(
        "GET",
        "/v3/{pid}/project_users/me",
        None,
        Teammate(RAgent),
        200,
    ),
    http(
        "POST",
        "/v3/{pid}/project_users/invite",
        Some(r#"{"email":"$email","role":"agent"}"#),
        Member(RAdmin),
        200,
    ),
    http(
        "GET",
        "/v3/{pid}/project_users/users/{target_user}",
        None,
        Member(RAgent),
        200,
    ),
    http(
        "GET",
        "/v3/{pid}/project_users/{target}",
        None,
        Member(RAgent),
        200,
    ),
    http(
        "PUT",
        "/v3/{pid}/project_users/{target}",
        Some(r#"{"attributes":{"matrix":true}}"#),
        Member(RAdmin),
        200,
    ),
    http(
        "DELETE",
        "/v3/{pid}/project_users/{victim}",
        None,
        Member(RAdmin),
        200,
    ),
    http(
        "PUT",
        "/v3/{pid}/project_users/{trashed}/restore",
        None,
        Member(RAdmin),
        200,
    ),
    http(
        "POST",
        "/v3/{pid}/keys",
        Some(r#"{"name":"matrix","role":"agent"}"#),
        Member(RAdmin),
        200,
    ),
    http("GET", "/v3/{pid}/keys", None, Member(RAdmin), 200),
    http(
        "DELETE",
        "/v3/{pid}/keys/{fresh_key}",
        None,
        Member(RAdmin),
        200,
    ),
    sse("/v3/{pid}/events", Member(RAgent)),
    http(
        "POST",
        "/v3/{pid}/subscriptions",
        Some(SUB_BODY),
        Member(RAdmin),
        200,
    ),
    http("GET", "/v3/{pid}/subscriptions", None, Member(RAdmin), 200),
    http(
        "GET",
        "/v3/{pid}/subscriptions/history",
        None,
        Member(RAdmin),
        200,
    ),
    http(
        "GET",
        "/v3/{pid}/subscriptions/{sub}",
        None,
        Member(RAdmin),
        200,
    ),
    http(
        "PUT",
        "/v3/{pid}/subscriptions/{sub}",
        Some(r#"{"enabled":false}"#),
        Member(RAdmin),
        200,
    ),
    http(
        "DELETE",
        "/v3/{pid}/subscriptions/{fresh_sub}",
        None,
        Member(RAdmin),
        200,
    ),
    // Dixa /beta/teams (src/http/dixa/)
    http(
        "POST",
        "/beta/teams",
        Some(r#"{"name":"Matrix"}"#),
        Key(RAdmin),
        201,
    ),
    http("GET", "/beta/teams", None, Key(RAgent), 200),
    http("GET", "/beta/teams/{team}", None, KeyScoped(RAgent), 200),
    http(
        "DELETE",
        "/beta/teams/{fresh_team}",
        None,
        KeyScoped(RAdmin),
        204,
    ),
    http(
        "PATCH",
        "/beta/teams/{team}/agents",
        Some(r#"{"agentIds":["$target_user"]}"#),
        KeyScoped(RAdmin),
        200,
    ),
    http(
        "DELETE",
        "/beta/teams/{team}/agents",
        Some(r#"{"agentIds":["$target_user"]}"#),
        KeyScoped(RAdmin),
        204,
    ),
    http(
        "GET",
        "/beta/teams/{team}/agents",
        None,
        KeyScoped(RAgent),
        200,
    ),
    http(
        "GET",
        "/beta/teams/{team}/presence",
        None,
        KeyScoped(RAgent),
        200,
    ),
    // Teamwork Desk (src/http/desk.rs)
    http(
        "PATCH",
        "/desk/api/v2/users/{target_user}.json",
        Some(r#"{"user":{"timezoneId":3}}"#),
        KeyScoped(RAdmin),
        200,
    ),
    // Operations (src/http/ops.rs)
    http("GET", "/healthz", None, Public, 200),
    http("GET", "/readyz", None, Public, 200),
    http("GET", "/metrics", None, Public, 200),
    // The API description (src/http/docs.rs)
    http("GET", "/openapi.json", None, Public, 200),
    http("GET", "/docs", None, Public, 200),
    http("GET", "/docs/{docs_file}", None, Public, 200),
    // The board (src/http/board/mod.rs)
    http("GET", "/board", None, Public, 200),
    http("GET", "/board/{board_file}", None, Public, 200),
    // Agent socket (src/ws/mod.rs)
    socket("/ws", Credential),
    socket("/", Credential),
    socket("/ws?project_id={pid}", Member(RAgent)),
];

/// Fails listing every route the sources declare that the table lacks (and every table row
/// that matches no route).
fn assert_table_covers_every_route() {
    let declared = common::routes::declared();
    // The parser works: it finds routes of every family, multi-line calls and chained methods.
    for expected in [
        ("GET", "/healthz"),
        ("GET", "/"),
        ("PATCH", "/desk/api/v2/users/*"),
        ("DELETE", "/beta/teams/*/agents"),
        ("PUT", "/v3/*/project_users/*/restore"),
        ("DELETE", "/v3/*/subscriptions/*"),
    ] {
        assert!(
            declared.contains(&(expected.0.to_string(), expected.1.to_string())),
            "the route parser missed {expected:?}: {declared:#?}"
        );
    }
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), common::routes::pattern(r.path)))
        .collect();
    let missing: Vec<_> = declared.difference(&table).collect();
    let stale: Vec<_> = table.difference(&declared).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "the authorization table is out of date.\nroutes missing from ROUTES: {missing:#?}\n\
         rows matching no route: {stale:#?}"
    );
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Success,
    Unauthorized,
    Forbidden,
    NotFound,
}

fn expected(need: Need, caller: Caller) -> Outcome {
    use Outcome::*;
    let allow = |ok: bool| if ok { Success } else { Forbidden };
    if caller == Caller::Anonymous {
        return if matches!(need, Public) {
            Success
        } else {
            Unauthorized
        };
    }
    match need {
        Public | Credential => Success,
        User => allow(caller.is_user()),
        Member(min) => allow(
            caller
                .user_role()
                .or(caller.key_role())
                .is_some_and(|r| r >= min),
        ),
        Teammate(min) => allow(caller.user_role().is_some_and(|r| r >= min)),
        Key(min) | KeyScoped(min) => match caller {
            Caller::AdminKey | Caller::AgentKey => allow(caller.key_role() >= Some(min)),
            Caller::OtherAdminKey if matches!(need, KeyScoped(_)) => NotFound,
            Caller::OtherAdminKey => Success,
            _ => Unauthorized,
        },
    }
}

/// The error shape of the API family that serves `path`.
fn error_shape_ok(path: &str, body: &Value) -> bool {
    if path.starts_with("/beta/") {
        body["message"].is_string() && body.get("success").is_none()
    } else if path.starts_with("/desk/") {
        body["errors"].as_array().is_some_and(|errors| {
            !errors.is_empty()
                && errors
                    .iter()
                    .all(|e| e["code"].is_string() && e["message"].is_string())
        })
    } else {
        body["success"] == json!(false) && body["msg"].is_string()
    }
}

/// What one cell got back.
struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl From<Resp> for Answer {
    fn from(r: Resp) -> Self {
        Answer {
            status: r.status.as_u16(),
            headers: r.headers,
            text: r.text,
            body: r.body,
        }
    }
}

struct World {
    app: TestApp,
    pid: String,
    owner: TestUser,
    admin: TestUser,
    supervisor: TestUser,
    agent: TestUser,
    outsider: TestUser,
    target: TestUser,
    target_puid: String,
    admin_key: String,
    agent_key: String,
    other_admin_key: String,
    team: String,
    sub: String,
}

impl World {
    async fn build(engine: Engine) -> World {
        // Production defaults: webhook targets must be public.
        let app = spawn_app_with(engine, &[]).await;
        let (owner, admin, supervisor, agent, outsider, target) = tokio::join!(
            app.new_user("owner"),
            app.new_user("admin"),
            app.new_user("supervisor"),
            app.new_user("agent"),
            app.new_user("outsider"),
            app.new_user("target"),
        );
        let pid = app.new_project(&owner).await;
        let other_pid = app.new_project(&outsider).await;
        for (user, role) in [
            (&admin, "admin"),
            (&supervisor, "supervisor"),
            (&agent, "agent"),
        ] {
            app.add_member(&owner, &pid, user, role).await;
        }
        let target_puid = app.add_member(&owner, &pid, &target, "agent").await["_id"]
            .as_str()
            .unwrap()
            .to_string();
        let admin_key = app.new_key(&pid, &owner.token, "admin").await;
        let agent_key = app.new_key(&pid, &owner.token, "agent").await;
        let other_admin_key = app.new_key(&other_pid, &outsider.token, "admin").await;
        let team = app
            .request(
                Method::POST,
                "/beta/teams",
                Some(&admin_key),
                Some(json!({"name": "Matrix"})),
            )
            .await
            .expect(201)["data"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let sub = app
            .post(
                &format!("/v3/{pid}/subscriptions"),
                &owner.token,
                serde_json::from_str(SUB_BODY).unwrap(),
            )
            .await
            .expect(200)["_id"]
            .as_str()
            .unwrap()
            .to_string();
        World {
            app,
            pid,
            owner,
            admin,
            supervisor,
            agent,
            outsider,
            target,
            target_puid,
            admin_key,
            agent_key,
            other_admin_key,
            team,
            sub,
        }
    }

    fn credential(&self, caller: Caller) -> Option<&str> {
        Some(match caller {
            Caller::Anonymous => return None,
            Caller::Owner => &self.owner.token,
            Caller::Admin => &self.admin.token,
            Caller::Supervisor => &self.supervisor.token,
            Caller::Agent => &self.agent.token,
            Caller::Outsider => &self.outsider.token,
            Caller::AdminKey => &self.admin_key,
            Caller::AgentKey => &self.agent_key,
            Caller::OtherAdminKey => &self.other_admin_key,
        })
    }

    /// A new agent teammate of the project (trashed if asked); its id.
    async fn fresh_teammate(&self, trashed: bool) -> String {
        let email = fresh_email("victim");
        self.app.signup(&email, "victim").await.expect(200);
        let puid = self
            .app
            .post(
                &format!("/v3/{}/project_users/invite", self.pid),
                &self.owner.token,
                json!({"email": email, "role": "agent"}),
            )
            .await
            .expect(200)["_id"]
            .as_str()
            .unwrap()
            .to_string();
        if trashed {
            self.app
                .delete(
                    &format!("/v3/{}/project_users/{puid}?soft=true", self.pid),
                    &self.owner.token,
                )
                .await
                .expect(200);
        }
        puid
    }

    async fn value(&self, name: &str) -> String {
        let id = |v: Value| v.as_str().unwrap().to_string();
        match name {
            "pid" => self.pid.clone(),
            "docs_file" => "swagger-ui.css".to_string(),
            "board_file" => "client.js".to_string(),
            "target" => self.target_puid.clone(),
            "target_user" => self.target.id.clone(),
            "signin_email" => self.target.email.clone(),
            "password" => PASSWORD.to_string(),
            "team" => self.team.clone(),
            "sub" => self.sub.clone(),
            "email" => fresh_email("matrix"),
            "victim" => self.fresh_teammate(false).await,
            "trashed" => self.fresh_teammate(true).await,
            "fresh_key" => id(self
                .app
                .post(
                    &format!("/v3/{}/keys", self.pid),
                    &self.owner.token,
                    json!({"name": "doomed"}),
                )
                .await
                .expect(200)["_id"]
                .clone()),
            "fresh_sub" => id(self
                .app
                .post(
                    &format!("/v3/{}/subscriptions", self.pid),
                    &self.owner.token,
                    serde_json::from_str(SUB_BODY).unwrap(),
                )
                .await
                .expect(200)["_id"]
                .clone()),
            "fresh_team" => id(self
                .app
                .request(
                    Method::POST,
                    "/beta/teams",
                    Some(&self.admin_key),
                    Some(json!({"name": "Doomed"})),
                )
                .await
                .expect(201)["data"]["id"]
                .clone()),
            other => panic!("unknown placeholder `{other}` in the route table"),
        }
    }

    /// Replaces `{name}` (paths, `sigil` = '{') or `$name` (bodies, `sigil` = '$').
    async fn fill(&self, template: &str, sigil: char) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find(sigil) {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let len = after
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..len];
            out.push_str(&self.value(name).await);
            rest = &after[len..];
            if sigil == '{' {
                rest = rest.strip_prefix('}').expect("a closed {placeholder}");
            }
        }
        out.push_str(rest);
        out
    }

    async fn call(&self, row: &Row, caller: Caller) -> (String, Answer) {
        let path = self.fill(row.path, '{').await;
        let body = match row.body {
            Some(template) => Some(
                serde_json::from_str::<Value>(&self.fill(template, '$').await)
                    .expect("a JSON body template"),
            ),
            None => None,
        };
        let auth = self.credential(caller);
        let answer = match row.kind {
            Kind::Http => {
                let method = Method::from_bytes(row.method.as_bytes()).unwrap();
                self.app.request(method, &path, auth, body).await.into()
            }
            Kind::Sse => {
                let mut req = self
                    .app
                    .client
                    .get(format!("{}{path}", self.app.address))
                    .header("Accept", "text/event-stream");
                if let Some(auth) = auth {
                    req = req.header("Authorization", auth);
                }
                let response = req.send().await.expect("SSE request sent");
                if response.status() == 200 {
                    // The stream never ends: keep the head only.
                    let content_type = response.headers()["content-type"].clone();
                    assert_eq!(content_type, "text/event-stream", "{path} as {caller:?}");
                    Answer {
                        status: 200,
                        headers: response.headers().clone(),
                        text: String::new(),
                        body: Value::Null,
                    }
                } else {
                    TestApp::read(response).await.into()
                }
            }
            Kind::Socket => {
                let query = auth
                    .map(|token| {
                        let sep = if path.contains('?') { '&' } else { '?' };
                        format!("{sep}{}", token_query(token))
                    })
                    .unwrap_or_default();
                let full = format!("{path}{query}");
                match ws_connect(self.app.port, &full).await {
                    Ok(mut ws) => {
                        let _ = ws.close(None).await;
                        Answer {
                            status: 101,
                            headers: HeaderMap::new(),
                            text: String::new(),
                            body: Value::Null,
                        }
                    }
                    Err((status, _)) => {
                        // The refusal happens before the upgrade is looked at, so a plain GET
                        // gets the same answer, with its whole body, for the shape checks.
                        let plain: Answer = TestApp::read(
                            self.app
                                .client
                                .get(format!("{}{full}", self.app.address))
                                .send()
                                .await
                                .expect("plain GET sent"),
                        )
                        .await
                        .into();
                        assert_eq!(
                            plain.status, status,
                            "{full}: the handshake and a plain GET disagree: {}",
                            plain.text
                        );
                        plain
                    }
                }
            }
        };
        (path, answer)
    }

    /// Checks one cell; the problem, if any.
    fn check(&self, row: &Row, caller: Caller, path: &str, a: &Answer) -> Option<String> {
        let want = expected(row.need, caller);
        let cell = format!("{} {path} as {caller:?}", row.method);
        let status = match want {
            Outcome::Success => row.ok,
            Outcome::Unauthorized => 401,
            Outcome::Forbidden => 403,
            Outcome::NotFound => 404,
        };
        if a.status != status {
            return Some(format!(
                "{cell}: expected {want:?} ({status}), got {}: {}",
                a.status, a.text
            ));
        }
        if want == Outcome::Success {
            if caller.is_foreign() {
                for (what, id) in [
                    ("project id", &self.pid),
                    ("team id", &self.team),
                    ("teammate id", &self.target_puid),
                ] {
                    if a.text.contains(id.as_str()) {
                        return Some(format!("{cell}: the answer leaks the {what}: {}", a.text));
                    }
                }
            }
            return None;
        }
        if !error_shape_ok(path, &a.body) {
            return Some(format!("{cell}: wrong error shape: {}", a.text));
        }
        if want == Outcome::Unauthorized
            && !a
                .headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("Bearer"))
        {
            return Some(format!("{cell}: 401 without WWW-Authenticate"));
        }
        None
    }
}

async fn authorization_matrix(engine: Engine) {
    assert_table_covers_every_route();
    let started = Instant::now();
    let w = World::build(engine).await;
    let mut problems = Vec::new();
    let mut cells = 0;
    for row in ROUTES {
        for caller in CALLERS {
            let (path, answer) = w.call(row, caller).await;
            cells += 1;
            if let Some(problem) = w.check(row, caller, &path, &answer) {
                problems.push(problem);
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {cells} cells failed:\n{}",
        problems.len(),
        problems.join("\n")
    );
    println!("{cells} cells in {:?}", started.elapsed());
}

// ---- 2. JWT edge cases --------------------------------------------------------------------------

fn hs512(input: &str, secret: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

async fn jwt_edge_cases(engine: Engine) {
    let app = spawn_app_with(engine, &[]).await;
    let signup = |name: &'static str| {
        let app = &app;
        async move {
            let email = fresh_email(name);
            let user = app.signup(&email, name).await.expect(200)["user"].clone();
            user["_id"].as_str().unwrap().to_string()
        }
    };
    let (alice, bob) = tokio::join!(signup("alice"), signup("bob"));
    let exp = now() + 3600;

    // A backend-minted token works, with the id as `sub` or as Tiledesk's `_id`.
    let by_sub = mint(&json!({"sub": alice, "exp": exp}));
    let by_legacy_id = mint(&json!({"_id": alice, "exp": exp, "iat": now()}));
    let in_leeway = mint(&json!({"sub": alice, "exp": now() - 10}));
    for (what, token) in [
        ("sub", &by_sub),
        ("_id", &by_legacy_id),
        ("exp 10 s ago (30 s leeway)", &in_leeway),
    ] {
        let me = app.get("/v3/users", &format!("JWT {token}")).await;
        assert_eq!(me.status, 200, "{what}: {}", me.text);
        assert_eq!(me.body["_id"], json!(alice), "{what}");
    }
    let pid = app
        .new_project(&TestUser {
            id: alice.clone(),
            email: String::new(),
            token: format!("JWT {by_legacy_id}"),
        })
        .await;
    let mut ws = ws_connect(app.port, &format!("/ws?{}", token_query(&by_legacy_id)))
        .await
        .expect("a minted `_id` token opens a socket");
    assert!(answers_heartbeat(&mut ws).await);
    let _ = ws.close(None).await;

    // Everything else is 401.
    let header = |alg: &str| b64_json(&json!({"alg": alg, "typ": "JWT"}));
    let claims = b64_json(&json!({"sub": alice, "exp": exp}));
    let unsigned_input = format!("{}.{claims}", header("none"));
    let hs512_input = format!("{}.{claims}", header("HS512"));
    let (alice_head, alice_sig) = by_sub.rsplit_once('.').unwrap();
    let alice_header = alice_head.split('.').next().unwrap();
    let bob_claims = b64_json(&json!({"sub": bob, "exp": exp}));
    let refused: Vec<(&str, String)> = vec![
        (
            "wrong secret",
            mint_with(&json!({"sub": alice, "exp": exp}), b"not-the-secret"),
        ),
        ("alg none, unsigned", format!("{unsigned_input}.")),
        (
            "alg none, signed with the right secret",
            format!(
                "{unsigned_input}.{}",
                hs256(&unsigned_input, JWT_SECRET.as_bytes())
            ),
        ),
        (
            "alg HS512 with the right secret",
            format!(
                "{hs512_input}.{}",
                hs512(&hs512_input, JWT_SECRET.as_bytes())
            ),
        ),
        ("HS256 without a signature", format!("{alice_head}.")),
        (
            "expired an hour ago",
            mint(&json!({"sub": alice, "exp": now() - 3600})),
        ),
        (
            "nbf in an hour",
            mint(&json!({"sub": alice, "exp": exp, "nbf": now() + 3600})),
        ),
        (
            "neither sub nor _id",
            mint(&json!({"email": "alice@example.com", "exp": exp})),
        ),
        ("empty sub", mint(&json!({"sub": "", "exp": exp}))),
        ("sub not a UUID", mint(&json!({"sub": "admin", "exp": exp}))),
        (
            "unknown user",
            mint(&json!({"sub": uuid::Uuid::new_v4().to_string(), "exp": exp})),
        ),
        (
            "payload swapped for another user's",
            format!("{alice_header}.{bob_claims}.{alice_sig}"),
        ),
        (
            "signature of another token",
            format!(
                "{alice_header}.{claims}.{}",
                mint(&json!({"sub": bob, "exp": exp}))
                    .rsplit_once('.')
                    .unwrap()
                    .1
            ),
        ),
    ];
    for (what, token) in &refused {
        assert_refused_everywhere(&app, &pid, what, token).await;
    }
}

// ---- 3. sign-in brute force ---------------------------------------------------------------------

async fn signin_brute_force_is_limited(engine: Engine) {
    let app = spawn_app_with(engine, &[]).await;
    let user = app.new_user("brute").await;
    let basic = |password: &str| {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{password}", user.email))
        )
    };
    // Ten failures, spread over sign-in, an upper-cased email and Basic auth: one counter.
    for attempt in 0..10 {
        let resp = match attempt % 3 {
            0 => app.signin(&user.email, "wrong-password").await,
            1 => {
                app.signin(&user.email.to_uppercase(), "wrong-password")
                    .await
            }
            _ => app.get("/v3/users", &basic("wrong-password")).await,
        };
        assert_eq!(resp.status, 401, "attempt {attempt}: {}", resp.text);
    }
    // Sign-in answers 429 (Tiledesk); Basic auth on an API route 401, as for any refused
    // credentials. Both say when to retry.
    for (resp, status) in [
        (app.signin(&user.email, "wrong-password").await, 429),
        (app.get("/v3/users", &basic("wrong-password")).await, 401),
    ] {
        let retry_after: u64 = resp.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&retry_after), "{retry_after}");
        assert!(
            resp.text.contains("too many failed sign-ins"),
            "{}",
            resp.text
        );
        resp.expect_error(status);
    }
    // The right password still gets in, while limited, by either route.
    app.get("/v3/users", &basic(PASSWORD)).await.expect(200);
    app.signin(&user.email, PASSWORD).await.expect(200);
}

// ---- revocation ---------------------------------------------------------------------------------

/// Reads SSE events until one of `event_type`; panics after `WAIT`.
async fn sse_until(sse: &mut common::SseClient, event_type: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = sse.next(left).await;
        if event.event.as_deref() == Some(event_type) {
            return;
        }
    }
}

/// Reads socket frames until `n` `UPDATE`s of `event_type` (one per subscribed topic); panics
/// after 5 s without a frame.
async fn ws_until(agent: &mut common::Agent, event_type: &str, n: usize) {
    let mut seen = 0;
    while seen < n {
        let frame = agent.recv_json().await;
        if frame["payload"]["event"]["type"] == json!(event_type) {
            seen += 1;
        }
    }
}

/// Taking a credential away takes effect at once (finding 6 of issue 22). For each way of
/// removing a teammate (disable, trash, hard delete): its counted socket and its observing socket
/// get the event that says so, then close with 4003; its SSE stream gets the event and ends; all
/// within 1 s. It is refused afterwards on the project's routes, socket and stream. Brought back
/// (re-enabled, restored, invited again), it reconnects and is counted (online) again. A deleted
/// API key's socket and stream end the same way, and the key is refused everywhere.
async fn revoked_credentials_lose_access(engine: Engine) {
    let app = spawn_app_with(engine, &[("offline_grace_ms", "0")]).await;
    let t = app.owner_and_agent().await;
    let mut puid = t.puid.clone();
    for (mode, query, back) in [
        ("disable", "", "enable"),
        ("trash", "?soft=true", "restore"),
        ("delete", "?hard=true", "invite"),
    ] {
        let mut sse = app
            .sse(&t.pid, Some(&t.agent.token), "", None)
            .await
            .expect("the agent's stream opens");
        let mut counted = app.ws(&token_query(&t.agent.token)).await;
        let mut watching = app
            .ws(&format!("{}&presence=false", token_query(&t.agent.token)))
            .await;
        for topic in [
            format!("/{}/events", t.pid),
            format!("/{}/project_users", t.pid),
        ] {
            let frames = watching.subscribe(&topic, None).await;
            assert_eq!(frames[0]["action"], json!("subscribed"), "{frames:?}");
        }
        app.wait_status(&t.pid, &puid, &t.owner.token, "online", WAIT)
            .await;
        let removed = Instant::now();
        app.delete(
            &format!("/v3/{}/project_users/{puid}{query}", t.pid),
            &t.owner.token,
        )
        .await
        .expect(200);
        let event = if mode == "disable" {
            "project_user.disable"
        } else {
            "project_user.delete"
        };
        ws_until(&mut watching, event, 2).await;
        assert_eq!(watching.closed_with().await, Some(4003), "{mode}");
        assert_eq!(counted.closed_with().await, Some(4003), "{mode}");
        sse_until(&mut sse, event).await;
        assert_eq!(
            sse.try_next(WAIT).await,
            Ok(None),
            "{mode}: the stream ends"
        );
        let took = removed.elapsed();
        println!("{mode}: sockets closed and stream ended {took:?} after the removal");
        assert!(took < Duration::from_secs(1), "{mode}: {took:?}");

        app.get(&format!("/v3/{}/project_users", t.pid), &t.agent.token)
            .await
            .expect_error(403);
        let refused = app.sse(&t.pid, Some(&t.agent.token), "", None).await;
        assert_eq!(refused.err().map(|r| r.status.as_u16()), Some(403));
        let with_project = format!("project_id={}&{}", t.pid, token_query(&t.agent.token));
        assert_eq!(app.ws_refused(&with_project).await, 403, "{mode}");
        if mode != "disable" {
            let view = app
                .get(
                    &format!("/v3/{}/project_users/{puid}", t.pid),
                    &t.owner.token,
                )
                .await;
            assert_eq!(
                view.status.as_u16(),
                if mode == "trash" { 200 } else { 404 }
            );
        }

        // Brought back, the teammate reconnects and is counted again.
        match back {
            "enable" => {
                app.put(
                    &format!("/v3/{}/project_users/{puid}", t.pid),
                    &t.owner.token,
                    json!({"status": "active"}),
                )
                .await
                .expect(200);
            }
            "restore" => {
                app.put(
                    &format!("/v3/{}/project_users/{puid}/restore", t.pid),
                    &t.owner.token,
                    json!({}),
                )
                .await
                .expect(200);
            }
            _ => {
                puid = app.add_member(&t.owner, &t.pid, &t.agent, "agent").await["_id"]
                    .as_str()
                    .unwrap()
                    .to_string();
            }
        }
        let mut again = app.ws(&token_query(&t.agent.token)).await;
        app.wait_status(&t.pid, &puid, &t.owner.token, "online", WAIT)
            .await;
        assert!(answers_heartbeat(&mut again.ws).await, "{mode}");
        again.ws.close(None).await.unwrap();
        app.wait_status(&t.pid, &puid, &t.owner.token, "offline", WAIT)
            .await;
    }

    // A deleted API key: its socket (subscribed) and its stream end within 1 s, and it is
    // refused on REST, the socket and SSE.
    let created = app
        .post(
            &format!("/v3/{}/keys", t.pid),
            &t.owner.token,
            json!({"role": "admin"}),
        )
        .await
        .expect(200);
    let key = created["key"].as_str().unwrap();
    app.get(&format!("/v3/{}/project_users", t.pid), key)
        .await
        .expect(200);
    let mut key_socket = app.ws(&token_query(key)).await;
    key_socket
        .subscribe(&format!("/{}/events", t.pid), None)
        .await;
    let mut idle_key_socket = app.ws(&token_query(key)).await;
    let mut key_sse = app.sse(&t.pid, Some(key), "", None).await.expect("opens");
    let deleted = Instant::now();
    app.delete(
        &format!("/v3/{}/keys/{}", t.pid, created["_id"].as_str().unwrap()),
        &t.owner.token,
    )
    .await
    .expect(200);
    assert_eq!(key_socket.closed_with().await, Some(4003));
    assert_eq!(idle_key_socket.closed_with().await, Some(4003));
    assert_eq!(
        key_sse.try_next(WAIT).await,
        Ok(None),
        "the key's stream ends"
    );
    assert!(
        deleted.elapsed() < Duration::from_secs(1),
        "{:?}",
        deleted.elapsed()
    );
    app.get(&format!("/v3/{}/project_users", t.pid), key)
        .await
        .expect_error(401);
    app.request(Method::GET, "/beta/teams", Some(key), None)
        .await
        .expect(401);
    assert_eq!(app.ws_refused(&token_query(key)).await, 401);
    let refused = app.sse(&t.pid, Some(key), "", None).await;
    assert_eq!(refused.err().map(|r| r.status.as_u16()), Some(401));
}

engine_tests!(
    authorization_matrix,
    jwt_edge_cases,
    signin_brute_force_is_limited,
    revoked_credentials_lose_access,
);

// ---- 4. connection limits -----------------------------------------------------------------------

#[tokio::test]
async fn connection_limits_per_user_refuse_the_handshake_with_429() {
    let app = spawn_app_with(Engine::Memory, &[("max_connections_per_user", "2")]).await;
    let (ann, bob) = tokio::join!(app.new_user("ann"), app.new_user("bob"));
    let pid = app.new_project(&ann).await;
    app.add_member(&ann, &pid, &bob, "agent").await;
    let ann_ws = format!("/ws?{}", token_query(&ann.token));
    let mut first = ws_connect(app.port, &ann_ws).await.expect("first");
    let mut second = ws_connect(app.port, &ann_ws).await.expect("second");
    let Err((status, headers)) = ws_connect(app.port, &ann_ws).await else {
        panic!("a third socket of the same user was admitted");
    };
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    // The limit is per user: another user connects; the two sockets still work.
    let mut other = ws_connect(app.port, &format!("/ws?{}", token_query(&bob.token)))
        .await
        .expect("another user is not limited");
    assert!(answers_heartbeat(&mut other).await);
    assert!(answers_heartbeat(&mut second).await);
    // Once one socket closes, the user may open another.
    first.close(None).await.unwrap();
    let _ = close_code(&mut first).await;
    let deadline = Instant::now() + WAIT;
    let mut third = loop {
        match ws_connect(app.port, &ann_ws).await {
            Ok(ws) => break ws,
            Err((429, _)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err((status, _)) => panic!("still refused ({status}) after a socket closed"),
        }
    };
    assert!(answers_heartbeat(&mut third).await);
}

#[tokio::test]
async fn connection_limits_per_node_close_the_extra_socket_with_1013() {
    let app = spawn_app_with(Engine::Memory, &[("max_connections", "3")]).await;
    let (owner, bob) = tokio::join!(app.new_user("owner"), app.new_user("bob"));
    let pid = app.new_project(&owner).await;
    app.add_member(&owner, &pid, &bob, "agent").await;
    let key = app.new_key(&pid, &owner.token, "agent").await;
    let queries = [
        format!("/ws?{}", token_query(&owner.token)),
        format!("/ws?{}", token_query(&bob.token)),
        format!("/ws?{}", token_query(&key)),
    ];
    let mut held = Vec::new();
    for query in &queries {
        let mut ws = ws_connect(app.port, query).await.expect("under the limit");
        assert!(answers_heartbeat(&mut ws).await, "{query}");
        held.push(ws);
    }
    // The node is full: a fourth socket, a key's or a user's, is accepted and closed with 1013.
    for query in [&queries[2], &queries[1]] {
        let mut refused = ws_connect(app.port, query)
            .await
            .expect("the upgrade itself succeeds");
        assert_eq!(close_code(&mut refused).await, Some(1013), "{query}");
    }
    for ws in &mut held {
        assert!(
            answers_heartbeat(ws).await,
            "the held sockets are untouched"
        );
    }
    // One closes: a new socket is admitted.
    let mut gone = held.remove(0);
    gone.close(None).await.unwrap();
    let _ = close_code(&mut gone).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let mut ws = ws_connect(app.port, &queries[1]).await.expect("upgrade");
        if answers_heartbeat(&mut ws).await {
            held.push(ws);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a socket closed but the node still refuses"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- 5. SSRF ------------------------------------------------------------------------------------

#[tokio::test]
async fn webhook_ssrf_private_targets_are_refused_by_default() {
    let app = spawn_app_with(Engine::Memory, &[]).await;
    let t = app.owner_and_agent().await;
    let base = format!("/v3/{}/subscriptions", t.pid);
    for target in [
        "http://127.0.0.1:9/hook",
        "http://127.1/hook",
        "http://2130706433/hook",
        "http://0x7f000001/hook",
        "http://localhost/hook",
        "http://1.1.1.1@127.0.0.1/hook",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.20/",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "ftp://1.1.1.1/",
    ] {
        let resp = app
            .post(
                &base,
                &t.owner.token,
                json!({"event": "*", "target": target}),
            )
            .await;
        assert_eq!(resp.status, 400, "{target}: {}", resp.text);
        resp.expect_error(400);
    }
    let list = app.get(&base, &t.owner.token).await.expect(200);
    assert_eq!(list, json!([]), "nothing refused is saved");
}

/// A receiver that answers `/r302` and `/r307` with redirects to `/landing`, and records paths.
async fn redirecting_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::http::{header, StatusCode, Uri};
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(Mutex::new(Vec::new()));
    let landing = format!("{base}/landing");
    let recorded = hits.clone();
    let router = axum::Router::new().fallback(move |uri: Uri| {
        let (hits, landing) = (recorded.clone(), landing.clone());
        async move {
            hits.lock().unwrap().push(uri.path().to_string());
            let status = match uri.path() {
                "/r302" => StatusCode::FOUND,
                "/r307" => StatusCode::TEMPORARY_REDIRECT,
                _ => return StatusCode::OK.into_response(),
            };
            (status, [(header::LOCATION, landing)]).into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, hits)
}

#[tokio::test]
async fn webhook_ssrf_redirects_are_not_followed() {
    let app = spawn_app_with(
        Engine::Memory,
        &[
            ("webhook_allow_private", "true"),
            ("webhook_retry_ms", "0,50"),
        ],
    )
    .await;
    let (base, hits) = redirecting_receiver().await;
    let t = app.owner_and_agent().await;
    let mut subs = Vec::new();
    for path in ["/r302", "/r307"] {
        let sub = app
            .post(
                &format!("/v3/{}/subscriptions", t.pid),
                &t.owner.token,
                json!({"event": "*", "target": format!("{base}{path}")}),
            )
            .await
            .expect(200);
        subs.push((path, sub["_id"].as_str().unwrap().to_string()));
    }
    app.put(
        &format!("/v3/{}/project_users", t.pid),
        &t.owner.token,
        json!({"user_available": false}),
    )
    .await
    .expect(200);

    let history_url = format!("/v3/{}/subscriptions/history", t.pid);
    let deadline = Instant::now() + WAIT;
    let history = loop {
        let history = app.get(&history_url, &t.owner.token).await.expect(200);
        let ended = subs.iter().all(|(_, id)| {
            history
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["id_subscription"] == json!(id) && d["status"] == json!("failed"))
        });
        if ended {
            break history;
        }
        assert!(
            Instant::now() < deadline,
            "no failed deliveries in time: {history:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (path, id) in &subs {
        let code: u16 = path[2..].parse().unwrap();
        let delivery = history
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id_subscription"] == json!(id))
            .unwrap();
        let attempts = delivery["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "two attempts (0, 50 ms): {delivery:#}");
        for attempt in attempts {
            assert_eq!(attempt["status_code"], json!(code), "{delivery:#}");
        }
    }
    let hits = hits.lock().unwrap().clone();
    let count = |p: &str| hits.iter().filter(|h| *h == p).count();
    assert_eq!(count("/r302"), 2, "{hits:?}");
    assert_eq!(count("/r307"), 2, "{hits:?}");
    assert_eq!(count("/landing"), 0, "a redirect was followed: {hits:?}");
}

// ---- 6. secrets never in logs -------------------------------------------------------------------

/// Removes ANSI colour sequences, so that a coloured value cannot hide a secret from `contains`.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let log =
        std::env::temp_dir().join(format!("pg-security-{}.log", uuid::Uuid::new_v4().simple()));
    let mut gateway = GatewayProcess::start_logged(
        "",
        "",
        &[
            ("PRESENCE_LOG_LEVEL", "trace"),
            ("PRESENCE_WEBHOOK_ALLOW_PRIVATE", "true"),
        ],
        &log,
    );
    gateway.wait_healthy().await;
    let base = gateway.address();
    let port = gateway.port;
    let client = common::http();
    let call = |method: Method, path: &str, auth: Option<&str>, body: Option<Value>| {
        let mut req = client.request(method, format!("{base}{path}"));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move { TestApp::read(req.send().await.expect("request sent")).await }
    };

    let email = fresh_email("secretive");
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let wrong_password = format!("wrong-{}", uuid::Uuid::new_v4().simple());
    call(
        Method::POST,
        "/v3/auth/signup",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
    .expect(200);
    call(
        Method::POST,
        "/v3/auth/signin",
        None,
        Some(json!({"email": email, "password": wrong_password})),
    )
    .await
    .expect_error(401);
    let token = call(
        Method::POST,
        "/v3/auth/signin",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
    .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let jwt = token.strip_prefix("JWT ").unwrap().to_string();
    let signature = jwt.rsplit_once('.').unwrap().1.to_string();

    // The JWT in a header, in `?token=` on the socket (both forms) and on SSE.
    call(Method::GET, "/v3/users", Some(&token), None)
        .await
        .expect(200);
    let pid = call(
        Method::POST,
        "/v3/projects",
        Some(&format!("Bearer {jwt}")),
        Some(json!({"name": "Secrets"})),
    )
    .await
    .expect(200)["_id"]
        .as_str()
        .unwrap()
        .to_string();
    for query in [token_query(&token), format!("token={jwt}")] {
        let mut ws = ws_connect(port, &format!("/ws?{query}"))
            .await
            .expect("socket");
        assert!(answers_heartbeat(&mut ws).await);
        let _ = ws.close(None).await;
    }
    let sse = |credential: String| {
        let url = format!("{base}/v3/{pid}/events?{}", token_query(&credential));
        let client = &client;
        async move {
            let response = client.get(url).send().await.expect("SSE");
            assert_eq!(response.status(), 200);
            drop(response);
        }
    };
    sse(token.clone()).await;

    // An API key: created, used in a header, on the socket and on SSE.
    let key = call(
        Method::POST,
        &format!("/v3/{pid}/keys"),
        Some(&token),
        Some(json!({"name": "crm", "role": "admin"})),
    )
    .await
    .expect(200)["key"]
        .as_str()
        .unwrap()
        .to_string();
    call(
        Method::GET,
        &format!("/v3/{pid}/project_users"),
        Some(&key),
        None,
    )
    .await
    .expect(200);
    call(
        Method::GET,
        "/beta/teams",
        Some(&format!("Bearer {key}")),
        None,
    )
    .await
    .expect(200);
    let mut ws = ws_connect(port, &format!("/ws?{}", token_query(&key)))
        .await
        .expect("key socket");
    assert!(answers_heartbeat(&mut ws).await);
    let _ = ws.close(None).await;
    sse(key.clone()).await;

    // A webhook subscription: its secret signs a real delivery.
    let receiver = common::receiver::Receiver::start().await;
    let created = call(
        Method::POST,
        &format!("/v3/{pid}/subscriptions"),
        Some(&key),
        Some(json!({"event": "*", "target": receiver.url("/hook")})),
    )
    .await;
    let whsec = created.headers["x-hook-secret"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(created.expect(200)["secret"], json!(whsec));
    receiver.set_secret("/hook", &whsec);
    call(
        Method::PUT,
        &format!("/v3/{pid}/project_users"),
        Some(&token),
        Some(json!({"user_available": false})),
    )
    .await
    .expect(200);
    receiver.wait_hits("/hook", 1).await[0].assert_signed();

    // Basic auth, right and wrong; invalid credentials of every kind.
    let basic = STANDARD.encode(format!("{email}:{password}"));
    call(
        Method::GET,
        "/v3/users",
        Some(&format!("Basic {basic}")),
        None,
    )
    .await
    .expect(200);
    let wrong_basic = STANDARD.encode(format!("{email}:{wrong_password}"));
    call(
        Method::GET,
        "/v3/users",
        Some(&format!("Basic {wrong_basic}")),
        None,
    )
    .await
    .expect_error(401);
    let forged = format!("{}.{}", jwt.rsplit_once('.').unwrap().0, "AAAA".repeat(11));
    call(
        Method::GET,
        "/v3/users",
        Some(&format!("JWT {forged}")),
        None,
    )
    .await
    .expect_error(401);
    let bad_key = format!("pgk_{}", uuid::Uuid::new_v4().simple());
    call(Method::GET, "/v3/users", Some(&bad_key), None)
        .await
        .expect_error(401);
    assert_eq!(
        ws_connect(port, &format!("/ws?token={bad_key}"))
            .await
            .err()
            .map(|e| e.0),
        Some(401)
    );

    assert_eq!(gateway.terminate(), Some(0), "graceful exit");
    let text = strip_ansi(&std::fs::read_to_string(&log).expect("the log file"));
    assert!(!text.trim().is_empty(), "the log is empty");
    assert!(
        text.contains("/v3/auth/signin") && text.contains("/ws"),
        "requests are logged at trace level (else this test proves nothing): {} bytes",
        text.len()
    );
    let whsec_bytes = whsec.strip_prefix("whsec_").unwrap().to_string();
    let secrets = [
        ("password", password.as_str()),
        ("wrong password", wrong_password.as_str()),
        ("JWT", jwt.as_str()),
        ("JWT signature", signature.as_str()),
        ("API key", key.as_str()),
        ("invalid API key", bad_key.as_str()),
        ("forged JWT", forged.as_str()),
        ("webhook secret", whsec.as_str()),
        ("webhook secret bytes", whsec_bytes.as_str()),
        ("Basic credential", basic.as_str()),
        ("wrong Basic credential", wrong_basic.as_str()),
    ];
    // tungstenite logs frame payloads in hex at trace level: look for that form too.
    let leaked: Vec<String> = secrets
        .iter()
        .flat_map(|&(what, secret)| [(what, secret.to_string()), (what, hex::encode(secret))])
        .filter_map(|(what, secret)| {
            text.find(&secret).map(|at| {
                let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
                format!("{what}: {}", &text[line_start..line_end])
            })
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "secrets in the log ({}):\n{}",
        log.display(),
        leaked.join("\n")
    );
    let _ = std::fs::remove_file(&log);
}

// ---- regressions ----------------------------------------------------------------------------------

/// A backend may mint a token that never expires with the largest `exp` there is.
#[tokio::test]
async fn jwt_exp_near_i64_max_is_accepted() {
    let app = spawn_app_with(Engine::Memory, &[]).await;
    let email = fresh_email("forever");
    let user = app.signup(&email, "forever").await.expect(200)["user"].clone();
    let token = mint(&json!({"sub": user["_id"], "exp": i64::MAX}));
    let me = app
        .get("/v3/users", &format!("JWT {token}"))
        .await
        .expect(200);
    assert_eq!(me["_id"], user["_id"]);
}

/// A deleted API key stops receiving the project's events on the stream and socket it opened
/// while it was valid, as a disabled teammate does (`revoked_credentials_lose_access`).
#[tokio::test]
async fn a_deleted_api_key_loses_its_live_streams() {
    let app = spawn_app_with(Engine::Memory, &[]).await;
    let t = app.owner_and_agent().await;
    let created = app
        .post(
            &format!("/v3/{}/keys", t.pid),
            &t.owner.token,
            json!({"role": "agent"}),
        )
        .await
        .expect(200);
    let key = created["key"].as_str().unwrap();
    let mut sse = app
        .sse(&t.pid, Some(key), "", None)
        .await
        .expect("the key's stream opens");
    let mut ws = app.ws(&token_query(key)).await;
    let frames = ws.subscribe(&format!("/{}/events", t.pid), None).await;
    assert_eq!(frames[0]["action"], json!("subscribed"), "{frames:?}");
    app.delete(
        &format!("/v3/{}/keys/{}", t.pid, created["_id"].as_str().unwrap()),
        &t.owner.token,
    )
    .await
    .expect(200);
    app.get(&format!("/v3/{}/project_users", t.pid), key)
        .await
        .expect_error(401);
    app.put(
        &format!("/v3/{}/project_users/{}", t.pid, t.puid),
        &t.owner.token,
        json!({"user_available": false}),
    )
    .await
    .expect(200);
    // Revoked on this node at once: neither the stream nor the socket gets the change.
    sse.expect_silence(Duration::from_millis(500)).await;
    ws.expect_silence(Duration::from_millis(200)).await;
}
