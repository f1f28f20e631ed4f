//! What a socket answers to each text frame a client sends: heartbeats, subscriptions and
//! availability changes (the session loop around it is in `session.rs`).

use super::frames::{self, frame_error, ClientFrame, FrameError};
use super::rate::RateLimiter;
use super::topics::{self, SocketTopics};
use crate::domain::{Id, Teammate};
use crate::listener_session::Holder;
use crate::service::{Access, Principal, TeammatePatch};
use crate::state::AppState;

/// Answers one text frame with zero or more frames.
pub(super) async fn answer(
    state: &AppState,
    caller: &Holder,
    subscriptions: &mut Option<Box<SocketTopics>>,
    limiter: &mut RateLimiter,
    project_id: Option<Id>,
    text: &str,
) -> Vec<String> {
    match frames::parse(text) {
        Err(e) => vec![frames::error(&e, None)],
        Ok(ClientFrame::Heartbeat) => vec![frames::heartbeat("pong")],
        Ok(ClientFrame::Pong) => Vec::new(),
        Ok(ClientFrame::Subscribe { topic, since }) => {
            let since = since.as_deref();
            topics::subscribe(state, caller, subscriptions, limiter, &topic, since).await
        }
        Ok(ClientFrame::Unsubscribe { topic }) => topics::unsubscribe(subscriptions, &topic),
        Ok(ClientFrame::Availability(payload)) => {
            match availability(state, caller.user_id, project_id, payload).await {
                Ok(frames) => frames,
                Err(e) => vec![frames::error(&e, None)],
            }
        }
    }
}

/// The `availability` frame: like `PUT /v3/{pid}/project_users/` for the payload's project, or
/// the socket's, or else every project where the user is an active teammate.
async fn availability(
    state: &AppState,
    user_id: Option<Id>,
    project_id: Option<Id>,
    payload: frames::AvailabilityPayload,
) -> Result<Vec<String>, FrameError> {
    let user_id =
        user_id.ok_or_else(|| FrameError::new("forbidden", "an API key has no availability"))?;
    let user = state
        .store
        .get_user(user_id)
        .await
        .map_err(|e| frame_error(e.into()))?
        .ok_or_else(|| FrameError::new("forbidden", "the user no longer exists"))?;
    let projects: Vec<Id> = match (payload.project_id.as_deref(), project_id) {
        (Some(raw), _) => vec![raw
            .parse()
            .map_err(|_| FrameError::new("invalid_payload", "project_id must be a UUID"))?],
        (None, Some(pid)) => vec![pid],
        (None, None) => state
            .store
            .list_user_teammates(user_id)
            .await
            .map_err(|e| frame_error(e.into()))?
            .into_iter()
            .filter(Teammate::is_active)
            .map(|t| t.project_id)
            .collect(),
    };
    if projects.is_empty() {
        return Err(FrameError::new(
            "not_found",
            "you are not an active teammate of any project",
        ));
    }
    let patch = TeammatePatch {
        user_available: payload.user_available,
        profile_status: payload.profile_status,
        ..Default::default()
    };
    let mut replies = Vec::with_capacity(projects.len());
    for pid in projects {
        let access = Access::resolve(state.store.as_ref(), Principal::User(user.clone()), pid)
            .await
            .map_err(frame_error)?;
        let teammate = state
            .teammates
            .update_own(&access, patch.clone())
            .await
            .map_err(frame_error)?;
        replies.push(frames::availability(
            &pid.to_string(),
            teammate.user_available,
            &teammate.profile_status,
        ));
    }
    Ok(replies)
}
