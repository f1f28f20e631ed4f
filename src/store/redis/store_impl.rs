//! The [`Store`] trait on the Redis engine: each method delegates to the file that owns its keys.

use super::RedisStore;
use crate::domain::{
    ApiKey, Delivery, EventType, Id, LogPosition, LoggedEvent, Partition, Partitions,
    PendingInvitation, Presence, PresenceKey, PresenceWrite, Project, SettleOutcome, Subscription,
    Team, Teammate, Timestamp, Transition, User, WriteOutcome,
};
use crate::store::{FailedSignins, Store, StoreResult};
use async_trait::async_trait;
use futures::future::try_join_all;
use std::time::Duration;

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        // A keyed read per partition: in a cluster each reaches the master of its slot, so a
        // master that is down shows here (a plain PING would ask any node).
        try_join_all(self.keys.partitions().all().map(|p| async move {
            let key = self.keys.partition(p).leases();
            self.cmd::<bool>(redis::cmd("EXISTS").arg(key)).await
        }))
        .await?;
        Ok(())
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        self.insert_user(user).await
    }

    async fn get_user(&self, id: Id) -> StoreResult<Option<User>> {
        self.user(id).await
    }

    async fn get_users(&self, ids: &[Id]) -> StoreResult<Vec<Option<User>>> {
        self.users(ids).await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.user_by_email(email).await
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        self.replace_user(user).await
    }

    async fn change_user_email(&self, user: &User) -> StoreResult<()> {
        self.move_email(user).await
    }

    async fn create_project(&self, project: &Project, owner: &Teammate) -> StoreResult<()> {
        self.insert_project(project, owner).await
    }

    async fn get_project(&self, id: Id) -> StoreResult<Option<Project>> {
        self.project(id).await
    }

    async fn list_teammates(&self, project_id: Id) -> StoreResult<Vec<Teammate>> {
        self.teammates(project_id).await
    }

    async fn get_teammate(&self, project_id: Id, teammate_id: Id) -> StoreResult<Option<Teammate>> {
        self.teammate(project_id, teammate_id).await
    }

    async fn find_teammate_by_user(
        &self,
        project_id: Id,
        user_id: Id,
    ) -> StoreResult<Option<Teammate>> {
        self.teammate_of_user(project_id, user_id).await
    }

    async fn list_user_teammates(&self, user_id: Id) -> StoreResult<Vec<Teammate>> {
        self.teammates_of_user(user_id).await
    }

    async fn insert_teammate(&self, teammate: &Teammate) -> StoreResult<()> {
        self.add_teammate(teammate).await
    }

    async fn update_teammate(
        &self,
        teammate: &Teammate,
        expected_version: u64,
        event: EventType,
    ) -> StoreResult<()> {
        let json = super::encode(teammate)?;
        self.write_teammate(teammate, expected_version, Some(json), event)
            .await
    }

    async fn delete_teammate(&self, teammate: &Teammate, expected_version: u64) -> StoreResult<()> {
        self.write_teammate(teammate, expected_version, None, EventType::Delete)
            .await
    }

    async fn put_team(&self, team: &Team) -> StoreResult<()> {
        self.save_team(team).await
    }

    async fn list_teams(&self, project_id: Id) -> StoreResult<Vec<Team>> {
        self.teams(project_id).await
    }

    async fn get_team(&self, project_id: Id, id: Id) -> StoreResult<Option<Team>> {
        self.team(project_id, id).await
    }

    async fn delete_team(&self, project_id: Id, id: Id) -> StoreResult<bool> {
        self.remove_team(project_id, id).await
    }

    async fn put_invitation(&self, invitation: &PendingInvitation) -> StoreResult<()> {
        self.save_invitation(invitation).await
    }

    async fn list_invitations(&self, email: &str) -> StoreResult<Vec<PendingInvitation>> {
        self.invitations(email).await
    }

    async fn delete_invitation(&self, email: &str, project_id: Id) -> StoreResult<()> {
        self.remove_invitation(email, project_id).await
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        self.insert_api_key(key).await
    }

    async fn list_api_keys(&self, project_id: Id) -> StoreResult<Vec<ApiKey>> {
        self.api_keys(project_id).await
    }

    async fn delete_api_key(&self, project_id: Id, key_id: Id) -> StoreResult<Option<ApiKey>> {
        self.remove_api_key(project_id, key_id).await
    }

    async fn find_api_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKey>> {
        self.api_key_by_hash(secret_hash).await
    }

    async fn failed_signins(&self, email: &str) -> StoreResult<FailedSignins> {
        self.signin_failures(email).await
    }

    async fn record_failed_signin(
        &self,
        email: &str,
        window: Duration,
    ) -> StoreResult<FailedSignins> {
        self.count_signin_failure(email, window).await
    }

    async fn clear_failed_signins(&self, email: &str) -> StoreResult<()> {
        self.clear_signin_failures(email).await
    }

    async fn write_presence(
        &self,
        write: &PresenceWrite,
        grace: Duration,
    ) -> StoreResult<WriteOutcome> {
        self.write_edge(write, grace).await
    }

    async fn settle_presence(&self, key: PresenceKey) -> StoreResult<SettleOutcome> {
        self.settle(key).await
    }

    async fn due_presence(&self, limit: usize) -> StoreResult<Vec<PresenceKey>> {
        self.due(limit).await
    }

    async fn read_presence(&self, teammates: &[Teammate]) -> StoreResult<Vec<Presence>> {
        if teammates.is_empty() {
            return Ok(Vec::new());
        }
        self.presence_of(teammates).await
    }

    async fn renew_lease(&self, node_id: &str, ttl: Duration) -> StoreResult<bool> {
        self.renew_leases(node_id, ttl).await
    }

    async fn dead_nodes(&self) -> StoreResult<Vec<String>> {
        self.expired_nodes().await
    }

    async fn reap_node(
        &self,
        node_id: &str,
        only_if_expired: bool,
    ) -> StoreResult<Vec<(PresenceKey, Transition)>> {
        self.reap(node_id, only_if_expired).await
    }

    fn partitions(&self) -> Partitions {
        self.keys.partitions()
    }

    async fn event_salt(&self) -> StoreResult<u64> {
        self.salt().await
    }

    async fn log_bounds(
        &self,
        partition: Partition,
    ) -> StoreResult<Option<(LogPosition, LogPosition)>> {
        self.bounds(partition).await
    }

    async fn read_events(
        &self,
        after: LogPosition,
        limit: usize,
        wait: Duration,
    ) -> StoreResult<Vec<LoggedEvent>> {
        self.events_after(after, limit, wait).await
    }

    async fn consume_events(
        &self,
        partition: Partition,
        consumer: &str,
        limit: usize,
        wait: Duration,
    ) -> StoreResult<Vec<LoggedEvent>> {
        self.group_read(partition, consumer, limit, wait).await
    }

    async fn claim_stale_events(
        &self,
        partition: Partition,
        consumer: &str,
        idle: Duration,
        limit: usize,
    ) -> StoreResult<Vec<LoggedEvent>> {
        self.group_claim(partition, consumer, idle, limit).await
    }

    async fn put_subscription(&self, subscription: &Subscription) -> StoreResult<()> {
        self.save_subscription(subscription).await
    }

    async fn list_subscriptions(&self, project_id: Id) -> StoreResult<Vec<Subscription>> {
        self.subscriptions(project_id).await
    }

    async fn get_subscription(&self, project_id: Id, id: Id) -> StoreResult<Option<Subscription>> {
        self.subscription(project_id, id).await
    }

    async fn delete_subscription(&self, project_id: Id, id: Id) -> StoreResult<bool> {
        self.remove_subscription(project_id, id).await
    }

    async fn enqueue_deliveries(
        &self,
        deliveries: &[Delivery],
        lease_until: Timestamp,
        acknowledge: &[LogPosition],
    ) -> StoreResult<()> {
        self.enqueue(deliveries, lease_until, acknowledge).await
    }

    async fn lease_due_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        self.lease_due(now, lease_until, limit).await
    }

    async fn renew_delivery_lease(
        &self,
        project_id: Id,
        id: Id,
        held: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        self.renew_lease_of(project_id, id, held, until).await
    }

    async fn save_delivery(
        &self,
        delivery: &Delivery,
        next_attempt: Option<Timestamp>,
        held: Timestamp,
    ) -> StoreResult<bool> {
        self.save(delivery, next_attempt, held).await
    }

    async fn delivery_history(&self, project_id: Id, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.history(project_id, limit).await
    }
}
