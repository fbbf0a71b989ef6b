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

    /// How far a prune by count moves a history start at least: `milestone_every`.
    /// The embedded store finds where a prune cuts by one row per milestone (no walk
    /// over the kept entries), so a prune costs about the entries it deletes, and the
    /// commit that prunes is slower by that many deletes: a smaller step spreads them
    /// over more commits (`bench/NOTES.md`).
    pub fn prune_step(&self) -> u64 {
        self.milestone_every.max(1)
    }

    /// The most versions a record's kept history spans after a write of one entry, with
    /// retention by count: `keep_ops + prune_step + milestone_every` (a write of `n`
    /// entries may add `n - 1`). `None`: everything is kept.
    pub fn max_kept(&self) -> Option<u64> {
        let keep = self.keep_ops?;
        Some(keep + self.prune_step() + self.milestone_every.max(1))
    }

    /// Where a record's history may start now, given its current `version`, the version
    /// its history starts at and its milestones (ascending): the greatest milestone at or
    /// below `version - keep_ops`, if that moves the start forward by at least
    /// [`prune_step`](Self::prune_step) (pruning is amortized). `None`: nothing to prune
    /// by count.
    pub fn prune_to(&self, version: u64, start: u64, milestones: &[u64]) -> Option<u64> {
        let keep = self.keep_ops?;
        let limit = version.checked_sub(keep)?;
        let target = milestones.iter().rev().find(|&&m| m <= limit).copied()?;
        (target >= start.saturating_add(self.prune_step())).then_some(target)
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
        let step = self.prune_step();
        let by_count = self
            .keep_ops
            .is_some_and(|keep| version >= start.saturating_add(step).saturating_add(keep));
        by_count || (self.keep_age.is_some() && version > start)
    }
}

/// Replays a record's journal from its create, entry by entry, for a record that an
/// older release kept without milestones (the upgrade from embedded schema 3 and from
/// PostgreSQL migration 2 gives such a record one milestone only, at its current
/// version). It yields the milestones retention needs, and checks that the journal is
/// whole and leads to the stored value: only then may the record's old history be
/// pruned, since otherwise a version retention keeps could read differently from what
/// the record held. Holds one value (the record's, as of the entry last applied), never
/// the journal: the caller streams the entries in.
#[derive(Debug)]
pub(crate) struct Replay {
    every: u64,
    /// Milestones are yielded at versions from this one on (the ones below it would be
    /// pruned at once).
    keep_from: u64,
    /// The version the next entry must have.
    next: u64,
    value: Option<serde_json::Value>,
}

impl Replay {
    /// A replay that yields a milestone at every multiple of `history.milestone_every`
    /// from `keep_from` on. The first entry must be the record's create at version 0.
    pub(crate) fn new(history: &History, keep_from: u64) -> Replay {
        Replay {
            every: history.milestone_every.max(1),
            keep_from,
            next: 0,
            value: None,
        }
    }

    /// Applies the entry at `version` (whose op is `op`, the journal text), and returns
    /// the milestone due there (its value as JSON text), if one is. The error says why
    /// the journal cannot be replayed (a gap, an op that cannot be read or does not
    /// apply); after one, the replay is over.
    pub(crate) fn apply(&mut self, version: u64, op: &str) -> Result<Option<String>, String> {
        if version != self.next {
            return Err(if version > self.next {
                format!(
                    "its journal lacks version {} (the next entry is {version})",
                    self.next
                )
            } else {
                format!("its journal has version {version} twice or out of order")
            });
        }
        let op = recordsync_core::JournalOp::from_journal(op)
            .map_err(|e| format!("the op of entry {version} cannot be read: {e}"))?;
        op.apply(&mut self.value)
            .map_err(|e| format!("the op of entry {version} does not apply: {e}"))?;
        self.next = version + 1;
        let due = version > 0 && version.is_multiple_of(self.every) && version >= self.keep_from;
        Ok(match (&self.value, due) {
            (Some(value), true) => Some(serde_json::to_string(value).map_err(|e| {
                format!("the value at version {version} cannot be written as JSON: {e}")
            })?),
            _ => None,
        })
    }

    /// Checks that the replay reached `version` and the value `data` (the stored
    /// record's JSON text). The parsed values are compared as serde_json writes them:
    /// spacing does not count, key order does (recordsync keeps keys in the order they
    /// were written, and `Value`'s own equality ignores it with `preserve_order`), and
    /// numbers compare as written (`arbitrary_precision`).
    pub(crate) fn finish(self, version: u64, data: &str) -> Result<(), String> {
        if self.next != version + 1 {
            return Err(format!(
                "its journal ends at version {}, the record is at {version}",
                self.next.saturating_sub(1)
            ));
        }
        let stored: serde_json::Value = recordsync_core::json::parse(data)
            .map_err(|e| format!("its stored value cannot be read: {e}"))?;
        let same = self.value.as_ref().is_some_and(|value| {
            value == &stored
                && serde_json::to_string(value).ok() == serde_json::to_string(&stored).ok()
        });
        if !same {
            return Err(format!(
                "replaying its journal from the create gives a value other than the one \
                 stored at version {version}"
            ));
        }
        Ok(())
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

    fn every_10() -> History {
        History {
            milestone_every: 10,
            ..History::default()
        }
    }

    fn patch(v: u64) -> String {
        format!(r#"{{"op":"patch","path":"n","data":{v}}}"#)
    }

    #[test]
    fn a_replay_yields_the_milestones_from_where_history_starts() {
        let mut replay = Replay::new(&every_10(), 20);
        assert_eq!(replay.apply(0, r#"{"op":"create","data":{}}"#), Ok(None));
        let mut yielded = Vec::new();
        for v in 1..=35 {
            if let Some(data) = replay.apply(v, &patch(v)).unwrap() {
                yielded.push((v, data));
            }
        }
        assert_eq!(
            yielded,
            [
                (20, r#"{"n":20}"#.to_owned()),
                (30, r#"{"n":30}"#.to_owned())
            ]
        );
        // Spacing does not count.
        assert_eq!(replay.finish(35, r#"{ "n" : 35 }"#), Ok(()));
    }

    #[test]
    fn a_replay_refuses_what_does_not_lead_to_the_value() {
        let create = r#"{"op":"create","data":{}}"#;
        let run = |ops: &[(u64, String)], version: u64, data: &str| {
            let mut replay = Replay::new(&every_10(), 0);
            for (v, op) in ops {
                replay.apply(*v, op)?;
            }
            replay.finish(version, data)
        };
        let ok = [(0, create.to_owned()), (1, patch(1)), (2, patch(2))];
        assert_eq!(run(&ok, 2, r#"{"n":2}"#), Ok(()));
        let other = run(&ok, 2, r#"{"n":3}"#).unwrap_err();
        assert!(other.contains("other than the one stored"), "{other}");
        let short = run(&ok, 3, r#"{"n":2}"#).unwrap_err();
        assert!(short.contains("ends at version 2"), "{short}");
        let gap = run(&[(0, create.to_owned()), (2, patch(2))], 2, r#"{"n":2}"#);
        assert!(gap.unwrap_err().contains("lacks version 1"));
        let no_create = run(&[(0, patch(0))], 0, r#"{"n":0}"#).unwrap_err();
        assert!(no_create.contains("does not apply"), "{no_create}");
        let garbage = run(&[(0, create.to_owned()), (1, "{".into())], 1, "{}").unwrap_err();
        assert!(garbage.contains("cannot be read"), "{garbage}");
        // Key order counts (recordsync keeps it), numbers compare as written.
        let two = [
            (0, create.to_owned()),
            (1, r#"{"op":"patch","path":"a","data":1}"#.to_owned()),
            (2, r#"{"op":"patch","path":"b","data":1.0}"#.to_owned()),
        ];
        assert_eq!(run(&two, 2, r#"{"a":1,"b":1.0}"#), Ok(()));
        assert!(run(&two, 2, r#"{"b":1.0,"a":1}"#).is_err());
        assert!(run(&two, 2, r#"{"a":1,"b":1}"#).is_err());
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
