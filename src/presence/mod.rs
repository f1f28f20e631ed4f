//! Presence: counting agent connections per teammate on this node ([`Tracker`]) and keeping the
//! cluster's shared view right ([`maintenance`]: node lease, reaper, grace sweeper, flusher).

mod maintenance;
mod tracker;

pub use maintenance::{renew_lease, run_maintenance, MaintenanceTimings};
pub use tracker::{ConnectionLimits, Held, Registration, TooManyConnections, Tracker, UserSlot};
