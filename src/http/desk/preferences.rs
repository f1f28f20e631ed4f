//! The Desk preferences kept in a teammate's `settings.desk`, and the one rule for what each
//! may hold: the update checks incoming values with it, and the answer with it shows a stored
//! value (which the Tiledesk API can replace with any JSON) only if it passes.

use serde_json::{json, Value};

/// Every preference, in the order their errors are listed.
pub const NAMES: [&str; 8] = [
    "timezoneId",
    "editMethod",
    "ticketReplyRedirect",
    "isPartTime",
    "reviewer",
    "sendPushNotifications",
    "sendWebNotifications",
    "autoFollowOnCC",
];

/// `(preference, allowed values)` of the string preferences; the others but `timezoneId` are
/// booleans.
const CHOICES: [(&str, &[&str]); 2] = [
    ("editMethod", &["html", "markdown"]),
    ("ticketReplyRedirect", &["Stay", "Next", "Inbox"]),
];

/// The value this API keeps for the preference `name` (one of [`NAMES`]) when given `value`
/// (a whole `timezoneId` as an integer), or the message that says why `value` is refused.
pub fn accept(name: &str, value: &Value) -> Result<Value, String> {
    if name == "timezoneId" {
        let id = value.as_number().and_then(super::super::extract::integral);
        return match id {
            Some(id) if id >= 0 => Ok(json!(id)),
            _ => Err("timezoneId must be a whole number, 0 or more".into()),
        };
    }
    if let Some((_, allowed)) = CHOICES.iter().find(|(choice, _)| *choice == name) {
        return match value.as_str() {
            Some(choice) if allowed.contains(&choice) => Ok(json!(choice)),
            _ => Err(format!("{name} must be one of {}", allowed.join(", "))),
        };
    }
    match value.as_bool() {
        Some(flag) => Ok(json!(flag)),
        None => Err(format!("{name} must be true or false")),
    }
}
