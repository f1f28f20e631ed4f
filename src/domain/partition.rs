//! Partitions: how a deployment's projects are split so that each project's data can live
//! together on one Redis Cluster slot (see `store::redis::keys`).
//!
//! A project belongs to exactly one partition, for good: the partition count is fixed per
//! deployment (the store keeps it and refuses another). Everything a presence change touches (the
//! project's teammates, its presence, its event stream, its schedules) is in that partition, so
//! every atomic step stays in one slot, and a project's events are ordered in one stream.

use super::Id;

/// The most partitions a deployment may have: each one costs every node two connections and a
/// lease renewal per renewal period, and a cluster has 16,384 slots.
pub const MAX_PARTITIONS: u16 = 1024;

/// A partition number, `0..count`.
pub type Partition = u16;

/// How many partitions a deployment has, and which project goes where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partitions {
    count: u16,
}

impl Partitions {
    /// `count` must be in `1..=MAX_PARTITIONS` (the configuration checks it).
    pub fn new(count: u16) -> Self {
        assert!(
            (1..=MAX_PARTITIONS).contains(&count),
            "partition count {count} out of range"
        );
        Partitions { count }
    }

    pub fn count(self) -> u16 {
        self.count
    }

    /// Every partition, in order.
    pub fn all(self) -> impl Iterator<Item = Partition> {
        0..self.count
    }

    /// The project's partition: its id's low 64 bits (random in a v4 UUID) modulo the count.
    /// Stable across versions: changing it would move every project.
    pub fn of(self, project_id: Id) -> Partition {
        let (_, low) = project_id.as_u64_pair();
        (low % u64::from(self.count)) as Partition
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_spread_over_every_partition_and_stay_put() {
        let partitions = Partitions::new(8);
        let mut seen = [0usize; 8];
        for _ in 0..4000 {
            let pid = super::super::new_id();
            let p = partitions.of(pid);
            assert_eq!(partitions.of(pid), p, "stable");
            seen[usize::from(p)] += 1;
        }
        assert!(seen.iter().all(|n| *n > 350), "roughly even: {seen:?}");
        let pid: Id = "6f1c1a4e-8d6b-4a3e-9a57-0c9d8e7f6a5b".parse().unwrap();
        assert_eq!(
            Partitions::new(16).of(pid),
            (0x9a570c9d8e7f6a5b_u64 % 16) as u16
        );
        assert_eq!(Partitions::new(1).of(pid), 0);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn zero_partitions_is_refused() {
        Partitions::new(0);
    }
}
