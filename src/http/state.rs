use crate::config::Config;
use crate::domain::{Presence, Teammate};
use crate::error::Result;
use crate::events::Events;
use crate::presence::Tracker;
use crate::service::{Accounts, AgentTeams, Teams};
use crate::store::Store;
use crate::webhooks::Subscriptions;
use metrics_exporter_prometheus::PrometheusHandle;
use std::ops::Deref;
use std::sync::Arc;
use tokio::sync::watch;

/// What every handler and agent socket can reach. One pointer: every socket holds a clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub accounts: Accounts,
    pub teams: Teams,
    /// Teams of agents (Dixa).
    pub agent_teams: AgentTeams,
    pub tracker: Tracker,
    pub events: Events,
    pub subscriptions: Subscriptions,
    pub metrics: PrometheusHandle,
    /// Turns true when the node shuts down: agent sockets close with 1012.
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }

    /// The live presence of each teammate, in order.
    pub async fn presence_of(&self, teammates: &[Teammate]) -> Result<Vec<Presence>> {
        Ok(self.store.read_presence(teammates).await?)
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
