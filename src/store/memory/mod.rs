//! The in-memory engine: one node, nothing persisted.
//!
//! All state sits behind one mutex. Every method takes the lock once, does its checks and writes,
//! and releases it before returning, so each call is atomic exactly as the Redis engine's scripts
//! are. The lock is never held across an `.await` (enforced by `clippy.toml`).

mod accounts;
mod events;
mod presence;
mod projects;
mod webhooks;

use super::{Store, StoreResult};
use crate::domain::{
    ApiKey, EventType, Id, LoggedEvent, PendingInvitation, Presence, PresenceKey, Project,
    Subscription, Team, Teammate, Transition, User,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Events kept when no retention is given (the default of `event_retention`).
const DEFAULT_RETENTION: usize = 100_000;

pub struct MemoryStore {
    state: Mutex<State>,
    /// Woken after every append, for tailers waiting in `read_events`/`consume_events`.
    appended: Notify,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_retention(DEFAULT_RETENTION)
    }
}

struct State {
    users: HashMap<Id, User>,
    user_by_email: HashMap<String, Id>,
    projects: HashMap<Id, Project>,
    /// project id -> teammate id -> teammate
    teammates: HashMap<Id, HashMap<Id, Teammate>>,
    /// (project id, user id) -> teammate id
    teammate_by_user: HashMap<(Id, Id), Id>,
    /// user id -> project ids where the user has a teammate
    user_projects: HashMap<Id, Vec<Id>>,
    /// email -> project id -> invitation
    invitations: HashMap<String, HashMap<Id, PendingInvitation>>,
    api_keys: HashMap<Id, ApiKey>,
    api_key_by_hash: HashMap<String, Id>,
    failed_signins: HashMap<String, (u64, Instant, Duration)>,
    presence: presence::PresenceState,
    log: events::Ring,
    /// project id -> subscription id -> subscription
    subscriptions: HashMap<Id, HashMap<Id, Subscription>>,
    /// project id -> team id -> team
    teams: HashMap<Id, HashMap<Id, Team>>,
    deliveries: webhooks::DeliveryQueue,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine whose event log keeps the last `retention` events.
    pub fn with_retention(retention: usize) -> Self {
        MemoryStore {
            state: Mutex::new(State {
                users: Default::default(),
                user_by_email: Default::default(),
                projects: Default::default(),
                teammates: Default::default(),
                teammate_by_user: Default::default(),
                user_projects: Default::default(),
                invitations: Default::default(),
                api_keys: Default::default(),
                api_key_by_hash: Default::default(),
                failed_signins: Default::default(),
                presence: Default::default(),
                log: events::Ring::new(retention),
                subscriptions: Default::default(),
                deliveries: Default::default(),
                teams: Default::default(),
            }),
            appended: Notify::new(),
        }
    }

    /// Runs `f` under the lock, then wakes the log's tailers (`f` may have appended).
    fn write<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let result = f(&mut self.lock());
        self.appended.notify_waiters();
        result
    }

    /// Reads the log with `read`; with a `wait`, sleeps until an append if it found nothing.
    async fn wait_for_events(
        &self,
        wait: Duration,
        mut read: impl FnMut(&mut State) -> Vec<LoggedEvent>,
    ) -> Vec<LoggedEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let events = read(&mut self.lock());
            if !events.is_empty() || wait.is_zero() {
                return events;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change (each method checks
        // before it writes), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn is_active(&self, key: &PresenceKey) -> bool {
        self.teammates
            .get(&key.project_id)
            .and_then(|m| m.get(&key.teammate_id))
            .is_some_and(Teammate::is_active)
    }

    fn teammate(&self, key: &PresenceKey) -> Option<&Teammate> {
        self.teammates.get(&key.project_id)?.get(&key.teammate_id)
    }

    /// A teammate that stopped being active loses every node's count; its presence before, if
    /// that changed it.
    fn forget_presence(&mut self, current: &Teammate) -> Option<Presence> {
        let before = self.presence.read_one(current);
        self.presence.clear(key_of(current))?;
        Some(before)
    }

    /// Appends the event of a presence transition the presence state just made.
    fn log_transition(&mut self, key: &PresenceKey, transition: Transition, before: Presence) {
        let Some(teammate) = self.teammate(key).cloned() else {
            return;
        };
        let after = self.presence.read_one(&teammate);
        let event_type = match transition {
            Transition::Online => EventType::PresenceOnline,
            Transition::Offline => EventType::PresenceOffline,
        };
        self.log
            .append(event_type, &teammate, None, after, Some(before));
    }

    fn presence_of(&self, key: &PresenceKey) -> Option<Presence> {
        Some(self.presence.read_one(self.teammate(key)?))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

fn key_of(t: &Teammate) -> PresenceKey {
    PresenceKey {
        project_id: t.project_id,
        teammate_id: t.id,
    }
}
