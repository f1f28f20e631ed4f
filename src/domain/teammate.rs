//! A teammate (Tiledesk `project_user`): a user's membership of one project, with a role,
//! a chosen availability and a presence.

use super::{Id, Role, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeammateStatus {
    Active,
    Disabled,
}

impl TeammateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TeammateStatus::Active => "active",
            TeammateStatus::Disabled => "disabled",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Teammate {
    pub id: Id,
    pub project_id: Id,
    pub user_id: Id,
    pub role: Role,
    pub user_available: bool,
    pub profile_status: String,
    /// Concurrent chats allowed; 0 or less means "no limit".
    pub max_served_chat: i64,
    pub number_assigned_requests: i64,
    pub status: TeammateStatus,
    pub trashed: bool,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub tags: Vec<serde_json::Value>,
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub created_by: Option<Id>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The (Dixa) teams this teammate belongs to, sorted, without duplicates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<Id>,
    /// Optimistic-concurrency counter: every stored write must name the version it replaces, so
    /// two nodes updating one teammate at once cannot silently overwrite each other.
    #[serde(default)]
    pub version: u64,
}

impl Teammate {
    pub fn new(project_id: Id, user_id: Id, role: Role, created_by: Option<Id>) -> Self {
        let now = Timestamp::now();
        Teammate {
            id: super::new_id(),
            project_id,
            user_id,
            role,
            user_available: true,
            profile_status: String::new(),
            max_served_chat: 0,
            number_assigned_requests: 0,
            status: TeammateStatus::Active,
            trashed: false,
            attributes: Default::default(),
            tags: Vec::new(),
            settings: Default::default(),
            created_by,
            created_at: now,
            updated_at: now,
            teams: Vec::new(),
            version: 1,
        }
    }

    /// Active teammates may use the project; disabled and trashed ones get 403 and never count
    /// towards presence.
    pub fn is_active(&self) -> bool {
        self.status == TeammateStatus::Active && !self.trashed
    }

    /// An owner that still holds the project. The last one can be neither removed nor demoted.
    pub fn is_active_owner(&self) -> bool {
        self.role == Role::Owner && self.is_active()
    }

    /// Removes the teammate from the project, restorably (Tiledesk's soft delete): it leaves
    /// every team.
    pub fn trash(&mut self) {
        self.trashed = true;
        self.teams.clear();
    }

    /// Brings a teammate back, active (from trashed, or disabled).
    pub fn reactivate(&mut self) {
        self.trashed = false;
        self.status = TeammateStatus::Active;
    }

    /// Joins a team; `false` if already a member.
    pub fn join_team(&mut self, team: Id) -> bool {
        match self.teams.binary_search(&team) {
            Ok(_) => false,
            Err(at) => {
                self.teams.insert(at, team);
                true
            }
        }
    }

    /// Leaves a team; `false` if not a member.
    pub fn leave_team(&mut self, team: Id) -> bool {
        match self.teams.binary_search(&team) {
            Ok(at) => {
                self.teams.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// `max_served_chat > 0 && number_assigned_requests >= max_served_chat` (docs/protocol.md §3).
    pub fn is_busy(&self) -> bool {
        self.max_served_chat > 0 && self.number_assigned_requests >= self.max_served_chat
    }

    /// Whether a router may hand the teammate a chat now: online, available, not busy, active and
    /// not trashed (docs/protocol.md §3). During the grace period it is still online, so still
    /// routable: a reconnect within it changes nothing.
    pub fn is_routable(&self, presence: &Presence) -> bool {
        presence.status == PresenceStatus::Online
            && self.user_available
            && !self.is_busy()
            && self.is_active()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    Online,
    Offline,
}

impl PresenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Offline => "offline",
        }
    }
}

/// The live presence of a teammate, as counted across every node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub status: PresenceStatus,
    pub changed_at: Timestamp,
    pub connections: u64,
    pub channels: Vec<String>,
    pub last_seen_at: Option<Timestamp>,
}

impl Presence {
    /// The presence of a teammate that has never connected.
    pub fn never_connected(since: Timestamp) -> Self {
        Presence {
            status: PresenceStatus::Offline,
            changed_at: since,
            connections: 0,
            channels: Vec::new(),
            last_seen_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn teammate() -> Teammate {
        Teammate::new(
            super::super::new_id(),
            super::super::new_id(),
            Role::Agent,
            None,
        )
    }

    #[test]
    fn busy_only_with_a_positive_limit() {
        let mut t = teammate();
        t.number_assigned_requests = 5;
        assert!(!t.is_busy(), "0 means unlimited");
        t.max_served_chat = 5;
        assert!(t.is_busy());
        t.max_served_chat = 6;
        assert!(!t.is_busy());
    }

    #[test]
    fn activity_follows_status_and_trash() {
        let mut t = teammate();
        assert!(t.is_active());
        t.trashed = true;
        assert!(!t.is_active());
        t.trashed = false;
        t.status = TeammateStatus::Disabled;
        assert!(!t.is_active());
        t.status = TeammateStatus::Active;
        t.role = Role::Owner;
        assert!(t.is_active_owner());
    }
}
