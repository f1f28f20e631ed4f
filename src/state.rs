//! The state every HTTP handler and agent socket shares. It lives outside `http` and `ws` so
//! that both can depend on it (and `http` on `ws`) without a circle.

use crate::config::Config;
use crate::domain::{Presence, Teammate};
use crate::error::{Error, Result};
use crate::events::Events;
use crate::heartbeat::HeartbeatClock;
use crate::presence::Tracker;
use crate::service::{Accounts, Teammates, Teams};
use crate::store::Store;
use crate::views::{to_value, TeammateView};
use crate::webhooks::WebhookSubscriptions;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::Value;
use std::ops::Deref;
use std::sync::Arc;
use tokio_util::task::TaskTracker;

/// What every handler and agent socket can reach. One pointer: every socket holds a clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub accounts: Accounts,
    pub teammates: Teammates,
    /// Teammates of agents (Dixa).
    pub teams: Teams,
    pub tracker: Tracker,
    pub events: Events,
    pub webhooks: WebhookSubscriptions,
    pub metrics: PrometheusHandle,
    /// Beats every agent socket's heartbeat; tells sockets and SSE streams when access is
    /// revoked and when the node shuts down (sockets close with 1012).
    pub heartbeats: HeartbeatClock,
    /// The node's background tasks, and a token of every socket and stream: a stopping node
    /// awaits them all.
    pub tasks: TaskTracker,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }

    /// The live presence of each teammate, in order.
    pub async fn presence_of(&self, teammates: &[Teammate]) -> Result<Vec<Presence>> {
        Ok(self.store.read_presence(teammates).await?)
    }

    /// Renders teammates in the Tiledesk shape, with their users and live presence (one store
    /// round trip for each).
    pub async fn render_teammates(&self, teammates: &[Teammate]) -> Result<Vec<Value>> {
        let presences = self.presence_of(teammates).await?;
        self.render_teammates_with(teammates, &presences).await
    }

    /// Renders teammates whose presence has been read already.
    pub async fn render_teammates_with(
        &self,
        teammates: &[Teammate],
        presences: &[Presence],
    ) -> Result<Vec<Value>> {
        let user_ids: Vec<_> = teammates.iter().map(|t| t.user_id).collect();
        let users = self.store.get_users(&user_ids).await?;
        teammates
            .iter()
            .zip(users.iter())
            .zip(presences.iter())
            .map(|((t, u), p)| to_value(&TeammateView::new(t, u.as_ref(), p)))
            .collect()
    }

    /// Renders one teammate.
    pub async fn render_teammate(&self, teammate: &Teammate) -> Result<Value> {
        let mut list = self
            .render_teammates(std::slice::from_ref(teammate))
            .await?;
        list.pop()
            .ok_or_else(|| Error::Internal("rendering lost a teammate".into()))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
