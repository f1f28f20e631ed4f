//! The in-memory engine: one node, nothing persisted.
//!
//! All state sits behind one mutex. Every method takes the lock once, does its checks and writes,
//! and releases it before returning, so each call is atomic exactly as the Redis engine's scripts
//! are. The lock is never held across an `.await` (enforced by `clippy.toml`).

mod events;
mod presence;

use super::{FailedSignins, Store, StoreError, StoreResult};
use crate::domain::{
    ApiKey, Delivery, EventType, Id, LogPosition, LoggedEvent, Partition, Partitions,
    PendingInvitation, Presence, PresenceKey, PresenceWrite, Project, SettleOutcome, Subscription,
    Team, Teammate, Timestamp, Transition, User, WriteOutcome,
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
    log: events::EventLog,
    /// project id -> subscription id -> subscription
    subscriptions: HashMap<Id, HashMap<Id, Subscription>>,
    /// project id -> team id -> team
    teams: HashMap<Id, HashMap<Id, Team>>,
    deliveries: events::DeliveryQueue,
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
                log: events::EventLog::new(retention),
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
    fn stored_teammate(&self, t: &Teammate, expected_version: u64) -> StoreResult<&Teammate> {
        let current = self
            .teammates
            .get(&t.project_id)
            .and_then(|m| m.get(&t.id))
            .ok_or(StoreError::NotFound)?;
        if current.version != expected_version {
            return Err(StoreError::Conflict);
        }
        Ok(current)
    }

    /// `LastOwner` if `current` is the project's only active owner and `next` would not be one.
    fn check_last_owner(&self, current: &Teammate, next: Option<&Teammate>) -> StoreResult<()> {
        let stays_owner = next.is_some_and(Teammate::is_active_owner);
        if !current.is_active_owner() || stays_owner {
            return Ok(());
        }
        let owners = self.teammates[&current.project_id]
            .values()
            .filter(|t| t.is_active_owner())
            .count();
        if owners <= 1 {
            return Err(StoreError::LastOwner);
        }
        Ok(())
    }

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

    fn add_teammate(&mut self, teammate: &Teammate) {
        self.teammates
            .entry(teammate.project_id)
            .or_default()
            .insert(teammate.id, teammate.clone());
        self.teammate_by_user
            .insert((teammate.project_id, teammate.user_id), teammate.id);
        let projects = self.user_projects.entry(teammate.user_id).or_default();
        if !projects.contains(&teammate.project_id) {
            projects.push(teammate.project_id);
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let mut s = self.lock();
        if s.user_by_email.contains_key(&user.email) || s.users.contains_key(&user.id) {
            return Err(StoreError::Conflict);
        }
        s.user_by_email.insert(user.email.clone(), user.id);
        s.users.insert(user.id, user.clone());
        Ok(())
    }

    async fn get_user(&self, id: Id) -> StoreResult<Option<User>> {
        Ok(self.lock().users.get(&id).cloned())
    }

    async fn get_users(&self, ids: &[Id]) -> StoreResult<Vec<Option<User>>> {
        let s = self.lock();
        Ok(ids.iter().map(|id| s.users.get(id).cloned()).collect())
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let s = self.lock();
        Ok(s.user_by_email
            .get(email)
            .and_then(|id| s.users.get(id))
            .cloned())
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let mut s = self.lock();
        let current = s.users.get_mut(&user.id).ok_or(StoreError::NotFound)?;
        let email = current.email.clone();
        *current = User {
            email,
            ..user.clone()
        };
        Ok(())
    }

    async fn change_user_email(&self, user: &User) -> StoreResult<()> {
        let mut s = self.lock();
        let old = s
            .users
            .get(&user.id)
            .ok_or(StoreError::NotFound)?
            .email
            .clone();
        if s.user_by_email
            .get(&user.email)
            .is_some_and(|id| *id != user.id)
        {
            return Err(StoreError::Conflict);
        }
        s.user_by_email.remove(&old);
        s.user_by_email.insert(user.email.clone(), user.id);
        s.users.insert(user.id, user.clone());
        Ok(())
    }

    async fn put_team(&self, team: &Team) -> StoreResult<()> {
        self.lock()
            .teams
            .entry(team.project_id)
            .or_default()
            .insert(team.id, team.clone());
        Ok(())
    }

    async fn list_teams(&self, project_id: Id) -> StoreResult<Vec<Team>> {
        let s = self.lock();
        let mut list: Vec<Team> = s
            .teams
            .get(&project_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        list.sort_by_key(|t| (t.created_at, t.id));
        Ok(list)
    }

    async fn get_team(&self, project_id: Id, id: Id) -> StoreResult<Option<Team>> {
        Ok(self
            .lock()
            .teams
            .get(&project_id)
            .and_then(|m| m.get(&id))
            .cloned())
    }

    async fn delete_team(&self, project_id: Id, id: Id) -> StoreResult<bool> {
        Ok(self
            .lock()
            .teams
            .get_mut(&project_id)
            .and_then(|m| m.remove(&id))
            .is_some())
    }

    async fn create_project(&self, project: &Project, owner: &Teammate) -> StoreResult<()> {
        let mut s = self.lock();
        if s.projects.contains_key(&project.id) {
            return Err(StoreError::Conflict);
        }
        s.projects.insert(project.id, project.clone());
        s.add_teammate(owner);
        Ok(())
    }

    async fn get_project(&self, id: Id) -> StoreResult<Option<Project>> {
        Ok(self.lock().projects.get(&id).cloned())
    }

    async fn list_teammates(&self, project_id: Id) -> StoreResult<Vec<Teammate>> {
        let s = self.lock();
        let mut list: Vec<Teammate> = s
            .teammates
            .get(&project_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        list.sort_by_key(|t| (t.created_at, t.id));
        Ok(list)
    }

    async fn get_teammate(&self, project_id: Id, teammate_id: Id) -> StoreResult<Option<Teammate>> {
        let s = self.lock();
        Ok(s.teammates
            .get(&project_id)
            .and_then(|m| m.get(&teammate_id))
            .cloned())
    }

    async fn find_teammate_by_user(
        &self,
        project_id: Id,
        user_id: Id,
    ) -> StoreResult<Option<Teammate>> {
        let s = self.lock();
        Ok(s.teammate_by_user
            .get(&(project_id, user_id))
            .and_then(|id| s.teammates.get(&project_id)?.get(id))
            .cloned())
    }

    async fn list_user_teammates(&self, user_id: Id) -> StoreResult<Vec<Teammate>> {
        let s = self.lock();
        let projects = s.user_projects.get(&user_id).cloned().unwrap_or_default();
        Ok(projects
            .iter()
            .filter_map(|pid| {
                let tid = s.teammate_by_user.get(&(*pid, user_id))?;
                s.teammates.get(pid)?.get(tid).cloned()
            })
            .collect())
    }

    async fn insert_teammate(&self, teammate: &Teammate) -> StoreResult<()> {
        let mut s = self.lock();
        if !s.projects.contains_key(&teammate.project_id) {
            return Err(StoreError::NotFound);
        }
        if s.teammate_by_user
            .contains_key(&(teammate.project_id, teammate.user_id))
        {
            return Err(StoreError::Conflict);
        }
        s.add_teammate(teammate);
        let presence = s.presence.read_one(teammate);
        s.log
            .append(EventType::Invite, teammate, None, presence, None);
        drop(s);
        self.appended.notify_waiters();
        Ok(())
    }

    async fn update_teammate(
        &self,
        teammate: &Teammate,
        expected_version: u64,
        event: EventType,
    ) -> StoreResult<()> {
        self.write(|s| {
            let current = s.stored_teammate(teammate, expected_version)?.clone();
            s.check_last_owner(&current, Some(teammate))?;
            s.add_teammate(teammate);
            let presence_before = if current.is_active() && !teammate.is_active() {
                s.forget_presence(&current)
            } else {
                None
            };
            let presence = s.presence.read_one(teammate);
            s.log
                .append(event, teammate, Some(&current), presence, presence_before);
            Ok(())
        })
    }

    async fn delete_teammate(&self, teammate: &Teammate, expected_version: u64) -> StoreResult<()> {
        let mut s = self.lock();
        let current = s.stored_teammate(teammate, expected_version)?.clone();
        s.check_last_owner(&current, None)?;
        let presence_before = s.forget_presence(&current);
        let presence = s.presence.read_one(&current);
        s.log.append(
            EventType::Delete,
            &current,
            Some(&current),
            presence,
            presence_before,
        );
        if let Some(m) = s.teammates.get_mut(&teammate.project_id) {
            m.remove(&teammate.id);
        }
        s.teammate_by_user
            .remove(&(teammate.project_id, teammate.user_id));
        if let Some(projects) = s.user_projects.get_mut(&teammate.user_id) {
            projects.retain(|p| *p != teammate.project_id);
        }
        drop(s);
        self.appended.notify_waiters();
        Ok(())
    }

    async fn put_invitation(&self, invitation: &PendingInvitation) -> StoreResult<()> {
        self.lock()
            .invitations
            .entry(invitation.email.clone())
            .or_default()
            .insert(invitation.project_id, invitation.clone());
        Ok(())
    }

    async fn list_invitations(&self, email: &str) -> StoreResult<Vec<PendingInvitation>> {
        let s = self.lock();
        let mut list: Vec<_> = s
            .invitations
            .get(email)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        list.sort_by_key(|i| i.created_at);
        Ok(list)
    }

    async fn delete_invitation(&self, email: &str, project_id: Id) -> StoreResult<()> {
        let mut s = self.lock();
        if let Some(m) = s.invitations.get_mut(email) {
            m.remove(&project_id);
            if m.is_empty() {
                s.invitations.remove(email);
            }
        }
        Ok(())
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let mut s = self.lock();
        if s.api_key_by_hash.contains_key(&key.secret_hash) {
            return Err(StoreError::Conflict);
        }
        s.api_key_by_hash.insert(key.secret_hash.clone(), key.id);
        s.api_keys.insert(key.id, key.clone());
        Ok(())
    }

    async fn list_api_keys(&self, project_id: Id) -> StoreResult<Vec<ApiKey>> {
        let s = self.lock();
        let mut keys: Vec<_> = s
            .api_keys
            .values()
            .filter(|k| k.project_id == project_id)
            .cloned()
            .collect();
        keys.sort_by_key(|k| (k.created_at, k.id));
        Ok(keys)
    }

    async fn delete_api_key(&self, project_id: Id, key_id: Id) -> StoreResult<Option<ApiKey>> {
        let mut s = self.lock();
        match s.api_keys.get(&key_id) {
            Some(k) if k.project_id == project_id => {}
            _ => return Ok(None),
        }
        let key = s.api_keys.remove(&key_id);
        if let Some(k) = &key {
            s.api_key_by_hash.remove(&k.secret_hash);
        }
        Ok(key)
    }

    async fn find_api_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKey>> {
        let s = self.lock();
        Ok(s.api_key_by_hash
            .get(secret_hash)
            .and_then(|id| s.api_keys.get(id))
            .cloned())
    }

    async fn failed_signins(&self, email: &str) -> StoreResult<FailedSignins> {
        let s = self.lock();
        Ok(match s.failed_signins.get(email) {
            Some((count, started, window)) if started.elapsed() < *window => FailedSignins {
                count: *count,
                resets_in: *window - started.elapsed(),
            },
            _ => FailedSignins {
                count: 0,
                resets_in: Duration::ZERO,
            },
        })
    }

    async fn record_failed_signin(
        &self,
        email: &str,
        window: Duration,
    ) -> StoreResult<FailedSignins> {
        let mut s = self.lock();
        let entry =
            s.failed_signins
                .entry(email.to_string())
                .or_insert((0, Instant::now(), window));
        if entry.1.elapsed() >= entry.2 {
            *entry = (0, Instant::now(), window);
        }
        entry.0 += 1;
        Ok(FailedSignins {
            count: entry.0,
            resets_in: entry.2.saturating_sub(entry.1.elapsed()),
        })
    }

    async fn clear_failed_signins(&self, email: &str) -> StoreResult<()> {
        self.lock().failed_signins.remove(email);
        Ok(())
    }

    async fn write_presence(
        &self,
        write: &PresenceWrite,
        grace: Duration,
    ) -> StoreResult<WriteOutcome> {
        Ok(self.write(|s| {
            let active = s.is_active(&write.key);
            let before = s.presence_of(&write.key);
            let outcome = s.presence.write(write, active, grace);
            if let (WriteOutcome::Transition(t), Some(before)) = (outcome, before) {
                s.log_transition(&write.key, t, before);
            }
            outcome
        }))
    }

    async fn settle_presence(&self, key: PresenceKey) -> StoreResult<SettleOutcome> {
        Ok(self.write(|s| {
            let before = s.presence_of(&key);
            let outcome = s.presence.settle(key);
            if let (SettleOutcome::Offline, Some(before)) = (outcome, before) {
                s.log_transition(&key, Transition::Offline, before);
            }
            outcome
        }))
    }

    async fn due_presence(&self, limit: usize) -> StoreResult<Vec<PresenceKey>> {
        Ok(self.lock().presence.due(limit))
    }

    async fn read_presence(&self, teammates: &[Teammate]) -> StoreResult<Vec<Presence>> {
        Ok(self.lock().presence.read(teammates))
    }

    async fn renew_lease(&self, node_id: &str, ttl: Duration) -> StoreResult<bool> {
        Ok(self.lock().presence.renew_lease(node_id, ttl))
    }

    async fn dead_nodes(&self) -> StoreResult<Vec<String>> {
        Ok(self.lock().presence.dead_nodes())
    }

    async fn reap_node(
        &self,
        node_id: &str,
        only_if_expired: bool,
    ) -> StoreResult<Vec<(PresenceKey, Transition)>> {
        Ok(self.write(|s| {
            if only_if_expired && s.presence.is_live(node_id) {
                return Vec::new();
            }
            let before: HashMap<PresenceKey, Presence> = s
                .presence
                .keys_of(node_id)
                .into_iter()
                .filter_map(|key| Some((key, s.presence_of(&key)?)))
                .collect();
            let transitions = s.presence.reap(node_id);
            for (key, transition) in &transitions {
                if let Some(before) = before.get(key) {
                    s.log_transition(key, *transition, before.clone());
                }
            }
            transitions
        }))
    }

    async fn event_salt(&self) -> StoreResult<u64> {
        Ok(self.lock().log.salt)
    }

    fn partitions(&self) -> Partitions {
        Partitions::new(1)
    }

    async fn log_bounds(
        &self,
        partition: Partition,
    ) -> StoreResult<Option<(LogPosition, LogPosition)>> {
        Ok(self.lock().log.bounds().filter(|_| partition == 0))
    }

    async fn read_events(
        &self,
        after: LogPosition,
        limit: usize,
        wait: Duration,
    ) -> StoreResult<Vec<LoggedEvent>> {
        Ok(self
            .wait_for_events(wait, |s| s.log.after(after, limit))
            .await)
    }

    async fn consume_events(
        &self,
        partition: Partition,
        _consumer: &str,
        limit: usize,
        wait: Duration,
    ) -> StoreResult<Vec<LoggedEvent>> {
        if partition != 0 {
            return Ok(Vec::new());
        }
        Ok(self.wait_for_events(wait, |s| s.log.consume(limit)).await)
    }

    async fn claim_stale_events(
        &self,
        _partition: Partition,
        _consumer: &str,
        _idle: Duration,
        _limit: usize,
    ) -> StoreResult<Vec<LoggedEvent>> {
        Ok(Vec::new())
    }

    async fn put_subscription(&self, subscription: &Subscription) -> StoreResult<()> {
        self.lock()
            .subscriptions
            .entry(subscription.project_id)
            .or_default()
            .insert(subscription.id, subscription.clone());
        Ok(())
    }

    async fn list_subscriptions(&self, project_id: Id) -> StoreResult<Vec<Subscription>> {
        let s = self.lock();
        let mut list: Vec<Subscription> = s
            .subscriptions
            .get(&project_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        list.sort_by_key(|s| (s.created_at, s.id));
        Ok(list)
    }

    async fn get_subscription(&self, project_id: Id, id: Id) -> StoreResult<Option<Subscription>> {
        let s = self.lock();
        Ok(s.subscriptions
            .get(&project_id)
            .and_then(|m| m.get(&id))
            .cloned())
    }

    async fn delete_subscription(&self, project_id: Id, id: Id) -> StoreResult<bool> {
        let mut s = self.lock();
        Ok(s.subscriptions
            .get_mut(&project_id)
            .and_then(|m| m.remove(&id))
            .is_some())
    }

    async fn enqueue_deliveries(
        &self,
        deliveries: &[Delivery],
        lease_until: Timestamp,
        _acknowledge: &[LogPosition],
    ) -> StoreResult<()> {
        let mut s = self.lock();
        for d in deliveries {
            s.deliveries.schedule(d.clone(), lease_until.as_millis());
        }
        Ok(())
    }

    async fn lease_due_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        Ok(self
            .lock()
            .deliveries
            .lease_due(now.as_millis(), lease_until.as_millis(), limit))
    }

    async fn renew_delivery_lease(
        &self,
        _project_id: Id,
        id: Id,
        held: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        let mut s = self.lock();
        Ok(s.deliveries.renew(id, held.as_millis(), until.as_millis()))
    }

    async fn save_delivery(
        &self,
        delivery: &Delivery,
        next_attempt: Option<Timestamp>,
        held: Timestamp,
    ) -> StoreResult<bool> {
        let mut s = self.lock();
        if !s.deliveries.holds(delivery.id, held.as_millis()) {
            return Ok(false);
        }
        match next_attempt {
            Some(at) => s.deliveries.schedule(delivery.clone(), at.as_millis()),
            None => s.deliveries.finish(delivery),
        }
        Ok(true)
    }

    async fn delivery_history(&self, project_id: Id, limit: usize) -> StoreResult<Vec<Delivery>> {
        Ok(self.lock().deliveries.history(project_id, limit))
    }
}

fn key_of(t: &Teammate) -> PresenceKey {
    PresenceKey {
        project_id: t.project_id,
        teammate_id: t.id,
    }
}
