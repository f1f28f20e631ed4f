//! The Dixa-compatible teams API (`/beta/teams`, docs/rest.md) against both engines, through real
//! HTTP and real agent WebSockets: team CRUD, API-key authentication and roles, members, leaving
//! the project, cross-project isolation, presence rows and their keyset pages, and the team
//! membership events on `/{pid}/events` and `/{pid}/teams/{team_id}`.

use crate::common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{spawn_app_with, token_query, Agent, Engine, Resp, TestApp, TestUser};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

/// A short grace period so that an offline shows up quickly. The heartbeat stays at its default:
/// the tests do not read every socket all the time, so a short one would close idle sockets.
const FAST: &[(&str, &str)] = &[("offline_grace_ms", "100")];
/// How long "nothing else arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);
/// The bound of every poll.
const WAIT: Duration = Duration::from_secs(5);

const PRESENCE_FIELDS: [&str; 6] = [
    "activeChannels",
    "connectionStatus",
    "lastSeen",
    "presenceStatus",
    "requestTime",
    "userId",
];

// ---- fixture ------------------------------------------------------------------------------------

/// A project with its owner, an admin key and an agent key.
struct Fx {
    app: TestApp,
    pid: String,
    owner: TestUser,
    admin_key: String,
    agent_key: String,
}

/// A teammate of the fixture's project.
struct Mate {
    user: TestUser,
    puid: String,
}

async fn fixture(engine: Engine) -> Fx {
    fixture_with(engine, &[]).await
}

async fn fixture_with(engine: Engine, overrides: &[(&str, &str)]) -> Fx {
    let app = spawn_app_with(engine, overrides).await;
    let owner = app.new_user("owner").await;
    let pid = app.new_project(&owner).await;
    let admin_key = api_key(&app, &pid, &owner, "admin").await;
    let agent_key = api_key(&app, &pid, &owner, "agent").await;
    Fx {
        app,
        pid,
        owner,
        admin_key,
        agent_key,
    }
}

/// Creates a project API key with `role` and returns its value (shown once, as `key`).
async fn api_key(app: &TestApp, pid: &str, owner: &TestUser, role: &str) -> String {
    let created = app
        .post(
            &format!("/v3/{pid}/keys"),
            &owner.token,
            json!({"name": format!("{role} key"), "role": role}),
        )
        .await
        .expect(200);
    assert_eq!(created["role"], json!(role), "{created}");
    created["key"].as_str().expect("the key value").to_string()
}

/// Another project with its own owner and admin key.
struct OtherProject {
    pid: String,
    owner: TestUser,
    admin_key: String,
}

async fn other_project(app: &TestApp) -> OtherProject {
    let owner = app.new_user("stranger").await;
    let pid = app.new_project(&owner).await;
    let admin_key = api_key(app, &pid, &owner, "admin").await;
    OtherProject {
        pid,
        owner,
        admin_key,
    }
}

/// The body `{"message": ...}` and nothing else, with `status`; returns the message.
#[track_caller]
fn message(resp: Resp, status: u16) -> String {
    let body = resp.expect(status);
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("a Dixa error object, got {body}"));
    assert_eq!(object.len(), 1, "only `message` in {body}");
    object["message"]
        .as_str()
        .unwrap_or_else(|| panic!("`message` is a string in {body}"))
        .to_string()
}

/// A 400 with exactly `Invalid value for: {what}`.
#[track_caller]
fn assert_invalid(resp: Resp, what: &str, case: &str) {
    assert_eq!(resp.status.as_u16(), 400, "{case}: {}", resp.text);
    assert_eq!(
        message(resp, 400),
        format!("Invalid value for: {what}"),
        "{case}"
    );
}

fn agent_ids(ids: &[&str]) -> Value {
    json!({ "agentIds": ids })
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn channels(row: &Value) -> Vec<String> {
    let mut channels: Vec<String> = row["activeChannels"]
        .as_array()
        .unwrap_or_else(|| panic!("activeChannels is an array in {row}"))
        .iter()
        .map(|c| c.as_str().expect("a channel name").to_string())
        .collect();
    channels.sort();
    channels
}

#[track_caller]
fn assert_timestamp(value: &Value, what: &str) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is a string, got {value}"));
    assert!(
        chrono::DateTime::parse_from_rfc3339(text).is_ok(),
        "{what} is RFC 3339: {text}"
    );
}

impl Fx {
    fn team_path(&self, team: &str) -> String {
        format!("/beta/teams/{team}")
    }

    /// A signed-up user (with a token) invited into the project with `role`.
    async fn mate(&self, name: &str, role: &str) -> Mate {
        let user = self.app.new_user(name).await;
        let puid = self
            .app
            .add_member(&self.owner, &self.pid, &user, role)
            .await["_id"]
            .as_str()
            .unwrap()
            .to_string();
        Mate { user, puid }
    }

    /// `n` agents, signed up and invited concurrently, without tokens (cheaper: no sign-in).
    async fn mates(&self, n: usize) -> Vec<Mate> {
        let jobs = (0..n).map(|i| async move {
            let email = format!("m{i}-{}@example.com", uuid::Uuid::new_v4().simple());
            let user = self.app.signup(&email, &format!("m{i}")).await.expect(200)["user"].clone();
            let user = TestUser {
                id: user["_id"].as_str().unwrap().to_string(),
                email,
                token: String::new(),
            };
            let puid = self
                .app
                .add_member(&self.owner, &self.pid, &user, "agent")
                .await["_id"]
                .as_str()
                .unwrap()
                .to_string();
            Mate { user, puid }
        });
        futures::future::join_all(jobs).await
    }

    async fn create_team(&self, name: &str) -> String {
        let created = self
            .app
            .post("/beta/teams", &self.admin_key, json!({"name": name}))
            .await
            .expect(201);
        created["data"]["id"].as_str().unwrap().to_string()
    }

    async fn patch_agents(&self, key: &str, team: &str, body: Value) -> Resp {
        self.app
            .request(
                Method::PATCH,
                &format!("/beta/teams/{team}/agents"),
                Some(key),
                Some(body),
            )
            .await
    }

    async fn delete_agents(&self, key: &str, team: &str, body: Value) -> Resp {
        self.app
            .request(
                Method::DELETE,
                &format!("/beta/teams/{team}/agents"),
                Some(key),
                Some(body),
            )
            .await
    }

    /// Adds members with the admin key (200).
    async fn add(&self, team: &str, ids: &[&str]) {
        self.patch_agents(&self.admin_key, team, agent_ids(ids))
            .await
            .expect(200);
    }

    /// Removes members with the admin key (204).
    async fn remove(&self, team: &str, ids: &[&str]) {
        self.delete_agents(&self.admin_key, team, agent_ids(ids))
            .await
            .expect(204);
    }

    /// `GET /beta/teams/{team}/agents` with the admin key: the rows.
    async fn agents(&self, team: &str) -> Vec<Value> {
        let body = self
            .app
            .get(&format!("/beta/teams/{team}/agents"), &self.admin_key)
            .await
            .expect(200);
        body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("data is an array in {body}"))
            .clone()
    }

    /// The member user ids, in the order the API lists them.
    async fn member_ids(&self, team: &str) -> Vec<String> {
        self.agents(team)
            .await
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// The team's names as the key lists them, sorted.
    async fn team_list(&self, key: &str) -> Vec<Value> {
        let body = self.app.get("/beta/teams", key).await.expect(200);
        let mut teams = body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("data is an array in {body}"))
            .clone();
        teams.sort_by_key(|t| t["id"].as_str().unwrap_or_default().to_string());
        teams
    }

    /// One presence page, by its path (relative URL).
    async fn presence_page(&self, path: &str) -> Value {
        self.app.get(path, &self.admin_key).await.expect(200)
    }

    /// Every presence row of a team, in one page.
    async fn presence_rows(&self, team: &str) -> Vec<Value> {
        let page = self
            .presence_page(&format!("/beta/teams/{team}/presence?pageLimit=1000"))
            .await;
        assert!(page["meta"].get("next").is_none(), "one page: {page}");
        page["data"].as_array().unwrap().clone()
    }

    async fn row(&self, team: &str, user_id: &str) -> Value {
        self.presence_rows(team)
            .await
            .into_iter()
            .find(|r| r["userId"] == json!(user_id))
            .unwrap_or_else(|| panic!("no presence row for {user_id}"))
    }

    /// Polls the user's presence row until `wanted` holds; panics after [`WAIT`].
    async fn wait_row(&self, team: &str, user_id: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let row = self.row(team, user_id).await;
            if wanted(&row) {
                return row;
            }
            assert!(Instant::now() < deadline, "still {row} after {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Changes a teammate through the admin route of the Tiledesk API.
    async fn update_teammate(&self, puid: &str, body: Value) {
        self.app
            .put(
                &format!("/v3/{}/project_users/{puid}", self.pid),
                &self.owner.token,
                body,
            )
            .await
            .expect(200);
    }

    /// A socket that watches without counting.
    async fn observer(&self, token: &str) -> Agent {
        self.app
            .ws(&format!("{}&presence=false", token_query(token)))
            .await
    }

    fn team_topic(&self, team: &str) -> String {
        format!("/{}/teams/{team}", self.pid)
    }
}

/// Asserts a team membership event of the fixture's project.
#[track_caller]
fn assert_membership(event: &Value, event_type: &str, pid: &str, team: &str) {
    assert_eq!(event["type"], json!(event_type), "{event}");
    assert_eq!(event["project_id"], json!(pid), "{event}");
    assert_eq!(event["team"]["id"], json!(team), "{event}");
    assert!(event["id"].as_str().is_some(), "{event}");
    assert!(event["seq"].is_u64(), "{event}");
}

/// Reads `n` events and returns them keyed by user id (each user once).
async fn events_by_user(socket: &mut Agent, n: usize) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for _ in 0..n {
        let event = socket.next_event().await;
        let user = event["user_id"].as_str().unwrap().to_string();
        assert!(
            out.iter().all(|(u, _)| *u != user),
            "a second event for {user}: {event}"
        );
        out.push((user, event));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

// ---- CRUD and malformed input -------------------------------------------------------------------

async fn create_list_get_and_delete_a_team(engine: Engine) {
    let fx = fixture(engine).await;
    let key = &fx.admin_key;
    assert_eq!(
        fx.app.get("/beta/teams", key).await.expect(200),
        json!({"data": []})
    );

    let resp = fx
        .app
        .post("/beta/teams", key, json!({"name": "Team A"}))
        .await;
    let created = resp.expect(201);
    let a = created["data"]["id"].as_str().expect("an id").to_string();
    assert!(a.parse::<uuid::Uuid>().is_ok(), "{a}");
    assert_eq!(created, json!({"data": {"id": a, "name": "Team A"}}));
    let b = fx.create_team("Team B").await;
    assert_ne!(a, b);

    let mut expected = vec![
        json!({"id": a, "name": "Team A"}),
        json!({"id": b, "name": "Team B"}),
    ];
    expected.sort_by_key(|t| t["id"].as_str().unwrap().to_string());
    assert_eq!(fx.team_list(key).await, expected);
    assert_eq!(
        fx.app.get(&fx.team_path(&a), key).await.expect(200),
        json!({"data": {"id": a, "name": "Team A"}})
    );

    let deleted = fx.app.delete(&fx.team_path(&a), key).await;
    assert_eq!(deleted.status.as_u16(), 204, "{}", deleted.text);
    assert!(deleted.text.is_empty(), "204 has no body: {}", deleted.text);
    message(fx.app.get(&fx.team_path(&a), key).await, 404);
    message(fx.app.delete(&fx.team_path(&a), key).await, 404);
    assert_eq!(
        fx.team_list(key).await,
        vec![json!({"id": b, "name": "Team B"})]
    );
    assert_eq!(
        fx.app.get(&fx.team_path(&b), key).await.expect(200)["data"]["name"],
        json!("Team B")
    );
}

async fn a_team_needs_a_name_in_a_well_formed_body(engine: Engine) {
    let fx = fixture(engine).await;
    let long = "x".repeat(201);
    let long_body = json!({ "name": long }).to_string();
    let bodies: [&[u8]; 12] = [
        b"{}",
        br#"{"name":""}"#,
        br#"{"name":"   "}"#,
        br#"{"name":null}"#,
        br#"{"name":5}"#,
        br#"{"title":"Team A"}"#,
        b"[]",
        br#""Team A""#,
        br#"{"name":"Team A""#,
        b"not json",
        b"",
        long_body.as_bytes(),
    ];
    for body in bodies {
        let case = String::from_utf8_lossy(body)
            .chars()
            .take(40)
            .collect::<String>();
        let resp = fx
            .app
            .raw(
                Method::POST,
                "/beta/teams",
                Some(&fx.admin_key),
                body.to_vec(),
            )
            .await;
        assert_invalid(resp, "body", &format!("body `{case}`"));
    }
    assert!(fx.team_list(&fx.admin_key).await.is_empty(), "no team made");
}

async fn a_malformed_team_id_is_an_invalid_path_parameter_on_every_route(engine: Engine) {
    let fx = fixture(engine).await;
    let team = fx.create_team("Real").await;
    let valid = agent_ids(&[&fx.owner.id]);
    let routes: [(Method, &str, Option<Value>); 6] = [
        (Method::GET, "", None),
        (Method::DELETE, "", None),
        (Method::GET, "/agents", None),
        (Method::PATCH, "/agents", Some(valid.clone())),
        (Method::DELETE, "/agents", Some(valid.clone())),
        (Method::GET, "/presence", None),
    ];
    let truncated = &team[..team.len() - 1];
    let bad_hex = format!("{truncated}g");
    let too_long = format!("{team}0");
    let bad_ids = [
        "not-a-uuid",
        "123",
        truncated,
        bad_hex.as_str(),
        too_long.as_str(),
        "%20",
    ];
    for bad in bad_ids {
        for (method, suffix, body) in &routes {
            let path = format!("/beta/teams/{bad}{suffix}");
            let resp = fx
                .app
                .request(method.clone(), &path, Some(&fx.admin_key), body.clone())
                .await;
            assert_invalid(resp, "path parameter teamId", &format!("{method} {path}"));
        }
    }
    // The path is checked before the body and the query.
    let resp = fx
        .app
        .raw(
            Method::PATCH,
            "/beta/teams/nope/agents",
            Some(&fx.admin_key),
            b"{oops".to_vec(),
        )
        .await;
    assert_invalid(resp, "path parameter teamId", "bad id and bad body");
    let resp = fx
        .app
        .get("/beta/teams/nope/presence?pageLimit=0", &fx.admin_key)
        .await;
    assert_invalid(resp, "path parameter teamId", "bad id and bad pageLimit");
    // Nothing happened to the real team.
    assert_eq!(fx.member_ids(&team).await, Vec::<String>::new());
    assert_eq!(fx.team_list(&fx.admin_key).await.len(), 1);
}

async fn an_unknown_team_id_is_not_found_on_every_route(engine: Engine) {
    let fx = fixture(engine).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let valid = agent_ids(&[&fx.owner.id]);
    let routes: [(Method, &str, Option<Value>); 6] = [
        (Method::GET, "", None),
        (Method::DELETE, "", None),
        (Method::GET, "/agents", None),
        (Method::PATCH, "/agents", Some(valid.clone())),
        (Method::DELETE, "/agents", Some(valid.clone())),
        (Method::GET, "/presence", None),
    ];
    for (method, suffix, body) in routes {
        let path = format!("/beta/teams/{unknown}{suffix}");
        let resp = fx
            .app
            .request(method.clone(), &path, Some(&fx.admin_key), body)
            .await;
        assert_eq!(resp.status.as_u16(), 404, "{method} {path}: {}", resp.text);
        message(resp, 404);
    }
    assert!(fx.team_list(&fx.admin_key).await.is_empty());
}

// ---- authentication and roles ------------------------------------------------------------------

async fn the_teams_api_takes_a_project_api_key(engine: Engine) {
    let fx = fixture(engine).await;
    let team = fx.create_team("Keys only").await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            fx.owner.email,
            common::PASSWORD
        ))
    );
    let bearer_jwt = fx.owner.token.replacen("JWT ", "Bearer ", 1);
    let paths = [
        "/beta/teams".to_string(),
        fx.team_path(&team),
        format!("/beta/teams/{team}/agents"),
        format!("/beta/teams/{team}/presence"),
    ];
    for path in &paths {
        let resp = fx.app.request(Method::GET, path, None, None).await;
        assert!(
            resp.headers.contains_key("www-authenticate"),
            "401 names the scheme: {:?}",
            resp.headers
        );
        message(resp, 401);
        for auth in [
            fx.owner.token.as_str(),
            bearer_jwt.as_str(),
            basic.as_str(),
            "pgk_not-a-real-key",
            "garbage",
        ] {
            let resp = fx.app.get(path, auth).await;
            assert_eq!(
                resp.status.as_u16(),
                401,
                "{path} with `{auth}`: {}",
                resp.text
            );
            message(resp, 401);
        }
    }
    // Changes are refused the same way.
    let resp = fx
        .app
        .request(
            Method::POST,
            "/beta/teams",
            Some(&fx.owner.token),
            Some(json!({"name": "by a user"})),
        )
        .await;
    message(resp, 401);
    let resp = fx
        .app
        .request(
            Method::POST,
            "/beta/teams",
            None,
            Some(json!({"name": "anon"})),
        )
        .await;
    message(resp, 401);
    let resp = fx
        .patch_agents(&fx.owner.token, &team, agent_ids(&[&fx.owner.id]))
        .await;
    message(resp, 401);
    assert!(fx.member_ids(&team).await.is_empty());

    // The key is accepted raw and as `Bearer <key>`.
    let bearer_key = format!("Bearer {}", fx.admin_key);
    let listed = fx.app.get("/beta/teams", &bearer_key).await.expect(200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(fx.team_list(&fx.admin_key).await.len(), 1);
}

async fn an_agent_key_reads_and_only_an_admin_key_changes(engine: Engine) {
    let fx = fixture(engine).await;
    let team = fx.create_team("Readers").await;
    fx.add(&team, &[&fx.owner.id]).await;
    let key = &fx.agent_key;

    let listed = fx.app.get("/beta/teams", key).await.expect(200);
    assert_eq!(listed, json!({"data": [{"id": team, "name": "Readers"}]}));
    assert_eq!(
        fx.app.get(&fx.team_path(&team), key).await.expect(200),
        json!({"data": {"id": team, "name": "Readers"}})
    );
    let agents = fx
        .app
        .get(&format!("/beta/teams/{team}/agents"), key)
        .await
        .expect(200);
    assert_eq!(agents["data"][0]["id"], json!(fx.owner.id), "{agents}");
    let presence = fx
        .app
        .get(&format!("/beta/teams/{team}/presence"), key)
        .await
        .expect(200);
    assert_eq!(presence["data"][0]["userId"], json!(fx.owner.id));

    let other = fx.mate("alice", "agent").await;
    message(
        fx.app
            .post("/beta/teams", key, json!({"name": "Not allowed"}))
            .await,
        403,
    );
    message(fx.app.delete(&fx.team_path(&team), key).await, 403);
    message(
        fx.patch_agents(key, &team, agent_ids(&[&other.user.id]))
            .await,
        403,
    );
    message(
        fx.delete_agents(key, &team, agent_ids(&[&fx.owner.id]))
            .await,
        403,
    );

    // Nothing changed.
    assert_eq!(
        fx.team_list(&fx.admin_key).await,
        vec![json!({"id": team, "name": "Readers"})]
    );
    assert_eq!(fx.member_ids(&team).await, vec![fx.owner.id.clone()]);
}

// ---- members -------------------------------------------------------------------------------------

async fn members_are_added_listed_by_user_id_and_removed(engine: Engine) {
    let fx = fixture(engine).await;
    let alice = fx.mate("alice", "agent").await;
    let bob = fx.mate("bob", "admin").await;
    let carol = fx.mate("carol", "supervisor").await;
    let team = fx.create_team("Support").await;
    assert!(fx.agents(&team).await.is_empty());

    let resp = fx
        .patch_agents(
            &fx.admin_key,
            &team,
            agent_ids(&[&alice.user.id, &bob.user.id]),
        )
        .await;
    assert_eq!(resp.status.as_u16(), 200, "{}", resp.text);

    let mut expected = vec![
        json!({"id": alice.user.id, "name": "alice Test", "email": alice.user.email}),
        json!({"id": bob.user.id, "name": "bob Test", "email": bob.user.email}),
    ];
    expected.sort_by_key(|a| a["id"].as_str().unwrap().to_string());
    assert_eq!(fx.agents(&team).await, expected);

    // Re-adding a member (even twice in one body) is a no-op next to the new one.
    fx.add(&team, &[&alice.user.id, &carol.user.id, &alice.user.id])
        .await;
    fx.add(&team, &[&bob.user.id]).await;
    let ids = fx.member_ids(&team).await;
    assert_eq!(
        ids,
        sorted(vec![
            alice.user.id.clone(),
            bob.user.id.clone(),
            carol.user.id.clone()
        ]),
        "ordered by user id, each once"
    );
    // An empty list changes nothing.
    fx.add(&team, &[]).await;
    assert_eq!(fx.member_ids(&team).await, ids);

    let resp = fx
        .delete_agents(
            &fx.admin_key,
            &team,
            agent_ids(&[&alice.user.id, &carol.user.id]),
        )
        .await;
    assert_eq!(resp.status.as_u16(), 204, "{}", resp.text);
    assert!(resp.text.is_empty(), "{}", resp.text);
    assert_eq!(fx.member_ids(&team).await, vec![bob.user.id.clone()]);
    // Removing a teammate that is not in the team is ignored.
    fx.remove(&team, &[&alice.user.id, &fx.owner.id]).await;
    assert_eq!(fx.member_ids(&team).await, vec![bob.user.id.clone()]);

    // Membership is per team.
    let other = fx.create_team("Sales").await;
    fx.add(&other, &[&alice.user.id]).await;
    assert_eq!(fx.member_ids(&other).await, vec![alice.user.id.clone()]);
    assert_eq!(fx.member_ids(&team).await, vec![bob.user.id.clone()]);
}

async fn adding_or_removing_a_non_teammate_changes_nothing(engine: Engine) {
    let fx = fixture(engine).await;
    let alice = fx.mate("alice", "agent").await;
    let bob = fx.mate("bob", "agent").await;
    let other = other_project(&fx.app).await;
    let team = fx.create_team("Support").await;
    let random = uuid::Uuid::new_v4().to_string();

    for (case, ids) in [
        (
            "a user of another project",
            vec![alice.user.id.as_str(), other.owner.id.as_str()],
        ),
        (
            "a random uuid",
            vec![random.as_str(), alice.user.id.as_str()],
        ),
        (
            "not a uuid",
            vec![alice.user.id.as_str(), "not-a-uuid", bob.user.id.as_str()],
        ),
    ] {
        let resp = fx.patch_agents(&fx.admin_key, &team, agent_ids(&ids)).await;
        assert_invalid(resp, "body", case);
        assert!(
            fx.member_ids(&team).await.is_empty(),
            "{case}: nothing added"
        );
    }
    let bodies: [&[u8]; 8] = [
        b"{}",
        br#"{"agentIds":null}"#,
        br#"{"agentIds":"x"}"#,
        br#"{"agentIds":[1]}"#,
        br#"{"agentIds":[null]}"#,
        br#"{"agentIds":["#,
        b"",
        b"nope",
    ];
    for body in bodies {
        let case = String::from_utf8_lossy(body).to_string();
        for method in [Method::PATCH, Method::DELETE] {
            let resp = fx
                .app
                .raw(
                    method.clone(),
                    &format!("/beta/teams/{team}/agents"),
                    Some(&fx.admin_key),
                    body.to_vec(),
                )
                .await;
            assert_invalid(resp, "body", &format!("{method} `{case}`"));
        }
    }
    assert!(fx.member_ids(&team).await.is_empty());

    // The same rule on removal: a bad id removes nobody.
    fx.add(&team, &[&alice.user.id, &bob.user.id]).await;
    let members = fx.member_ids(&team).await;
    for ids in [
        vec![alice.user.id.as_str(), random.as_str()],
        vec![bob.user.id.as_str(), other.owner.id.as_str()],
        vec![alice.user.id.as_str(), "12345"],
    ] {
        let resp = fx
            .delete_agents(&fx.admin_key, &team, agent_ids(&ids))
            .await;
        assert_invalid(resp, "body", &format!("remove {ids:?}"));
        assert_eq!(fx.member_ids(&team).await, members, "nothing removed");
    }
    // The other project's user is not in any team there either.
    let other_teams = fx
        .app
        .get("/beta/teams", &other.admin_key)
        .await
        .expect(200);
    assert_eq!(other_teams, json!({"data": []}));
}

// ---- leaving the project, deleting a team --------------------------------------------------------

async fn leaving_the_project_leaves_every_team(engine: Engine) {
    let fx = fixture(engine).await;
    let trashed = fx.mate("trashed", "agent").await;
    let deleted = fx.mate("deleted", "agent").await;
    let stays = fx.mate("stays", "agent").await;
    let one = fx.create_team("One").await;
    let two = fx.create_team("Two").await;
    let all = [
        trashed.user.id.as_str(),
        deleted.user.id.as_str(),
        stays.user.id.as_str(),
    ];
    fx.add(&one, &all).await;
    fx.add(&two, &all).await;

    let team_users = format!("/v3/{}/project_users", fx.pid);
    fx.app
        .delete(
            &format!("{team_users}/{}?soft=true", trashed.puid),
            &fx.owner.token,
        )
        .await
        .expect(200);
    let without_trashed = sorted(vec![deleted.user.id.clone(), stays.user.id.clone()]);
    assert_eq!(fx.member_ids(&one).await, without_trashed);
    assert_eq!(fx.member_ids(&two).await, without_trashed);

    fx.app
        .delete(
            &format!("{team_users}/{}?hard=true", deleted.puid),
            &fx.owner.token,
        )
        .await
        .expect(200);
    assert_eq!(fx.member_ids(&one).await, vec![stays.user.id.clone()]);
    assert_eq!(fx.member_ids(&two).await, vec![stays.user.id.clone()]);
    let rows = fx.presence_rows(&one).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["userId"], json!(stays.user.id));

    // A trashed teammate cannot join; the hard-deleted one is no teammate at all.
    for id in [&trashed.user.id, &deleted.user.id] {
        let resp = fx.patch_agents(&fx.admin_key, &one, agent_ids(&[id])).await;
        assert_invalid(resp, "body", "a removed teammate joins");
    }
    assert_eq!(fx.member_ids(&one).await, vec![stays.user.id.clone()]);

    // Restored, it is back in the project but in no team until added again.
    fx.app
        .put(
            &format!("{team_users}/{}/restore", trashed.puid),
            &fx.owner.token,
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(fx.member_ids(&one).await, vec![stays.user.id.clone()]);
    fx.add(&one, &[&trashed.user.id]).await;
    assert_eq!(
        fx.member_ids(&one).await,
        sorted(vec![trashed.user.id.clone(), stays.user.id.clone()])
    );
    assert_eq!(fx.member_ids(&two).await, vec![stays.user.id.clone()]);
}

async fn deleting_a_team_keeps_its_teammates(engine: Engine) {
    let fx = fixture(engine).await;
    let alice = fx.mate("alice", "agent").await;
    let bob = fx.mate("bob", "agent").await;
    let doomed = fx.create_team("Doomed").await;
    let kept = fx.create_team("Kept").await;
    fx.add(&doomed, &[&alice.user.id, &bob.user.id]).await;
    fx.add(&kept, &[&alice.user.id]).await;

    let resp = fx.app.delete(&fx.team_path(&doomed), &fx.admin_key).await;
    assert_eq!(resp.status.as_u16(), 204, "{}", resp.text);
    message(
        fx.app
            .get(&format!("/beta/teams/{doomed}/agents"), &fx.admin_key)
            .await,
        404,
    );

    let team = fx
        .app
        .get(&format!("/v3/{}/project_users", fx.pid), &fx.owner.token)
        .await
        .expect(200);
    let team = team.as_array().expect("an array of teammates");
    for mate in [&alice, &bob] {
        let teammate = team
            .iter()
            .find(|t| t["_id"] == json!(mate.puid))
            .unwrap_or_else(|| panic!("{} is still listed: {team:?}", mate.puid));
        assert_eq!(teammate["status"], json!("active"), "{teammate}");
        assert_eq!(teammate["trashed"], json!(false), "{teammate}");
    }
    assert_eq!(fx.member_ids(&kept).await, vec![alice.user.id.clone()]);
    // The teammates can join a new team.
    let fresh = fx.create_team("Fresh").await;
    fx.add(&fresh, &[&bob.user.id]).await;
    assert_eq!(fx.member_ids(&fresh).await, vec![bob.user.id.clone()]);
}

// ---- isolation ------------------------------------------------------------------------------------

async fn a_key_never_reaches_another_projects_teams(engine: Engine) {
    let fx = fixture(engine).await;
    let ours = fx.create_team("Ours").await;
    let other = other_project(&fx.app).await;
    let created = fx
        .app
        .post("/beta/teams", &other.admin_key, json!({"name": "Theirs"}))
        .await
        .expect(201);
    let theirs = created["data"]["id"].as_str().unwrap().to_string();
    let add_theirs = fx
        .patch_agents(&other.admin_key, &theirs, agent_ids(&[&other.owner.id]))
        .await;
    assert_eq!(add_theirs.status.as_u16(), 200, "{}", add_theirs.text);

    for key in [&fx.admin_key, &fx.agent_key] {
        let routes: [(Method, String, Option<Value>); 8] = [
            (Method::GET, fx.team_path(&theirs), None),
            (Method::DELETE, fx.team_path(&theirs), None),
            (Method::GET, format!("/beta/teams/{theirs}/agents"), None),
            (
                Method::PATCH,
                format!("/beta/teams/{theirs}/agents"),
                Some(agent_ids(&[&fx.owner.id])),
            ),
            (
                Method::PATCH,
                format!("/beta/teams/{theirs}/agents"),
                Some(agent_ids(&[&other.owner.id])),
            ),
            (
                Method::DELETE,
                format!("/beta/teams/{theirs}/agents"),
                Some(agent_ids(&[&other.owner.id])),
            ),
            (Method::GET, format!("/beta/teams/{theirs}/presence"), None),
            (
                Method::GET,
                format!("/beta/teams/{theirs}/presence?pageLimit=10"),
                None,
            ),
        ];
        let admin = *key == fx.admin_key;
        for (method, path, body) in routes {
            let changes = method != Method::GET;
            let resp = fx.app.request(method.clone(), &path, Some(key), body).await;
            // An agent key is refused a change before the team is looked up (403); either way
            // the other project's team is never visible.
            let expected = if changes && !admin { 403 } else { 404 };
            assert_eq!(
                resp.status.as_u16(),
                expected,
                "{method} {path}: {}",
                resp.text
            );
            message(resp, expected);
        }
        assert_eq!(
            fx.team_list(key).await,
            vec![json!({"id": ours, "name": "Ours"})],
            "our list shows only our team"
        );
    }

    // Their team is untouched and their list never shows ours.
    let body = fx
        .app
        .get(&format!("/beta/teams/{theirs}/agents"), &other.admin_key)
        .await
        .expect(200);
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![other.owner.id.as_str()]);
    assert_eq!(
        fx.app
            .get("/beta/teams", &other.admin_key)
            .await
            .expect(200),
        json!({"data": [{"id": theirs, "name": "Theirs"}]})
    );
    message(
        fx.app.get(&fx.team_path(&ours), &other.admin_key).await,
        404,
    );
    assert_ne!(other.pid, fx.pid);
}

// ---- presence --------------------------------------------------------------------------------------

async fn presence_rows_follow_availability_and_agent_sockets(engine: Engine) {
    let fx = fixture_with(engine, FAST).await;
    let alice = fx.mate("alice", "agent").await;
    let team = fx.create_team("Live").await;
    fx.add(&team, &[&alice.user.id, &fx.owner.id]).await;

    let rows = fx.presence_rows(&team).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r["userId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        sorted(vec![alice.user.id.clone(), fx.owner.id.clone()]),
        "ordered by user id"
    );
    for row in &rows {
        let mut fields: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, PRESENCE_FIELDS, "{row}");
        assert_timestamp(&row["requestTime"], "requestTime");
        assert_eq!(row["presenceStatus"], json!("Working"), "{row}");
        assert_eq!(row["connectionStatus"], json!("Offline"), "{row}");
        assert_eq!(row["activeChannels"], json!([]), "{row}");
    }

    // presenceStatus follows user_available.
    fx.update_teammate(&alice.puid, json!({"user_available": false}))
        .await;
    let row = fx.row(&team, &alice.user.id).await;
    assert_eq!(row["presenceStatus"], json!("Away"), "{row}");
    assert_eq!(row["connectionStatus"], json!("Offline"), "{row}");
    fx.update_teammate(&alice.puid, json!({"user_available": true}))
        .await;
    assert_eq!(
        fx.row(&team, &alice.user.id).await["presenceStatus"],
        json!("Working")
    );

    // connectionStatus and activeChannels follow real sockets.
    let mobile = fx
        .app
        .ws(&format!(
            "{}&channel=mobile",
            token_query(&alice.user.token)
        ))
        .await;
    let web = fx.app.ws(&token_query(&alice.user.token)).await;
    let watching = fx.observer(&fx.owner.token).await;
    let row = fx
        .wait_row(&team, &alice.user.id, |r| {
            r["connectionStatus"] == json!("Online") && channels(r) == ["mobile", "web"]
        })
        .await;
    assert_eq!(row["presenceStatus"], json!("Working"), "{row}");
    assert_timestamp(&row["lastSeen"], "lastSeen while online");
    // An observing socket does not count.
    let owner_row = fx.row(&team, &fx.owner.id).await;
    assert_eq!(
        owner_row["connectionStatus"],
        json!("Offline"),
        "{owner_row}"
    );
    assert_eq!(owner_row["activeChannels"], json!([]), "{owner_row}");

    // Availability and connection are independent.
    fx.update_teammate(&alice.puid, json!({"user_available": false}))
        .await;
    let row = fx.row(&team, &alice.user.id).await;
    assert_eq!(row["presenceStatus"], json!("Away"), "{row}");
    assert_eq!(row["connectionStatus"], json!("Online"), "{row}");

    mobile.close().await;
    let row = fx
        .wait_row(&team, &alice.user.id, |r| channels(r) == ["web"])
        .await;
    assert_eq!(row["connectionStatus"], json!("Online"), "{row}");

    web.close().await;
    let row = fx
        .wait_row(&team, &alice.user.id, |r| {
            r["connectionStatus"] == json!("Offline")
        })
        .await;
    assert_eq!(row["activeChannels"], json!([]), "{row}");
    assert_eq!(row["presenceStatus"], json!("Away"), "{row}");
    assert_timestamp(&row["lastSeen"], "lastSeen after going offline");
    watching.close().await;
}

async fn presence_paging_parameters_are_validated(engine: Engine) {
    let fx = fixture(engine).await;
    let team = fx.create_team("Paged").await;
    fx.add(&team, &[&fx.owner.id]).await;
    let base = format!("/beta/teams/{team}/presence");

    for limit in ["0", "1001", "abc", "-1", "1.5", "99999999999999999999"] {
        let resp = fx
            .app
            .get(&format!("{base}?pageLimit={limit}"), &fx.admin_key)
            .await;
        assert_invalid(
            resp,
            "query parameter pageLimit",
            &format!("pageLimit={limit}"),
        );
    }
    let not_json = URL_SAFE_NO_PAD.encode(b"not json");
    let wrong_shape = URL_SAFE_NO_PAD.encode(br#"{"after":"not-a-uuid"}"#);
    let array = URL_SAFE_NO_PAD.encode(b"[]");
    for key in [
        "garbage!!",
        "abc",
        "%%%",
        not_json.as_str(),
        wrong_shape.as_str(),
        array.as_str(),
    ] {
        let resp = fx
            .app
            .get(&format!("{base}?pageKey={key}"), &fx.admin_key)
            .await;
        assert_invalid(resp, "query parameter pageKey", &format!("pageKey={key}"));
    }
    for limit in ["1", "1000"] {
        let page = fx.presence_page(&format!("{base}?pageLimit={limit}")).await;
        assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
        assert!(page["meta"].is_object(), "{page}");
        assert!(page["meta"].get("next").is_none(), "{page}");
    }
}

async fn the_default_presence_page_holds_at_most_fifty(engine: Engine) {
    let fx = fixture(engine).await;
    let mates = fx.mates(51).await;
    let team = fx.create_team("Crowd").await;
    let mut ids: Vec<&str> = mates.iter().map(|m| m.user.id.as_str()).collect();
    ids.push(&fx.owner.id);
    fx.add(&team, &ids).await;
    let all = sorted(ids.iter().map(|s| s.to_string()).collect());
    assert_eq!(all.len(), 52);

    let first = fx
        .presence_page(&format!("/beta/teams/{team}/presence"))
        .await;
    let rows = first["data"].as_array().unwrap();
    assert_eq!(rows.len(), 50, "the default page");
    let next = first["meta"]["next"].as_str().expect("a next page");
    let second = fx.presence_page(next).await;
    assert!(second["meta"].get("next").is_none(), "{second}");
    let walked: Vec<String> = rows
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|r| r["userId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(walked, all, "every member once, by user id");

    // A last page that is exactly full has no empty page after it.
    let half = fx
        .presence_page(&format!("/beta/teams/{team}/presence?pageLimit=26"))
        .await;
    assert_eq!(half["data"].as_array().unwrap().len(), 26);
    let rest = fx
        .presence_page(half["meta"]["next"].as_str().expect("a second half"))
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 26);
    assert!(rest["meta"].get("next").is_none(), "{rest}");
    assert_eq!(fx.presence_rows(&team).await.len(), 52);
}

async fn presence_pages_stay_stable_while_members_change(engine: Engine) {
    let fx = fixture(engine).await;
    // Nine teammates, sorted by user id: t0 joins late before the boundary of page 1, t7 joins
    // late after it, the other seven are members from the start.
    let mut mates = fx.mates(9).await;
    mates.sort_by(|a, b| a.user.id.cmp(&b.user.id));
    let id = |i: usize| mates[i].user.id.clone();
    let team = fx.create_team("Stable").await;
    let initial: Vec<String> = [1, 2, 3, 4, 5, 6, 8].into_iter().map(id).collect();
    let initial_refs: Vec<&str> = initial.iter().map(String::as_str).collect();
    fx.add(&team, &initial_refs).await;

    let first = fx
        .presence_page(&format!("/beta/teams/{team}/presence?pageLimit=3"))
        .await;
    let first_rows: Vec<String> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(first_rows, vec![id(1), id(2), id(3)], "page 1 by user id");
    let mut next = first["meta"]["next"]
        .as_str()
        .expect("a next page")
        .to_string();
    let prefix = format!("/beta/teams/{team}/presence?pageKey=");
    assert!(next.starts_with(&prefix), "relative next URL: {next}");
    assert!(next.ends_with("&pageLimit=3"), "keeps the limit: {next}");

    // Between pages: t0 joins before the boundary, t2 (already shown) leaves, t7 joins later on.
    fx.add(&team, &[&id(0), &id(7)]).await;
    fx.remove(&team, &[&id(2)]).await;

    let mut walked = first_rows.clone();
    let mut pages = 1;
    loop {
        let page = fx.presence_page(&next).await;
        pages += 1;
        let rows = page["data"].as_array().unwrap();
        assert!(!rows.is_empty(), "no empty page: {page}");
        assert!(rows.len() <= 3, "{page}");
        walked.extend(
            rows.iter()
                .map(|r| r["userId"].as_str().unwrap().to_string()),
        );
        match page["meta"].get("next") {
            Some(n) => {
                next = n.as_str().expect("next is a string").to_string();
                assert!(next.starts_with(&prefix), "{next}");
                assert!(next.ends_with("&pageLimit=3"), "{next}");
            }
            None => break,
        }
        assert!(pages < 10, "the walk ends");
    }

    let unique: HashSet<&String> = walked.iter().collect();
    assert_eq!(unique.len(), walked.len(), "no duplicates in {walked:?}");
    for always in [1, 3, 4, 5, 6, 8] {
        assert!(
            walked.contains(&id(always)),
            "t{always} was a member throughout: {walked:?}"
        );
    }
    assert!(
        walked.contains(&id(7)),
        "a member who joined after the boundary is reached: {walked:?}"
    );
    assert!(
        !walked.contains(&id(0)),
        "t0 sorts before the boundary: {walked:?}"
    );
    assert_eq!(
        walked,
        vec![id(1), id(2), id(3), id(4), id(5), id(6), id(7), id(8)]
    );
    // Page size can change between requests: the same key with a bigger limit.
    let bigger = next.replace("pageLimit=3", "pageLimit=10");
    let tail = fx.presence_page(&bigger).await;
    assert!(tail["meta"].get("next").is_none(), "{tail}");
    // A fresh walk shows the team as it is now.
    let now: Vec<String> = fx
        .presence_rows(&team)
        .await
        .iter()
        .map(|r| r["userId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        now,
        vec![id(0), id(1), id(3), id(4), id(5), id(6), id(7), id(8)]
    );
}

// ---- events ------------------------------------------------------------------------------------------

async fn membership_changes_emit_one_team_event_per_member(engine: Engine) {
    let fx = fixture_with(engine, FAST).await;
    let alice = fx.mate("alice", "agent").await;
    let bob = fx.mate("bob", "agent").await;
    let team = fx.create_team("Support").await;

    let mut events = fx.observer(&fx.owner.token).await;
    events.subscribe(&format!("/{}/events", fx.pid), None).await;
    let mut watch = fx.observer(&fx.owner.token).await;
    let topic = fx.team_topic(&team);
    let frames = watch.subscribe(&topic, None).await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(
        frames[0],
        json!({"action": "subscribed", "payload": {"topic": topic}})
    );
    assert_eq!(frames[1]["payload"]["method"], json!("CREATE"));
    assert_eq!(frames[1]["payload"]["message"], json!([]), "no members yet");

    let puid_of = |user: &str| {
        [&alice, &bob]
            .into_iter()
            .find(|m| m.user.id == user)
            .map(|m| m.puid.clone())
            .unwrap_or_default()
    };
    let owner_puid = fx
        .app
        .get(&format!("/v3/{}/project_users/me", fx.pid), &fx.owner.token)
        .await
        .expect(200)[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();

    fx.add(&team, &[&alice.user.id, &bob.user.id, &fx.owner.id])
        .await;
    let everyone = sorted(vec![
        alice.user.id.clone(),
        bob.user.id.clone(),
        fx.owner.id.clone(),
    ]);
    for socket in [&mut events, &mut watch] {
        let added = events_by_user(socket, 3).await;
        let users: Vec<String> = added.iter().map(|(u, _)| u.clone()).collect();
        assert_eq!(users, everyone, "one event per added member");
        for (user, event) in &added {
            assert_membership(event, "team.member_added", &fx.pid, &team);
            assert_eq!(event["team"]["name"], json!("Support"), "{event}");
            let puid = if *user == fx.owner.id {
                owner_puid.clone()
            } else {
                puid_of(user)
            };
            assert_eq!(event["project_user_id"], json!(puid), "{event}");
            assert_eq!(event["payload"]["_id"], json!(puid), "{event}");
        }
        socket.expect_silence(QUIET).await;
    }

    // Re-adding members is no change: no event.
    fx.add(&team, &[&alice.user.id, &fx.owner.id]).await;
    events.expect_silence(QUIET).await;
    watch.expect_silence(Duration::from_millis(50)).await;

    // A fresh subscription's snapshot is the members.
    let mut late = fx.observer(&fx.owner.token).await;
    let frames = late.subscribe(&topic, None).await;
    let snapshot = frames.last().unwrap();
    assert_eq!(snapshot["payload"]["method"], json!("CREATE"), "{snapshot}");
    let members: BTreeSet<&str> = snapshot["payload"]["message"]
        .as_array()
        .expect("the members as an array")
        .iter()
        .map(|t| t["_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        members,
        BTreeSet::from([alice.puid.as_str(), bob.puid.as_str(), owner_puid.as_str()])
    );

    fx.remove(&team, &[&bob.user.id]).await;
    for socket in [&mut events, &mut watch, &mut late] {
        let event = socket.next_event().await;
        assert_membership(&event, "team.member_removed", &fx.pid, &team);
        assert_eq!(event["user_id"], json!(bob.user.id), "{event}");
        assert_eq!(event["project_user_id"], json!(bob.puid), "{event}");
        socket.expect_silence(QUIET).await;
    }
    // Removing a non-member is no change either.
    fx.remove(&team, &[&bob.user.id]).await;
    events.expect_silence(QUIET).await;

    // Deleting the team: one member_removed per member left.
    fx.app
        .delete(&fx.team_path(&team), &fx.admin_key)
        .await
        .expect(204);
    let remaining = sorted(vec![alice.user.id.clone(), fx.owner.id.clone()]);
    for socket in [&mut events, &mut watch] {
        let removed = events_by_user(socket, 2).await;
        let users: Vec<String> = removed.iter().map(|(u, _)| u.clone()).collect();
        assert_eq!(users, remaining);
        for (_, event) in &removed {
            assert_membership(event, "team.member_removed", &fx.pid, &team);
        }
        socket.expect_silence(QUIET).await;
    }
    // The teammates are still there; nothing else happened to them.
    let listed = fx
        .app
        .get(&format!("/v3/{}/project_users", fx.pid), &fx.owner.token)
        .await
        .expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
}

async fn the_team_topic_carries_its_members_presence_only(engine: Engine) {
    let fx = fixture_with(engine, FAST).await;
    let alice = fx.mate("alice", "agent").await;
    let carol = fx.mate("carol", "agent").await;
    let team = fx.create_team("Support").await;
    fx.add(&team, &[&alice.user.id]).await;

    let mut watch = fx.observer(&fx.owner.token).await;
    let frames = watch.subscribe(&fx.team_topic(&team), None).await;
    let snapshot = frames.last().unwrap();
    let members: Vec<&str> = snapshot["payload"]["message"]
        .as_array()
        .expect("the members as an array")
        .iter()
        .map(|t| t["_id"].as_str().unwrap())
        .collect();
    assert_eq!(members, vec![alice.puid.as_str()], "{snapshot}");
    let mut events = fx.observer(&fx.owner.token).await;
    events.subscribe(&format!("/{}/events", fx.pid), None).await;

    // A non-member's presence reaches the event stream, not the team topic.
    let carol_tab = fx.app.ws(&token_query(&carol.user.token)).await;
    let online = events.next_event().await;
    assert_eq!(online["type"], json!("presence.online"), "{online}");
    assert_eq!(online["project_user_id"], json!(carol.puid));
    watch.expect_silence(QUIET).await;

    // A member's presence reaches both.
    let alice_tab = fx.app.ws(&token_query(&alice.user.token)).await;
    for socket in [&mut watch, &mut events] {
        let online = socket.next_event().await;
        assert_eq!(online["type"], json!("presence.online"), "{online}");
        assert_eq!(online["project_user_id"], json!(alice.puid), "{online}");
        assert_eq!(online["payload"]["presence"]["status"], json!("online"));
    }
    // So does a member's availability.
    fx.update_teammate(&alice.puid, json!({"user_available": false}))
        .await;
    for socket in [&mut watch, &mut events] {
        let event = socket.next_event().await;
        assert_eq!(event["type"], json!("availability.update"), "{event}");
        assert_eq!(event["project_user_id"], json!(alice.puid), "{event}");
    }
    // A non-member's availability does not.
    fx.update_teammate(&carol.puid, json!({"user_available": false}))
        .await;
    let event = events.next_event().await;
    assert_eq!(event["type"], json!("availability.update"), "{event}");
    assert_eq!(event["project_user_id"], json!(carol.puid), "{event}");
    watch.expect_silence(QUIET).await;

    alice_tab.close().await;
    for socket in [&mut watch, &mut events] {
        let offline = socket.next_event().await;
        assert_eq!(offline["type"], json!("presence.offline"), "{offline}");
        assert_eq!(offline["project_user_id"], json!(alice.puid), "{offline}");
    }
    carol_tab.close().await;
    let offline = events.next_event().await;
    assert_eq!(offline["type"], json!("presence.offline"), "{offline}");
    assert_eq!(offline["project_user_id"], json!(carol.puid));
    watch.expect_silence(QUIET).await;

    // Once alice leaves the team, her presence no longer reaches its topic.
    fx.remove(&team, &[&alice.user.id]).await;
    for socket in [&mut watch, &mut events] {
        let event = socket.next_event().await;
        assert_membership(&event, "team.member_removed", &fx.pid, &team);
    }
    let alice_tab = fx.app.ws(&token_query(&alice.user.token)).await;
    let online = events.next_event().await;
    assert_eq!(online["type"], json!("presence.online"), "{online}");
    assert_eq!(online["project_user_id"], json!(alice.puid));
    watch.expect_silence(QUIET).await;
    alice_tab.close().await;
}

async fn who_may_subscribe_to_a_team_topic(engine: Engine) {
    let fx = fixture(engine).await;
    let alice = fx.mate("alice", "agent").await;
    let team = fx.create_team("Support").await;
    fx.add(&team, &[&fx.owner.id]).await;
    let topic = fx.team_topic(&team);
    let other = other_project(&fx.app).await;
    let other_key_agent = api_key(&fx.app, &other.pid, &other.owner, "agent").await;

    // An agent (not admin), and an API key of the project, may subscribe.
    for token in [&alice.user.token, &fx.agent_key, &fx.admin_key] {
        let mut socket = fx.observer(token).await;
        let frames = socket.subscribe(&topic, None).await;
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(frames[0]["action"], json!("subscribed"), "{frames:?}");
        let members = frames[1]["payload"]["message"].as_array().unwrap();
        assert_eq!(members.len(), 1, "{frames:?}");
        assert_eq!(members[0]["id_user"]["_id"], json!(fx.owner.id));
        socket.close().await;
    }

    // A user or key of another project may not.
    for token in [&other.owner.token, &other.admin_key, &other_key_agent] {
        let mut socket = fx.observer(token).await;
        let frames = socket.subscribe(&topic, None).await;
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["action"], json!("error"), "{frames:?}");
        assert_eq!(
            frames[0]["payload"]["code"],
            json!("forbidden"),
            "{frames:?}"
        );
        // The socket stays usable after the refusal.
        let own = socket
            .subscribe(&format!("/{}/events", other.pid), None)
            .await;
        assert_eq!(own.last().unwrap()["payload"]["method"], json!("CREATE"));
        socket.close().await;
    }

    // Another project's team under our project id is not found, and an unknown team too.
    let theirs = fx
        .app
        .post("/beta/teams", &other.admin_key, json!({"name": "Theirs"}))
        .await
        .expect(201)["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut socket = fx.observer(&fx.owner.token).await;
    for missing in [theirs.clone(), uuid::Uuid::new_v4().to_string()] {
        let frames = socket
            .subscribe(&format!("/{}/teams/{missing}", fx.pid), None)
            .await;
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["action"], json!("error"), "{frames:?}");
        assert_eq!(
            frames[0]["payload"]["code"],
            json!("not_found"),
            "{frames:?}"
        );
    }
    // And their project's topic is forbidden to us.
    let frames = socket
        .subscribe(&format!("/{}/teams/{theirs}", other.pid), None)
        .await;
    assert_eq!(
        frames[0]["payload"]["code"],
        json!("forbidden"),
        "{frames:?}"
    );
    // A malformed team id is not a topic.
    let frames = socket
        .subscribe(&format!("/{}/teams/not-a-uuid", fx.pid), None)
        .await;
    assert_eq!(
        frames[0]["payload"]["code"],
        json!("invalid_topic"),
        "{frames:?}"
    );
    socket.close().await;
}

async fn the_team_topic_replays_missed_events_since_an_event_id(engine: Engine) {
    let fx = fixture_with(engine, FAST).await;
    let alice = fx.mate("alice", "agent").await;
    let carol = fx.mate("carol", "agent").await;
    let team = fx.create_team("Support").await;
    let topic = fx.team_topic(&team);

    let mut first = fx.observer(&fx.owner.token).await;
    first.subscribe(&topic, None).await;
    fx.add(&team, &[&alice.user.id]).await;
    let seen = first.next_event().await;
    assert_membership(&seen, "team.member_added", &fx.pid, &team);
    first.close().await;

    // Missed while away: alice leaves, carol (no member) changes, alice joins again.
    fx.remove(&team, &[&alice.user.id]).await;
    fx.update_teammate(&carol.puid, json!({"user_available": false}))
        .await;
    fx.add(&team, &[&alice.user.id]).await;

    let mut back = fx.observer(&fx.owner.token).await;
    back.send_json(json!({
        "action": "subscribe",
        "payload": {"topic": topic, "since": seen["id"]},
    }))
    .await;
    assert_eq!(
        back.recv_json().await,
        json!({"action": "subscribed", "payload": {"topic": topic}})
    );
    let removed = back.next_event().await;
    assert_membership(&removed, "team.member_removed", &fx.pid, &team);
    assert_eq!(removed["project_user_id"], json!(alice.puid));
    let added = back.next_event().await;
    assert_membership(&added, "team.member_added", &fx.pid, &team);
    assert_eq!(added["project_user_id"], json!(alice.puid));
    assert!(
        added["seq"].as_u64() > removed["seq"].as_u64(),
        "in order: {removed} then {added}"
    );
    // No snapshot after a replay, and nothing about carol.
    back.expect_silence(QUIET).await;
}

/// Trashing or deleting a member takes it out of the team (see
/// `leaving_the_project_leaves_every_team`), but a subscriber of the team topic is told nothing:
/// its member list goes stale.
async fn leaving_the_project_is_announced_on_the_team_topic(engine: Engine) {
    let fx = fixture_with(engine, FAST).await;
    let alice = fx.mate("alice", "agent").await;
    let bob = fx.mate("bob", "agent").await;
    let team = fx.create_team("Support").await;
    fx.add(&team, &[&alice.user.id, &bob.user.id]).await;
    let mut watch = fx.observer(&fx.owner.token).await;
    let frames = watch.subscribe(&fx.team_topic(&team), None).await;
    assert_eq!(
        frames.last().unwrap()["payload"]["message"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let team_users = format!("/v3/{}/project_users", fx.pid);
    for (mate, mode) in [(&alice, "soft"), (&bob, "hard")] {
        fx.app
            .delete(
                &format!("{team_users}/{}?{mode}=true", mate.puid),
                &fx.owner.token,
            )
            .await
            .expect(200);
        let event = watch.next_event().await;
        assert_eq!(event["type"], json!("project_user.delete"), "{event}");
        assert_eq!(event["project_user_id"], json!(mate.puid), "{event}");
    }
    assert!(fx.member_ids(&team).await.is_empty());
}

engine_tests!(
    leaving_the_project_is_announced_on_the_team_topic,
    create_list_get_and_delete_a_team,
    a_team_needs_a_name_in_a_well_formed_body,
    a_malformed_team_id_is_an_invalid_path_parameter_on_every_route,
    an_unknown_team_id_is_not_found_on_every_route,
    the_teams_api_takes_a_project_api_key,
    an_agent_key_reads_and_only_an_admin_key_changes,
    members_are_added_listed_by_user_id_and_removed,
    adding_or_removing_a_non_teammate_changes_nothing,
    leaving_the_project_leaves_every_team,
    deleting_a_team_keeps_its_teammates,
    a_key_never_reaches_another_projects_teams,
    presence_rows_follow_availability_and_agent_sockets,
    presence_paging_parameters_are_validated,
    the_default_presence_page_holds_at_most_fifty,
    presence_pages_stay_stable_while_members_change,
    membership_changes_emit_one_team_event_per_member,
    the_team_topic_carries_its_members_presence_only,
    who_may_subscribe_to_a_team_topic,
    the_team_topic_replays_missed_events_since_an_event_id,
);
