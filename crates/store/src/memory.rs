//! An in-memory store: for tests, benchmarks and throwaway servers where losing everything
//! on exit is acceptable.

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
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    record: StoredRecord,
    journal: BTreeMap<u64, JournalEntry>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
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
                let outcome = apply(&mut records, write);
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

fn apply(records: &mut HashMap<String, Entry>, write: &Write) -> WriteOutcome {
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
