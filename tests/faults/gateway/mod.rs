//! Fault injection with real processes: private `redis-server` instances that are killed and
//! restarted, gateway nodes that are SIGKILLed or restarted one by one (SIGTERM), and webhook
//! targets that hang, answer slowly, reset the connection or answer garbage.
//!
//! Settings for speed: grace 300 ms, node TTL 1,500 ms, heartbeat 500 ms (so every socket here
//! keeps reading in its own task and answers the server's pings), webhook retries
//! `0,200,400,800,1600,3200` with a 1 s timeout. The tests take a file-wide lock and run one at a
//! time: each starts several processes, and running them side by side on a small machine would
//! make the timing assertions measure the machine instead of the gateway.

mod node_kill;
mod redis_outage;
mod rolling_restart;
mod webhook_targets;

use crate::common;

use common::chaos::*;

use common::receiver::Receiver;
use common::{
    free_port, spawn_app_with, unique_prefix, Engine, GatewayProcess, RedisServer, SseEvent,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

const GRACE_MS: u64 = 300;
const NODE_TTL_MS: u64 = 1500;
const HEARTBEAT_MS: u64 = 500;
const RETRY_MS: &str = "0,200,400,800,1600,3200";
const RETRIES: [u64; 6] = [0, 200, 400, 800, 1600, 3200];
const TIMEOUT_MS: u64 = 1000;

/// Settings of in-process nodes.
fn settings() -> Vec<(&'static str, String)> {
    vec![
        ("offline_grace_ms", GRACE_MS.to_string()),
        ("node_ttl_ms", NODE_TTL_MS.to_string()),
        ("heartbeat_ms", HEARTBEAT_MS.to_string()),
        ("webhook_retry_ms", RETRY_MS.to_string()),
        ("webhook_timeout_ms", TIMEOUT_MS.to_string()),
        ("webhook_allow_private", "true".to_string()),
    ]
}

/// The same settings as environment variables, for gateway processes.
fn process_env() -> Vec<(String, String)> {
    settings()
        .into_iter()
        .map(|(k, v)| (format!("PRESENCE_{}", k.to_uppercase()), v))
        .collect()
}

async fn in_process_node(url: &str, prefix: &str) -> common::TestApp {
    let engine = Engine::RedisAt {
        url: url.to_string(),
        prefix: prefix.to_string(),
    };
    let owned = settings();
    let overrides: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_app_with(engine, &overrides).await
}

/// Starts the gateway binary on `port` with `extra` variables, logging to `log`.
fn process_node(
    url: &str,
    prefix: &str,
    port: u16,
    extra: &[(&str, &str)],
    log: &std::path::Path,
) -> GatewayProcess {
    let mut env = process_env();
    env.push(("PRESENCE_LISTEN".into(), format!("127.0.0.1:{port}")));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut node = GatewayProcess::start_logged(url, prefix, &env, log);
    node.port = port;
    node
}

fn log_file(test: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "faults-{test}-{}.log",
        uuid::Uuid::new_v4().simple()
    ))
}

/// One test at a time (see the module comment). A tokio mutex works across the tests' runtimes
/// and is released when a failing test unwinds.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Takes the file-wide lock, and installs the TLS provider that HTTP clients need (an
/// in-process node would install it, but some tests only start gateway processes).
async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    presence_gateway::net::install_tls_provider();
    SERIAL.lock().await
}

fn redis_connection(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(2))
        .expect("the private Redis answers")
}

/// Webhook ids the receiver got on `path`.
fn received_ids(receiver: &Receiver, path: &str) -> HashSet<String> {
    receiver
        .hits(path)
        .iter()
        .filter_map(|h| h.headers.get("webhook-id").cloned())
        .collect()
}

async fn history(api: &Api, pid: &str, token: &str) -> Vec<Value> {
    match api
        .get(
            &format!("/v3/{pid}/subscriptions/history?limit=1000"),
            token,
        )
        .await
    {
        Ok((200, Value::Array(list))) => list,
        other => panic!("history: {other:?}"),
    }
}

/// Event ids of `subscription`'s deliveries that ended as `delivered`.
async fn delivered_ids(api: &Api, pid: &str, token: &str, subscription: &str) -> HashSet<String> {
    history(api, pid, token)
        .await
        .iter()
        .filter(|d| {
            d["id_subscription"] == json!(subscription) && d["status"] == json!("delivered")
        })
        .map(|d| d["event_id"].as_str().unwrap().to_string())
        .collect()
}

async fn subscribe(
    api: &Api,
    pid: &str,
    token: &str,
    event: &str,
    target: &str,
) -> (String, String) {
    let created = api
        .ok(
            Method::POST,
            &format!("/v3/{pid}/subscriptions"),
            Some(token),
            Some(json!({"event": event, "target": target})),
        )
        .await;
    (
        created["_id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

/// A small deterministic PRNG (xorshift), seeded per run and printed, so a failure can be
/// replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn seed() -> u64 {
    std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// Teammate id → name, for messages.
fn names_of<'a>(mates: &[&'a Mate]) -> HashMap<&'a str, &'a str> {
    mates
        .iter()
        .map(|m| (m.puid.as_str(), m.name.as_str()))
        .collect()
}

fn name_of<'a>(names: &HashMap<&str, &'a str>, event: &Value) -> &'a str {
    let puid = event["project_user_id"].as_str().unwrap_or_default();
    names.get(puid).copied().unwrap_or("owner")
}

/// The presence events, one line each: time, who, type, seq and the presence before.
fn presence_timeline(envelopes: &[Value], names: &HashMap<&str, &str>) -> String {
    envelopes
        .iter()
        .filter(|e| {
            e["type"]
                .as_str()
                .unwrap_or_default()
                .starts_with("presence.")
        })
        .map(|e| {
            format!(
                "  {} {} {} seq {} (was {})",
                e["timestamp"].as_str().unwrap_or_default(),
                name_of(names, e),
                e["type"].as_str().unwrap_or_default(),
                e["seq"],
                e["previous"]["presence"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
