//! The `publish` frames of the agent socket's topics (docs/protocol.md §5): a snapshot
//! (`CREATE`) or an event (`UPDATE`). The teammates and envelopes inside were serialized once, as
//! `RawValue`s, and go into every frame as they are.

use super::{RenderedEvent, Topic};
use serde::Serialize;
use serde_json::value::RawValue;

#[derive(Serialize)]
struct Frame<'a, M: Serialize + ?Sized> {
    action: &'static str,
    payload: Payload<'a, M>,
}

#[derive(Serialize)]
struct Payload<'a, M: Serialize + ?Sized> {
    topic: &'a str,
    method: &'static str,
    message: &'a M,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    resync: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    part: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parts: Option<usize>,
}

fn render<M: Serialize + ?Sized>(payload: Payload<'_, M>) -> String {
    let frame = Frame {
        action: "publish",
        payload,
    };
    // Serializing strings, numbers and raw JSON cannot fail.
    serde_json::to_string(&frame).unwrap_or_default()
}

/// `{"action":"publish","payload":{"topic":T,"method":"UPDATE","message":…,"event":…}}`.
pub fn update(topic: &Topic, event: &RenderedEvent) -> String {
    render(Payload {
        topic: &topic.to_string(),
        method: "UPDATE",
        message: &*event.payload,
        event: Some(&event.envelope),
        resync: false,
        part: None,
        parts: None,
    })
}

/// A `CREATE` frame: the whole snapshot, or with `part` = (its number from 1, how many) one part
/// of a large team's.
pub fn create<M: Serialize + ?Sized>(
    topic: &str,
    message: &M,
    resync: bool,
    part: Option<(usize, usize)>,
) -> String {
    render(Payload {
        topic,
        method: "CREATE",
        message,
        event: None,
        resync,
        part: part.map(|(part, _)| part),
        parts: part.map(|(_, parts)| parts),
    })
}
