//! `App::build(config)` is the one place where the gateway is wired together; `main` and the
//! tests both go through it.

use crate::auth::{jwks::Jwks, jwt::JwtKeys, random_bytes};
use crate::config::{Config, ConfigError};
use crate::events::Events;
use crate::heartbeat::HeartbeatClock;
use crate::http;
use crate::presence::{self, ConnectionLimits, MaintenanceTimings, Tracker};
use crate::service::{Accounts, Teammates, Teams};
use crate::state::{AppState, Shared};
use crate::store::{MemoryStore, RedisStore, Store, StoreError};
use crate::webhooks::{Dispatcher, WebhookSubscriptions};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

/// How long shutdown waits for agent sockets and streams to close and hand over their
/// connections (and for the background tasks to return).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub struct App {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    /// The node's one stop signal: every task and session ends when it is cancelled.
    stop: CancellationToken,
    dispatcher: Dispatcher,
}

impl App {
    /// Reads the JWKS, binds the listener (port 0 picks a free port), connects the store and
    /// takes this node's lease. A JWKS that cannot be used is a [`crate::config::ConfigError`].
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let jwt = jwt_keys(&config).await?;
        let store: Arc<dyn Store> = match &config.redis {
            None => {
                tracing::info!("using the in-memory engine: one node, nothing persisted");
                Arc::new(MemoryStore::with_retention(config.event_retention))
            }
            Some(redis) => {
                let store = RedisStore::connect(&redis.url.0, &redis.settings)?
                    .with_retention(config.event_retention);
                match store.prepare().await {
                    Ok(()) => tracing::info!(
                        prefix = %redis.settings.prefix,
                        partitions = redis.settings.partitions.count(),
                        "connected to Redis"
                    ),
                    // Data this node must not touch: stop before anything is written.
                    Err(StoreError::Refused(why)) => {
                        return Err(ConfigError(format!("setting `redis_url`: {why}")).into())
                    }
                    Err(e) => tracing::warn!(
                        error = %e,
                        "Redis is unreachable; serving 503 until it is back"
                    ),
                }
                Arc::new(store)
            }
        };
        let accounts = Accounts::new(
            store.clone(),
            jwt,
            config.jwt_ttl,
            config.signup_claims_invitations,
        );
        let teammates = Teammates::new(store.clone());
        let teams = Teams::new(teammates.clone());
        let tracker = Tracker::new(
            config.node_id.clone(),
            store.clone(),
            config.offline_grace,
            ConnectionLimits {
                per_user: config.max_connections_per_user,
                per_node: config.max_connections,
            },
        );
        // Take the lease before the first socket can connect, so its count is live at once.
        presence::renew_lease(&tracker, config.node_ttl).await;
        let listener = crate::server::bind(config.listen).map_err(|e| {
            anyhow::anyhow!("cannot listen on {} (setting `listen`): {e}", config.listen)
        })?;
        let heartbeats = HeartbeatClock::new(config.heartbeat);
        let events = Events::new(
            store.clone(),
            store.clone(),
            store.clone(),
            heartbeats.clone(),
        );
        // Fix where this node starts tailing the log now, before any request can change
        // anything, so that no event between start-up and the tailer's first read is missed.
        if let Err(e) = events.prepare_tail().await {
            tracing::warn!(error = %e, "cannot read the event log yet; will tail from its end");
        }
        let dispatcher = Dispatcher::new(
            store.clone(),
            store.clone(),
            events.clone(),
            config.webhook.clone(),
            config.node_id.clone(),
            config.node_ttl,
        )?;
        let webhooks = WebhookSubscriptions::new(store.clone(), config.webhook.allow_private);
        let stop = CancellationToken::new();
        let state = AppState::new(Shared {
            config,
            store,
            accounts,
            teammates,
            teams,
            tracker,
            events,
            webhooks,
            metrics: crate::telemetry::metrics_handle(),
            heartbeats,
            tasks: TaskTracker::new(),
        });
        let router = http::router(state.clone());
        Ok(App {
            listener,
            router,
            state,
            stop,
            dispatcher,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves. Then: stop accepting, close agent sockets with 1012
    /// (their teammates enter the grace period, so a reconnect to another node within it causes
    /// no offline), flush pending presence writes, and give up this node's lease.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let App {
            listener,
            router,
            state,
            stop,
            dispatcher,
        } = self;
        tracing::info!(
            address = %listener.local_addr()?,
            node = %state.config.node_id,
            "presence-gateway listening"
        );
        // Every background task, and every socket and stream (through its listener session),
        // is in one tracker: stopping cancels `stop`, then awaits the tracker.
        let tasks = &state.tasks;
        tasks.spawn(presence::run_maintenance(
            state.tracker.clone(),
            MaintenanceTimings::new(state.config.node_ttl),
            stop.clone(),
        ));
        tasks.spawn(state.events.clone().run_tailers(stop.clone()));
        tasks.spawn(state.heartbeats.clone().run(stop.clone()));
        tasks.spawn(
            state
                .events
                .revocations()
                .clone()
                .run_key_checks(state.store.clone(), stop.clone()),
        );
        tasks.spawn(crate::telemetry::run_metrics_upkeep(
            state.metrics.clone(),
            stop.clone(),
        ));
        tasks.spawn(dispatcher.run(stop.clone()));
        // Trailing slashes are trimmed before routing: Tiledesk clients call both
        // `PUT /v3/{pid}/project_users/` and `/v3/{pid}/project_users`.
        let service = NormalizePathLayer::trim_trailing_slash().layer(router);
        let stopping = stop.clone();
        crate::server::serve(
            listener,
            service,
            state.config.http_header_timeout,
            async move {
                tokio::select! {
                    _ = shutdown => stopping.cancel(),
                    _ = stopping.cancelled() => {}
                }
            },
        )
        .await;
        stop.cancel();
        tasks.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = tasks.len(),
                "stopping without waiting longer for sockets, streams and tasks"
            );
        }
        let tracker = &state.tracker;
        tracker.flush().await;
        // Leaves pending grace periods in the store for the other nodes to settle.
        if let Err(e) = state.store.reap_node(tracker.node_id(), false).await {
            tracing::warn!(error = %e, "cannot release this node's lease");
        }
        tracing::info!("presence-gateway stopped");
        Ok(())
    }
}

/// The shared HS256 secret (random, with a warning, when none is configured) and the JWKS.
async fn jwt_keys(config: &Config) -> anyhow::Result<JwtKeys> {
    let secret = match &config.jwt_secret {
        Some(secret) => secret.0.as_bytes().to_vec(),
        None => {
            tracing::warn!(
                "PRESENCE_JWT_SECRET is not set: using a random secret, so tokens stop \
                 working when this process restarts and other nodes reject them"
            );
            random_bytes::<32>().to_vec()
        }
    };
    let keys = JwtKeys::new(&secret);
    let Some(setting) = &config.jwt_jwks else {
        return Ok(keys);
    };
    let jwks = Jwks::load(setting.source.clone())
        .await
        .map_err(|problem| setting.error(&problem))?;
    tracing::info!(source = %setting.source, keys = jwks.len(), "JWKS loaded");
    Ok(keys.with_jwks(jwks))
}
