//! The Store trait: what the engine needs from a database.

use async_trait::async_trait;

use crate::error::StoreError;

/// A record as stored. `data` is the record's value as JSON text, kept as text so that a
/// write is serialised once and a load hands the engine exactly what was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub name: String,
    pub version: u64,
    pub data: String,
    pub ctime: u64,
    pub mtime: u64,
}

/// One accepted write in a record's journal: the version it produced, when (ms since the
/// epoch) and the op as JSON text (`recordsync_core::WriteOp` serialised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub version: u64,
    pub time: u64,
    pub op: String,
}

/// One change to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Store `record` and append `entry` to its journal, if the record's stored version is
    /// still `base_version` (`None`: the record must not exist). `entry` is `None` for a
    /// record created empty (version 0), which has no op to journal.
    Put {
        record: StoredRecord,
        base_version: Option<u64>,
        entry: Option<JournalEntry>,
    },
    /// Remove the record and its journal, if its stored version is still `base_version`.
    Delete { name: String, base_version: u64 },
}

impl Write {
    /// The record this write is about.
    pub fn name(&self) -> &str {
        match self {
            Write::Put { record, .. } => &record.name,
            Write::Delete { name, .. } => name,
        }
    }
}

/// What became of one write of a committed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Committed,
    /// The record was not at `base_version`: another writer (another node) got there
    /// first. Nothing of this write was stored. `current` is what the store holds.
    Conflict {
        current: Option<u64>,
    },
}

/// A database for records and their journals.
///
/// `commit` is the only way to change anything: it applies a batch atomically and
/// durably — when it returns `Ok`, every `Committed` write survives a crash. Writes of
/// one batch to the same record are applied in order, each checked against the result
/// of the one before.
///
/// Once a write to a record conflicts, every later write to that record in the same
/// batch conflicts too (with the same `current`), whatever its `base_version`. Later
/// writes to a record in one batch are built on the earlier ones; one whose base was a
/// version that never got stored must not land on a same-numbered version written by
/// someone else. ([`GroupCommitter`](crate::GroupCommitter) extends this across batches.)
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The record's current state, or `None` when it does not exist.
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StoreError>;

    /// Commits a batch, returning one outcome per write in order.
    ///
    /// On `Err` the batch may or may not have been stored (a failed fsync, say, leaves it
    /// unknown): reload the records it touched before writing to them again.
    async fn commit(&self, batch: &[Write]) -> Result<Vec<WriteOutcome>, StoreError>;

    /// Journal entries of `name` with `from <= version <= to`, in version order. A store
    /// may have dropped old entries: the memory store keeps the newest
    /// [`DEFAULT_JOURNAL_LIMIT`](crate::MemoryStore::DEFAULT_JOURNAL_LIMIT) per record.
    async fn journal(
        &self,
        name: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<JournalEntry>, StoreError>;

    /// Whether the store can take work now, for health checks. A store with a server to
    /// reach asks it; by default, an empty commit.
    async fn ping(&self) -> Result<(), StoreError> {
        self.commit(&[]).await.map(drop)
    }

    /// The name of the data set this store holds, the same for every store opened on the
    /// same data, whichever node opened it. Nodes scope their bus topics with it, so that
    /// several data sets can share one Redis or NATS without taking each other's news
    /// (which would put another data set's changes into their cached records).
    ///
    /// `None` for a store whose data lives in this process only (memory, embedded): the
    /// nodes that share it share the instance, and no scope is needed.
    fn data_set(&self) -> Option<&str> {
        None
    }
}
