//! The authorization matrix: every route × every kind of caller, on both engines, from one table;
//! the table must list every route of the router sources.

use super::*;

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
        "GET",
        "/v3/{pid}/project_users/routable",
        None,
        Member(RAgent),
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

engine_tests!(authorization_matrix,);
