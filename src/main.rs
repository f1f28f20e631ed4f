//! The `presence-gateway` binary: read the configuration, build the app, run until a signal.

#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]

use clap::{Arg, ArgAction, Command};
use presence_gateway::config::{self, Layers, SETTINGS};
use presence_gateway::{telemetry, App, Config};
use std::process::ExitCode;

/// mimalloc returns freed large blocks (Argon2's 19 MiB per hash) and idle-socket buffers to the
/// operating system; glibc's per-thread arenas kept them, growing the process by hundreds of MiB.
/// The `system-allocator` feature leaves the C library's malloc in place, for heaptrack.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn cli() -> Command {
    let mut command = Command::new("presence-gateway")
        .about("Real-time presence and availability gateway")
        .version(env!("CARGO_PKG_VERSION"))
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .env("PRESENCE_CONFIG")
                .help("TOML file layered over config/default.toml"),
        );
    for (key, help) in SETTINGS {
        command = command.arg(
            Arg::new(*key)
                .long(config::flag_name(key))
                .value_name("VALUE")
                .action(ArgAction::Set)
                .help(format!("{help} [env {}]", config::env_name(key))),
        );
    }
    command
}

fn layers() -> Result<Layers, String> {
    let matches = cli().get_matches();
    let file = match matches.get_one::<String>("config") {
        None => None,
        Some(path) => Some((
            path.clone(),
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read config file {path}: {e}"))?,
        )),
    };
    let env = std::env::vars()
        .filter(|(k, _)| k.starts_with("PRESENCE_"))
        .collect();
    let flags = SETTINGS
        .iter()
        .filter_map(|(key, _)| {
            matches
                .get_one::<String>(key)
                .map(|v| (key.to_string(), v.clone()))
        })
        .collect();
    Ok(Layers { file, env, flags })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match layers().and_then(|l| Config::load(&l).map_err(|e| e.to_string())) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("presence-gateway: {message}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&config);
    let app = match App::build(config).await {
        Ok(app) => app,
        // A value that only turns out bad at start (an unreadable JWKS) exits like any other.
        Err(e) if e.is::<config::ConfigError>() => {
            eprintln!("presence-gateway: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            tracing::error!("cannot start: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
