//! `GET /v3/{pid}/project_users/routable`: who can take a chat now (docs/protocol.md §3).

use crate::domain::{Id, Presence, Role, Teammate};
use crate::error::Result;
use crate::http::extract::{parse_id, Json, Member};
use crate::http::params::ProjectPath;
use crate::state::AppState;
use crate::views::TeammateView;
use axum::extract::{RawQuery, State};
use serde_json::Value;

/// The filters of the list.
struct Filter {
    team: Option<Id>,
    channel: Option<String>,
}

impl Filter {
    fn parse(raw: Option<&str>) -> Result<Filter> {
        let mut filter = Filter {
            team: None,
            channel: None,
        };
        for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "team" => filter.team = Some(parse_id(&value, "team id")?),
                // A channel no connection has (the empty one included) keeps nobody.
                "channel" => filter.channel = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(filter)
    }

    fn keeps(&self, teammate: &Teammate, presence: &Presence) -> bool {
        teammate.is_routable(presence)
            && self.team.is_none_or(|team| teammate.teams.contains(&team))
            && self
                .channel
                .as_ref()
                .is_none_or(|channel| presence.channels.contains(channel))
    }
}

/// The routable teammates (online, available, not busy, active, not trashed), least loaded
/// first (ascending `number_assigned_requests`). Agent and up, or an API key of the project.
#[utoipa::path(get, path = "/v3/{pid}/project_users/routable", tag = "teammates",
    params(
        ProjectPath,
        ("team" = Option<uuid::Uuid>, Query, description = "only members of this (Dixa) team"),
        ("channel" = Option<String>, Query, description = "only teammates with a live connection on this channel"),
    ),
    responses((status = 200, description = "the routable teammates, least loaded first", body = Vec<TeammateView<'static>>)))]
pub async fn routable(
    State(state): State<AppState>,
    Member(access): Member,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>> {
    access.require(Role::Agent)?;
    let filter = Filter::parse(query.as_deref())?;
    let teammates = state.store.list_teammates(access.project.id).await?;
    let presences = state.presence_of(&teammates).await?;
    let mut kept: Vec<(Teammate, Presence)> = teammates
        .into_iter()
        .zip(presences)
        .filter(|(t, p)| filter.keeps(t, p))
        .collect();
    // Stable: equal loads keep the team's order (oldest teammate first).
    kept.sort_by_key(|(t, _)| t.number_assigned_requests);
    let (kept, kept_presences): (Vec<Teammate>, Vec<Presence>) = kept.into_iter().unzip();
    Ok(Json(Value::Array(
        state.render_teammates_with(&kept, &kept_presences).await?,
    )))
}
