//! `idle`: hold teammates × tabs idle agent sockets and report what each costs the gateway.
//!
//! Memory is measured the way DESIGN.md asks: on a process that has served nothing before the
//! sockets. The accounts are created through `--setup-node` (another gateway node on the same
//! Redis), because sign-ups hash passwords with Argon2 and the tens of MiB the allocator keeps
//! afterwards would be handed to the sockets, hiding their cost. The sockets are opened in steps
//! (`--steps`), and the RSS is read after each, so that the report gives the slope (bytes per
//! socket) and a fixed base cannot hide in a single before/after figure.

use crate::client;
use crate::setup::{self, World};
use crate::stats::{self, cpu_time, rss_kib, summary};
use crate::Cli;
use futures::StreamExt;
use indicatif::ProgressBar;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Shape {
    pub teammates: usize,
    pub tabs: usize,
    pub open_concurrency: usize,
    pub settle: Duration,
    /// Socket counts at which the RSS is read; the full shape is always the last.
    pub steps: Vec<usize>,
    /// SIGKILL the measured gateways after the last reading, sockets still open, so that a heap
    /// profiler (heaptrack) records what the sockets hold as never freed.
    pub kill_gateways: bool,
}

/// One RSS reading per measured gateway, after `sockets` sockets were open.
struct Reading {
    sockets: usize,
    rss_kib: Vec<Option<u64>>,
}

pub async fn idle(cli: &Cli, shape: Shape) -> anyhow::Result<Value> {
    let setup_node = cli.setup_node.unwrap_or(cli.nodes[0]);
    let clean = !cli.nodes.contains(&setup_node);
    if !clean {
        eprintln!(
            "warning: the accounts are created through a measured node; its RSS includes what \
             the sign-ups left behind (pass --setup-node, another node on the same Redis)"
        );
    }
    let world = setup::world(
        setup_node,
        &cli.jwt_secret,
        shape.teammates,
        cli.setup_concurrency,
    )
    .await?;
    let total = shape.teammates * shape.tabs;
    let mut steps: Vec<usize> = shape.steps.iter().copied().filter(|s| *s < total).collect();
    steps.sort_unstable();
    steps.dedup();
    steps.push(total);

    let mut readings = vec![Reading {
        sockets: 0,
        rss_kib: rss_all(cli),
    }];
    let errors = AtomicU64::new(0);
    let mut latencies = Vec::new();
    let mut alive = Vec::new();
    let mut open_secs = 0.0;
    let self_before = cpu_time(None);
    for &step in &steps {
        let from = readings.last().map_or(0, |r| r.sockets);
        let bar = ProgressBar::new((step - from) as u64)
            .with_message(format!("opening sockets to {step}"));
        bar.set_style(stats::bar_style());
        let started = Instant::now();
        let opened: Vec<(Duration, client::Socket)> = futures::stream::iter(from..step)
            .map(|i| open_one(cli, &world, i, &bar, &errors))
            .buffer_unordered(shape.open_concurrency.max(1))
            .filter_map(|x| async move { x })
            .collect()
            .await;
        open_secs += started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        for (latency, ws) in opened {
            latencies.push(latency);
            alive.push(client::keep_alive(ws));
        }
        tokio::time::sleep(shape.settle).await;
        readings.push(Reading {
            sockets: step,
            rss_kib: rss_all(cli),
        });
    }
    let held = alive.len();
    let loadtest_cpu_s = cpu_time(None)
        .zip(self_before)
        .map(|(after, before)| stats::round(after.saturating_sub(before).as_secs_f64()));
    let counted_ok = counted_correctly(cli, &world, shape.tabs).await?;
    let gateways = memory_report(cli, &readings);
    if shape.kill_gateways {
        for pid in &cli.gateway_pid {
            std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()?;
        }
        return Ok(json!({"mode": "idle", "killed": cli.gateway_pid, "gateways": gateways}));
    }
    for handle in alive {
        handle.abort();
    }
    let drain = crate::modes::drained(&world, cli, Duration::from_secs(30)).await?;
    Ok(json!({
        "mode": "idle",
        "nodes": cli.nodes,
        "setup_node": setup_node,
        "clean_process": clean,
        "teammates": shape.teammates,
        "tabs_per_teammate": shape.tabs,
        "connections_requested": total,
        "connections_held": held,
        "connect_errors": errors.load(Ordering::Relaxed),
        "open_rate_per_s": stats::round(held as f64 / open_secs),
        "connect_latency": summary(&mut latencies),
        "loadtest_cpu_s": loadtest_cpu_s,
        "counted_correctly": counted_ok,
        "gateways": gateways,
        "drain": drain,
    }))
}

/// Opens socket `i`: teammate `i mod teammates`, nodes and source addresses in turn.
async fn open_one(
    cli: &Cli,
    world: &World,
    i: usize,
    bar: &ProgressBar,
    errors: &AtomicU64,
) -> Option<(Duration, client::Socket)> {
    let teammate = &world.teammates[i % world.teammates.len()];
    let node = cli.nodes[i % cli.nodes.len()];
    let source = cli.sources[i % cli.sources.len()];
    let query = format!("token={}", teammate.query_token);
    let t0 = Instant::now();
    let result = client::open(node, source, &query).await;
    bar.inc(1);
    match result {
        Ok(ws) => Some((t0.elapsed(), ws)),
        Err(e) => {
            if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                eprintln!("connect failed: {e:#}");
            }
            None
        }
    }
}

fn rss_all(cli: &Cli) -> Vec<Option<u64>> {
    cli.gateway_pid.iter().map(|p| rss_kib(*p)).collect()
}

/// Spot-check: the gateway counts every tab of the first teammates.
async fn counted_correctly(cli: &Cli, world: &World, tabs: usize) -> anyhow::Result<bool> {
    let watcher: SocketAddr = *cli.nodes.last().expect("at least one node");
    let mut ok = true;
    for teammate in world.teammates.iter().take(5) {
        let presence = world.presence(watcher, &teammate.puid).await?;
        ok &= presence["connections"] == json!(tabs) && presence["status"] == json!("online");
    }
    Ok(ok)
}

/// Per gateway: every reading, the bytes per socket between consecutive readings, the
/// least-squares slope over the readings with sockets (the figure to quote), and the overall
/// figure from no sockets to all.
fn memory_report(cli: &Cli, readings: &[Reading]) -> Vec<Value> {
    let nodes = cli.nodes.len().max(1);
    cli.gateway_pid
        .iter()
        .enumerate()
        .map(|(g, pid)| {
            let points: Vec<(f64, f64)> = readings
                .iter()
                .filter_map(|r| Some(((r.sockets / nodes) as f64, (r.rss_kib[g]? * 1024) as f64)))
                .collect();
            let steps: Vec<Value> = readings
                .iter()
                .map(|r| json!({"sockets": r.sockets / nodes, "rss_kib": r.rss_kib[g]}))
                .collect();
            let increments: Vec<Value> = points
                .windows(2)
                .map(|w| stats::round((w[1].1 - w[0].1) / (w[1].0 - w[0].0)))
                .map(Value::from)
                .collect();
            json!({
                "pid": pid,
                "readings": steps,
                "bytes_per_socket_between_readings": increments,
                // The first step also carries one-off costs (the runtime's and the allocator's
                // warm-up): the slope is fitted from the first step on.
                "bytes_per_socket_slope": slope(&points[1.min(points.len())..]).map(stats::round),
                "bytes_per_socket_overall": overall(&points).map(stats::round),
            })
        })
        .collect()
}

/// (last − first) / sockets: the figure a single before/after reading would give.
fn overall(points: &[(f64, f64)]) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    (last.0 > first.0).then(|| (last.1 - first.1) / (last.0 - first.0))
}

/// Least-squares slope of y over x; `None` with fewer than two distinct x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::slope;

    #[test]
    fn slope_ignores_a_fixed_base() {
        let points = [(0.0, 20e6), (1000.0, 22e6), (5000.0, 30e6), (15000.0, 50e6)];
        assert_eq!(slope(&points), Some(2000.0));
        assert_eq!(slope(&[(5.0, 1.0)]), None);
    }

    #[test]
    fn overall_is_first_to_last() {
        let points = [(0.0, 20e6), (1000.0, 40e6), (15000.0, 50e6)];
        assert_eq!(super::overall(&points), Some(2000.0));
        assert_eq!(super::overall(&points[..1]), None);
    }
}
