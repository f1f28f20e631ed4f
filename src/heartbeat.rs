//! The node's heartbeat clock: one task beats for every agent socket on the node.
//!
//! A socket pings its client, and checks that it is still heard from, once per heartbeat
//! interval. With a timer of its own, every idle socket paid for tokio's timer entry and an
//! `Interval`, about 150 bytes (docs/benchmarks.md, the idle-socket profile). Here a socket
//! waits on a `watch` channel that it already needs for the node's shutdown, and one task
//! beats them all.
//!
//! Sockets are dealt round-robin to [`PHASES`] channels that beat in turn, each once per
//! interval, so a node's pings go out in small bursts spread over the interval rather than
//! in one burst that would delay everything else on the node.
//!
//! The clock is also how the node reaches every socket and stream at once: when the node stops
//! (they close with 1012), and when someone's access is revoked (each checks whether it is
//! concerned: see `events::Revocations`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Channels beating in turn, each once per interval.
pub const PHASES: usize = 8;

/// What a socket learns at each change of its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// One more heartbeat interval has passed.
    Beat,
    /// Someone's access was revoked: check whether it is this socket's.
    Revoked,
    /// The node is shutting down (or the clock is gone).
    Stopping,
}

/// What a phase's channel holds: counters a socket compares with what it saw last.
#[derive(Debug, Clone, Copy, Default)]
struct Signal {
    beats: u32,
    revocations: u32,
    stopping: bool,
}

/// The clock's channels; cheap to clone.
#[derive(Clone)]
pub struct HeartbeatClock {
    inner: Arc<Inner>,
}

struct Inner {
    every: Duration,
    phases: Vec<watch::Sender<Signal>>,
    next: AtomicUsize,
}

/// One socket's view of the clock.
pub struct Heartbeat {
    receiver: watch::Receiver<Signal>,
    beats: u32,
    revocations: u32,
}

impl Heartbeat {
    /// The next signal: a stop first, then a revocation, then a beat (a socket that missed a
    /// beat while it was busy still gets it). A clock that is gone counts as stopping, so no
    /// socket outlives its node. Cancel-safe: nothing is marked seen until it is returned.
    pub async fn next(&mut self) -> Beat {
        loop {
            let signal = *self.receiver.borrow_and_update();
            if signal.stopping {
                return Beat::Stopping;
            }
            if signal.revocations != self.revocations {
                self.revocations = signal.revocations;
                return Beat::Revoked;
            }
            if signal.beats != self.beats {
                self.beats = signal.beats;
                return Beat::Beat;
            }
            if self.receiver.changed().await.is_err() {
                return Beat::Stopping;
            }
        }
    }
}

impl HeartbeatClock {
    /// A clock beating every `every`, once [`run`](Self::run) runs.
    pub fn new(every: Duration) -> Self {
        HeartbeatClock {
            inner: Arc::new(Inner {
                every,
                phases: (0..PHASES)
                    .map(|_| watch::channel(Signal::default()).0)
                    .collect(),
                next: AtomicUsize::new(0),
            }),
        }
    }

    /// A new socket's heartbeat: its first beat comes within one interval. A socket that
    /// subscribes after the node began stopping is told so at once.
    pub fn subscribe(&self) -> Heartbeat {
        let phase = self.inner.next.fetch_add(1, Ordering::Relaxed) % PHASES;
        let receiver = self.inner.phases[phase].subscribe();
        let now = *receiver.borrow();
        Heartbeat {
            receiver,
            beats: now.beats,
            revocations: now.revocations,
        }
    }

    /// Wakes every socket and stream with [`Beat::Revoked`].
    pub fn revoked(&self) {
        for sender in &self.inner.phases {
            sender.send_modify(|s| s.revocations = s.revocations.wrapping_add(1));
        }
    }

    /// Beats until `stop` is cancelled, then tells every socket and stream that the node is
    /// stopping: the clock is how the node's stop reaches them (a channel they already wait on,
    /// where a `cancelled()` future of their own would enlarge every idle socket's task).
    pub async fn run(self, stop: CancellationToken) {
        let phases = &self.inner.phases;
        let step = self.inner.every / PHASES as u32;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + step, step);
        // A late tick is not made up for: sockets would get two beats at once.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut phase = 0;
        while !stop.is_cancelled() {
            tokio::select! {
                _ = ticks.tick() => {
                    phases[phase].send_modify(|s| s.beats = s.beats.wrapping_add(1));
                    phase = (phase + 1) % PHASES;
                }
                _ = stop.cancelled() => break,
            }
        }
        for sender in phases {
            sender.send_modify(|s| s.stopping = true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn every_socket_beats_once_per_interval_then_learns_the_node_stops() {
        let clock = HeartbeatClock::new(Duration::from_millis(800));
        let stop = CancellationToken::new();
        let running = tokio::spawn(clock.clone().run(stop.clone()));
        let mut sockets: Vec<Heartbeat> = (0..PHASES * 2).map(|_| clock.subscribe()).collect();
        let started = tokio::time::Instant::now();
        for socket in &mut sockets {
            assert_eq!(socket.next().await, Beat::Beat);
            assert!(started.elapsed() <= Duration::from_millis(800));
        }
        // The second beat of each socket is one interval after its first.
        let first_round = started.elapsed();
        for socket in &mut sockets {
            assert_eq!(socket.next().await, Beat::Beat);
        }
        let second_round = started.elapsed();
        assert!(second_round - first_round <= Duration::from_millis(800));
        assert!(second_round >= Duration::from_millis(800));
        stop.cancel();
        running.await.unwrap();
        for socket in &mut sockets {
            assert_eq!(socket.next().await, Beat::Stopping);
        }
        let mut late = clock.subscribe();
        assert_eq!(late.next().await, Beat::Stopping);
    }

    #[tokio::test(start_paused = true)]
    async fn a_revocation_wakes_every_socket_and_no_beat_is_lost() {
        let clock = HeartbeatClock::new(Duration::from_millis(800));
        let stop = CancellationToken::new();
        let _running = tokio::spawn(clock.clone().run(stop.clone()));
        let mut sockets: Vec<Heartbeat> = (0..PHASES).map(|_| clock.subscribe()).collect();
        clock.revoked();
        for socket in &mut sockets {
            assert_eq!(socket.next().await, Beat::Revoked);
        }
        // A beat and a revocation while the socket was busy: both are told, the revocation first.
        tokio::time::sleep(Duration::from_millis(900)).await;
        clock.revoked();
        for socket in &mut sockets {
            assert_eq!(socket.next().await, Beat::Revoked);
            assert_eq!(socket.next().await, Beat::Beat);
        }
    }

    #[tokio::test]
    async fn a_clock_that_is_gone_means_stopping() {
        let clock = HeartbeatClock::new(Duration::from_secs(60));
        let mut socket = clock.subscribe();
        drop(clock);
        assert_eq!(socket.next().await, Beat::Stopping);
    }
}
