//! `App::build(config)` is the one place where the gateway is wired together; `main` and the
//! tests both go through it.

use crate::auth::{jwt::JwtKeys, random_bytes};
use crate::config::Config;
use crate::http::{self, AppState};
use crate::service::{Accounts, Teams};
use crate::store::{MemoryStore, RedisStore, Store};
use axum::extract::Request;
use axum::ServiceExt;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

pub struct App {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
}

impl App {
    /// Binds the listener (port 0 picks a free port) and connects the store.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let store: Arc<dyn Store> = match &config.redis {
            None => {
                tracing::info!("using the in-memory engine: one node, nothing persisted");
                Arc::new(MemoryStore::new())
            }
            Some(redis) => {
                let store = RedisStore::connect(&redis.url.0, &redis.prefix, redis.timeout)?;
                match store.ping().await {
                    Ok(()) => tracing::info!(prefix = %redis.prefix, "connected to Redis"),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "Redis is unreachable; serving 503 until it is back"
                    ),
                }
                Arc::new(store)
            }
        };
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
        let accounts = Accounts::new(store.clone(), JwtKeys::new(&secret), config.jwt_ttl);
        let teams = Teams::new(store.clone());
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {} (setting `listen`): {e}", config.listen)
        })?;
        let state = AppState {
            config: Arc::new(config),
            store,
            accounts,
            teams,
            metrics: crate::telemetry::metrics_handle(),
        };
        let router = http::router(state.clone());
        Ok(App {
            listener,
            router,
            state,
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

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(
            address = %self.listener.local_addr()?,
            node = %self.state.config.node_id,
            "presence-gateway listening"
        );
        // Trailing slashes are trimmed before routing: Tiledesk clients call both
        // `PUT /v3/{pid}/project_users/` and `/v3/{pid}/project_users`.
        let service = NormalizePathLayer::trim_trailing_slash().layer(self.router);
        axum::serve(
            self.listener,
            ServiceExt::<Request>::into_make_service(service),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        tracing::info!("presence-gateway stopped");
        Ok(())
    }
}
