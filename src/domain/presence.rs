//! The presence model shared by the tracker and both storage engines.
//!
//! A node counts its own agent connections per teammate and writes them to the store as
//! [`PresenceWrite`]s. The store sums the counts of live nodes and decides, atomically, whether
//! the teammate turns online or (after the grace period) offline.

use super::Id;
use std::fmt;

/// One teammate in one project: the unit presence is counted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PresenceKey {
    pub project_id: Id,
    pub teammate_id: Id,
}

impl fmt::Display for PresenceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.project_id, self.teammate_id)
    }
}

/// What happened on the writing node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// The node's first connection of this teammate (0 → 1).
    Connect,
    /// The node's last connection of this teammate closed (1 → 0); the grace period starts.
    Disconnect,
    /// The count or channels changed without an edge, or the node re-asserts after a failure.
    Refresh,
}

impl Edge {
    pub fn as_str(self) -> &'static str {
        match self {
            Edge::Connect => "connect",
            Edge::Disconnect => "disconnect",
            Edge::Refresh => "refresh",
        }
    }
}

/// One node's view of one teammate, written to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceWrite {
    pub key: PresenceKey,
    pub node_id: String,
    /// Strictly increasing per node. The store ignores a write whose epoch is not newer than the
    /// last one it kept from that node, so writes that overtake each other cannot go back in time.
    pub epoch: u64,
    /// The node's live connections of this teammate (0 after a disconnect edge).
    pub connections: u32,
    /// The channel names of those connections (a set).
    pub channels: Vec<String>,
    pub edge: Edge,
}

/// A status change decided by the store. Each one happens exactly once, cluster-wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Online,
    Offline,
}

/// What the store did with a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Recorded; the status did not change (or the teammate is in its grace period).
    Recorded,
    /// Recorded, and the teammate changed status.
    Transition(Transition),
    /// Recorded a disconnect edge: the teammate stays online until the grace period ends, in
    /// this many milliseconds, unless a connection comes back anywhere.
    Pending { due_in_ms: u64 },
    /// Ignored: an equal or newer write from this node was kept already.
    Stale,
    /// Ignored: the teammate is removed, disabled or trashed, so its connections do not count.
    Inactive,
}

/// What settling a pending offline did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettleOutcome {
    /// The teammate turned offline.
    Offline,
    /// Not due yet; try again in this many milliseconds.
    NotDue { due_in_ms: u64 },
    /// Nothing to do (it reconnected, or another node settled it).
    Nothing,
}
