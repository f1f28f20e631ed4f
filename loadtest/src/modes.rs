//! The churn and latency measurements. Each returns the JSON report.

use crate::client;
use crate::setup::{self, World};
use crate::stats::{self, cpu_percent, cpu_split, summary};
use crate::Cli;
use anyhow::Context;
use indicatif::ProgressBar;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) type CpuReading = Option<(Duration, Duration)>;

pub(crate) fn gateway_cpu(cli: &Cli) -> Vec<CpuReading> {
    cli.gateway_pid
        .iter()
        .map(|pid| cpu_split(Some(*pid)))
        .collect()
}

/// CPU used over `wall` as percentages of one core: in all, in user space and in the kernel.
fn split_report(before: CpuReading, after: CpuReading, wall: Duration) -> Value {
    let part = |pick: fn(&(Duration, Duration)) -> Duration| {
        cpu_percent(before.as_ref().map(pick), after.as_ref().map(pick), wall)
    };
    json!({
        "cpu_percent": part(|(u, s)| *u + *s),
        "user_percent": part(|(u, _)| *u),
        "system_percent": part(|(_, s)| *s),
    })
}

pub(crate) fn cpu_report(
    cli: &Cli,
    before: &[CpuReading],
    self_before: CpuReading,
    wall: Duration,
) -> Value {
    let gateways: Vec<Value> = cli
        .gateway_pid
        .iter()
        .zip(before)
        .map(|(pid, b)| {
            let mut report = split_report(*b, cpu_split(Some(*pid)), wall);
            report["pid"] = json!(pid);
            report
        })
        .collect();
    let loadtest = split_report(self_before, cpu_split(None), wall);
    json!({
        "loadtest_cpu_percent": loadtest["cpu_percent"],
        "loadtest": loadtest,
        "gateways": gateways,
    })
}

/// Waits until no teammate reads online on any node (after the grace period).
pub(crate) async fn drained(world: &World, cli: &Cli, timeout: Duration) -> anyhow::Result<Value> {
    let started = Instant::now();
    loop {
        let mut online = 0;
        for node in &cli.nodes {
            online += world.online_count(*node).await?;
        }
        if online == 0 || started.elapsed() > timeout {
            return Ok(
                json!({"still_online": online, "after_ms": started.elapsed().as_millis() as u64}),
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn churn(
    cli: &Cli,
    secs: u64,
    concurrency: usize,
    per_loop: usize,
) -> anyhow::Result<Value> {
    let world = setup::world(
        cli.nodes[0],
        &cli.jwt_secret,
        concurrency * per_loop.max(1),
        cli.setup_concurrency,
    )
    .await?;
    let world = Arc::new(world);
    let ops = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let gateways_before = gateway_cpu(cli);
    let self_before = cpu_split(None);
    let started = Instant::now();
    let bar = ProgressBar::new(secs).with_message("churning (seconds)");
    bar.set_style(stats::bar_style());
    let ticker = {
        let bar = bar.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                bar.inc(1);
            }
        })
    };
    let loops: Vec<_> = (0..concurrency)
        .map(|i| {
            let (world, ops, errors) = (world.clone(), ops.clone(), errors.clone());
            let nodes = cli.nodes.clone();
            let sources = cli.sources.clone();
            tokio::spawn(async move {
                let mut cycle = 0usize;
                while Instant::now() < deadline {
                    let teammate = &world.teammates[i * per_loop.max(1) + cycle % per_loop.max(1)];
                    let node = nodes[(i + cycle) % nodes.len()];
                    let source = sources[(i + cycle) % sources.len()];
                    let query = format!("token={}", teammate.query_token);
                    let result = async {
                        let mut ws = client::open(node, source, &query).await?;
                        client::round_trip(&mut ws).await?;
                        client::close(ws).await
                    }
                    .await;
                    match result {
                        Ok(()) => ops.fetch_add(2, Ordering::Relaxed),
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                                eprintln!("churn cycle failed: {e:#}");
                            }
                            0
                        }
                    };
                    cycle += 1;
                }
            })
        })
        .collect();
    for l in loops {
        l.await?;
    }
    let wall = started.elapsed();
    ticker.abort();
    bar.finish_and_clear();
    let cpu = cpu_report(cli, &gateways_before, self_before, wall);
    let done = ops.load(Ordering::Relaxed);
    let drain = drained(&world, cli, Duration::from_secs(30)).await?;
    Ok(json!({
        "mode": "churn",
        "nodes": cli.nodes,
        "seconds": stats::round(wall.as_secs_f64()),
        "concurrency": concurrency,
        "connects_plus_disconnects": done,
        "connects_plus_disconnects_per_s": stats::round(done as f64 / wall.as_secs_f64()),
        "errors": errors.load(Ordering::Relaxed),
        "cpu": cpu,
        "drain": drain,
    }))
}

/// Polls `node` until the teammate's status is `status`; returns when it was first seen.
async fn observe(
    world: &World,
    node: std::net::SocketAddr,
    puid: &str,
    status: &str,
    timeout: Duration,
) -> anyhow::Result<Instant> {
    let started = Instant::now();
    loop {
        let presence = world.presence(node, puid).await?;
        if presence["status"] == json!(status) {
            return Ok(Instant::now());
        }
        if started.elapsed() > timeout {
            anyhow::bail!(
                "{puid} did not turn {status} within {timeout:?} (is the grace period 0?)"
            );
        }
    }
}

pub async fn latency(cli: &Cli, samples: usize, warmup: usize) -> anyhow::Result<Value> {
    let world = setup::world(cli.nodes[0], &cli.jwt_secret, 1, 1).await?;
    let teammate = &world.teammates[0];
    let (actor, watcher) = (cli.nodes[0], *cli.nodes.last().unwrap());
    let query = format!("token={}", teammate.query_token);
    let timeout = Duration::from_secs(5);
    let (mut online, mut offline) = (Vec::new(), Vec::new());
    let bar = ProgressBar::new((samples + warmup) as u64).with_message("transitions");
    bar.set_style(stats::bar_style());
    let self_before = cpu_split(None);
    let gateways_before = gateway_cpu(cli);
    let started = Instant::now();
    for i in 0..(samples + warmup) / 2 {
        let t0 = Instant::now();
        let ws = client::open(actor, cli.sources[i % cli.sources.len()], &query).await?;
        let seen = observe(&world, watcher, &teammate.puid, "online", timeout).await?;
        let up = seen - t0;
        let t1 = Instant::now();
        let closing = tokio::spawn(client::close(ws));
        let seen = observe(&world, watcher, &teammate.puid, "offline", timeout)
            .await
            .context("offline")?;
        let down = seen - t1;
        let _ = closing.await;
        if i >= warmup / 2 {
            online.push(up);
            offline.push(down);
        }
        bar.inc(2);
    }
    bar.finish_and_clear();
    let wall = started.elapsed();
    let mut all: Vec<Duration> = online.iter().chain(&offline).copied().collect();
    Ok(json!({
        "mode": "latency",
        "actor_node": actor,
        "watcher_node": watcher,
        "observed_through": "REST polling of the watcher node (GET /v3/{pid}/project_users/{puid}, back to back)",
        "online": summary(&mut online),
        "offline": summary(&mut offline),
        "all": summary(&mut all),
        "cpu": cpu_report(cli, &gateways_before, self_before, wall),
    }))
}
