//! Backups: a record with the history a store keeps of it, as [`Store::export`] reads it
//! and [`Store::restore`] writes it back, exactly (versions, times, JSON text).
//!
//! A backup tool reads a whole data set in one consistent state through `export` and
//! loads it into an empty data set through `restore`, on any pair of stores.

use crate::store::{JournalEntry, StoredRecord};

/// One record of a backup: its current state (a tombstone too) and, when asked for, the
/// history the store keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDump {
    pub record: StoredRecord,
    /// `None`: restored without history, the record's history starts at its current
    /// version (a milestone of its value there).
    pub history: Option<KeptHistory>,
}

/// What a store keeps of a record's past: readable from `start` (see
/// [`History`](crate::History)), through the milestones and the entries after `start`.
///
/// **Invariant** (checked by [`KeptHistory::check`]): `entries` are consecutive versions
/// up to the record's version, beginning at `start` (the record's first create) or at
/// `start + 1` with a milestone at `start`; milestones lie within `start..=version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptHistory {
    pub start: u64,
    pub milestones: Vec<KeptMilestone>,
    pub entries: Vec<JournalEntry>,
}

/// A milestone with the time of its version's entry (retention by age goes by it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptMilestone {
    pub version: u64,
    pub time: u64,
    /// The value then, as JSON text (`"null"`: deleted).
    pub data: String,
}

impl RecordDump {
    /// The history to restore: the one kept, or, without one, a start at the current
    /// version with a milestone of the current value there.
    pub fn history_or_current(&self) -> KeptHistory {
        self.history.clone().unwrap_or_else(|| KeptHistory {
            start: self.record.version,
            milestones: vec![KeptMilestone {
                version: self.record.version,
                time: self.record.mtime,
                data: self.record.data.clone(),
            }],
            entries: Vec::new(),
        })
    }
}

impl KeptHistory {
    /// Whether this history can be the record's: the invariant above, or why not.
    pub fn check(&self, record: &StoredRecord) -> Result<(), String> {
        let version = record.version;
        if self.start > version {
            return Err(format!(
                "history starts at {} after the record's version {version}",
                self.start
            ));
        }
        let at_start = self.milestones.iter().any(|m| m.version == self.start);
        let first = match self.entries.first() {
            Some(e) if e.version == self.start => self.start,
            Some(e) if at_start && e.version == self.start + 1 => self.start + 1,
            None if at_start && self.start == version => version,
            _ => {
                return Err(format!(
                    "history from {} needs a milestone at {} or its entries from there",
                    self.start, self.start
                ));
            }
        };
        let consecutive = self
            .entries
            .iter()
            .zip(first..)
            .all(|(e, v)| e.version == v);
        let last = self.entries.last().map_or(version, |e| e.version);
        if !consecutive || last != version {
            return Err(format!(
                "journal entries {:?} do not lead from {first} to version {version}",
                self.entries.iter().map(|e| e.version).collect::<Vec<_>>()
            ));
        }
        let mut previous = None;
        for m in &self.milestones {
            if m.version < self.start || m.version > version || previous >= Some(m.version) {
                return Err(format!(
                    "milestone {} is outside {}..={version} or out of order",
                    m.version, self.start
                ));
            }
            previous = Some(m.version);
        }
        Ok(())
    }
}

/// Checks every record's history (and that no name comes twice) before a store writes
/// any: a restore is all or none.
pub(crate) fn check_restore(records: &[RecordDump]) -> Result<(), crate::StoreError> {
    let mut names = std::collections::HashSet::new();
    for dump in records {
        let name = &dump.record.name;
        if !names.insert(name.as_str()) {
            return Err(crate::StoreError::Exists { name: name.clone() });
        }
        dump.history_or_current()
            .check(&dump.record)
            .map_err(|reason| crate::StoreError::Malformed {
                name: name.clone(),
                reason,
            })?;
    }
    Ok(())
}

/// The time of the milestone at `version`: its entry's, else (its entry was pruned) the
/// oldest kept entry's, else the record's mtime. For stores that keep no milestone times.
pub(crate) fn milestone_time(entries: &[JournalEntry], version: u64, mtime: u64) -> u64 {
    entries
        .iter()
        .find(|e| e.version >= version)
        .map_or(mtime, |e| e.time)
}
