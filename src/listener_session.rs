//! What an agent socket (`ws/`) and an SSE stream (`http/tiledesk/events.rs`) share: one
//! listener session, from the credential to the end.
//!
//! 1. [`Opening::authenticate`]: marks where the session starts heeding revocations (before any
//!    access is checked, so a revocation during the handshake is not missed), then authenticates
//!    the credential: `?token=` wins over `Authorization` (docs/protocol.md §1).
//! 2. The caller checks access with the topic rule (`Topic::authorize`) or, for a socket, the
//!    teammates it counts for.
//! 3. [`Opening::admit`]: takes the session's place in the connection limits (per user or API key,
//!    and per node), keeps an API key watched by the node while the session lives, and holds the
//!    node's task tracker open until the session ends.
//! 4. While it runs, the session waits on the node's heartbeat clock, which wakes it when access
//!    was revoked somewhere ([`ListenerSession::revoked`] says whether it is concerned) and when
//!    the node stops (the clock relays the node's [`CancellationToken`](tokio_util::sync)).

use crate::domain::{ApiKey, Id};
use crate::error::Error;
use crate::events::KeyWatch;
use crate::presence::{Held, TooManyConnections, UserSlot};
use crate::service::Principal;
use crate::state::AppState;
use axum::http::HeaderValue;
use std::time::Duration;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// An authenticated caller whose access is being checked.
pub struct Opening {
    pub principal: Principal,
    revocations_from: u64,
}

impl Opening {
    /// Authenticates `?token=` or else the `Authorization` header.
    pub async fn authenticate(
        state: &AppState,
        token: Option<&str>,
        authorization: Option<&HeaderValue>,
    ) -> Result<Opening, Error> {
        let revocations_from = state.events.revocations().mark();
        let principal = match (token, authorization) {
            (Some(token), _) => state.accounts.token(token).await?,
            (None, Some(value)) => {
                let value = value
                    .to_str()
                    .map_err(|_| Error::Unauthorized("malformed Authorization header"))?;
                state.accounts.authenticate(value).await?
            }
            (None, None) => return Err(Error::Unauthorized("missing credentials")),
        };
        Ok(Opening {
            principal,
            revocations_from,
        })
    }

    /// Admits the session: 429 when its user or API key holds `max_connections_per_user`
    /// sockets and streams on this node, 503 when the node holds `max_connections`.
    pub fn admit(&self, state: &AppState, held: Held) -> Result<ListenerSession, Error> {
        let slot = match state.tracker.admit(self.principal.actor_id(), held) {
            Ok(slot) => slot,
            Err(TooManyConnections::Principal) => {
                return Err(Error::TooManyRequests {
                    msg: "too many live sockets and streams for this user or API key on this node"
                        .into(),
                    retry_after: Duration::from_secs(1),
                })
            }
            Err(TooManyConnections::Node) => {
                metrics::counter!("agent_sockets_refused_total", "limit" => "node").increment(1);
                return Err(Error::Unavailable(
                    "this node holds max_connections sockets and streams".into(),
                ));
            }
        };
        let api_key = match &self.principal {
            Principal::ApiKey(key) => Some(Box::new(HeldKey {
                watch: state.events.revocations().watch_key(key),
                key: key.clone(),
            })),
            Principal::User(_) => None,
        };
        Ok(ListenerSession {
            holder: Holder {
                user_id: self.principal.user().map(|u| u.id),
                api_key,
            },
            slot: Some(slot),
            revocations_from: self.revocations_from,
            _task: state.tasks.token(),
        })
    }
}

/// Who holds a socket or stream, kept small (an idle socket holds it): the user's id, or the API
/// key.
pub struct Holder {
    pub user_id: Option<Id>,
    /// Boxed: user sockets, the many, pay one pointer.
    pub api_key: Option<Box<HeldKey>>,
}

/// An API key on a socket or stream, checked by the node while it lives (a deleted key's
/// sockets and streams end within a second).
pub struct HeldKey {
    pub key: ApiKey,
    pub watch: KeyWatch,
}

impl Holder {
    /// The user's id, or the API key's.
    pub fn principal_id(&self) -> Id {
        match (&self.user_id, &self.api_key) {
            (Some(user), _) => *user,
            (None, Some(held)) => held.key.id,
            (None, None) => Id::nil(),
        }
    }

    /// The holder as it is now: a deleted user or key is no longer anyone.
    pub async fn current(&self, state: &AppState) -> Result<Principal, Error> {
        if let Some(id) = self.user_id {
            let user = state.store.get_user(id).await?;
            return user
                .map(Principal::User)
                .ok_or(Error::Unauthorized("the user no longer exists"));
        }
        let key = match &self.api_key {
            Some(held) => state.store.find_api_key(&held.key.secret_hash).await?,
            None => None,
        };
        key.map(Principal::ApiKey)
            .ok_or(Error::Unauthorized("the API key was deleted"))
    }
}

/// An admitted socket or stream, until it ends.
pub struct ListenerSession {
    pub holder: Holder,
    /// The session's place in the connection limits (a socket frees it once uncounted, before
    /// its close handshake).
    slot: Option<UserSlot>,
    revocations_from: u64,
    /// Holds the node's task tracker open: a stopping node waits for its sessions to end.
    _task: TaskTrackerToken,
}

impl ListenerSession {
    /// Whether a revocation since the session began cuts its holder off a project it is in:
    /// one that `involves` names, or its API key's project.
    pub fn revoked(&self, state: &AppState, involves: impl Fn(Id) -> bool) -> bool {
        let key_project = self.holder.api_key.as_ref().map(|k| k.key.project_id);
        state.events.revocations().concerns(
            self.revocations_from,
            self.holder.principal_id(),
            |project_id| key_project == Some(project_id) || involves(project_id),
        )
    }

    /// Gives the session's place in the connection limits back (it still holds the task tracker open).
    pub fn release_slot(&mut self) {
        self.slot = None;
    }
}
