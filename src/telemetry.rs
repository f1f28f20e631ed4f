//! Logs (tracing) and metrics (Prometheus text via the `metrics` crate).

use crate::config::{Config, LogFormat};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tokio_util::sync::CancellationToken;

/// Installs the global tracing subscriber. Call once, from `main`; tests leave it out.
pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log_level);
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match config.log_format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The process-wide Prometheus recorder. Metrics are process-global by nature, so several apps
/// in one test process share it; that is harmless because tests never assert absolute values.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0,
                    ],
                )
                .expect("valid buckets")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed already; then ours just stays unused.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// How often histogram samples are folded into their buckets when nobody scrapes `/metrics`.
const METRICS_UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds recorded histogram samples into their buckets every few seconds. The recorder keeps
/// every sample until a scrape or an upkeep drains it: without this, a node nobody scrapes
/// grows with every request and every Redis call (about 100 bytes per socket opened, in the
/// idle-socket heap profile).
pub async fn run_metrics_upkeep(handle: PrometheusHandle, stop: CancellationToken) {
    let mut every = tokio::time::interval(METRICS_UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => handle.run_upkeep(),
            _ = stop.cancelled() => return,
        }
    }
}
