//! Webhook subscriptions and their deliveries.

use super::{EventType, Id, Timestamp};
use serde::{Deserialize, Serialize};

/// What a subscription listens to (docs/protocol.md §8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum EventFilter {
    /// `*`: every event.
    All,
    /// One type. `project_user.update` also receives the presence and availability events, as in
    /// Tiledesk, where those were teammate updates.
    Type(EventType),
}

impl EventFilter {
    pub fn matches(&self, event: EventType) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Type(EventType::Update) => matches!(
                event,
                EventType::Update
                    | EventType::PresenceOnline
                    | EventType::PresenceOffline
                    | EventType::AvailabilityUpdate
            ),
            EventFilter::Type(t) => *t == event,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            EventFilter::All => "*",
            EventFilter::Type(t) => t.as_str(),
        }
    }
}

impl From<EventFilter> for String {
    fn from(f: EventFilter) -> String {
        f.as_str().to_string()
    }
}

impl TryFrom<String> for EventFilter {
    type Error = super::event::UnknownEventType;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s == "*" {
            return Ok(EventFilter::All);
        }
        s.parse().map(EventFilter::Type)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: Id,
    pub project_id: Id,
    pub event: EventFilter,
    pub target: String,
    /// `whsec_` + base64 of 32 random bytes; the signing key is the decoded bytes.
    pub secret: String,
    /// Turned off when a target answers 410 Gone.
    pub enabled: bool,
    pub created_by: Option<Id>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One try at delivering an event to a target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: Timestamp,
    /// The HTTP status, if the target answered.
    pub status: Option<u16>,
    /// Why the attempt failed without an answer (timeout, refused, private address, ...).
    pub error: Option<String>,
    pub duration_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answer.
    Delivered,
    /// Every attempt on the schedule failed.
    Failed,
    /// The target answered 410 Gone; the subscription was disabled.
    Gone,
    /// The subscription was deleted or disabled before the event could be delivered.
    Cancelled,
}

/// One event on its way to one subscription. Stored until it ends, then kept in the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: Id,
    pub project_id: Id,
    pub subscription_id: Id,
    pub event_id: Id,
    pub event_type: EventType,
    pub target: String,
    /// The request body, rendered once when the delivery is created.
    pub body: String,
    pub state: DeliveryState,
    pub attempts: Vec<Attempt>,
    pub created_at: Timestamp,
    /// When the next attempt is due (pending) or when it ended.
    pub updated_at: Timestamp,
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_subscriptions_also_get_presence_and_availability() {
        let update = EventFilter::Type(EventType::Update);
        assert!(update.matches(EventType::PresenceOnline));
        assert!(update.matches(EventType::AvailabilityUpdate));
        assert!(!update.matches(EventType::Disable));
        let online = EventFilter::Type(EventType::PresenceOnline);
        assert!(online.matches(EventType::PresenceOnline));
        assert!(!online.matches(EventType::PresenceOffline));
        assert!(EventFilter::All.matches(EventType::Restore));
        assert_eq!(
            EventFilter::try_from("*".to_string()).unwrap(),
            EventFilter::All
        );
        assert!(EventFilter::try_from("nope".to_string()).is_err());
    }
}
