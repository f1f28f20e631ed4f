//! Topics a client can subscribe to (docs/protocol.md §5), and which topics an event is published
//! on.

use super::RenderedEvent;
use crate::domain::{EventType, Id, Role};
use crate::error::{Error, Result};
use crate::service::Access;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopicKind {
    /// `/{pid}/project_users`: the whole project team.
    ProjectUsers,
    /// `/{pid}/project_users/{puid}`: one teammate.
    Teammate(Id),
    /// `/{pid}/project_users/users/{user_id}`: the teammate of one user.
    User(Id),
    /// `/{pid}/events`: every event of the project.
    Events,
    /// `/{pid}/teams/{team_id}`: a (Dixa) team's membership changes (including members removed
    /// from the project), and its members' presence and availability changes.
    Team(Id),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Topic {
    pub project_id: Id,
    pub kind: TopicKind,
}

impl Topic {
    /// Parses a topic path; `None` if it is not one of the four forms or an id is not a UUID.
    pub fn parse(text: &str) -> Option<Topic> {
        let parts: Vec<&str> = text.strip_prefix('/')?.split('/').collect();
        let project_id = parts.first()?.parse().ok()?;
        let kind = match parts[1..] {
            ["project_users"] => TopicKind::ProjectUsers,
            ["teams", team] => TopicKind::Team(team.parse().ok()?),
            ["project_users", "users", user] => TopicKind::User(user.parse().ok()?),
            ["project_users", teammate] => TopicKind::Teammate(teammate.parse().ok()?),
            ["events"] => TopicKind::Events,
            _ => return None,
        };
        Some(Topic { project_id, kind })
    }

    /// The topics an event is published on.
    pub fn of(event: &RenderedEvent) -> Vec<Topic> {
        let project_id = event.project_id;
        let fixed = [
            TopicKind::ProjectUsers,
            TopicKind::Teammate(event.teammate_id),
            TopicKind::User(event.user_id),
            TopicKind::Events,
        ];
        let teams = event.teams.iter().map(|id| TopicKind::Team(*id));
        fixed
            .into_iter()
            .chain(teams)
            .map(|kind| Topic { project_id, kind })
            .filter(|topic| topic.matches(event))
            .collect()
    }

    pub fn matches(&self, event: &RenderedEvent) -> bool {
        self.project_id == event.project_id
            && match self.kind {
                TopicKind::ProjectUsers | TopicKind::Events => true,
                TopicKind::Teammate(id) => id == event.teammate_id,
                TopicKind::User(id) => id == event.user_id,
                TopicKind::Team(id) => {
                    event.teams.contains(&id)
                        && (event.event_type.is_presence()
                            || event.event_type.is_team_membership()
                            // Trash and hard delete take the teammate out of its teams.
                            || event.event_type == EventType::Delete
                            || event.event_type == EventType::AvailabilityUpdate)
                }
            }
    }

    /// Who may subscribe: the project team, a (Dixa) team and the event stream need agent or
    /// above (an API key of the project qualifies); one teammate needs to be that teammate or
    /// admin and above; a user's teammate is visible to any member.
    pub fn authorize(&self, access: &Access) -> Result<()> {
        match self.kind {
            TopicKind::ProjectUsers | TopicKind::Events | TopicKind::Team(_) => {
                access.require(Role::Agent)
            }
            TopicKind::User(_) => Ok(()),
            TopicKind::Teammate(id) => {
                if access.teammate.as_ref().is_some_and(|t| t.id == id) {
                    Ok(())
                } else {
                    access.require(Role::Admin).map_err(|_| {
                        Error::forbidden("only admins may watch another teammate's topic")
                    })
                }
            }
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pid = self.project_id;
        match self.kind {
            TopicKind::ProjectUsers => write!(f, "/{pid}/project_users"),
            TopicKind::Team(id) => write!(f, "/{pid}/teams/{id}"),
            TopicKind::Teammate(id) => write!(f, "/{pid}/project_users/{id}"),
            TopicKind::User(id) => write!(f, "/{pid}/project_users/users/{id}"),
            TopicKind::Events => write!(f, "/{pid}/events"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_and_print_back() {
        let pid = crate::domain::new_id();
        let id = crate::domain::new_id();
        for text in [
            format!("/{pid}/project_users"),
            format!("/{pid}/project_users/{id}"),
            format!("/{pid}/project_users/users/{id}"),
            format!("/{pid}/events"),
            format!("/{pid}/teams/{id}"),
        ] {
            let topic = Topic::parse(&text).unwrap();
            assert_eq!(topic.to_string(), text);
        }
        for bad in [
            "".to_string(),
            "/nope/project_users".to_string(),
            format!("/{pid}/project_users/not-a-uuid"),
            format!("/{pid}/requests"),
            format!("{pid}/events"),
            format!("/{pid}/events/extra"),
        ] {
            assert!(Topic::parse(&bad).is_none(), "{bad}");
        }
    }
}
