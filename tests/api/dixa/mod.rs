//! The Dixa-compatible teams API (`/beta/teams`, docs/rest.md) against both engines, through real
//! HTTP and real agent WebSockets: team CRUD, API-key authentication and roles, members, leaving
//! the project, cross-project isolation, presence rows and their keyset pages, and the team
//! membership events on `/{pid}/events` and `/{pid}/teams/{team_id}`.

mod crud;
mod events;
mod isolation;
mod leaving;
mod members;
mod presence;
mod roles;

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
