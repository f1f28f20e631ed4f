//! A real webhook receiver for the tests: an HTTP server on 127.0.0.1:0 that records every
//! request, answers a scripted status per path, and verifies every Standard Webhooks signature
//! itself (its own HMAC, not the gateway's).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How long `wait_for` waits.
pub const WAIT: Duration = Duration::from_secs(5);

// ---- the receiver -------------------------------------------------------------------------------

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Hit {
    pub path: String,
    /// Lower-case header names.
    pub headers: HashMap<String, String>,
    pub body: String,
    pub json: Value,
    /// The receiver's own verification of `webhook-signature`.
    pub signature: Result<(), String>,
    pub at: Instant,
}

impl Hit {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{}: no `{name}` header in {:?}", self.path, self.headers))
    }

    #[track_caller]
    pub fn assert_signed(&self) {
        if let Err(e) = &self.signature {
            panic!(
                "{}: invalid signature: {e}; headers {:?}",
                self.path, self.headers
            );
        }
    }

    pub fn event_type(&self) -> &str {
        self.json["type"].as_str().unwrap_or_default()
    }
}

/// How the receiver answers on one path.
#[derive(Default)]
pub struct Route {
    /// Statuses for the next calls, in order; then `default` (200 if unset).
    pub script: VecDeque<u16>,
    pub default: Option<u16>,
    /// How long to wait before answering.
    pub delay: Duration,
    /// The subscription's secret, to verify signatures with.
    pub secret: Option<String>,
}

#[derive(Default)]
struct Shared {
    hits: Mutex<Vec<Hit>>,
    routes: Mutex<HashMap<String, Route>>,
}

/// A real HTTP server on 127.0.0.1:0.
pub struct Receiver {
    pub base: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let shared = Arc::new(Shared::default());
        let router = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Receiver {
            base,
            shared,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn route<R>(&self, path: &str, change: impl FnOnce(&mut Route) -> R) -> R {
        change(
            self.shared
                .routes
                .lock()
                .unwrap()
                .entry(path.to_string())
                .or_default(),
        )
    }

    pub fn set_secret(&self, path: &str, secret: &str) {
        self.route(path, |r| r.secret = Some(secret.to_string()));
    }

    /// Answers `script` to the next calls on `path`, then `default`.
    pub fn answer(&self, path: &str, script: &[u16], default: u16) {
        self.route(path, |r| {
            r.script = script.iter().copied().collect();
            r.default = Some(default);
        });
    }

    pub fn delay(&self, path: &str, delay: Duration) {
        self.route(path, |r| r.delay = delay);
    }

    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.shared
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    pub fn all_hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// Waits until `path` got requests for which `pick` holds `n` times; returns those.
    pub async fn wait_for(&self, path: &str, n: usize, pick: impl Fn(&Hit) -> bool) -> Vec<Hit> {
        let ok = super::eventually(WAIT, || async {
            self.hits(path).iter().filter(|h| pick(h)).count() >= n
        })
        .await;
        let hits: Vec<Hit> = self.hits(path).into_iter().filter(|h| pick(h)).collect();
        assert!(
            ok,
            "{path}: wanted {n} matching requests within {WAIT:?}, got {}: {:#?}",
            hits.len(),
            self.hits(path)
                .iter()
                .map(|h| h.json.clone())
                .collect::<Vec<_>>()
        );
        hits
    }

    pub async fn wait_hits(&self, path: &str, n: usize) -> Vec<Hit> {
        self.wait_for(path, n, |_| true).await
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let path = uri.path().to_string();
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or("<not ascii>").to_string(),
            )
        })
        .collect();
    let (status, delay, secret) = {
        let mut routes = shared.routes.lock().unwrap();
        let route = routes.entry(path.clone()).or_default();
        let status = route.script.pop_front().or(route.default).unwrap_or(200);
        (status, route.delay, route.secret.clone())
    };
    let signature = match &secret {
        Some(secret) => verify_request(secret, &headers, &body),
        None => Err(format!("no secret registered for {path}")),
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    shared.hits.lock().unwrap().push(Hit {
        path,
        headers,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        body: text,
        signature,
        at,
    });
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    StatusCode::from_u16(status).unwrap()
}

/// Standard Webhooks verification of one request: the three headers, a timestamp within five
/// minutes of now, and a `v1` signature that matches.
fn verify_request(
    secret: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Result<(), String> {
    let get = |name: &str| {
        headers
            .get(name)
            .ok_or_else(|| format!("missing header `{name}`"))
    };
    let id = get("webhook-id")?;
    let timestamp = get("webhook-timestamp")?;
    let signatures = get("webhook-signature")?;
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| format!("webhook-timestamp `{timestamp}` is not unix seconds"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - seconds).abs() > 300 {
        return Err(format!("webhook-timestamp {seconds} is not now ({now})"));
    }
    verify_signature(secret, id, timestamp, body, signatures)
}

/// HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the secret's base64-decoded bytes (after
/// `whsec_`), against each space-separated `v1,<base64>` of the header.
pub fn verify_signature(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
) -> Result<(), String> {
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or_else(|| format!("secret `{secret}` lacks the whsec_ prefix"))?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|e| format!("secret is not base64: {e}"))?;
    for candidate in header.split(' ') {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(signature) = STANDARD.decode(encoded) else {
            continue;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&signature).is_ok() {
            return Ok(());
        }
    }
    Err(format!("no v1 signature in `{header}` matches"))
}
