//! Plain types and rules of the gateway: users, projects, teammates, roles, keys.
//!
//! Nothing here knows about HTTP, Redis or sockets. Wire formats live in `http/` and `ws/`;
//! persistence lives in `store/`. Keeping the rules here lets both storage engines and every API
//! family (Tiledesk, Dixa, Desk) share one definition of "what a teammate is".

mod api_key;
mod event;
mod invitation;
mod partition;
mod presence;
mod project;
mod role;
mod team;
mod teammate;
mod time;
mod user;
mod webhook;

pub use api_key::ApiKey;
pub use event::{EventIds, EventType, LogPosition, LoggedEvent, UnknownEventType};
pub use invitation::PendingInvitation;
pub use partition::{Partition, Partitions, MAX_PARTITIONS};
pub use presence::{Edge, PresenceKey, PresenceWrite, SettleOutcome, Transition, WriteOutcome};
pub use project::Project;
pub use role::{ParseRoleError, Role};
pub use team::{Team, MAX_TEAM_NAME_LEN};
pub use teammate::{Presence, PresenceStatus, Teammate, TeammateStatus};
pub use time::Timestamp;
pub use user::User;
pub use webhook::{Attempt, Delivery, DeliveryState, EventFilter, Subscription};

/// Every identifier in the gateway is a UUID (v4), rendered as a hyphenated string.
pub type Id = uuid::Uuid;

/// A fresh random identifier.
pub fn new_id() -> Id {
    uuid::Uuid::new_v4()
}

/// Emails match case-insensitively everywhere, so they are stored and compared lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A deliberately small check: something, an `@`, something with a dot-free-or-dotted domain.
/// Full RFC 5322 validation rejects real addresses more often than it catches typos.
pub fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(normalize_email("  Ann@Example.COM "), "ann@example.com");
        assert!(is_plausible_email("ann@example.com"));
        assert!(!is_plausible_email("ann.example.com"));
        assert!(!is_plausible_email("@example.com"));
        assert!(!is_plausible_email("ann@"));
        assert!(!is_plausible_email("a b@example.com"));
        assert!(!is_plausible_email("a@b@c"));
    }
}
