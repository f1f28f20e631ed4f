//! `loadtest`: load generator for presence-gateway.
//!
//! * `idle`: hold N agent sockets (teammates × tabs) opened in steps, report connect latency and
//!   the gateway's RSS at each step, with the slope in bytes per socket.
//! * `churn`: connect+disconnect loops at full speed, report operations per second.
//! * `latency`: a teammate's only tab opens/closes on node A while node B is watched through its
//!   REST API; report the time until B shows the transition.
//! * `fanout`: the same transitions, watched by N subscribers of the teammate's WebSocket topic
//!   on the last node; report the latency at every subscriber.
//! * `webhooks`: availability changes with K subscriptions to a receiver inside the loadtest;
//!   report deliveries per second.
//! * `snapshot`: a team of N, subscribed to on the last node; report the time to the whole
//!   snapshot (in parts, for a big team).
//!
//! Progress goes to stderr, one JSON report to stdout. Every run is bounded in time and sends
//! traffic only to the given nodes (loopback in the documented benchmarks).

mod client;
mod events;
mod idle;
mod modes;
mod setup;
mod snapshot;
mod stats;

use clap::{Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};

#[derive(Parser, Debug)]
#[command(name = "loadtest", about = "Load generator for presence-gateway")]
pub struct Cli {
    /// Gateway nodes, comma-separated host:port (HTTP and WebSocket on the same port).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.1:8080"
    )]
    nodes: Vec<SocketAddr>,
    /// The gateway's PRESENCE_JWT_SECRET: tokens are minted locally instead of signing in.
    #[arg(
        long,
        global = true,
        env = "PRESENCE_JWT_SECRET",
        default_value = "bench-secret"
    )]
    jwt_secret: String,
    /// Source addresses for the sockets (spreads the 28k-port limit), comma-separated.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9"
    )]
    sources: Vec<IpAddr>,
    /// Gateway process ids, to report their RSS and CPU (comma-separated, one per node).
    #[arg(long, global = true, value_delimiter = ',')]
    gateway_pid: Vec<u32>,
    /// The node that creates the accounts (default: the first of --nodes). Give another node on
    /// the same Redis so that the measured nodes serve nothing but the run.
    #[arg(long, global = true)]
    setup_node: Option<SocketAddr>,
    /// Concurrent sign-ups during setup (each costs an Argon2 hash on the gateway).
    #[arg(long, global = true, default_value_t = 4)]
    setup_concurrency: usize,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
pub enum Mode {
    /// Hold teammates × tabs idle agent sockets.
    Idle {
        #[arg(long, default_value_t = 1875)]
        teammates: usize,
        #[arg(long, default_value_t = 8)]
        tabs: usize,
        /// Sockets being opened at once.
        #[arg(long, default_value_t = 256)]
        open_concurrency: usize,
        /// Wait after each step's last socket is up before reading RSS, in ms.
        #[arg(long, default_value_t = 3000)]
        settle_ms: u64,
        /// Socket counts (over all nodes) at which RSS is read; the full shape is always last.
        #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
        steps: Vec<usize>,
        /// SIGKILL the measured gateways after the last reading, with the sockets open (for
        /// heap profiles: what the sockets hold is then reported as never freed).
        #[arg(long)]
        kill_gateways: bool,
    },
    /// Connect/disconnect loops: open, heartbeat round trip, close, wait for the close.
    Churn {
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Distinct teammates per loop, used in turn, so every connect and disconnect is an edge.
        #[arg(long, default_value_t = 2)]
        teammates_per_loop: usize,
    },
    /// Transition latency: tab on the first node, watched through the last node's REST API.
    Latency {
        #[arg(long, default_value_t = 300)]
        samples: usize,
        #[arg(long, default_value_t = 20)]
        warmup: usize,
    },
    /// Transition latency at N subscribers of the teammate's topic on the last node.
    Fanout {
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[arg(long, default_value_t = 100)]
        samples: usize,
        #[arg(long, default_value_t = 10)]
        warmup: usize,
    },
    /// Webhook deliveries per second to a receiver inside the loadtest (the gateway needs
    /// PRESENCE_WEBHOOK_ALLOW_PRIVATE=true).
    Webhooks {
        #[arg(long, default_value_t = 2000)]
        events: usize,
        #[arg(long, default_value_t = 10)]
        subscriptions: usize,
        #[arg(long, default_value_t = 16)]
        teammates: usize,
        /// Concurrent REST changes.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Time to the whole snapshot of a team of N at one subscriber on the last node.
    Snapshot {
        #[arg(long, default_value_t = 5000)]
        teammates: usize,
        #[arg(long, default_value_t = 20)]
        samples: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Features unify across the workspace: reqwest comes with the gateway's TLS setup.
    presence_gateway::net::install_tls_provider();
    let report = match &cli.mode {
        Mode::Idle {
            teammates,
            tabs,
            open_concurrency,
            settle_ms,
            steps,
            kill_gateways,
        } => {
            let shape = idle::Shape {
                teammates: *teammates,
                tabs: *tabs,
                open_concurrency: *open_concurrency,
                settle: std::time::Duration::from_millis(*settle_ms),
                steps: steps.clone(),
                kill_gateways: *kill_gateways,
            };
            idle::idle(&cli, shape).await?
        }
        Mode::Churn {
            secs,
            concurrency,
            teammates_per_loop,
        } => modes::churn(&cli, *secs, *concurrency, *teammates_per_loop).await?,
        Mode::Latency { samples, warmup } => modes::latency(&cli, *samples, *warmup).await?,
        Mode::Fanout {
            subscribers,
            samples,
            warmup,
        } => events::fanout(&cli, *subscribers, *samples, *warmup).await?,
        Mode::Webhooks {
            events,
            subscriptions,
            teammates,
            concurrency,
        } => events::webhooks(&cli, *events, *subscriptions, *teammates, *concurrency).await?,
        Mode::Snapshot { teammates, samples } => {
            snapshot::snapshot(&cli, *teammates, *samples).await?
        }
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
