//! Events: one per teammate change, kept in an ordered, bounded log shared by the cluster.
//!
//! The store appends a [`LoggedEvent`] in the same atomic step as the change it describes, and
//! assigns the teammate's `seq` there, so `seq` is strictly increasing cluster-wide and no change
//! can happen without its event. Events are *facts* (the teammate before and after, the presence
//! before and after); their wire form (the envelope of docs/protocol.md §6) is rendered by
//! `events/`.

use super::{Partition, Presence, PresenceKey, Teammate, Timestamp};
use std::fmt;
use std::str::FromStr;

/// The kinds of change (docs/protocol.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    PresenceOnline,
    PresenceOffline,
    AvailabilityUpdate,
    Invite,
    Update,
    Disable,
    Delete,
    Restore,
    TeamMemberAdded,
    TeamMemberRemoved,
}

impl EventType {
    pub const ALL: [EventType; 10] = [
        EventType::PresenceOnline,
        EventType::PresenceOffline,
        EventType::AvailabilityUpdate,
        EventType::Invite,
        EventType::Update,
        EventType::Disable,
        EventType::Delete,
        EventType::Restore,
        EventType::TeamMemberAdded,
        EventType::TeamMemberRemoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PresenceOnline => "presence.online",
            EventType::PresenceOffline => "presence.offline",
            EventType::AvailabilityUpdate => "availability.update",
            EventType::Invite => "project_user.invite",
            EventType::Update => "project_user.update",
            EventType::Disable => "project_user.disable",
            EventType::Delete => "project_user.delete",
            EventType::Restore => "project_user.restore",
            EventType::TeamMemberAdded => "team.member_added",
            EventType::TeamMemberRemoved => "team.member_removed",
        }
    }

    pub fn is_presence(self) -> bool {
        matches!(self, EventType::PresenceOnline | EventType::PresenceOffline)
    }

    pub fn is_team_membership(self) -> bool {
        matches!(
            self,
            EventType::TeamMemberAdded | EventType::TeamMemberRemoved
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventType(pub String);

/// Where an event sits in the log: its partition's stream and, in it, the Redis stream id
/// `ms-n` (the memory engine makes the same kind of ids, in its one partition). Positions of one
/// partition are ordered, and every node sees the same ones; positions of two partitions are not
/// comparable in any useful way (their order is by partition first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition {
    pub partition: Partition,
    pub millis: u64,
    pub n: u64,
}

impl LogPosition {
    /// Before every event of `partition`.
    pub fn start(partition: Partition) -> LogPosition {
        LogPosition {
            partition,
            millis: 0,
            n: 0,
        }
    }

    /// The position right after this one, the next id a log could assign in the same
    /// millisecond.
    pub fn successor(self) -> LogPosition {
        LogPosition {
            n: self.n + 1,
            ..self
        }
    }

    /// The stream id `ms-n` in `partition`; `None` if it is not one.
    pub fn parse(partition: Partition, stream_id: &str) -> Option<LogPosition> {
        let (millis, n) = stream_id.split_once('-')?;
        Some(LogPosition {
            partition,
            millis: millis.parse().ok()?,
            n: n.parse().ok()?,
        })
    }

    /// The stream id `ms-n` (without the partition, which names the stream).
    pub fn stream_id(self) -> String {
        format!("{}-{}", self.millis, self.n)
    }
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}-{}", self.partition, self.millis, self.n)
    }
}

/// One change, as the log keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedEvent {
    pub position: LogPosition,
    pub event_type: EventType,
    pub key: PresenceKey,
    /// Per teammate, strictly increasing, assigned atomically with the change.
    pub seq: u64,
    pub at: Timestamp,
    /// The teammate after the change (for a hard delete: as it was when deleted).
    pub teammate: Teammate,
    /// The teammate before the change, for changes to the teammate record itself.
    pub before: Option<Teammate>,
    /// The teammate's presence after the change.
    pub presence: Presence,
    /// The presence before the change, when the change altered it.
    pub presence_before: Option<Presence>,
}

/// Event ids are UUIDs that *encode* the log position, so `since=<event id>` finds its place in
/// the log without an index, and every node derives the same id for the same event.
///
/// Layout (UUID version 7, RFC 9562): 48 bits of the position's milliseconds, the version, 12
/// bits of the deployment's salt, the variant, 20 more bits of salt, 10 bits of partition and 32
/// bits of the position's counter. The salt (random per deployment, kept in the store) keeps two
/// deployments from issuing equal ids to one webhook receiver, and lets a foreign or forged id be
/// recognised as unknown instead of being read as a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventIds {
    salt: u64,
}

const SALT_LOW_MASK: u64 = 0xfff;
const SALT_HIGH_MASK: u64 = 0xf_ffff;
const PARTITION_MASK: u128 = 0x3ff;

impl EventIds {
    pub fn new(salt: u64) -> Self {
        EventIds { salt }
    }

    pub fn id_of(&self, position: LogPosition) -> uuid::Uuid {
        let low = u128::from(self.salt & SALT_LOW_MASK);
        let high = u128::from((self.salt >> 12) & SALT_HIGH_MASK);
        let millis = u128::from(position.millis & 0xffff_ffff_ffff);
        let partition = u128::from(position.partition) & PARTITION_MASK;
        let n = u128::from(position.n & 0xffff_ffff);
        let value =
            millis << 80 | 0x7 << 76 | low << 64 | 0b10 << 62 | high << 42 | partition << 32 | n;
        uuid::Uuid::from_u128(value)
    }

    /// The position an id of this deployment encodes; `None` for any other UUID.
    pub fn position_of(&self, id: uuid::Uuid) -> Option<LogPosition> {
        let value = id.as_u128();
        let position = LogPosition {
            partition: ((value >> 32) & PARTITION_MASK) as Partition,
            millis: (value >> 80) as u64,
            n: (value & 0xffff_ffff) as u64,
        };
        (self.id_of(position) == id).then_some(position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip_and_refuse_foreign_ids() {
        let ids = EventIds::new(0x1234_5678_9abc_def0);
        let position = LogPosition {
            partition: 1023,
            millis: 1_764_000_000_123,
            n: 7,
        };
        let id = ids.id_of(position);
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(ids.position_of(id), Some(position));
        assert_eq!(EventIds::new(1).position_of(id), None, "another salt");
        assert_eq!(ids.position_of(uuid::Uuid::new_v4()), None);
        let later = ids.id_of(position.successor());
        assert_ne!(id, later);
        assert!(later > id, "ids sort like positions");
        let elsewhere = LogPosition {
            partition: 3,
            ..position
        };
        assert_eq!(ids.position_of(ids.id_of(elsewhere)), Some(elsewhere));
        assert_ne!(ids.id_of(elsewhere), id);
    }

    #[test]
    fn positions_parse_and_order() {
        let a = LogPosition::parse(2, "1764000000123-0").unwrap();
        let b = LogPosition::parse(2, "1764000000123-1").unwrap();
        assert!(a < b);
        assert_eq!(a.stream_id(), "1764000000123-0");
        assert_eq!(a.to_string(), "2/1764000000123-0");
        assert!(LogPosition::parse(0, "x-1").is_none());
    }

    #[test]
    fn event_types_parse_back() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
        }
        assert!("presence.maybe".parse::<EventType>().is_err());
    }
}
