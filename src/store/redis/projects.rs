//! Projects, teammates and teams: all in the project's partition, except
//! each user's memberships index (`user:{uid}:projects`), a global lookup in a slot of its own.
//!
//! The index is written *before* a teammate is inserted and is never trimmed when one is deleted,
//! so it only ever lists too many projects, never too few; readers skip projects where the user
//! has no teammate. A crash between the two steps leaves an entry that points at nothing.

use super::presence::{INSERT_TEAMMATE, WRITE_TEAMMATE};
use super::{encode, script_outcome, RedisStore};
use crate::domain::{EventType, Id, Project, Team, Teammate};
use crate::store::{ProjectStore, StoreResult};
use async_trait::async_trait;
use redis::Script;
use std::sync::LazyLock;

static CREATE_PROJECT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/create_project.lua")));

#[async_trait]
impl ProjectStore for RedisStore {
    async fn create_project(&self, project: &Project, owner: &Teammate) -> StoreResult<()> {
        self.index_membership(owner.user_id, project.id).await?;
        let k = self.keys.of_project(project.id);
        let key = k.project(project.id);
        let mut invocation = CREATE_PROJECT.prepare_invoke();
        invocation
            .key(&key)
            .key(k.teammates(project.id))
            .key(k.teammate_by_user(project.id))
            .key(k.owners(project.id))
            .arg(encode(project)?)
            .arg(owner.id.to_string())
            .arg(encode(owner)?)
            .arg(owner.user_id.to_string());
        let outcome: String = self.script(&invocation).await?;
        script_outcome(&outcome)?;
        self.replicated(&key).await
    }

    async fn get_project(&self, id: Id) -> StoreResult<Option<Project>> {
        self.get_json(self.keys.of_project(id).project(id)).await
    }

    async fn list_teammates(&self, project_id: Id) -> StoreResult<Vec<Teammate>> {
        let key = self.keys.of_project(project_id).teammates(project_id);
        let mut list: Vec<Teammate> = self.hash_values(key).await?;
        list.sort_by_key(|t| (t.created_at, t.id));
        Ok(list)
    }

    async fn get_teammate(&self, project_id: Id, teammate_id: Id) -> StoreResult<Option<Teammate>> {
        let key = self.keys.of_project(project_id).teammates(project_id);
        self.hash_field(key, teammate_id).await
    }

    async fn find_teammate_by_user(
        &self,
        project_id: Id,
        user_id: Id,
    ) -> StoreResult<Option<Teammate>> {
        let k = self.keys.of_project(project_id);
        let tid: Option<String> = self
            .cmd(
                redis::cmd("HGET")
                    .arg(k.teammate_by_user(project_id))
                    .arg(user_id.to_string()),
            )
            .await?;
        match tid.and_then(|s| s.parse::<Id>().ok()) {
            Some(tid) => self.get_teammate(project_id, tid).await,
            None => Ok(None),
        }
    }

    async fn list_user_teammates(&self, user_id: Id) -> StoreResult<Vec<Teammate>> {
        let pids: Vec<String> = self
            .cmd(redis::cmd("SMEMBERS").arg(self.keys.user_projects(user_id)))
            .await?;
        let mut out = Vec::with_capacity(pids.len());
        for pid in pids.iter().filter_map(|p| p.parse::<Id>().ok()) {
            if let Some(t) = self.find_teammate_by_user(pid, user_id).await? {
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn insert_teammate(&self, teammate: &Teammate) -> StoreResult<()> {
        let (pid, tid) = (teammate.project_id, teammate.id);
        self.index_membership(teammate.user_id, pid).await?;
        let k = self.keys.of_project(pid);
        let key = k.teammates(pid);
        let mut invocation = INSERT_TEAMMATE.prepare_invoke();
        invocation
            .key(k.project(pid))
            .key(&key)
            .key(k.teammate_by_user(pid))
            .key(k.owners(pid))
            .key(k.presence(pid, tid))
            .key(k.presence_nodes(pid, tid))
            .key(k.leases())
            .key(k.events())
            .key(k.event_seq())
            .arg(tid.to_string())
            .arg(teammate.user_id.to_string())
            .arg(pid.to_string())
            .arg(encode(teammate)?)
            .arg(if teammate.is_active_owner() { "1" } else { "0" })
            .arg(self.retention);
        let outcome: String = self.script(&invocation).await?;
        script_outcome(&outcome)?;
        self.replicated(&key).await
    }

    async fn update_teammate(
        &self,
        teammate: &Teammate,
        expected_version: u64,
        event: EventType,
    ) -> StoreResult<()> {
        let json = encode(teammate)?;
        self.write_teammate(teammate, expected_version, Some(json), event)
            .await
    }

    async fn delete_teammate(&self, teammate: &Teammate, expected_version: u64) -> StoreResult<()> {
        self.write_teammate(teammate, expected_version, None, EventType::Delete)
            .await
    }

    async fn put_team(&self, team: &Team) -> StoreResult<()> {
        let key = self.keys.of_project(team.project_id).teams(team.project_id);
        self.hash_put(key, team.id, encode(team)?).await
    }

    async fn list_teams(&self, project_id: Id) -> StoreResult<Vec<Team>> {
        let key = self.keys.of_project(project_id).teams(project_id);
        let mut list: Vec<Team> = self.hash_values(key).await?;
        list.sort_by_key(|t| (t.created_at, t.id));
        Ok(list)
    }

    async fn get_team(&self, project_id: Id, id: Id) -> StoreResult<Option<Team>> {
        let key = self.keys.of_project(project_id).teams(project_id);
        self.hash_field(key, id).await
    }

    async fn delete_team(&self, project_id: Id, id: Id) -> StoreResult<bool> {
        let key = self.keys.of_project(project_id).teams(project_id);
        self.hash_delete(key, id).await
    }
}

impl RedisStore {
    /// Step 1 of every membership: the user's index lists the project.
    async fn index_membership(&self, user_id: Id, project_id: Id) -> StoreResult<()> {
        let index = self.keys.user_projects(user_id);
        let _: () = self
            .cmd(redis::cmd("SADD").arg(&index).arg(project_id.to_string()))
            .await?;
        self.replicated(&index).await
    }

    /// Replaces (`Some(json)`) or deletes (`None`) a teammate under its version check.
    async fn write_teammate(
        &self,
        teammate: &Teammate,
        expected_version: u64,
        json: Option<String>,
        event: EventType,
    ) -> StoreResult<()> {
        let (pid, tid) = (teammate.project_id, teammate.id);
        let k = self.keys.of_project(pid);
        let key = k.teammates(pid);
        let stays_owner = json.is_some() && teammate.is_active_owner();
        let mut invocation = WRITE_TEAMMATE.prepare_invoke();
        invocation
            .key(&key)
            .key(k.owners(pid))
            .key(k.teammate_by_user(pid))
            .key(k.presence(pid, tid))
            .key(k.presence_nodes(pid, tid))
            .key(k.leases())
            .key(k.presence_pending())
            .key(k.events())
            .key(k.event_seq())
            .arg(tid.to_string())
            .arg(expected_version)
            .arg(json.unwrap_or_default())
            .arg(if stays_owner { "1" } else { "0" })
            .arg(teammate.user_id.to_string())
            .arg(pid.to_string())
            .arg(event.as_str())
            .arg(self.retention);
        let outcome: String = self.script(&invocation).await?;
        script_outcome(&outcome)?;
        self.replicated(&key).await
    }
}
