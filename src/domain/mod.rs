//! Plain types and rules of the gateway: users, projects, teammates, roles, keys.
//!
//! Nothing here knows about HTTP, Redis or sockets. Wire formats live in `http/` and `ws/`;
//! persistence lives in `store/`. Keeping the rules here lets both storage engines and every API
//! family (Tiledesk, Dixa, Desk) share one definition of "what a teammate is".

mod api_key;
mod email;
mod event;
mod invitation;
mod limits;
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
pub use email::{is_plausible_email, normalize_email};
pub use event::{EventIds, EventType, LogPosition, LoggedEvent, UnknownEventType};
pub use invitation::PendingInvitation;
pub use limits::{
    check_profile_status, TooLarge, MAX_OBJECT_JSON_BYTES, MAX_PROFILE_STATUS_CHARS,
    MAX_TEAMS_PER_TEAMMATE,
};
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
