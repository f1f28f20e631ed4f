use crate::config::Config;
use crate::domain::{Presence, Teammate};
use crate::error::Result;
use crate::service::{Accounts, Teams};
use crate::store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// What every handler can reach. Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub accounts: Accounts,
    pub teams: Teams,
    pub metrics: PrometheusHandle,
}

impl AppState {
    /// The live presence of each teammate, in order.
    ///
    /// Until the presence tracker exists (issue 3), nobody is ever connected, so every teammate
    /// reads `offline` with 0 connections since it was created, as the contract specifies.
    pub async fn presence_of(&self, teammates: &[Teammate]) -> Result<Vec<Presence>> {
        Ok(teammates
            .iter()
            .map(|t| Presence::never_connected(t.created_at))
            .collect())
    }
}
