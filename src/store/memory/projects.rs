//! Projects, teammates and teams in the memory engine. Each write that changes a teammate appends
//! its event under the same lock, as the Redis scripts do in one step.

use super::{MemoryStore, State};
use crate::domain::{EventType, Id, Project, Team, Teammate};
use crate::store::{ProjectStore, StoreError, StoreResult};
use async_trait::async_trait;

#[async_trait]
impl ProjectStore for MemoryStore {
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
