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
//! The value of each channel says whether the node is stopping: the clock sets it when the
//! node's stop signal fires, and the sockets then close with 1012.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Channels beating in turn, each once per interval.
pub const PHASES: usize = 8;

/// What a socket learns at each change of its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// One more heartbeat interval has passed.
    Beat,
    /// The node is shutting down (or the clock is gone).
    Stopping,
}

/// The clock's channels; cheap to clone.
#[derive(Clone)]
pub struct HeartbeatClock {
    inner: Arc<Inner>,
}

struct Inner {
    every: Duration,
    /// `true` once the node is stopping.
    phases: Vec<watch::Sender<bool>>,
    next: AtomicUsize,
}

/// One socket's view of the clock.
pub struct Heartbeat {
    receiver: watch::Receiver<bool>,
}

impl Heartbeat {
    /// The next beat. A clock that is gone counts as stopping, so no socket outlives its node.
    pub async fn next(&mut self) -> Beat {
        match self.receiver.changed().await {
            Ok(()) if !*self.receiver.borrow_and_update() => Beat::Beat,
            _ => Beat::Stopping,
        }
    }
}

impl HeartbeatClock {
    /// A clock beating every `every`, once [`run`](Self::run) runs.
    pub fn new(every: Duration) -> Self {
        HeartbeatClock {
            inner: Arc::new(Inner {
                every,
                phases: (0..PHASES).map(|_| watch::channel(false).0).collect(),
                next: AtomicUsize::new(0),
            }),
        }
    }

    /// A new socket's heartbeat: its first beat comes within one interval. A socket that
    /// subscribes after the node began stopping is told so at once.
    pub fn subscribe(&self) -> Heartbeat {
        let phase = self.inner.next.fetch_add(1, Ordering::Relaxed) % PHASES;
        let sender = &self.inner.phases[phase];
        let mut receiver = sender.subscribe();
        if *sender.borrow() {
            receiver.mark_changed();
        }
        Heartbeat { receiver }
    }

    /// Beats until `stop` turns true (or its sender is dropped), then tells every socket that
    /// the node is stopping.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let phases = &self.inner.phases;
        let step = self.inner.every / PHASES as u32;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + step, step);
        // A late tick is not made up for: sockets would get two beats at once.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut phase = 0;
        while !*stop.borrow_and_update() {
            tokio::select! {
                _ = ticks.tick() => {
                    phases[phase].send_modify(|_| {});
                    phase = (phase + 1) % PHASES;
                }
                changed = stop.changed() => if changed.is_err() { break },
            }
        }
        for sender in phases {
            sender.send_replace(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn every_socket_beats_once_per_interval_then_learns_the_node_stops() {
        let clock = HeartbeatClock::new(Duration::from_millis(800));
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(clock.clone().run(stopped));
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
        stop.send_replace(true);
        running.await.unwrap();
        for socket in &mut sockets {
            assert_eq!(socket.next().await, Beat::Stopping);
        }
        let mut late = clock.subscribe();
        assert_eq!(late.next().await, Beat::Stopping);
    }

    #[tokio::test]
    async fn a_clock_that_is_gone_means_stopping() {
        let clock = HeartbeatClock::new(Duration::from_secs(60));
        let mut socket = clock.subscribe();
        drop(clock);
        assert_eq!(socket.next().await, Beat::Stopping);
    }
}
