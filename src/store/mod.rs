//! Persistence behind one trait per concern, two engines.
//!
//! * [`MemoryStore`]: the default, one node, nothing persisted.
//! * [`RedisStore`]: shared by any number of nodes, on one Redis or a Redis Cluster; survives
//!   restarts.
//!
//! The traits: [`AccountStore`], [`ProjectStore`], [`PresenceStore`], [`EventLog`] and
//! [`WebhookStore`]; [`Store`] is all five plus `ping`. Each engine implements each trait in a
//! file of its own (`memory/accounts.rs`, `redis/accounts.rs`, ...). The same behavioural suites
//! (`engine_tests!` in `tests/common`) run against memory, Redis and Redis Cluster, so the
//! engines cannot drift.
//! Multi-key invariants (unique emails, one teammate per user and project, the last owner) are
//! enforced *inside* the engine, atomically, not by read-then-write in the callers.

mod memory;
pub mod redis;

pub use memory::MemoryStore;
pub use redis::RedisStore;

use crate::domain::{
    ApiKey, Delivery, EventType, Id, LogPosition, LoggedEvent, Partition, Partitions,
    PendingInvitation, Presence, PresenceKey, PresenceWrite, Project, SettleOutcome, Subscription,
    Team, Teammate, Timestamp, Transition, User, WriteOutcome,
};
use async_trait::async_trait;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule or an optimistic version check failed; the caller may re-read and retry.
    #[error("conflict")]
    Conflict,
    /// The change would leave the project without an active owner.
    #[error("the last owner of a project can be neither removed nor demoted")]
    LastOwner,
    /// The backing service is unreachable or timed out. Maps to 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backing service holds data this node must not use (another key layout, another
    /// partition count). Maps to 503, and refuses start-up.
    #[error("store refused: {0}")]
    Refused(String),
    /// Anything else (corrupt data, a script error). Logged, answered as 500.
    #[error("store error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Fixed-window counter of failed sign-ins for one email.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailedSignins {
    pub count: u64,
    /// Time until the window resets.
    pub resets_in: Duration,
}

/// Users, pending invitations, API keys and sign-in counters: the global lookups (on Redis,
/// keys of their own, outside the partitions).
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Inserts a user; `Conflict` if the (lower-cased) email is taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;

    async fn get_user(&self, id: Id) -> StoreResult<Option<User>>;

    async fn get_users(&self, ids: &[Id]) -> StoreResult<Vec<Option<User>>>;

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;

    /// Replaces a user record (the email is not changeable through this call).
    async fn update_user(&self, user: &User) -> StoreResult<()>;

    /// Replaces a user record with a new (lower-cased) email, atomically with the uniqueness
    /// index: `Conflict` if another user has that email, `NotFound` without the user.
    async fn change_user_email(&self, user: &User) -> StoreResult<()>;

    /// Inserts or replaces the invitation for (project, email).
    async fn put_invitation(&self, invitation: &PendingInvitation) -> StoreResult<()>;

    async fn list_invitations(&self, email: &str) -> StoreResult<Vec<PendingInvitation>>;

    async fn delete_invitation(&self, email: &str, project_id: Id) -> StoreResult<()>;

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()>;

    async fn list_api_keys(&self, project_id: Id) -> StoreResult<Vec<ApiKey>>;

    /// Deletes and returns the key; `None` if it does not exist in that project.
    async fn delete_api_key(&self, project_id: Id, key_id: Id) -> StoreResult<Option<ApiKey>>;

    async fn find_api_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKey>>;

    async fn failed_signins(&self, email: &str) -> StoreResult<FailedSignins>;

    /// Counts one failure; the window starts at the first failure and lasts `window`.
    async fn record_failed_signin(
        &self,
        email: &str,
        window: Duration,
    ) -> StoreResult<FailedSignins>;

    async fn clear_failed_signins(&self, email: &str) -> StoreResult<()>;
}

/// Projects, their teammates and their (Dixa) teams. Every write that changes a teammate appends
/// exactly one event, in the same atomic step.
#[async_trait]
pub trait ProjectStore: Send + Sync + 'static {
    /// Creates a project together with its first (owner) teammate, atomically.
    async fn create_project(&self, project: &Project, owner: &Teammate) -> StoreResult<()>;

    async fn get_project(&self, id: Id) -> StoreResult<Option<Project>>;

    async fn list_teammates(&self, project_id: Id) -> StoreResult<Vec<Teammate>>;

    async fn get_teammate(&self, project_id: Id, teammate_id: Id) -> StoreResult<Option<Teammate>>;

    async fn find_teammate_by_user(
        &self,
        project_id: Id,
        user_id: Id,
    ) -> StoreResult<Option<Teammate>>;

    /// Every membership of a user, in any state.
    async fn list_user_teammates(&self, user_id: Id) -> StoreResult<Vec<Teammate>>;

    /// Inserts a teammate; `Conflict` if the user already has one in that project. Appends a
    /// `project_user.invite` event in the same step.
    async fn insert_teammate(&self, teammate: &Teammate) -> StoreResult<()>;

    /// Replaces a teammate if the stored version equals `expected_version` (else `Conflict`,
    /// `NotFound` if it is gone). `LastOwner` if it would leave the project without an owner.
    /// Appends one event of type `event` in the same step. A teammate that stops being active
    /// loses every node's connection count at once (its presence turns offline as part of this
    /// change, not as an event of its own).
    async fn update_teammate(
        &self,
        teammate: &Teammate,
        expected_version: u64,
        event: EventType,
    ) -> StoreResult<()>;

    /// Removes a teammate for good, with the same checks; appends `project_user.delete`.
    async fn delete_teammate(&self, teammate: &Teammate, expected_version: u64) -> StoreResult<()>;

    // Membership lives on the teammates (`Teammate::teams`) and changes through
    // `update_teammate`, so it needs nothing here.

    /// Inserts or replaces a team.
    async fn put_team(&self, team: &Team) -> StoreResult<()>;

    async fn list_teams(&self, project_id: Id) -> StoreResult<Vec<Team>>;

    async fn get_team(&self, project_id: Id, id: Id) -> StoreResult<Option<Team>>;

    /// `false` if there was no such team.
    async fn delete_team(&self, project_id: Id, id: Id) -> StoreResult<bool>;
}

/// Presence and node leases (see `domain::presence` and docs/architecture.md). Time in these
/// calls is the store's own clock, so nodes need not agree on the time.
#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Applies one node's count of one teammate and decides the transition, atomically.
    /// `grace` is how long the teammate stays online after the last connection closed.
    async fn write_presence(
        &self,
        write: &PresenceWrite,
        grace: Duration,
    ) -> StoreResult<WriteOutcome>;

    /// Turns the teammate offline if its grace period is over and no live node counts it.
    async fn settle_presence(&self, key: PresenceKey) -> StoreResult<SettleOutcome>;

    /// Teammates (cluster-wide) whose grace period is over, at most `limit`.
    async fn due_presence(&self, limit: usize) -> StoreResult<Vec<PresenceKey>>;

    /// The live presence of each teammate, in order.
    async fn read_presence(&self, teammates: &[Teammate]) -> StoreResult<Vec<Presence>>;

    /// Extends this node's lease to `ttl` from now. `false` if there was no live lease (it
    /// expired, was reaped, or the store lost its data): the node must re-assert its counts.
    async fn renew_lease(&self, node_id: &str, ttl: Duration) -> StoreResult<bool>;

    /// Nodes whose lease has expired and that have not been reaped yet.
    async fn dead_nodes(&self) -> StoreResult<Vec<String>>;

    /// Removes a node's counts and lease. Teammates that only it kept online turn offline at
    /// once, unless they are in a grace period (which then runs its course). Idempotent: two
    /// nodes reaping the same dead node produce each transition once.
    ///
    /// With `only_if_expired` (the reaper), a node whose lease is live is left alone: it may have
    /// renewed, and re-asserted its counts, between `dead_nodes` and this call. A node shutting
    /// down reaps itself without it.
    async fn reap_node(
        &self,
        node_id: &str,
        only_if_expired: bool,
    ) -> StoreResult<Vec<(PresenceKey, Transition)>>;
}

/// The event log (see `domain::event`): one log per partition, read by every node's tailer and,
/// through one consumer group per partition, by the webhook dispatchers. The writes of
/// [`ProjectStore`] and [`PresenceStore`] that change a teammate or its presence append exactly
/// one event in the same atomic step.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// How the deployment's projects are partitioned (the memory engine has one partition).
    /// Each partition has its own log: a project's events are all in its partition's log.
    fn partitions(&self) -> Partitions;

    /// The random salt of this deployment's event ids, created on first use.
    async fn event_salt(&self) -> StoreResult<u64>;

    /// The oldest and newest retained positions of a partition's log; `None` while it is empty.
    async fn log_bounds(
        &self,
        partition: Partition,
    ) -> StoreResult<Option<(LogPosition, LogPosition)>>;

    /// Up to `limit` events after `after`, in its partition's log, oldest first. With a non-zero
    /// `wait`, waits up to that long for the first one (this is how every node tails the logs).
    async fn read_events(
        &self,
        after: LogPosition,
        limit: usize,
        wait: Duration,
    ) -> StoreResult<Vec<LoggedEvent>>;

    /// New events of a partition for `consumer`. Each event goes to one consumer of the group and stays pending
    /// until its deliveries are stored ([`WebhookStore::enqueue_deliveries`]).
    async fn consume_events(
        &self,
        partition: Partition,
        consumer: &str,
        limit: usize,
        wait: Duration,
    ) -> StoreResult<Vec<LoggedEvent>>;

    /// Takes over events that another consumer received but did not acknowledge for `idle` (it
    /// died). The memory engine has one node and never has any.
    async fn claim_stale_events(
        &self,
        partition: Partition,
        consumer: &str,
        idle: Duration,
        limit: usize,
    ) -> StoreResult<Vec<LoggedEvent>>;
}

/// Webhook subscriptions and the durable delivery schedule any node can work on.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Inserts or replaces a subscription.
    async fn put_subscription(&self, subscription: &Subscription) -> StoreResult<()>;

    async fn list_subscriptions(&self, project_id: Id) -> StoreResult<Vec<Subscription>>;

    async fn get_subscription(&self, project_id: Id, id: Id) -> StoreResult<Option<Subscription>>;

    /// `false` if there was no such subscription.
    async fn delete_subscription(&self, project_id: Id, id: Id) -> StoreResult<bool>;

    /// Stores new deliveries, leased to the caller until `lease_until`, and acknowledges the
    /// events they were made from, in one step: from here on the deliveries survive the node.
    async fn enqueue_deliveries(
        &self,
        deliveries: &[Delivery],
        lease_until: Timestamp,
        acknowledge: &[LogPosition],
    ) -> StoreResult<()>;

    /// Leases up to `limit` deliveries that are due at `now` (a new attempt, or a lease that ran
    /// out because its node died) to the caller until `lease_until`.
    ///
    /// A lease is identified by its end time, which is also the delivery's due time: a new lease
    /// can only be taken once the old one has ended, so it always ends later. The holder passes
    /// it back as a fencing token to [`WebhookStore::renew_delivery_lease`] and
    /// [`WebhookStore::save_delivery`], which refuse a holder whose lease was taken over.
    async fn lease_due_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>>;

    /// Extends the lease `held` to `until`, just before an attempt; `false` if the delivery ended
    /// or another lease replaced it (another node took it over: do not attempt).
    async fn renew_delivery_lease(
        &self,
        project_id: Id,
        id: Id,
        held: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool>;

    /// Records a delivery's progress under the lease `held`: still pending (next attempt at
    /// `next_attempt`) or ended (`None`: removed from the schedule and added to the project's
    /// history). `false` (nothing written) if the lease is no longer the caller's.
    async fn save_delivery(
        &self,
        delivery: &Delivery,
        next_attempt: Option<Timestamp>,
        held: Timestamp,
    ) -> StoreResult<bool>;

    /// The project's ended deliveries, newest first, at most `limit`.
    async fn delivery_history(&self, project_id: Id, limit: usize) -> StoreResult<Vec<Delivery>>;
}

/// The whole store: every concern, and the check that it answers. Components that need one
/// concern take that trait (`Arc<dyn PresenceStore>`, ...), which an `Arc<dyn Store>` turns into.
#[async_trait]
pub trait Store: AccountStore + ProjectStore + PresenceStore + EventLog + WebhookStore {
    /// Cheap round trip used by `/readyz`: every partition is reachable.
    async fn ping(&self) -> StoreResult<()>;
}
