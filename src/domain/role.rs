//! The role ladder: each role includes every role below it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Ordered from least to most privileged, so `role >= Role::Admin` reads as "admin or above".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Guest,
    User,
    Agent,
    Supervisor,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Guest,
        Role::User,
        Role::Agent,
        Role::Supervisor,
        Role::Admin,
        Role::Owner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::User => "user",
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Roles an admin may hand out through an invitation.
    pub fn is_invitable(self) -> bool {
        matches!(self, Role::Agent | Role::Supervisor | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}` (expected one of owner, admin, supervisor, agent, user, guest)")]
pub struct ParseRoleError(pub String);

impl FromStr for Role {
    type Err = ParseRoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ParseRoleError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_is_ordered() {
        assert!(Role::Owner > Role::Admin);
        assert!(Role::Admin > Role::Supervisor);
        assert!(Role::Supervisor > Role::Agent);
        assert!(Role::Agent > Role::User);
        assert!(Role::User > Role::Guest);
    }

    #[test]
    fn parses_and_prints() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }
}
