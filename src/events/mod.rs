//! Event fan-out on one node: tail each partition's log once, render each event once, hand it to
//! the local [`Hub`]; replay a project's log for clients that resume with `since`.
//!
//! ```text
//! store (ring | Redis stream per partition) ──tail──► render ──► Hub ──► agent sockets, SSE
//! ```

mod hub;
pub mod publish;
mod render;
mod revocation;
mod topic;

pub use hub::{Hub, Listener, Published, LISTENER_QUEUE};
pub use render::{render, RenderedEvent};
pub use revocation::{KeyWatch, Revocations, KEY_CHECK_INTERVAL};
pub use topic::{Topic, TopicKind};

use crate::domain::{EventIds, EventType, Id, LogPosition, LoggedEvent, Partition};
use crate::error::Result;
use crate::heartbeat::HeartbeatClock;
use crate::store::{AccountStore, EventLog, ProjectStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

/// Events read from the log per round trip.
const BATCH: usize = 512;
/// How long one tailing read waits for new events before it asks again.
const TAIL_WAIT: Duration = Duration::from_secs(1);

/// The event machinery of one node, shared by the tailer, the sockets, SSE and webhooks.
#[derive(Clone)]
pub struct Events {
    /// Tailed by every node, and read again for replays.
    log: Arc<dyn EventLog>,
    /// Rendering looks up each event's user, and a team membership event's team.
    accounts: Arc<dyn AccountStore>,
    projects: Arc<dyn ProjectStore>,
    hub: Arc<Hub>,
    revocations: Revocations,
    ids: Arc<OnceCell<EventIds>>,
    /// Where the tailers start (one position per partition), fixed at start-up by
    /// [`Events::prepare_tail`].
    tail_from: Arc<OnceCell<Vec<LogPosition>>>,
}

/// Events a resuming client may be sent at most; further back, it gets a fresh snapshot.
pub const MAX_REPLAY: usize = 10_000;

/// Where a resuming client picks up.
pub enum Resume {
    Replay {
        /// The events it missed, oldest first (possibly none).
        missed: Vec<RenderedEvent>,
        /// Every event up to here has been looked at: live events at or before it are
        /// duplicates (this node's tailer may lag behind the log the replay read).
        up_to: LogPosition,
    },
    /// Its point is no longer retained (or unknown), or it missed more than [`MAX_REPLAY`]
    /// events: it needs a fresh snapshot.
    Resync,
}

impl Events {
    /// The clock is the one that beats the node's sockets: revocations wake them through it.
    pub fn new(
        log: Arc<dyn EventLog>,
        accounts: Arc<dyn AccountStore>,
        projects: Arc<dyn ProjectStore>,
        clock: HeartbeatClock,
    ) -> Self {
        let hub = Hub::new();
        Events {
            log,
            accounts,
            projects,
            revocations: Revocations::new(hub.clone(), clock),
            hub,
            ids: Arc::new(OnceCell::new()),
            tail_from: Arc::new(OnceCell::new()),
        }
    }

    /// Reads the salt and each partition's log end; the tailers start there.
    pub async fn prepare_tail(&self) -> Result<()> {
        let mut ends = Vec::new();
        for partition in self.log.partitions().all() {
            ends.push(self.log_end(partition).await?);
        }
        let _ = self.tail_from.set(ends);
        Ok(())
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// The deployment's event ids (the salt is read from the store once).
    pub async fn ids(&self) -> Result<EventIds> {
        let ids = self
            .ids
            .get_or_try_init(|| async { self.log.event_salt().await.map(EventIds::new) })
            .await?;
        Ok(*ids)
    }

    /// Renders a batch of events, with one user lookup for all of them (and a team lookup per
    /// team membership event, which are rare).
    pub async fn render_all(&self, events: &[LoggedEvent]) -> Result<Vec<RenderedEvent>> {
        let ids = self.ids().await?;
        let user_ids: Vec<Id> = events.iter().map(|e| e.teammate.user_id).collect();
        let users = self.accounts.get_users(&user_ids).await?;
        let mut rendered = Vec::with_capacity(events.len());
        for (event, user) in events.iter().zip(users.iter()) {
            let team = match render::teams_of(event).first() {
                Some(team) if event.event_type.is_team_membership() => {
                    self.projects.get_team(event.key.project_id, *team).await?
                }
                _ => None,
            };
            rendered.push(render(&ids, event, user.as_ref(), team.as_ref()));
        }
        Ok(rendered)
    }

    /// The events of `project_id` after the one with id `since` that `keep` selects, or
    /// `Resync` if that point is no longer in the log (or too far back).
    pub async fn resume(
        &self,
        since: Id,
        project_id: Id,
        keep: impl Fn(&RenderedEvent) -> bool,
    ) -> Result<Resume> {
        let Some(after) = self.ids().await?.position_of(since) else {
            return Ok(Resume::Resync);
        };
        // An id of another partition is another project's event: no place in this log.
        if after.partition != self.log.partitions().of(project_id) {
            return Ok(Resume::Resync);
        }
        if !self.retains(after).await? {
            return Ok(Resume::Resync);
        }
        let mut missed = Vec::new();
        let mut cursor = after;
        loop {
            let batch = self.log.read_events(cursor, BATCH, Duration::ZERO).await?;
            let Some(last) = batch.last() else { break };
            cursor = last.position;
            let full = batch.len() == BATCH;
            // Only this project's events are rendered (the partition's log is shared by several).
            let ours: Vec<LoggedEvent> = batch
                .into_iter()
                .filter(|e| e.key.project_id == project_id)
                .collect();
            missed.extend(
                self.render_all(&ours)
                    .await?
                    .into_iter()
                    .filter(|e| keep(e)),
            );
            if missed.len() > MAX_REPLAY {
                return Ok(Resume::Resync);
            }
            if !full {
                break;
            }
        }
        // The log is trimmed oldest first: if `since` is still there, nothing after it was
        // trimmed while it was being read.
        if !self.retains(after).await? {
            return Ok(Resume::Resync);
        }
        metrics::counter!("events_replayed_total").increment(missed.len() as u64);
        Ok(Resume::Replay {
            missed,
            up_to: cursor,
        })
    }

    /// Whether the event at `position` is still in its partition's log.
    async fn retains(&self, position: LogPosition) -> Result<bool> {
        Ok(matches!(
            self.log.log_bounds(position.partition).await?,
            Some((first, _)) if position >= first
        ))
    }

    /// Tails every partition's log from its current end and publishes every event to this node's
    /// hub, until `shutdown`: one task per partition, each blocking on a connection of its own.
    pub async fn run_tailers(self, shutdown: CancellationToken) {
        let tailers: Vec<_> = self
            .log
            .partitions()
            .all()
            .map(|partition| tokio::spawn(self.clone().run_tailer(partition, shutdown.clone())))
            .collect();
        futures::future::join_all(tailers).await;
    }

    /// Tails one partition's log. Store failures are retried with a short back-off; the tail
    /// resumes where it stopped.
    async fn run_tailer(self, partition: Partition, shutdown: CancellationToken) {
        let mut after = loop {
            if let Some(from) = self.tail_from.get() {
                break from[usize::from(partition)];
            }
            match self.log_end(partition).await {
                Ok(p) => break p,
                Err(e) => {
                    tracing::warn!(partition, error = %e, "event tailer cannot start yet");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        };
        loop {
            let read = tokio::select! {
                read = self.log.read_events(after, BATCH, TAIL_WAIT) => read,
                _ = shutdown.cancelled() => return,
            };
            let outcome = match read {
                Ok(batch) if batch.is_empty() => Ok(()),
                Ok(batch) => {
                    let lag = crate::domain::Timestamp::now().as_millis()
                        - batch.last().map_or(0, |e| e.at.as_millis());
                    metrics::gauge!("event_log_lag_seconds").set(lag.max(0) as f64 / 1000.0);
                    // Advance only once the batch is out, so a failed render is retried.
                    self.render_all(&batch).await.map(|rendered| {
                        after = batch.last().map_or(after, |e| e.position);
                        metrics::counter!("events_published_total")
                            .increment(rendered.len() as u64);
                        for event in rendered {
                            // A teammate that lost its access gets the event that says so, and
                            // nothing after it.
                            let revoked =
                                matches!(event.event_type, EventType::Disable | EventType::Delete)
                                    .then_some((event.project_id, event.user_id));
                            self.hub.publish(Arc::new(event));
                            if let Some((project_id, user_id)) = revoked {
                                self.revocations.revoke(project_id, user_id);
                            }
                        }
                    })
                }
                Err(e) => Err(e.into()),
            };
            if let Err(e) = outcome {
                tracing::warn!(partition, error = %e, "event tailer: cannot read the log; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }

    async fn log_end(&self, partition: Partition) -> Result<LogPosition> {
        self.ids().await?;
        Ok(self
            .log
            .log_bounds(partition)
            .await?
            .map_or(LogPosition::start(partition), |(_, last)| last))
    }
}
