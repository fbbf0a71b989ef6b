//! Reading a record's past: its journal in a version range, its value at a version, its
//! value at a time.
//!
//! History is the store's journal, which runs across deletes and re-creates (see
//! [`EngineVersion`](crate::EngineVersion)). A past value is rebuilt from the newest milestone at or below
//! the version asked for, applying the journal entries after it: at most
//! `History::milestone_every` op applications (the store's setting). Versions before the
//! record's history start have been pruned by retention and cannot be read.

use std::sync::Arc;

use serde_json::Value;

use recordsync_core::{JournalError, JournalOp, json, validate_name};
use recordsync_store::JournalEntry;

use crate::error::read_failed;
use crate::{Engine, EngineError};

/// A record's value at a past version.
#[derive(Debug, Clone, PartialEq)]
pub struct PastValue {
    /// The engine version read.
    pub version: u64,
    /// The value then; `None` when the record did not exist at that version (deleted).
    pub data: Option<Value>,
}

impl Engine {
    /// The journal entries of `name` with `from <= version <= to`, in version order,
    /// across deletes and re-creates. Entries pruned by retention are missing: they begin
    /// at the record's history start at the earliest.
    ///
    /// Writes accepted before the read are committed first, so a client reads the
    /// history of its own writes.
    pub async fn journal(
        &self,
        name: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        metrics::counter!("recordsync_history_reads_total", "kind" => "journal").increment(1);
        validate_name(name)?;
        self.settle(name).await?;
        self.store
            .journal(name, from, to)
            .await
            .map_err(read_failed("journal"))
    }

    /// The value of `name` at engine version `version`.
    ///
    /// Errors: [`EngineError::NotInHistory`] when the version is before the record's
    /// history start (pruned) or after its current version, or the record never existed.
    pub async fn value_at(&self, name: &str, version: u64) -> Result<PastValue, EngineError> {
        metrics::counter!("recordsync_history_reads_total", "kind" => "version").increment(1);
        validate_name(name)?;
        self.settle(name).await?;
        let not_in_history = |start: Option<u64>, current: Option<u64>| EngineError::NotInHistory {
            name: name.to_owned(),
            version,
            start,
            current,
        };
        let current = self
            .store
            .get(name)
            .await
            .map_err(read_failed("get"))?
            .map(|r| r.version);
        let start = self
            .store
            .history_start(name)
            .await
            .map_err(read_failed("history_start"))?;
        let (Some(start_v), Some(current_v)) = (start, current) else {
            return Err(not_in_history(start, current));
        };
        if version < start_v || version > current_v {
            return Err(not_in_history(start, current));
        }
        let milestone = self
            .store
            .milestone(name, version)
            .await
            .map_err(read_failed("milestone"))?;
        let (mut data, from) = match milestone {
            Some(m) => (parse_value(name, &m.data)?, m.version + 1),
            // No milestone at or below: the history starts at the record's first create.
            None => (None, 0),
        };
        for entry in self
            .store
            .journal(name, from, version)
            .await
            .map_err(read_failed("journal"))?
        {
            let op = JournalOp::from_journal(&entry.op).map_err(|e| corrupt(name, &entry, e))?;
            op.apply(&mut data).map_err(|e| corrupt(name, &entry, e))?;
        }
        Ok(PastValue { version, data })
    }

    /// The value `name` had at `time` (milliseconds since the Unix epoch): that of the
    /// newest version committed at or before it.
    pub async fn value_at_time(&self, name: &str, time: u64) -> Result<PastValue, EngineError> {
        metrics::counter!("recordsync_history_reads_total", "kind" => "time").increment(1);
        validate_name(name)?;
        self.settle(name).await?;
        match self
            .store
            .version_at_time(name, time)
            .await
            .map_err(read_failed("version_at_time"))?
        {
            Some(version) => self.value_at(name, version).await,
            None => Err(EngineError::NotInHistoryAtTime {
                name: name.to_owned(),
                time,
            }),
        }
    }

    /// Waits until every write to `name` accepted so far is committed.
    pub(crate) async fn settle(&self, name: &str) -> Result<(), EngineError> {
        let Some(cell) = self.shard(name).lock().get(name).cloned() else {
            return Ok(());
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        cell.state.lock().after_in_flight(Box::new(move |_| {
            let _ = tx.send(());
        }));
        rx.await.map_err(|_| EngineError::Shutdown)
    }
}

/// A stored value (`"null"`: a deleted record's tombstone milestone).
fn parse_value(name: &str, text: &str) -> Result<Option<Value>, EngineError> {
    let value: Value = json::parse(text).map_err(|e| EngineError::CorruptValue {
        name: name.to_owned(),
        source: Arc::new(e),
    })?;
    Ok((!value.is_null()).then_some(value))
}

/// Journal entry `entry` of `name` could not be read or applied (`e` says which).
fn corrupt(name: &str, entry: &JournalEntry, e: impl Into<JournalError>) -> EngineError {
    EngineError::CorruptJournal {
        name: name.to_owned(),
        version: entry.version,
        source: Arc::new(e.into()),
    }
}
