//! Tools for fault-injection tests: a small HTTP client per node, presence truths and
//! convergence, agent tabs that keep reading, the list of nodes that are up, and an SSE consumer
//! that resumes on another node when its stream ends.

use super::{token_query, SseClient, SseEvent, TestUser, PASSWORD};
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

pub fn ms(d: Duration) -> u128 {
    d.as_millis()
}

// ---- HTTP ---------------------------------------------------------------------------------------

/// A small HTTP client for one node (in-process or a process): status and JSON body, or the
/// transport error as text (a node that is down).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

pub type Answer = Result<(u16, Value), String>;

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            client: {
                super::http();
                reqwest::Client::builder()
            }
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| e.to_string())?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    pub async fn get(&self, path: &str, auth: &str) -> Answer {
        self.call(Method::GET, path, Some(auth), None).await
    }

    pub async fn put(&self, path: &str, auth: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(auth), Some(body)).await
    }

    /// The body of a call that must answer 200.
    pub async fn ok(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        match self.call(method, path, auth, body).await {
            Ok((200, body)) => body,
            other => panic!("{path} on {}: {other:?}", self.base),
        }
    }

    pub async fn readyz(&self) -> Option<u16> {
        let url = format!("{}/readyz", self.base);
        let request = self.client.get(url).timeout(Duration::from_secs(3));
        request.send().await.ok().map(|r| r.status().as_u16())
    }

    pub async fn new_user(&self, name: &str) -> TestUser {
        let email = format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple());
        let body =
            json!({"email": email, "password": PASSWORD, "firstname": name, "lastname": "Test"});
        let user = self
            .ok(Method::POST, "/v3/auth/signup", None, Some(body))
            .await["user"]
            .clone();
        let body = json!({"email": email, "password": PASSWORD});
        let token = self
            .ok(Method::POST, "/v3/auth/signin", None, Some(body))
            .await["token"]
            .as_str()
            .unwrap()
            .to_string();
        TestUser {
            id: user["_id"].as_str().unwrap().to_string(),
            email,
            token,
        }
    }

    /// A new owner and project: (owner, project id, owner's teammate id).
    pub async fn new_project(&self) -> (TestUser, String, String) {
        let owner = self.new_user("owner").await;
        let project = self
            .ok(
                Method::POST,
                "/v3/projects",
                Some(&owner.token),
                Some(json!({"name": "Faults"})),
            )
            .await;
        let pid = project["_id"].as_str().unwrap().to_string();
        let me = self
            .ok(
                Method::GET,
                &format!("/v3/{pid}/project_users/me"),
                Some(&owner.token),
                None,
            )
            .await;
        let owner_puid = me[0]["_id"].as_str().unwrap().to_string();
        (owner, pid, owner_puid)
    }

    /// A new user invited as an agent; returns it with its teammate id.
    pub async fn new_mate(&self, owner: &TestUser, pid: &str, name: &str) -> Mate {
        let user = self.new_user(name).await;
        let teammate = self
            .ok(
                Method::POST,
                &format!("/v3/{pid}/project_users/invite"),
                Some(&owner.token),
                Some(json!({"email": user.email, "role": "agent"})),
            )
            .await;
        Mate {
            name: name.to_string(),
            puid: teammate["_id"].as_str().unwrap().to_string(),
            user,
        }
    }

    /// Every teammate's `presence`, by teammate id.
    pub async fn presences(
        &self,
        pid: &str,
        token: &str,
    ) -> Result<HashMap<String, Value>, String> {
        match self.get(&format!("/v3/{pid}/project_users"), token).await? {
            (200, Value::Array(team)) => Ok(team
                .iter()
                .map(|t| {
                    (
                        t["_id"].as_str().unwrap().to_string(),
                        t["presence"].clone(),
                    )
                })
                .collect()),
            other => Err(format!("{other:?}")),
        }
    }

    /// Waits until `/readyz` answers `status`; returns how long it took.
    pub async fn wait_ready(&self, status: u16, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let got = self.readyz().await;
            if got == Some(status) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < timeout,
                "{}/readyz answered {got:?}, not {status}, for {timeout:?}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

pub struct Mate {
    pub name: String,
    pub user: TestUser,
    pub puid: String,
}

/// What a teammate's presence must read: status, connections, channels.
#[derive(Clone, Debug)]
pub struct Truth {
    pub status: &'static str,
    pub connections: u64,
    pub channels: Vec<&'static str>,
}

pub fn truth(status: &'static str, connections: u64, channels: &[&'static str]) -> Truth {
    Truth {
        status,
        connections,
        channels: channels.to_vec(),
    }
}

impl Truth {
    pub fn holds(&self, presence: &Value) -> bool {
        presence["status"] == json!(self.status)
            && presence["connections"] == json!(self.connections)
            && presence["channels"] == json!(self.channels)
    }
}

/// Waits until every node reads `expected` for every listed teammate; returns how long it took.
pub async fn converge(
    nodes: &[Api],
    pid: &str,
    token: &str,
    expected: &[(&str, Truth)],
    timeout: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let mut wrong = Vec::new();
        for node in nodes {
            match node.presences(pid, token).await {
                Ok(all) => {
                    for (puid, truth) in expected {
                        let presence = all.get(*puid).cloned().unwrap_or(Value::Null);
                        if !truth.holds(&presence) {
                            wrong.push(format!(
                                "{}: {puid} reads {presence}, truth {truth:?}",
                                node.base
                            ));
                        }
                    }
                }
                Err(e) => wrong.push(format!("{}: {e}", node.base)),
            }
        }
        if wrong.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= timeout {
            return Err(wrong.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---- agent tabs ---------------------------------------------------------------------------------

pub fn tab_query(token: &str, channel: &str) -> String {
    format!("{}&channel={channel}", token_query(token))
}

/// An agent socket whose frames are read by its own task all the time, so that the server's
/// pings are answered (tungstenite answers a ping while the stream is polled) and a close frame
/// is seen the moment it arrives. Dropping a tab drops its TCP connection without a close frame.
pub struct Tab {
    pub out: Option<mpsc::UnboundedSender<Message>>,
    pub frames: mpsc::UnboundedReceiver<Value>,
    /// `None` while open; `Some(code)` once closed (`Some(None)`: no close frame).
    pub closed: watch::Receiver<Option<Option<u16>>>,
    pub task: JoinHandle<()>,
}

impl Drop for Tab {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Tab {
    pub async fn open(port: u16, query: &str) -> Result<Tab, String> {
        let url = format!("ws://127.0.0.1:{port}/ws?{query}");
        let (mut ws, _) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(url),
        )
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| e.to_string())?;
        let (out, mut outgoing) = mpsc::unbounded_channel::<Message>();
        let (frames_tx, frames) = mpsc::unbounded_channel();
        let (closed_tx, closed) = watch::channel(None);
        let task = tokio::spawn(async move {
            let mut sending = true;
            loop {
                tokio::select! {
                    message = ws.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
                            let server_ping = value["action"] == json!("heartbeat")
                                && value["payload"]["message"]["text"] == json!("ping");
                            if !server_ping {
                                let _ = frames_tx.send(value);
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let code = frame.map(|f| u16::from(f.code));
                            closed_tx.send_if_modified(|c| {
                                let first = c.is_none();
                                if first {
                                    *c = Some(code);
                                }
                                first
                            });
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    },
                    command = outgoing.recv(), if sending => match command {
                        Some(message) => { let _ = ws.send(message).await; }
                        None => {
                            sending = false;
                            let _ = ws.close(None).await;
                        }
                    },
                }
            }
            closed_tx.send_if_modified(|c| {
                c.is_none() && {
                    *c = Some(None);
                    true
                }
            });
        });
        Ok(Tab {
            out: Some(out),
            frames,
            closed,
            task,
        })
    }

    pub fn is_open(&self) -> bool {
        self.closed.borrow().is_none()
    }

    /// Sends a heartbeat and waits for the server's pong: a full frame round trip.
    pub async fn round_trip(&mut self, timeout: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        let frame = json!({"action": "heartbeat", "payload": {"message": {"text": "ping"}}});
        let sent = self
            .out
            .as_ref()
            .map(|out| out.send(Message::text(frame.to_string())));
        if !matches!(sent, Some(Ok(()))) {
            return Err("the tab's writer is gone".into());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.frames.recv()).await {
                Err(_) => return Err(format!("no pong within {timeout:?}")),
                Ok(None) => return Err(format!("socket closed: {:?}", *self.closed.borrow())),
                Ok(Some(frame)) => {
                    if frame["action"] == json!("heartbeat")
                        && frame["payload"]["message"]["text"] == json!("pong")
                    {
                        return Ok(started.elapsed());
                    }
                }
            }
        }
    }

    /// Waits until the socket is closed; its close code (`None` without a close frame).
    pub async fn wait_closed(&mut self) -> Option<u16> {
        match self.closed.wait_for(|c| c.is_some()).await {
            Ok(code) => code.unwrap(),
            Err(_) => None,
        }
    }

    /// A clean close from the client: close frame, then the server's answer (2 s at most).
    pub async fn close(mut self) {
        self.out.take();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = self.closed.wait_for(|c| c.is_some()).await;
            while self.frames.recv().await.is_some() {}
        })
        .await;
    }
}

/// The nodes of a cluster and which of them may be used (a node is marked down before it is
/// stopped, so that clients move elsewhere).
#[derive(Clone)]
pub struct Nodes {
    pub bases: Vec<String>,
    pub ports: Vec<u16>,
    pub up: Arc<Vec<AtomicBool>>,
}

impl Nodes {
    pub fn new(ports: &[u16]) -> Nodes {
        Nodes {
            bases: ports
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
            ports: ports.to_vec(),
            up: Arc::new(ports.iter().map(|_| AtomicBool::new(true)).collect()),
        }
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.up[i].load(Ordering::SeqCst)
    }

    pub fn set_up(&self, i: usize, up: bool) {
        self.up[i].store(up, Ordering::SeqCst);
    }

    /// The first node after `after` (cyclically) that is up; `after` itself if none.
    pub fn next_up(&self, after: usize) -> usize {
        let n = self.ports.len();
        (1..=n)
            .map(|k| (after + k) % n)
            .find(|&i| self.is_up(i))
            .unwrap_or(after)
    }

    pub fn api(&self, i: usize) -> Api {
        Api::new(&self.bases[i])
    }
}

/// An SSE consumer reading a project's events for the whole test. When its stream ends (its
/// node shut down) it resumes on the next live node with `Last-Event-ID`.
pub struct Collector {
    pub events: Arc<Mutex<Vec<(Instant, SseEvent)>>>,
    /// Every (re)connection: node index and when.
    pub streams: Arc<Mutex<Vec<(usize, Instant)>>>,
    pub stop: Arc<AtomicBool>,
    pub task: JoinHandle<()>,
}

impl Collector {
    pub fn start(nodes: Nodes, first: usize, pid: &str, token: &str) -> Collector {
        let events: Arc<Mutex<Vec<(Instant, SseEvent)>>> = Arc::default();
        let streams: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let task =
            tokio::spawn({
                let (events, streams, stop) = (events.clone(), streams.clone(), stop.clone());
                let (pid, token) = (pid.to_string(), token.to_string());
                async move {
                    let mut node = first;
                    let mut last: Option<String> = None;
                    while !stop.load(Ordering::SeqCst) {
                        let base = &nodes.bases[node];
                        let mut stream =
                            match SseClient::open(base, &pid, Some(&token), "", last.as_deref())
                                .await
                            {
                                Ok(stream) => stream,
                                Err(_) => {
                                    node = nodes.next_up(node);
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                    continue;
                                }
                            };
                        streams.lock().unwrap().push((node, Instant::now()));
                        loop {
                            if stop.load(Ordering::SeqCst) {
                                return;
                            }
                            match stream.try_next(Duration::from_millis(200)).await {
                                Err(()) => continue,
                                Ok(None) => {
                                    node = nodes.next_up(node);
                                    break;
                                }
                                Ok(Some(event)) => {
                                    if event.id.is_some() {
                                        last = event.id.clone();
                                    }
                                    events.lock().unwrap().push((Instant::now(), event));
                                }
                            }
                        }
                    }
                }
            });
        Collector {
            events,
            streams,
            stop,
            task,
        }
    }

    /// Waits until the first stream is open (live events from then on are received).
    pub async fn connected(&self) {
        let open = super::eventually(Duration::from_secs(5), || async {
            !self.streams.lock().unwrap().is_empty()
        })
        .await;
        assert!(open, "the SSE consumer connected");
    }

    pub fn events(&self) -> Vec<SseEvent> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub fn envelopes(&self) -> Vec<Value> {
        self.events()
            .iter()
            .filter(|e| e.event.as_deref() != Some("resync"))
            .map(SseEvent::json)
            .collect()
    }

    /// Waits until some received envelope satisfies `pick`.
    pub async fn wait_for(&self, timeout: Duration, pick: impl Fn(&Value) -> bool) -> bool {
        super::eventually(timeout, || async { self.envelopes().iter().any(&pick) }).await
    }

    pub async fn stop(self) -> Vec<SseEvent> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
        let events = self.events.lock().unwrap();
        events.iter().map(|(_, e)| e.clone()).collect()
    }
}
