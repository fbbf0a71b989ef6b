//! An in-memory store: for tests, benchmarks and throwaway servers where losing everything
//! on exit is acceptable.
//!
//! Its memory follows its data, not the number of writes: each record keeps only its
//! newest [`MemoryStore::DEFAULT_JOURNAL_LIMIT`] journal entries. (Issue 13 is to give every
//! store a retention setting; this bound is the simplest one that stops the growth.)

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::StoreError;
use crate::store::{JournalEntry, Store, StoredRecord, Write, WriteOutcome};

/// Keeps records and journals in a `HashMap` behind one lock.
///
/// It follows the same rules as the durable stores (base-version checks, in-order
/// application within a batch) so that code tested against it behaves the same on disk.
/// The conformance suite (`crate::conformance`, feature `testing`) holds it to that.
///
/// Unlike them it forgets old journal entries: a record's journal holds at most
/// `journal_limit` entries (the newest), so a record overwritten a million times costs
/// no more memory than one overwritten a thousand times.
#[derive(Debug)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, Entry>>,
    journal_limit: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_journal_limit(Self::DEFAULT_JOURNAL_LIMIT)
    }
}

#[derive(Debug)]
struct Entry {
    record: StoredRecord,
    journal: BTreeMap<u64, JournalEntry>,
}

impl MemoryStore {
    /// Journal entries kept per record. With values of 1 KB a record's journal stays
    /// near 1 MB however often it is written; nothing in the server reads journals yet.
    pub const DEFAULT_JOURNAL_LIMIT: usize = 1000;

    pub fn new() -> Self {
        Self::default()
    }

    /// A store that keeps the newest `limit` journal entries of each record (at least one).
    pub fn with_journal_limit(limit: usize) -> Self {
        Self {
            records: Mutex::default(),
            journal_limit: limit.max(1),
        }
    }

    /// How many records exist; lets tests check that deletes really remove.
    pub fn len(&self) -> usize {
        self.records.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.lock().is_empty()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StoreError> {
        Ok(self.records.lock().get(name).map(|e| e.record.clone()))
    }

    async fn commit(&self, batch: &[Write]) -> Result<Vec<WriteOutcome>, StoreError> {
        // One lock for the whole batch makes it atomic to readers, as a transaction is.
        let mut records = self.records.lock();
        // Records with a conflict earlier in this batch: their later writes conflict too.
        let mut failed: HashMap<&str, Option<u64>> = HashMap::new();
        let outcomes = batch
            .iter()
            .map(|write| {
                if let Some(&current) = failed.get(write.name()) {
                    return WriteOutcome::Conflict { current };
                }
                let outcome = apply(&mut records, write, self.journal_limit);
                if let WriteOutcome::Conflict { current } = outcome {
                    failed.insert(write.name(), current);
                }
                outcome
            })
            .collect();
        Ok(outcomes)
    }

    async fn journal(
        &self,
        name: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let records = self.records.lock();
        Ok(records
            .get(name)
            .map(|e| e.journal.range(from..=to).map(|(_, j)| j.clone()).collect())
            .unwrap_or_default())
    }
}

/// Applies one write; a journal that grows beyond `journal_limit` loses its oldest entry.
fn apply(
    records: &mut HashMap<String, Entry>,
    write: &Write,
    journal_limit: usize,
) -> WriteOutcome {
    let current = records.get(write.name()).map(|e| e.record.version);
    match write {
        Write::Put {
            record,
            base_version,
            entry,
        } => {
            if current != *base_version {
                return WriteOutcome::Conflict { current };
            }
            let slot = records.entry(record.name.clone()).or_insert_with(|| Entry {
                record: record.clone(),
                journal: BTreeMap::new(),
            });
            slot.record = record.clone();
            if let Some(entry) = entry {
                slot.journal.insert(entry.version, entry.clone());
                if slot.journal.len() > journal_limit {
                    slot.journal.pop_first();
                }
            }
            WriteOutcome::Committed
        }
        Write::Delete { name, base_version } => {
            if current != Some(*base_version) {
                return WriteOutcome::Conflict { current };
            }
            records.remove(name);
            WriteOutcome::Committed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(name: &str, version: u64) -> Write {
        Write::Put {
            record: StoredRecord {
                name: name.to_owned(),
                version,
                data: format!(r#"{{"v":{version}}}"#),
                ctime: 1,
                mtime: 2,
            },
            base_version: version.checked_sub(1).filter(|_| version > 1),
            entry: Some(JournalEntry {
                version,
                time: 3,
                op: format!(r#"{{"v":{version}}}"#),
            }),
        }
    }

    /// However often a record is written, its journal keeps the newest entries up to the
    /// limit, and the record itself is the last write.
    #[tokio::test]
    async fn journals_keep_the_newest_entries_up_to_the_limit() {
        let store = MemoryStore::with_journal_limit(10);
        // Batches of three writes to the record: the bound holds within a batch too.
        for v in (1..=1000).step_by(3) {
            let batch = [put("hot", v), put("hot", v + 1), put("hot", v + 2)];
            let outcomes = store.commit(&batch).await.unwrap();
            assert!(outcomes.iter().all(|o| *o == WriteOutcome::Committed));
        }
        let journal = store.journal("hot", 0, u64::MAX).await.unwrap();
        let versions: Vec<u64> = journal.iter().map(|e| e.version).collect();
        assert_eq!(versions, (993..=1002).collect::<Vec<_>>());
        assert_eq!(store.get("hot").await.unwrap().unwrap().version, 1002);
        let entries: usize = store.records.lock().values().map(|e| e.journal.len()).sum();
        assert_eq!(entries, 10);
    }

    #[test]
    fn the_default_store_has_the_documented_limit() {
        assert_eq!(
            MemoryStore::new().journal_limit,
            MemoryStore::DEFAULT_JOURNAL_LIMIT
        );
    }
}
