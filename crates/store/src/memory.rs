//! An in-memory store: for tests, benchmarks and throwaway servers where losing everything
//! on exit is acceptable.
//!
//! Its memory follows its data, not the number of writes: history is kept as the
//! [`History`] settings say (by default each record's newest
//! [`History::DEFAULT_KEEP_OPS`] entries, with a milestone every
//! [`History::DEFAULT_MILESTONE_EVERY`]), like every other store.

use std::collections::{BTreeMap, HashMap, VecDeque, hash_map};
use std::sync::OnceLock;

use async_trait::async_trait;
use parking_lot::Mutex;
use recordsync_core::JournalOp;
use recordsync_core::query::{Query, Selection};
use serde_json::Value;

use crate::dump::{self, KeptHistory, KeptMilestone, RecordDump};
use crate::error::StoreError;
use crate::field_index::{FieldIndexes, Plan};
use crate::history::{History, Milestone};
use crate::now_ms;
use crate::query;
use crate::store::{JournalEntry, Store, StoredRecord, Write, WriteOutcome};

/// Keeps records, journals and milestones in a `HashMap` behind one lock.
///
/// It follows the same rules as the durable stores (base-version checks, in-order
/// application within a batch, milestones and retention) so that code tested against it
/// behaves the same on disk. The conformance suite (`crate::conformance`, feature
/// `testing`) holds it to that.
#[derive(Debug)]
pub struct MemoryStore {
    /// Boxed: the table holds a pointer per slot, not an `Entry` (about 160 bytes) per
    /// slot, and it has up to twice as many slots as records.
    records: Mutex<HashMap<String, Box<Entry>>>,
    /// Field indexes for queries (`field_index.rs`). Locked only while `records` is, and
    /// after it: a write updates them in the same critical section that makes it visible.
    indexes: Mutex<FieldIndexes>,
    history: History,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_history(History::default())
    }
}

/// One record: its state, its kept journal, its milestones, and where its readable
/// history starts (a milestone, or the version of its first create).
///
/// **Invariant.** The record's journal is `lone_create` (if any) followed by `journal`:
/// consecutive versions, oldest first.
#[derive(Debug)]
struct Entry {
    record: StoredRecord,
    /// Consecutive versions, oldest first (every write journals each version it makes).
    /// A deque, not a map: most records hold a handful of entries, and a map's node is
    /// sized for eleven.
    journal: VecDeque<JournalEntry>,
    /// The time of the record's create entry, kept implicit while it is the record's only
    /// entry and the plain `{}` create that subscribing to a new record writes (no
    /// author, no origin), at version `start`: a server with many records subscribed to
    /// and never written would otherwise hold an allocated entry (about 160 bytes with its
    /// op text) for each (`bench/NOTES.md`, idle memory). The record's next write turns it
    /// into a real entry ([`Entry::materialize`]).
    lone_create: Option<u64>,
    milestones: BTreeMap<u64, String>,
    start: u64,
}

impl Entry {
    /// The implicit create entry, if there is one.
    fn implicit_create(&self) -> Option<JournalEntry> {
        self.lone_create.map(|time| JournalEntry {
            version: self.start,
            time,
            op: empty_create_op().to_owned(),
            author: None,
            origin: None,
        })
    }

    /// Makes the implicit create entry (if any) a real one, before the journal changes.
    fn materialize(&mut self) {
        if let Some(entry) = self.implicit_create() {
            self.lone_create = None;
            self.journal.push_front(entry);
        }
    }

    /// How many journal entries the record keeps, the implicit one included.
    fn journal_len(&self) -> usize {
        self.journal.len() + usize::from(self.lone_create.is_some())
    }
}

/// The journal text of a create of `{}` (deepstream's empty record).
fn empty_create_op() -> &'static str {
    static OP: OnceLock<String> = OnceLock::new();
    OP.get_or_init(|| {
        JournalOp::Create {
            data: serde_json::Value::Object(Default::default()),
        }
        .to_journal()
    })
}

/// Whether `entries`, the first of a new record, are a lone plain create of `{}` that
/// [`Entry::lone_create`] can keep implicit.
fn lone_empty_create(entries: &[JournalEntry], record: &StoredRecord) -> Option<u64> {
    match entries {
        [entry]
            if entry.version == record.version
                && entry.author.is_none()
                && entry.origin.is_none()
                && entry.op == empty_create_op() =>
        {
            Some(entry.time)
        }
        _ => None,
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that keeps history as `history` says.
    pub fn with_history(history: History) -> Self {
        Self {
            records: Mutex::default(),
            indexes: Mutex::default(),
            history,
        }
    }

    /// What the field indexes do for `query` over the collection `prefix...`, making the
    /// index it could use if there is none yet (from `records`, locked by the caller, so
    /// no write comes between).
    fn plan(&self, records: &HashMap<String, Box<Entry>>, prefix: &str, query: &Query) -> Plan {
        let mut indexes = self.indexes.lock();
        let plan = indexes.plan(prefix, &query.filter);
        let Plan::Build(path) = plan else {
            return plan;
        };
        let live: Vec<(&str, Value)> = records
            .values()
            .filter(|e| !e.record.deleted && e.record.name.starts_with(prefix))
            .filter_map(|e| {
                // Data that is not JSON has no keys; the scan reports it.
                let value = recordsync_core::json::parse(&e.record.data).ok()?;
                Some((e.record.name.as_str(), value))
            })
            .collect();
        indexes.build(prefix, path, live.iter().map(|(n, v)| (*n, v)));
        indexes.plan(prefix, &query.filter)
    }

    /// How many records exist, tombstones included.
    pub fn len(&self) -> usize {
        self.records.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.lock().is_empty()
    }

    /// How many journal entries and milestones are kept in all (for tests of retention).
    pub fn kept(&self) -> (usize, usize) {
        let records = self.records.lock();
        records.values().fold((0, 0), |(j, m), e| {
            (j + e.journal_len(), m + e.milestones.len())
        })
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StoreError> {
        Ok(self.records.lock().get(name).map(|e| e.record.clone()))
    }

    /// A scan of every record (a hash map has no name order), keeping the first `limit`
    /// matches by name without sorting the rest: fine for the tests and throwaway servers
    /// this store is for.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let records = self.records.lock();
        let mut found: Vec<&StoredRecord> = records
            .values()
            .map(|e| &e.record)
            .filter(|r| {
                !r.deleted
                    && r.name.starts_with(prefix)
                    && after.is_none_or(|after| r.name.as_str() > after)
            })
            .collect();
        if found.len() > limit {
            found.select_nth_unstable_by(limit - 1, |a, b| a.name.cmp(&b.name));
            found.truncate(limit);
        }
        found.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(found.into_iter().cloned().collect())
    }

    async fn commit(&self, batch: &[Write]) -> Result<Vec<WriteOutcome>, StoreError> {
        batch.iter().try_for_each(Write::check)?;
        let now = now_ms();
        // One lock for the whole batch makes it atomic to readers, as a transaction is.
        let mut records = self.records.lock();
        let mut indexes = self.indexes.lock();
        // Records with a conflict earlier in this batch: their later writes conflict too.
        let mut failed: HashMap<&str, Option<u64>> = HashMap::new();
        let outcomes = batch
            .iter()
            .map(|write| {
                if let Some(&current) = failed.get(write.name()) {
                    return WriteOutcome::Conflict { current };
                }
                let outcome = apply(&mut records, write, &self.history, now);
                match outcome {
                    WriteOutcome::Conflict { current } => {
                        failed.insert(write.name(), current);
                    }
                    _ => {
                        let Write::Put { record, .. } = write;
                        indexes.update_text(&record.name, record.deleted, &record.data);
                    }
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
            .map(|e| {
                e.implicit_create()
                    .into_iter()
                    .chain(e.journal.iter().cloned())
                    .skip_while(|j| j.version < from)
                    .take_while(|j| j.version <= to)
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn milestone(&self, name: &str, version: u64) -> Result<Option<Milestone>, StoreError> {
        let records = self.records.lock();
        Ok(records.get(name).and_then(|e| {
            e.milestones
                .range(..=version)
                .next_back()
                .map(|(&version, data)| Milestone {
                    version,
                    data: data.clone(),
                })
        }))
    }

    async fn history_start(&self, name: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.records.lock().get(name).map(|e| e.start))
    }

    /// A scan of every record (a hash map has no name order): fine for the tests and
    /// throwaway servers this store is for. A query naming its ids reads just those.
    async fn query(
        &self,
        collection: &str,
        query: &Query,
    ) -> Result<Selection<StoredRecord>, StoreError> {
        let prefix = query::prefix(collection)?;
        let records = self.records.lock();
        let by_name = |names: &[String]| -> Vec<StoredRecord> {
            names
                .iter()
                .filter_map(|name| records.get(name))
                .map(|e| e.record.clone())
                .collect()
        };
        let candidates = match query::named_ids(&query.filter) {
            Some(ids) => by_name(
                &ids.iter()
                    .map(|id| format!("{prefix}{id}"))
                    .collect::<Vec<_>>(),
            ),
            None => match self.plan(&records, &prefix, query) {
                Plan::Names(names) => by_name(&names),
                _ => records
                    .values()
                    .filter(|e| !e.record.deleted && e.record.name.starts_with(&prefix))
                    .map(|e| e.record.clone())
                    .collect(),
            },
        };
        drop(records);
        query::select(&prefix, query, candidates)
    }

    /// Copies the records under the lock (one state), sorted by name, then sends them.
    async fn export(
        &self,
        prefix: &str,
        history: bool,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<RecordDump, StoreError>>, StoreError> {
        let mut dumps: Vec<RecordDump> = {
            let records = self.records.lock();
            records
                .values()
                .filter(|e| e.record.name.starts_with(prefix))
                .map(|e| RecordDump {
                    record: e.record.clone(),
                    history: history.then(|| {
                        let entries: Vec<JournalEntry> = e
                            .implicit_create()
                            .into_iter()
                            .chain(e.journal.iter().cloned())
                            .collect();
                        KeptHistory {
                            start: e.start,
                            milestones: e
                                .milestones
                                .iter()
                                .map(|(&version, data)| KeptMilestone {
                                    version,
                                    time: dump::milestone_time(&entries, version, e.record.mtime),
                                    data: data.clone(),
                                })
                                .collect(),
                            entries,
                        }
                    }),
                })
                .collect()
        };
        dumps.sort_unstable_by(|a, b| a.record.name.cmp(&b.record.name));
        let (tx, rx) = tokio::sync::mpsc::channel(dumps.len().max(1));
        for d in dumps {
            tx.try_send(Ok(d)).expect("the channel holds every record");
        }
        Ok(rx)
    }

    async fn restore(&self, dumps: &[RecordDump]) -> Result<(), StoreError> {
        dump::check_restore(dumps)?;
        let mut records = self.records.lock();
        if let Some(d) = dumps.iter().find(|d| records.contains_key(&d.record.name)) {
            return Err(StoreError::Exists {
                name: d.record.name.clone(),
            });
        }
        let mut indexes = self.indexes.lock();
        for d in dumps {
            indexes.update_text(&d.record.name, d.record.deleted, &d.record.data);
            let history = d.history_or_current();
            records.insert(
                d.record.name.clone(),
                Box::new(Entry {
                    record: d.record.clone(),
                    journal: history.entries.into(),
                    lone_create: None,
                    milestones: history
                        .milestones
                        .into_iter()
                        .map(|m| (m.version, m.data))
                        .collect(),
                    start: history.start,
                }),
            );
        }
        Ok(())
    }

    async fn version_at_time(&self, name: &str, time: u64) -> Result<Option<u64>, StoreError> {
        let records = self.records.lock();
        Ok(records.get(name).and_then(|e| {
            e.journal
                .iter()
                .rev()
                .find(|entry| entry.time <= time)
                .map(|entry| entry.version)
                .or_else(|| e.lone_create.filter(|&t| t <= time).map(|_| e.start))
        }))
    }
}

/// Applies one checked write, storing a milestone where it is due and pruning what the
/// retention settings let go.
fn apply(
    records: &mut HashMap<String, Box<Entry>>,
    write: &Write,
    history: &History,
    now: u64,
) -> WriteOutcome {
    let Write::Put {
        record,
        base_version,
        entries,
    } = write;
    let current = records.get(&record.name).map(|e| e.record.version);
    if current != *base_version {
        return WriteOutcome::Conflict { current };
    }
    let slot = match records.entry(record.name.clone()) {
        hash_map::Entry::Occupied(slot) => {
            let slot = slot.into_mut();
            slot.materialize();
            slot.record = record.clone();
            slot.journal.extend(entries.iter().cloned());
            slot
        }
        hash_map::Entry::Vacant(slot) => {
            let lone_create = lone_empty_create(entries, record);
            let journal = match lone_create {
                Some(_) => VecDeque::new(),
                None => entries.iter().cloned().collect(),
            };
            slot.insert(Box::new(Entry {
                record: record.clone(),
                journal,
                lone_create,
                milestones: BTreeMap::new(),
                start: entries.first().map_or(record.version, |e| e.version),
            }))
        }
    };
    if history.milestone_due(*base_version, record.version) {
        slot.milestones.insert(record.version, record.data.clone());
    }
    prune(slot, history, now);
    WriteOutcome::Committed
}

/// Moves the record's history start forward as far as retention allows.
fn prune(slot: &mut Entry, history: &History, now: u64) {
    if !history.may_prune(slot.record.version, slot.start) {
        return;
    }
    // Pruning reads and cuts the journal's entries: the implicit one is one of them.
    slot.materialize();
    let milestones: Vec<u64> = slot.milestones.keys().copied().collect();
    let by_count = history.prune_to(slot.record.version, slot.start, &milestones);
    let by_age = history.keep_age.and_then(|age| {
        let cutoff = now.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
        milestones
            .iter()
            .rev()
            .find(|&&m| entry_at(&slot.journal, m).is_some_and(|e| e.time < cutoff))
            .copied()
            .filter(|&m| m > slot.start)
    });
    let Some(start) = by_count.max(by_age) else {
        return;
    };
    while slot.journal.front().is_some_and(|e| e.version <= start) {
        slot.journal.pop_front();
    }
    slot.milestones = slot.milestones.split_off(&start);
    slot.start = start;
}

/// The entry of `version` in a journal of consecutive versions.
fn entry_at(journal: &VecDeque<JournalEntry>, version: u64) -> Option<&JournalEntry> {
    let first = journal.front()?.version;
    let index = usize::try_from(version.checked_sub(first)?).ok()?;
    journal.get(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The write that takes `name` from `version - 1` to `version` (from nothing, for 0).
    fn put(name: &str, version: u64) -> Write {
        Write::Put {
            record: StoredRecord {
                name: name.to_owned(),
                version,
                created: 0,
                deleted: false,
                data: format!(r#"{{"v":{version}}}"#),
                ctime: 1,
                mtime: 2,
            },
            base_version: version.checked_sub(1),
            entries: vec![JournalEntry {
                version,
                time: 3,
                op: format!(r#"{{"v":{version}}}"#),
                author: None,
                origin: None,
            }],
        }
    }

    /// However often a record is written, it keeps its newest entries from a milestone
    /// on: memory follows the retention setting, not the number of writes.
    #[tokio::test]
    async fn retention_keeps_the_newest_entries_from_a_milestone() {
        let store = MemoryStore::with_history(History {
            milestone_every: 10,
            keep_ops: Some(25),
            keep_age: None,
        });
        // Batches of three writes to the record: the bound holds within a batch too.
        for v in (0..1002).step_by(3) {
            let batch = [put("hot", v), put("hot", v + 1), put("hot", v + 2)];
            let outcomes = store.commit(&batch).await.unwrap();
            assert!(outcomes.iter().all(|o| *o == WriteOutcome::Committed));
        }
        let start = store.history_start("hot").await.unwrap().unwrap();
        assert_eq!(start % 10, 0, "the history starts at a milestone");
        let max_kept = store.history.max_kept().unwrap();
        assert!((1001 - start) >= 25 && (1001 - start) < max_kept);
        let journal = store.journal("hot", 0, u64::MAX).await.unwrap();
        let versions: Vec<u64> = journal.iter().map(|e| e.version).collect();
        assert_eq!(versions, (start + 1..=1001).collect::<Vec<_>>());
        let m = store.milestone("hot", start).await.unwrap().unwrap();
        assert_eq!(
            m,
            Milestone {
                version: start,
                data: format!(r#"{{"v":{start}}}"#)
            }
        );
        assert_eq!(store.milestone("hot", start - 1).await.unwrap(), None);
        assert_eq!(store.get("hot").await.unwrap().unwrap().version, 1001);
        let (entries, milestones) = store.kept();
        assert!(
            entries < max_kept as usize && milestones <= 7,
            "{entries} {milestones}"
        );
    }

    /// A record created by subscribing (a lone `{}` create) keeps that entry implicit,
    /// and every read answers as if it were stored; the next write makes it real, in
    /// order before the write's own entry.
    #[tokio::test]
    async fn a_lone_empty_create_reads_as_a_stored_entry() {
        let store = MemoryStore::new();
        let create = JournalEntry {
            version: 0,
            time: 7,
            op: empty_create_op().to_owned(),
            author: None,
            origin: None,
        };
        let record = StoredRecord {
            name: "r".to_owned(),
            version: 0,
            created: 0,
            deleted: false,
            data: "{}".to_owned(),
            ctime: 7,
            mtime: 7,
        };
        let first = Write::Put {
            record,
            base_version: None,
            entries: vec![create.clone()],
        };
        assert_eq!(
            store.commit(&[first]).await.unwrap(),
            [WriteOutcome::Committed]
        );
        assert!(
            store.records.lock()["r"].lone_create.is_some(),
            "kept implicit"
        );
        assert_eq!(
            store.journal("r", 0, 10).await.unwrap(),
            std::slice::from_ref(&create)
        );
        assert!(store.journal("r", 1, 10).await.unwrap().is_empty());
        assert_eq!(store.kept(), (1, 0));
        assert_eq!(store.version_at_time("r", 6).await.unwrap(), None);
        assert_eq!(store.version_at_time("r", 7).await.unwrap(), Some(0));
        assert_eq!(store.history_start("r").await.unwrap(), Some(0));

        assert_eq!(
            store.commit(&[put("r", 1)]).await.unwrap(),
            [WriteOutcome::Committed]
        );
        assert!(store.records.lock()["r"].lone_create.is_none(), "made real");
        let journal = store.journal("r", 0, 10).await.unwrap();
        let versions: Vec<(u64, u64)> = journal.iter().map(|e| (e.version, e.time)).collect();
        assert_eq!(versions, [(0, 7), (1, 3)]);
        assert_eq!(journal[0], create);
        assert_eq!(store.kept(), (2, 0));
    }

    /// A first write whose entry is anything but a plain `{}` create (an author, an
    /// origin, other data) is stored as it is.
    #[tokio::test]
    async fn other_first_entries_are_stored() {
        let store = MemoryStore::new();
        let mut write = put("a", 0);
        let Write::Put { entries, .. } = &mut write;
        entries[0].op = empty_create_op().to_owned();
        entries[0].author = Some("alice".to_owned());
        store.commit(&[write.clone()]).await.unwrap();
        assert!(store.records.lock()["a"].lone_create.is_none());
        let Write::Put { entries, .. } = &write;
        assert_eq!(store.journal("a", 0, 0).await.unwrap(), *entries);
        store.commit(&[put("b", 0)]).await.unwrap();
        assert!(store.records.lock()["b"].lone_create.is_none());
    }

    #[test]
    fn the_default_store_keeps_the_documented_history() {
        assert_eq!(MemoryStore::new().history, History::default());
    }
}
