//! How much of a record's history a store keeps, and the milestones that make any kept
//! version cheap to read.
//!
//! Every op a record accepts is a journal entry, and the engine reads a past version as
//! "the newest milestone at or below it, then the entries after it". A store writes a
//! milestone (the record's value at a version) by itself whenever a write crosses a
//! multiple of [`History::milestone_every`]: consecutive milestones are then at most that
//! many entries apart, which bounds a past read to that many op applications.
//!
//! Without a bound, history grows with every write, whatever the size of the live data
//! (one record written a million times with 1 KB values once took 2 GB). Retention moves
//! a record's *history start* forward to a milestone, and drops the entries up to it and
//! the milestones below it: every version from the start to the current one stays
//! readable, and nothing older is. A store prunes only when at least `milestone_every`
//! entries can go, so pruning is amortized over writes.

use std::time::Duration;

/// A record's value at a version, stored so that reading a past version need not replay
/// its whole journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Milestone {
    pub version: u64,
    /// The value as JSON text, exactly as the record held it at `version` (`"null"` for a
    /// deleted record).
    pub data: String,
}

/// The history settings of one data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// A milestone every this many versions (at least 1).
    pub milestone_every: u64,
    /// Keep at least this many of each record's newest entries; `None` keeps everything
    /// (an explicit choice: history then grows with every write).
    pub keep_ops: Option<u64>,
    /// Also drop entries older than this, keeping the current version readable; `None`:
    /// no age limit.
    pub keep_age: Option<Duration>,
}

impl History {
    /// Milestones every 100 versions: reading any kept version applies at most 100 ops.
    pub const DEFAULT_MILESTONE_EVERY: u64 = 100;
    /// The newest 1,000 entries of each record: with 1 KB values about 1 MB per record
    /// however often it is written.
    pub const DEFAULT_KEEP_OPS: u64 = 1000;

    /// Keeps every entry of every record.
    pub fn keep_everything() -> History {
        History {
            keep_ops: None,
            keep_age: None,
            ..History::default()
        }
    }

    /// Whether a write from `base` (`None`: a new record) to `version` stores a
    /// milestone: it crosses a multiple of `milestone_every`.
    pub fn milestone_due(&self, base: Option<u64>, version: u64) -> bool {
        let every = self.milestone_every.max(1);
        match base {
            None => version / every > 0,
            Some(base) => version / every > base / every,
        }
    }

    /// Where a record's history may start now, given its current `version`, the version
    /// its history starts at and its milestones (ascending): the greatest milestone at or
    /// below `version - keep_ops`, if that moves the start forward by at least
    /// `milestone_every` (pruning is amortized). `None`: nothing to prune by count.
    pub fn prune_to(&self, version: u64, start: u64, milestones: &[u64]) -> Option<u64> {
        let keep = self.keep_ops?;
        let limit = version.checked_sub(keep)?;
        let target = milestones.iter().rev().find(|&&m| m <= limit).copied()?;
        (target >= start.saturating_add(self.milestone_every.max(1))).then_some(target)
    }

    /// Where a record's history starts after a write, by count ([`prune_to`](Self::prune_to))
    /// and by age (the newest milestone above `start` whose entry is older than
    /// `keep_age` at `now`), whichever is further; `None`: it stays at `start`.
    /// `milestones` are (version, time of that version's entry), ascending. The durable
    /// stores use this; the memory store does the same with its journal's times.
    pub fn prune_start(
        &self,
        version: u64,
        start: u64,
        milestones: &[(u64, u64)],
        now: u64,
    ) -> Option<u64> {
        let versions: Vec<u64> = milestones.iter().map(|&(v, _)| v).collect();
        let by_count = self.prune_to(version, start, &versions);
        let by_age = self.keep_age.and_then(|age| {
            let cutoff = now.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
            milestones
                .iter()
                .rev()
                .find(|&&(m, time)| m > start && m <= version && time < cutoff)
                .map(|&(m, _)| m)
        });
        by_count.max(by_age)
    }

    /// Whether a write that leaves a record at `version` with its history at `start` can
    /// prune at all: a cheap test before reading its milestones.
    pub fn may_prune(&self, version: u64, start: u64) -> bool {
        let every = self.milestone_every.max(1);
        let by_count = self
            .keep_ops
            .is_some_and(|keep| version >= start.saturating_add(every).saturating_add(keep));
        by_count || (self.keep_age.is_some() && version > start)
    }
}

impl Default for History {
    fn default() -> History {
        History {
            milestone_every: Self::DEFAULT_MILESTONE_EVERY,
            keep_ops: Some(Self::DEFAULT_KEEP_OPS),
            keep_age: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milestones_fall_where_writes_cross_a_multiple() {
        let h = History {
            milestone_every: 10,
            ..History::default()
        };
        assert!(!h.milestone_due(None, 0));
        assert!(!h.milestone_due(Some(0), 9));
        assert!(h.milestone_due(Some(9), 10));
        assert!(h.milestone_due(Some(9), 11), "a two-entry write across 10");
        assert!(!h.milestone_due(Some(10), 11));
        assert!(
            h.milestone_due(None, 12),
            "a new record whose entries cross 10"
        );
    }

    #[test]
    fn pruning_moves_to_a_milestone_keeping_at_least_keep_ops() {
        let h = History {
            milestone_every: 10,
            keep_ops: Some(25),
            keep_age: None,
        };
        let ms = [10, 20, 30, 40, 50];
        // 55 - 25 = 30: start moves to 30, keeping 25 entries or more.
        assert_eq!(h.prune_to(55, 0, &ms), Some(30));
        // Not yet 10 entries to gain.
        assert_eq!(h.prune_to(55, 25, &ms), None);
        assert_eq!(h.prune_to(20, 0, &ms), None, "fewer than keep_ops");
        assert_eq!(History::keep_everything().prune_to(10_000, 0, &ms), None);
    }
}
