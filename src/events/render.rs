//! The wire form of an event (docs/protocol.md §6): one envelope, rendered once per node and shared
//! by every subscriber on it.

use crate::domain::{
    EventIds, EventType, Id, LogPosition, LoggedEvent, Presence, Team, Teammate, Timestamp, User,
};
use crate::views::{PresenceView, TeammateView};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// An event ready to send: ids for routing, and the JSON it travels as.
#[derive(Debug)]
pub struct RenderedEvent {
    pub position: LogPosition,
    pub id: Id,
    pub event_type: EventType,
    pub project_id: Id,
    pub teammate_id: Id,
    pub user_id: Id,
    /// The (Dixa) teams whose topics carry the event: for a membership change, the team joined
    /// or left; otherwise every team the teammate was or is in.
    pub teams: Vec<Id>,
    pub at: Timestamp,
    /// The teammate JSON after the change (the envelope's `payload`, a frame's `message`).
    pub payload: Box<RawValue>,
    /// The whole envelope.
    pub envelope: Box<RawValue>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    id: String,
    #[serde(rename = "type")]
    event_type: &'static str,
    timestamp: Timestamp,
    project_id: String,
    project_user_id: String,
    user_id: String,
    seq: u64,
    payload: &'a Value,
    previous: Map<String, Value>,
    /// For team membership events: the team, `{"id","name"}` (no name once it is deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<Value>,
}

/// Renders one logged event. `user` is the teammate's user as it is now (the log keeps the
/// teammate, not the user); `team` is the team of a membership event, if it still exists.
pub fn render(
    ids: &EventIds,
    event: &LoggedEvent,
    user: Option<&User>,
    team: Option<&Team>,
) -> RenderedEvent {
    let teammate = &event.teammate;
    let teams = teams_of(event);
    let team = event.event_type.is_team_membership().then(|| {
        let id = teams.first().copied().unwrap_or_default();
        match team {
            Some(team) => serde_json::json!({"id": id.to_string(), "name": team.name}),
            None => serde_json::json!({"id": id.to_string()}),
        }
    });
    let payload = teammate_json(teammate, user, &event.presence);
    let envelope = Envelope {
        id: ids.id_of(event.position).to_string(),
        event_type: event.event_type.as_str(),
        timestamp: event.at,
        project_id: teammate.project_id.to_string(),
        project_user_id: teammate.id.to_string(),
        user_id: teammate.user_id.to_string(),
        seq: event.seq,
        payload: &payload,
        previous: previous(event, user),
        team,
    };
    RenderedEvent {
        position: event.position,
        id: ids.id_of(event.position),
        event_type: event.event_type,
        project_id: teammate.project_id,
        teammate_id: teammate.id,
        user_id: teammate.user_id,
        teams,
        at: event.at,
        envelope: raw(&envelope),
        payload: raw(&payload),
    }
}

/// JSON serialized once, to be shared as it is (serializing a view cannot fail: an empty object
/// stands in if it ever did).
fn raw<T: Serialize>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value)
        .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("{} is JSON"))
}

/// The teams an event concerns (see [`RenderedEvent::teams`]).
pub fn teams_of(event: &LoggedEvent) -> Vec<Id> {
    let after = &event.teammate.teams;
    let before = event
        .before
        .as_ref()
        .map(|b| b.teams.as_slice())
        .unwrap_or(&[]);
    let mut teams: Vec<Id> = if event.event_type.is_team_membership() {
        // The symmetric difference: the team joined or left.
        after
            .iter()
            .filter(|t| !before.contains(t))
            .chain(before.iter().filter(|t| !after.contains(t)))
            .copied()
            .collect()
    } else {
        after.iter().chain(before).copied().collect()
    };
    teams.sort_unstable();
    teams.dedup();
    teams
}

fn teammate_json(teammate: &Teammate, user: Option<&User>, presence: &Presence) -> Value {
    serde_json::to_value(TeammateView::new(teammate, user, presence)).unwrap_or_default()
}

/// `previous`: the top-level fields that changed, with their old values, plus `updatedAt`; for a
/// change of presence, the old `presence` object (docs/protocol.md §6).
fn previous(event: &LoggedEvent, user: Option<&User>) -> Map<String, Value> {
    let mut previous = Map::new();
    if let Some(before) = &event.before {
        // Both sides rendered with the same user and presence, so only the record's own fields
        // can differ.
        let Value::Object(old) = teammate_json(before, user, &event.presence) else {
            return previous;
        };
        let Value::Object(new) = teammate_json(&event.teammate, user, &event.presence) else {
            return previous;
        };
        for (field, old_value) in old {
            if new.get(&field) != Some(&old_value) || field == "updatedAt" {
                previous.insert(field, old_value);
            }
        }
    }
    if let Some(presence) = &event.presence_before {
        let view = PresenceView::from(presence);
        previous.insert(
            "presence".into(),
            serde_json::to_value(view).unwrap_or_default(),
        );
    }
    // `routable` depends on the record and the presence, so it is compared across both (the loop
    // above compared records under one presence).
    let before = event.before.as_ref().unwrap_or(&event.teammate);
    let presence_before = event.presence_before.as_ref().unwrap_or(&event.presence);
    let was = before.is_routable(presence_before);
    if was != event.teammate.is_routable(&event.presence) {
        previous.insert("routable".into(), Value::Bool(was));
    } else {
        previous.remove("routable");
    }
    previous
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PresenceKey, PresenceStatus, Role};

    fn logged(event_type: EventType, before: Option<Teammate>, after: Teammate) -> LoggedEvent {
        LoggedEvent {
            position: LogPosition {
                partition: 0,
                millis: 5,
                n: 0,
            },
            event_type,
            key: PresenceKey {
                project_id: after.project_id,
                teammate_id: after.id,
            },
            seq: 3,
            at: Timestamp::from_millis(5),
            presence: Presence::never_connected(after.created_at),
            teammate: after,
            before,
            presence_before: None,
        }
    }

    #[test]
    fn previous_holds_changed_fields_and_updated_at() {
        let before = Teammate::new(
            crate::domain::new_id(),
            crate::domain::new_id(),
            Role::Agent,
            None,
        );
        let mut after = before.clone();
        after.user_available = false;
        after.updated_at = Timestamp::from_millis(before.updated_at.as_millis() + 10);
        let event = logged(EventType::AvailabilityUpdate, Some(before.clone()), after);
        let rendered = render(&EventIds::new(9), &event, None, None);
        let envelope: Value = serde_json::from_str(rendered.envelope.get()).unwrap();
        assert_eq!(envelope["type"], "availability.update");
        assert_eq!(envelope["seq"], 3);
        assert_eq!(envelope["payload"]["user_available"], false);
        let previous = envelope["previous"].as_object().unwrap();
        let keys: Vec<&str> = previous.keys().map(String::as_str).collect();
        assert_eq!(keys, ["user_available", "updatedAt"]);
        assert_eq!(previous["user_available"], true);
        assert_eq!(
            EventIds::new(9).position_of(envelope["id"].as_str().unwrap().parse().unwrap()),
            Some(event.position)
        );
    }

    #[test]
    fn presence_events_carry_the_old_presence() {
        let t = Teammate::new(
            crate::domain::new_id(),
            crate::domain::new_id(),
            Role::Agent,
            None,
        );
        let mut event = logged(EventType::PresenceOnline, None, t.clone());
        event.presence.status = PresenceStatus::Online;
        event.presence_before = Some(Presence::never_connected(t.created_at));
        let rendered = render(&EventIds::new(1), &event, None, None);
        let envelope: Value = serde_json::from_str(rendered.envelope.get()).unwrap();
        assert_eq!(envelope["payload"]["presence"]["status"], "online");
        assert_eq!(envelope["previous"]["presence"]["status"], "offline");
        // An available teammate that comes online becomes routable, and `previous` says so.
        assert_eq!(envelope["payload"]["routable"], true);
        assert_eq!(envelope["previous"]["routable"], false);
        assert_eq!(envelope["previous"].as_object().unwrap().len(), 2);
    }
}
