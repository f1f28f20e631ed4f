//! Shared test harness: `spawn_app` starts the real gateway on port 0 against either engine,
//! `RedisServer` runs a private `redis-server` process, and `TestApp` speaks HTTP to the app.

#![allow(dead_code)]

pub mod chaos;
pub mod cluster;
pub mod jwt;
pub mod node;
pub mod receiver;
pub mod routes;

use presence_gateway::{App, Config};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const JWT_SECRET: &str = "test-secret-for-the-suite";
pub const PASSWORD: &str = "correct-horse-battery";
pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// Which storage engine a test runs against.
#[derive(Clone, Debug)]
pub enum Engine {
    Memory,
    /// The shared Redis at 127.0.0.1:6379, under a unique key prefix.
    Redis,
    /// This test process's shared 3-master Redis Cluster, under a unique key prefix.
    RedisCluster,
    /// A given Redis URL and prefix (private servers, restarts).
    RedisAt {
        url: String,
        prefix: String,
    },
}

/// Generates one `#[tokio::test]` per engine for each named `async fn(Engine)`.
#[macro_export]
macro_rules! engine_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::Engine::Memory).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::Engine::Redis).await
                }
            )*
        }
        mod redis_cluster {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::Engine::RedisCluster).await
                }
            )*
        }
    };
}

/// A Redis engine at `url` under `prefix`, with the default partition count and no `WAIT`.
pub fn redis_store(url: &str, prefix: &str) -> presence_gateway::store::RedisStore {
    let settings = presence_gateway::store::redis::RedisSettings {
        prefix: prefix.to_string(),
        timeout: Duration::from_secs(2),
        partitions: redis_keys(prefix).partitions(),
        wait_replicas: 0,
    };
    presence_gateway::store::RedisStore::connect(url, &settings).expect("a valid Redis URL")
}

/// The key names of a deployment under `prefix` with the default partition count, for tests
/// that look at Redis directly.
pub fn redis_keys(prefix: &str) -> presence_gateway::store::redis::Keys {
    presence_gateway::store::redis::Keys::new(prefix, presence_gateway::domain::Partitions::new(16))
}

/// An HTTP client. The gateway's reqwest is built without a TLS crypto provider (the gateway
/// installs ring at start); a test process that makes a client before any app starts (one test
/// per process, under nextest) installs it here.
pub fn http() -> reqwest::Client {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A private Redis for tests of several gateway nodes: one `redis-server`, or a 3-master Redis
/// Cluster. `backend_tests!` runs a test on each.
pub enum Backend {
    Single(RedisServer),
    Cluster(cluster::RedisCluster),
}

impl Backend {
    pub fn single() -> Backend {
        Backend::Single(RedisServer::start(false))
    }

    pub fn cluster() -> Backend {
        Backend::Cluster(cluster::RedisCluster::start(3, 0, 2000))
    }

    pub fn url(&self) -> String {
        match self {
            Backend::Single(redis) => redis.url(),
            Backend::Cluster(cluster) => cluster.url(),
        }
    }
}

/// Generates one `#[tokio::test]` per backend (`single_redis`, `redis_cluster`) for each named
/// `async fn(Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod single_redis {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::Backend::single()).await
                }
            )*
        }
        mod redis_cluster {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::Backend::cluster()).await
                }
            )*
        }
    };
}

pub fn unique_prefix() -> String {
    format!("pgtest-{}", uuid::Uuid::new_v4().simple())
}

pub struct TestApp {
    /// The app's shared state (tracker, store), for assertions that HTTP cannot make.
    pub state: presence_gateway::state::AppState,
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    /// The Redis prefix this app uses, if any, so a second app can share it.
    pub redis: Option<(String, String)>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    cleanup_prefix: bool,
}

/// A response: status, headers and the body parsed as JSON (`Value::Null` if it is not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    /// Panics with the body if the status is not `expected`.
    #[track_caller]
    pub fn expect(self, expected: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "unexpected status; body: {}",
            self.text
        );
        self.body
    }

    /// Asserts an error status with the Tiledesk error shape.
    #[track_caller]
    pub fn expect_error(self, expected: u16) -> Value {
        let body = self.expect(expected);
        assert_eq!(body["success"], json!(false), "error shape: {body}");
        assert!(body["msg"].is_string(), "error shape: {body}");
        body
    }
}

pub async fn spawn_app(engine: Engine) -> TestApp {
    spawn_app_with(engine, &[]).await
}

/// Starts the gateway on 127.0.0.1:0 with the test JWT secret, the engine, and `overrides`
/// (setting key → value, as flags would give them).
pub async fn spawn_app_with(engine: Engine, overrides: &[(&str, &str)]) -> TestApp {
    let (redis, cleanup_prefix) = match engine {
        Engine::Memory => (None, false),
        Engine::Redis => (Some((SHARED_REDIS.to_string(), unique_prefix())), true),
        // The cluster dies with the test process; nothing to clean.
        Engine::RedisCluster => (
            Some((cluster::shared_cluster_url(), unique_prefix())),
            false,
        ),
        Engine::RedisAt { url, prefix } => (Some((url, prefix)), false),
    };
    let mut settings: Vec<(&str, String)> = vec![
        ("listen", "127.0.0.1:0".into()),
        ("jwt_secret", JWT_SECRET.into()),
        ("log_level", "warn".into()),
    ];
    if let Some((url, prefix)) = &redis {
        settings.push(("redis_url", url.clone()));
        settings.push(("redis_prefix", prefix.clone()));
    }
    settings.extend(overrides.iter().map(|(k, v)| (*k, v.to_string())));
    let config = Config::with_overrides(settings).expect("test config is valid");
    if std::env::var_os("TEST_LOG").is_some() {
        presence_gateway::telemetry::init_logging(&config);
    }
    let app = App::build(config).await.expect("app builds");
    let port = app.port();
    let state = app.state().clone();
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp {
        state,
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        redis,
        shutdown: Some(tx),
        server: Some(server),
        cleanup_prefix,
    }
}

/// A signed-up user with a token.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    /// `JWT <jwt>`, usable as the `Authorization` header as is.
    pub token: String,
}

/// An owner and an agent in a fresh project: the starting point of most presence tests.
pub struct OwnerAndAgent {
    pub owner: TestUser,
    pub agent: TestUser,
    pub pid: String,
    /// The agent's teammate id.
    pub puid: String,
}

/// A fresh app with an owner and an agent in one project.
pub struct TeamApp {
    pub app: TestApp,
    pub pid: String,
    pub owner: TestUser,
    pub agent: TestUser,
    /// The agent's teammate id.
    pub puid: String,
}

impl TeamApp {
    pub async fn spawn(engine: Engine, overrides: &[(&str, &str)]) -> TeamApp {
        let app = spawn_app_with(engine, overrides).await;
        let OwnerAndAgent {
            owner,
            agent,
            pid,
            puid,
        } = app.owner_and_agent().await;
        TeamApp {
            app,
            pid,
            owner,
            agent,
            puid,
        }
    }
}

impl TestApp {
    pub async fn owner_and_agent(&self) -> OwnerAndAgent {
        let owner = self.new_user("owner").await;
        let agent = self.new_user("agent").await;
        let pid = self.new_project(&owner).await;
        let puid = self.add_member(&owner, &pid, &agent, "agent").await["_id"]
            .as_str()
            .unwrap()
            .to_string();
        OwnerAndAgent {
            owner,
            agent,
            pid,
            puid,
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.address, path));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Self::read(req.send().await.expect("request sent")).await
    }

    /// Sends raw bytes as the body (for malformed input).
    pub async fn raw(&self, method: Method, path: &str, auth: Option<&str>, body: Vec<u8>) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.address, path))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        Self::read(req.send().await.expect("request sent")).await
    }

    /// A response as [`Resp`]: status, headers, text, and the body parsed as JSON.
    pub async fn read(response: reqwest::Response) -> Resp {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    pub async fn get(&self, path: &str, auth: &str) -> Resp {
        self.request(Method::GET, path, Some(auth), None).await
    }

    pub async fn post(&self, path: &str, auth: &str, body: Value) -> Resp {
        self.request(Method::POST, path, Some(auth), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, auth: &str, body: Value) -> Resp {
        self.request(Method::PUT, path, Some(auth), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, auth: &str) -> Resp {
        self.request(Method::DELETE, path, Some(auth), None).await
    }

    pub async fn signup(&self, email: &str, firstname: &str) -> Resp {
        self.request(
            Method::POST,
            "/v3/auth/signup",
            None,
            Some(json!({"email": email, "password": PASSWORD, "firstname": firstname, "lastname": "Test"})),
        )
        .await
    }

    pub async fn signin(&self, email: &str, password: &str) -> Resp {
        self.request(
            Method::POST,
            "/v3/auth/signin",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    /// Signs up and signs in a fresh user named `name`.
    pub async fn new_user(&self, name: &str) -> TestUser {
        let email = format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple());
        let user = self.signup(&email, name).await.expect(200)["user"].clone();
        let token = self.signin(&email, PASSWORD).await.expect(200)["token"]
            .as_str()
            .unwrap()
            .to_string();
        TestUser {
            id: user["_id"].as_str().unwrap().to_string(),
            email,
            token,
        }
    }

    /// Creates a project owned by `owner`; returns its id.
    pub async fn new_project(&self, owner: &TestUser) -> String {
        let project = self
            .post("/v3/projects", &owner.token, json!({"name": "Support"}))
            .await
            .expect(200);
        project["_id"].as_str().unwrap().to_string()
    }

    /// A new API key of `pid` with `role` (`agent` or `admin`), made by `token`; returns its
    /// secret.
    pub async fn new_key(&self, pid: &str, token: &str, role: &str) -> String {
        self.post(
            &format!("/v3/{pid}/keys"),
            token,
            json!({"name": role, "role": role}),
        )
        .await
        .expect(200)["key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Invites `user` into `pid` with `role`; returns the teammate JSON.
    pub async fn add_member(
        &self,
        admin: &TestUser,
        pid: &str,
        user: &TestUser,
        role: &str,
    ) -> Value {
        self.post(
            &format!("/v3/{pid}/project_users/invite"),
            &admin.token,
            json!({"email": user.email, "role": role}),
        )
        .await
        .expect(200)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
        if self.cleanup_prefix {
            if let Some((url, prefix)) = &self.redis {
                delete_prefix(url, prefix);
            }
        }
    }
}

/// Deletes every key under `prefix` (keeps the shared Redis tidy between runs).
pub fn delete_prefix(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut con)
        .unwrap_or_default();
    for chunk in keys.chunks(500) {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut con);
    }
}

/// A private `redis-server` on a free port, killed on drop. Tests that kill or restart Redis
/// use one of these, never the shared instance.
pub struct RedisServer {
    pub port: u16,
    dir: std::path::PathBuf,
    persistent: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server; with `persistent`, it keeps an append-only file across restarts.
    pub fn start(persistent: bool) -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("pg-redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = RedisServer {
            port,
            dir,
            persistent,
            child: None,
        };
        server.launch();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--dir"])
            .arg(&self.dir)
            .args(["--appendonly", if self.persistent { "yes" } else { "no" }])
            .args(["--appendfsync", "always"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is on PATH");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(200))
                {
                    if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private redis-server did not start on port {}", self.port);
    }

    /// SIGKILLs the server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (and data directory).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- agent sockets ------------------------------------------------------------------------------

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A real WebSocket client on the agent socket.
pub struct Agent {
    pub ws: WsStream,
}

impl TestApp {
    /// Opens `/ws?{query}`; `query` includes the token (use [`token_query`]).
    pub async fn ws(&self, query: &str) -> Agent {
        let url = format!("ws://127.0.0.1:{}/ws?{query}", self.port);
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket handshake");
        Agent { ws }
    }

    /// The handshake's HTTP status when it is refused.
    pub async fn ws_refused(&self, query: &str) -> u16 {
        let url = format!("ws://127.0.0.1:{}/ws?{query}", self.port);
        match tokio_tungstenite::connect_async(url).await {
            Ok(_) => 101,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                response.status().as_u16()
            }
            Err(e) => panic!("unexpected handshake error: {e}"),
        }
    }

    /// A teammate's `presence` object, read over REST.
    pub async fn presence(&self, pid: &str, puid: &str, token: &str) -> Value {
        self.get(&format!("/v3/{pid}/project_users/{puid}"), token)
            .await
            .expect(200)["presence"]
            .clone()
    }

    /// Waits until the teammate's presence status is `status`; panics after `timeout`.
    pub async fn wait_status(
        &self,
        pid: &str,
        puid: &str,
        token: &str,
        status: &str,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let presence = self.presence(pid, puid, token).await;
            if presence["status"] == json!(status) {
                return presence;
            }
            assert!(
                Instant::now() < deadline,
                "still {presence} after {timeout:?}, wanted {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `token=<url-encoded token>` for a socket query.
pub fn token_query(token: &str) -> String {
    format!("token={}", token.replace(' ', "%20"))
}

impl Agent {
    pub async fn send_text(&mut self, text: &str) {
        use futures::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .expect("send");
    }

    pub async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    /// The next text frame as JSON, skipping server heartbeats; panics after 5 s.
    pub async fn recv_json(&mut self) -> Value {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await
                .expect("a frame within 5 s")
                .expect("socket open")
                .expect("frame ok");
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).expect("JSON frame");
                if value["action"] == json!("heartbeat")
                    && value["payload"]["message"]["text"] == json!("ping")
                {
                    continue;
                }
                return value;
            }
        }
    }

    /// Reads until the server closes; returns the close code.
    pub async fn closed_with(&mut self) -> Option<u16> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.ws.next()).await {
                Err(_) => panic!("the server did not close the socket within 10 s"),
                Ok(None) => return None,
                Ok(Some(Err(e))) => {
                    println!("socket ended without a close frame: {e}");
                    return None;
                }
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        // Drain until the server's close arrives, so the server has seen it.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.closed_with()).await;
    }
}

/// Creates a project directly in `store` and returns its owner teammate (store-level tests).
pub async fn project_with_owner(
    store: &dyn presence_gateway::store::Store,
) -> presence_gateway::domain::Teammate {
    use presence_gateway::domain::{new_id, Project, Role, Teammate, Timestamp};
    let owner = new_id();
    let now = Timestamp::now();
    let project = Project {
        id: new_id(),
        name: "p".into(),
        created_by: owner,
        created_at: now,
        updated_at: now,
    };
    let teammate = Teammate::new(project.id, owner, Role::Owner, None);
    store.create_project(&project, &teammate).await.unwrap();
    teammate
}

// ---- event streams ------------------------------------------------------------------------------

/// One Server-Sent Event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("SSE data is JSON")
    }
}

/// A real SSE client on `GET /v3/{pid}/events`: reads the chunked body and splits it into
/// events (comments, such as keep-alives, are counted but not returned).
pub struct SseClient {
    response: reqwest::Response,
    buffer: String,
    pub comments: usize,
}

/// Why an event stream did not open.
#[derive(Debug)]
pub enum SseError {
    /// No answer within 5 s, or the node is down.
    Unreachable(String),
    /// The gateway refused it: status and body.
    Refused(Resp),
}

impl TestApp {
    /// Opens the project's event stream; `query` is appended as is (`types=…`, `token=…`).
    /// Returns the refusal's status and body if the stream is not opened.
    pub async fn sse(
        &self,
        pid: &str,
        auth: Option<&str>,
        query: &str,
        last_event_id: Option<&str>,
    ) -> Result<SseClient, Resp> {
        match SseClient::open(&self.address, pid, auth, query, last_event_id).await {
            Ok(client) => Ok(client),
            Err(SseError::Refused(resp)) => Err(resp),
            Err(SseError::Unreachable(e)) => panic!("SSE request not answered: {e}"),
        }
    }
}

impl SseClient {
    /// Opens `{base}/v3/{pid}/events?{query}` on any node (`base` is `http://host:port`).
    pub async fn open(
        base: &str,
        pid: &str,
        auth: Option<&str>,
        query: &str,
        last_event_id: Option<&str>,
    ) -> Result<SseClient, SseError> {
        let mut req = http()
            .get(format!("{base}/v3/{pid}/events?{query}"))
            .header("Accept", "text/event-stream");
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let response = tokio::time::timeout(Duration::from_secs(5), req.send())
            .await
            .map_err(|_| SseError::Unreachable("no answer within 5 s".into()))?
            .map_err(|e| SseError::Unreachable(e.to_string()))?;
        if response.status() != StatusCode::OK {
            return Err(SseError::Refused(TestApp::read(response).await));
        }
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "SSE content type"
        );
        Ok(SseClient {
            response,
            buffer: String::new(),
            comments: 0,
        })
    }

    /// The next event; panics if none arrives within `timeout` or the stream ends.
    pub async fn next(&mut self, timeout: Duration) -> SseEvent {
        self.try_next(timeout)
            .await
            .expect("an SSE event in time")
            .expect("the SSE stream is still open")
    }

    /// The next event: `Err` on timeout, `Ok(None)` when the stream ended.
    pub async fn try_next(&mut self, timeout: Duration) -> Result<Option<SseEvent>, ()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                let mut is_comment_only = true;
                for line in block.lines() {
                    if line.is_empty() || line.starts_with(':') {
                        continue;
                    }
                    is_comment_only = false;
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "id" => event.id = Some(value.to_string()),
                        "event" => event.event = Some(value.to_string()),
                        "data" => {
                            if !event.data.is_empty() {
                                event.data.push('\n');
                            }
                            event.data.push_str(value);
                        }
                        _ => {}
                    }
                }
                if is_comment_only {
                    self.comments += 1;
                    continue;
                }
                return Ok(Some(event));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .map_err(|_| ())?;
            match chunk {
                Ok(Some(bytes)) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(None) | Err(_) => return Ok(None),
            }
        }
    }

    /// Asserts that no event arrives within `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Ok(Some(event)) = self.try_next(quiet).await {
            panic!("unexpected SSE event: {event:?}");
        }
    }
}

impl Agent {
    /// Subscribes to `topic` and returns the frames up to and including the `CREATE` snapshot
    /// (or the error frame).
    pub async fn subscribe(&mut self, topic: &str, since: Option<&str>) -> Vec<Value> {
        let mut payload = json!({"topic": topic});
        if let Some(since) = since {
            payload["since"] = json!(since);
        }
        self.send_json(json!({"action": "subscribe", "payload": payload}))
            .await;
        let mut frames = Vec::new();
        loop {
            let frame = self.recv_json().await;
            let done =
                frame["action"] == json!("error") || frame["payload"]["method"] == json!("CREATE");
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// The next `UPDATE` frame's event envelope (skipping nothing else: any other frame fails).
    pub async fn next_event(&mut self) -> Value {
        let frame = self.recv_json().await;
        assert_eq!(frame["action"], json!("publish"), "{frame}");
        assert_eq!(frame["payload"]["method"], json!("UPDATE"), "{frame}");
        assert_eq!(
            frame["payload"]["message"], frame["payload"]["event"]["payload"],
            "message is the teammate after the change"
        );
        frame["payload"]["event"].clone()
    }

    /// Asserts that no frame other than a server heartbeat arrives within `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + quiet;
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            if let Message::Text(text) = message {
                assert!(
                    text.contains(r#""action":"heartbeat""#),
                    "unexpected frame: {text}"
                );
            }
        }
    }
}

// ---- gateway processes --------------------------------------------------------------------------

/// The real `presence-gateway` binary as a separate process (for SIGKILL), on a given Redis and
/// prefix, with the test JWT secret. Killed on drop.
pub struct GatewayProcess {
    pub port: u16,
    child: Option<Child>,
}

impl GatewayProcess {
    /// Starts it on a free port; `env` adds or overrides `PRESENCE_*` variables. An empty
    /// `redis_url` means the memory engine.
    pub fn start(redis_url: &str, prefix: &str, env: &[(&str, &str)]) -> GatewayProcess {
        Self::spawn(redis_url, prefix, env, None)
    }

    /// Like [`GatewayProcess::start`], with everything the process prints (logs) appended to
    /// `log`.
    pub fn start_logged(
        redis_url: &str,
        prefix: &str,
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> GatewayProcess {
        Self::spawn(redis_url, prefix, env, Some(log))
    }

    fn spawn(
        redis_url: &str,
        prefix: &str,
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> GatewayProcess {
        let port = free_port();
        let mut command = Self::command(port, redis_url, prefix, env);
        match log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("log file");
                command
                    .stdout(file.try_clone().expect("log file"))
                    .stderr(file);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = command.spawn().expect("the gateway binary starts");
        GatewayProcess {
            port,
            child: Some(child),
        }
    }

    /// The binary on `port` with the suite's settings, then `env`.
    fn command(port: u16, redis_url: &str, prefix: &str, env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_presence-gateway"));
        command
            .env("PRESENCE_LISTEN", format!("127.0.0.1:{port}"))
            .env("PRESENCE_REDIS_URL", redis_url)
            .env("PRESENCE_REDIS_PREFIX", prefix)
            .env("PRESENCE_JWT_SECRET", JWT_SECRET)
            .env("PRESENCE_LOG_LEVEL", "warn");
        for (key, value) in env {
            command.env(key, value);
        }
        command
    }

    /// Runs the binary (memory engine) with `env` and command-line `args`, expecting it to stop
    /// by itself (a start-up failure): its exit code and what it wrote to stderr. Panics if it
    /// is still running after 10 s.
    pub fn run_to_exit(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
        let mut child = Self::command(free_port(), "", "unused", env)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gateway binary starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the gateway") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the gateway did not exit within 10 s (env {env:?}, args {args:?})");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        use std::io::Read;
        child
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_string(&mut stderr)
            .expect("stderr is text");
        (status.code(), stderr)
    }

    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until `/healthz` answers 200; panics after 10 s.
    pub async fn wait_healthy(&self) {
        let client = http();
        let url = format!("{}/healthz", self.address());
        let ok = eventually(Duration::from_secs(10), || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                client
                    .get(url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await;
        assert!(ok, "the gateway process became healthy");
    }

    /// SIGTERM, then waits (up to 15 s) for the graceful shutdown; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no handover, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
