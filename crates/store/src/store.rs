//! The Store trait: what the engine needs from a database.

use async_trait::async_trait;
use recordsync_core::query::{Query, Selection};

use crate::dump::RecordDump;
use crate::error::StoreError;
use crate::history::Milestone;

/// A record as stored: its current state, which may be a tombstone.
///
/// Versions are the engine's: they count every journaled op of the record, its creates
/// and deletes included, and never go back; a record is created at version `created`
/// (0 for a new name, the tombstone's version + 1 for a re-create). `data` is the value as
/// JSON text, kept as text so that a write is serialised once and a load hands the engine
/// exactly what was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub name: String,
    pub version: u64,
    /// The version of the create that began the record's current life.
    pub created: u64,
    /// A tombstone: the record was deleted at `version` (`data` is `"null"`). Its row
    /// keeps the version and the history going for a re-create.
    pub deleted: bool,
    pub data: String,
    pub ctime: u64,
    pub mtime: u64,
}

/// Who sent an op, so that a resubmission (a client that reconnected without its
/// acknowledgement) is recognised and acknowledged instead of applied twice: ShareDB's
/// `src` (the client's id) and `seq` (its op counter).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub src: String,
    pub seq: u64,
}

/// One accepted op in a record's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// The version the op produced.
    pub version: u64,
    /// When it was accepted, in milliseconds since the Unix epoch.
    pub time: u64,
    /// The op as JSON text (`recordsync_core::JournalOp`), its kind in its `"op"` field.
    pub op: String,
    /// The authenticated user id of the writer, when there was one.
    pub author: Option<String>,
    /// The client op it came from, when the protocol names one.
    pub origin: Option<Origin>,
}

/// One change to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Store `record` and append `entries` to its journal, if the record's stored version
    /// is still `base_version` (`None`: the name has no row at all, not even a
    /// tombstone).
    ///
    /// `entries` are the ops from the base to `record.version`: versions `base + 1 ..=
    /// record.version` (or `0 ..= record.version` for a new name), one each, in order.
    /// A delete is a `Put` of a tombstone with its `delete` entry.
    Put {
        record: StoredRecord,
        base_version: Option<u64>,
        entries: Vec<JournalEntry>,
    },
}

impl Write {
    /// The record this write is about.
    pub fn name(&self) -> &str {
        match self {
            Write::Put { record, .. } => &record.name,
        }
    }

    /// Whether `entries` are exactly the versions from the base to the record's version,
    /// as [`Write::Put`] requires; stores refuse a write that is not
    /// ([`StoreError::Malformed`]).
    pub fn check(&self) -> Result<(), StoreError> {
        let Write::Put {
            record,
            base_version,
            entries,
        } = self;
        let first = base_version.map_or(Some(0), |b| b.checked_add(1));
        let expected = first.map(|first| first..=record.version);
        // At least one entry: a Put always journals the op (or create, or delete) it is.
        let matches = !entries.is_empty()
            && expected.is_some_and(|range| {
                range.clone().count() == entries.len()
                    && range.zip(entries).all(|(v, e)| e.version == v)
            });
        if matches {
            Ok(())
        } else {
            Err(StoreError::Malformed {
                name: record.name.clone(),
                reason: format!(
                    "entries {:?} do not lead from base {base_version:?} to version {}",
                    entries.iter().map(|e| e.version).collect::<Vec<_>>(),
                    record.version
                ),
            })
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

    /// Live records (never a tombstone) whose names start with `prefix` and sort strictly after
    /// `after` (byte order of the name), in name order, at most `limit` of them.
    ///
    /// A page of a listing: the next page is the one after the last name of this one, so
    /// paging visits every record that stays live meanwhile exactly once, whatever is
    /// written between pages (a name is a stable cursor). Each call reads one committed
    /// state. `%`, `_` and every other character in `prefix` stand for themselves.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// Commits a batch, returning one outcome per write in order.
    ///
    /// On `Err` the batch may or may not have been stored (a failed fsync, say, leaves it
    /// unknown): reload the records it touched before writing to them again.
    async fn commit(&self, batch: &[Write]) -> Result<Vec<WriteOutcome>, StoreError>;

    /// Journal entries of `name` with `from <= version <= to`, in version order, across
    /// deletes and re-creates. Entries before the record's history start
    /// ([`Store::history_start`]) have been pruned (see [`History`](crate::History)).
    async fn journal(
        &self,
        name: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<JournalEntry>, StoreError>;

    /// The newest milestone of `name` at or below `version`.
    async fn milestone(&self, name: &str, version: u64) -> Result<Option<Milestone>, StoreError>;

    /// The oldest version of `name` that can still be read: its value is a milestone or
    /// follows from the entries after the record's first create. `None`: no such record.
    async fn history_start(&self, name: &str) -> Result<Option<u64>, StoreError>;

    /// The version `name` had at `time` (ms since the epoch): that of the newest kept
    /// entry with `entry.time <= time`. `None`: no kept entry is that old.
    async fn version_at_time(&self, name: &str, time: u64) -> Result<Option<u64>, StoreError>;

    /// Answers a ShareDB query (`createFetchQuery`'s Mongo-style filter, sort, skip,
    /// limit, count) over `collection`: the live records named `collection/<id>`
    /// (`collection` holds no `/`: [`StoreError::InvalidQuery`] otherwise). Never a
    /// tombstone. Records come in the query's order (ties by id); with `$count`, their
    /// number. What `_id`, `_v` (ShareDB's version: the stored version + 1), `_type` and
    /// `_m.ctime`/`_m.mtime` match is `recordsync_core::query::Doc`'s.
    ///
    /// The default answers [`StoreError::Unsupported`], so that wrappers and test
    /// doubles written before queries need not change; every store of this crate answers.
    async fn query(
        &self,
        collection: &str,
        query: &Query,
    ) -> Result<Selection<StoredRecord>, StoreError> {
        let _ = query;
        Err(StoreError::Unsupported(format!(
            "queries (on collection {collection:?})"
        )))
    }

    /// Every record (tombstones too) whose name starts with `prefix`, in name order, with
    /// its kept history when `history` is set, read from **one** consistent state of the
    /// store (a redb read transaction, a PostgreSQL `REPEATABLE READ` transaction), sent
    /// through the returned channel as it is read: for backups. An error ends the stream.
    ///
    /// The default answers [`StoreError::Unsupported`]: wrappers and test doubles need
    /// not back up; every store of this crate does.
    async fn export(
        &self,
        prefix: &str,
        history: bool,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<RecordDump, StoreError>>, StoreError> {
        let _ = (prefix, history);
        Err(StoreError::Unsupported("exports".into()))
    }

    /// Writes `records` with their histories exactly as given (versions, times, JSON
    /// text), all or none: for loading a backup. A record whose name already has a row
    /// (a tombstone too) fails the whole call with [`StoreError::Exists`]; a history that
    /// breaks [`KeptHistory`](crate::KeptHistory)'s invariant with
    /// [`StoreError::Malformed`]. Durable
    /// when it returns.
    ///
    /// The default answers [`StoreError::Unsupported`], as for [`export`](Self::export).
    async fn restore(&self, records: &[RecordDump]) -> Result<(), StoreError> {
        let _ = records;
        Err(StoreError::Unsupported("restoring backups".into()))
    }

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
