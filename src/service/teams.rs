//! Teammates of agents (the Dixa API): named groups of a project's teammates.
//!
//! A team is its own record; membership is a list on each teammate (`Teammate::teams`), changed
//! through the teammate mutate loop, so every join and leave is one teammate change with one
//! `team.member_added` / `team.member_removed` event, atomic with it. Removing a teammate from
//! the project (trash, hard delete) takes it out of every team; deleting a team takes every
//! member out of it (one `team.member_removed` each) and keeps the teammates.

use super::{Access, Teammates};
use crate::domain::{self, Id, Role, Team, Teammate, Timestamp, MAX_TEAM_NAME_LEN};
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Teams {
    teammates: Teammates,
}

impl Teams {
    pub fn new(teammates: Teammates) -> Self {
        Teams { teammates }
    }

    /// Creates a team (admin+).
    pub async fn create(&self, access: &Access, name: &str) -> Result<Team> {
        access.require(Role::Admin)?;
        // The length counts what was sent (as the OpenAPI schema says); the name kept is trimmed.
        let too_long = name.chars().count() > MAX_TEAM_NAME_LEN;
        let name = name.trim();
        if name.is_empty() || too_long {
            return Err(Error::bad_request(format!(
                "name must be 1 to {MAX_TEAM_NAME_LEN} characters"
            )));
        }
        let team = Team {
            id: domain::new_id(),
            project_id: access.project.id,
            name: name.to_string(),
            created_at: Timestamp::now(),
        };
        self.teammates.store().put_team(&team).await?;
        Ok(team)
    }

    /// The project's teams, oldest first (agent+).
    pub async fn list(&self, access: &Access) -> Result<Vec<Team>> {
        access.require(Role::Agent)?;
        Ok(self.teammates.store().list_teams(access.project.id).await?)
    }

    /// One team of the project (agent+); 404 if it is not there.
    pub async fn get(&self, access: &Access, id: Id) -> Result<Team> {
        access.require(Role::Agent)?;
        self.teammates
            .store()
            .get_team(access.project.id, id)
            .await?
            .ok_or_else(|| Error::not_found("team"))
    }

    /// The team's members, ordered by user id (agent+).
    pub async fn members(&self, access: &Access, id: Id) -> Result<Vec<Teammate>> {
        let team = self.get(access, id).await?;
        let mut members: Vec<Teammate> = self
            .teammates
            .store()
            .list_teammates(team.project_id)
            .await?
            .into_iter()
            .filter(|t| t.teams.binary_search(&team.id).is_ok())
            .collect();
        members.sort_by_key(|t| t.user_id);
        Ok(members)
    }

    /// Deletes a team (admin+): its members leave it (with their events), the teammates stay.
    pub async fn delete(&self, access: &Access, id: Id) -> Result<()> {
        access.require(Role::Admin)?;
        for member in self.members(access, id).await? {
            self.set_membership(access, &member, id, false).await?;
        }
        if !self
            .teammates
            .store()
            .delete_team(access.project.id, id)
            .await?
        {
            return Err(Error::not_found("team"));
        }
        Ok(())
    }

    /// Adds users (by user id) to a team (admin+). Every id must be a teammate of the project
    /// that is not trashed, or nothing is added (400). Members already in it stay as they are.
    pub async fn add_members(&self, access: &Access, id: Id, user_ids: &[Id]) -> Result<()> {
        self.change_members(access, id, user_ids, true).await
    }

    /// Removes users (by user id) from a team (admin+). Every id must be a teammate of the
    /// project, or nothing is removed (400); ids not in the team are ignored.
    pub async fn remove_members(&self, access: &Access, id: Id, user_ids: &[Id]) -> Result<()> {
        self.change_members(access, id, user_ids, false).await
    }

    async fn change_members(
        &self,
        access: &Access,
        id: Id,
        user_ids: &[Id],
        member: bool,
    ) -> Result<()> {
        access.require(Role::Admin)?;
        let team = self.get(access, id).await?;
        let mut user_ids = user_ids.to_vec();
        user_ids.sort_unstable();
        user_ids.dedup();
        // Check every id first, so that a bad one changes nothing.
        let mut teammates = Vec::with_capacity(user_ids.len());
        for user_id in user_ids {
            let teammate = self
                .teammates
                .store()
                .find_teammate_by_user(team.project_id, user_id)
                .await?
                .filter(|t| !member || !t.trashed)
                .ok_or_else(|| {
                    Error::bad_request(format!("{user_id} is not a teammate of the project"))
                })?;
            teammates.push(teammate);
        }
        for teammate in &teammates {
            self.set_membership(access, teammate, team.id, member)
                .await?;
        }
        Ok(())
    }

    async fn set_membership(
        &self,
        access: &Access,
        teammate: &Teammate,
        team: Id,
        member: bool,
    ) -> Result<Teammate> {
        self.teammates
            .set_team_membership(access.project.id, teammate.id, team, member)
            .await
    }
}
