//! The PostgreSQL store: several recordsync nodes share one database.
//!
//! `--storage postgres://user@host:5432/db?schema=recordsync` selects it. recordsync
//! creates and migrates its own schema on connect (`postgres/migrations.rs`; versioned
//! SQL embedded in the binary, applied in one transaction under an advisory lock, listed
//! in `schema_migrations`). Besides libpq's URL parameters, the URL takes `schema`
//! (default `recordsync`) and `pool_size` (default 8).
//!
//! # Tables (after migration 3; the SQL files in `postgres/migrations/` say why each
//! column is what it is)
//!
//! - `records(name text PRIMARY KEY, version bigint, created bigint, deleted boolean,
//!   history_start bigint, data jsonb, data_json json, ctime bigint, mtime bigint)`: one
//!   row per name ever written; a deleted record is a tombstone row (`deleted`, data
//!   `null`) that keeps its version.
//! - `journal(name text, version bigint, time bigint, op jsonb, op_json json, author text,
//!   origin_src text, origin_seq bigint, PRIMARY KEY (name, version))`: one row per op,
//!   creates and deletes included, from the record's `history_start` (exclusive, but the
//!   first create's row is kept until pruned) to its version.
//! - `milestones(name text, version bigint, time bigint, data jsonb, data_json json,
//!   PRIMARY KEY (name, version))`: the record's value every
//!   [`History::milestone_every`] versions.
//! - `data_set(id text)` (migration 2): one row, a random id made with the schema, which
//!   every node on it reads at connect ([`Store::data_set`]) and scopes its bus topics
//!   with.
//! - `history_replay(name text PRIMARY KEY)` (migration 4): records of migration 2 whose
//!   journal is yet to be replayed for milestones (below); emptied on connect.
//!
//! Migration 3 upgraded the tables of migration 2 in place: every record got `created`
//! 0, a create row `{"op":"create","data":{}}` at version 0 (time: its ctime) and a
//! milestone at its current version; its journal rows kept their versions. Migration 4
//! lists those records in `history_replay(name)`; on connect, a record of the list whose
//! journal is longer than retention keeps has it replayed for the milestones retention
//! needs, and is pruned (`postgres/replay.rs`).
//!
//! # History and retention
//!
//! As every store (see [`History`]): a commit stores a milestone where a write crosses a
//! multiple of `milestone_every`, and moves a record's `history_start` forward as
//! [`PostgresOptions::history`] allows, deleting the journal rows at or below it and the
//! milestones below it in the same transaction. PostgreSQL's autovacuum makes the space
//! of deleted rows reusable by later inserts (see `bench/NOTES.md` for the figures).
//!
//! **Key order.** recordsync keeps object keys in the order clients wrote them, and
//! jsonb does not (it sorts keys and drops duplicates). So the value is stored twice:
//! `data_json` (type `json`, which PostgreSQL keeps as the exact text) is what
//! recordsync reads back, byte for byte; `data` (jsonb) is the same value for SQL queries
//! and indexes. jsonb cannot hold a string containing U+0000 (`\u0000`), nor a number
//! beyond the range of PostgreSQL's `numeric` (`1e+200000`): such a value is still stored
//! exactly in `data_json`, with `data` NULL, rather than refused. Ops and milestones are
//! kept the same way (`op_json` / `op`, `data_json` / `data`). A record *name* containing U+0000 cannot be stored at all
//! (PostgreSQL text refuses the byte): such a write fails its batch with
//! [`StoreError::Unstorable`], and reads of such a name find nothing.
//!
//! # Queries
//!
//! [`Store::query`] reads the collection's range of the primary key with a `WHERE`
//! clause over `data` that narrows the rows (containment for equality, jsonpath for
//! ranges; values as bound parameters), and decides each row, sorts and windows in Rust
//! with the evaluator every store uses; rows whose `data` is NULL are always read and
//! decided on their `data_json`. `postgres/query.rs` lists which indexes help
//! (`USING gin (data jsonb_path_ops)` for equality, `((data -> 'field'))` for `$gt`, each
//! with the partial index `(name) WHERE data IS NULL`, which the schema has and which lets
//! PostgreSQL combine them with the NULL rows).
//!
//! # Commits and conflicts between nodes
//!
//! A batch is one transaction (see `postgres/batch.rs`): the batch's existing records are
//! locked, new ones claimed with `INSERT ... ON CONFLICT DO NOTHING`, and each write is
//! checked against the version the database holds, so a write based on a version
//! another node has replaced gets [`WriteOutcome::Conflict`] (the engine answers
//! VERSION_EXISTS, as on one node) and nothing is lost. Locks are taken in one global
//! order (by name), so nodes committing overlapping batches never deadlock. The commit
//! waits for PostgreSQL's WAL flush (`synchronous_commit` is turned on for recordsync's
//! sessions where the server has it off), so a `Committed` write is durable.
//!
//! # When PostgreSQL is unreachable
//!
//! Calls fail at once (or after `connect_timeout`) with [`StoreError::Unavailable`]
//! naming the server. Connections come from a small pool (deadpool-postgres) that drops
//! a broken connection when it is next taken and opens a new one, so the store recovers
//! by itself when the server is back: no restart. A statement that fails because its
//! pooled connection died is retried on a fresh one when that is safe (reads, and
//! commits whose `COMMIT` was not yet sent); a commit that loses its connection while
//! committing returns an error, and, as [`Store::commit`] says, may or may not have been
//! stored. Every call is bounded by `op_timeout` (30 s): a hung server fails writes
//! instead of stalling the group committer forever.
//!
//! # Why deadpool-postgres
//!
//! The pool must replace dead connections, bound their number, time out when none can
//! be had, and cache prepared statements per connection. deadpool-postgres does exactly
//! that, is small (no macros, no background threads) and well maintained; writing it
//! here would be the same code with fewer users.

mod backup;
mod batch;
mod errors;
mod migrations;
mod query;
mod replay;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod url;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use recordsync_core::query::{Query, Selection};
use tokio_postgres::NoTls;

use crate::error::{Cause, StoreError};
use crate::history::{History, Milestone};
use crate::store::{JournalEntry, Origin, Store, StoredRecord, Write, WriteOutcome};
use errors::Kind;

pub use migrations::SCHEMA_VERSION;
pub use url::{is_postgres_url, redact_url};

/// Settings beyond the URL. The URL's `schema` and `pool_size` parameters override
/// these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The schema holding recordsync's tables; created if missing. Plain identifier.
    pub schema: String,
    /// Connections at most. Commits use one at a time (the group committer runs one
    /// batch at a time); reads share the rest.
    pub pool_size: usize,
    /// How long to wait for a new connection (unless the URL sets `connect_timeout`).
    pub connect_timeout: Duration,
    /// The longest one call (commit, get, journal) may take, waiting for a connection
    /// included.
    pub op_timeout: Duration,
    /// Milestones and retention of the records' history (see [`History`]). Every node on
    /// one schema should use the same.
    pub history: History,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: "recordsync".into(),
            pool_size: 8,
            connect_timeout: url::DEFAULT_CONNECT_TIMEOUT,
            op_timeout: Duration::from_secs(30),
            history: History::default(),
        }
    }
}

/// What the store has had to do about failures, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostgresStats {
    /// Calls retried on a new connection because the pooled one had died.
    pub reconnect_retries: u64,
    /// Transactions retried after PostgreSQL rolled them back for a deadlock or a
    /// serialization failure (should stay 0: locks are taken in a global order).
    pub conflict_retries: u64,
}

/// Records and journals in a PostgreSQL schema, shared by any number of nodes.
pub struct PostgresStore {
    pool: Pool,
    /// `host:port/db`, for messages (never the password).
    target: String,
    schema: String,
    op_timeout: Duration,
    history: History,
    sql: Sql,
    reconnect_retries: AtomicU64,
    conflict_retries: AtomicU64,
    /// Read from the schema's `data_set` table on connect (see [`Store::data_set`]).
    data_set: std::sync::OnceLock<String>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Attempts per call when the failure allows another (a dead pooled connection, a
/// deadlock): enough to get past every stale connection of a small pool's worst case
/// after a server restart, since each retry also discards the one that failed.
const ATTEMPTS: usize = 4;

impl PostgresStore {
    /// Connects to `url` (`postgres://` or `postgresql://`), creating or migrating the
    /// schema. Fails if the server cannot be reached now.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let (config, options) =
            url::parse(url, &options).map_err(|reason| StoreError::Database {
                target: redact_url(url),
                reason: format!("the URL is not usable: {reason}").into(),
            })?;
        let target = url::describe(&config);
        let connect_timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(options.connect_timeout);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A dead connection is dropped when next taken; a live one is reused
                // without a test query (a failure then is retried, see ATTEMPTS).
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(connect_timeout + Duration::from_secs(1)))
            .recycle_timeout(Some(connect_timeout))
            .wait_timeout(Some(options.op_timeout))
            .post_create(Hook::async_fn(|client, _| {
                Box::pin(async move {
                    ensure_durable_commits(client)
                        .await
                        .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| StoreError::Database {
                target: target.clone(),
                reason: Cause::with_source(format!("cannot set up the connection pool: {e}"), e),
            })?;
        let store = PostgresStore {
            sql: Sql::new(&options.schema),
            pool,
            target,
            schema: options.schema,
            op_timeout: options.op_timeout,
            history: options.history,
            reconnect_retries: AtomicU64::new(0),
            conflict_retries: AtomicU64::new(0),
            data_set: std::sync::OnceLock::new(),
        };
        store.prepare_database().await?;
        Ok(store)
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// `host:port/db` of the server (no credentials).
    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn stats(&self) -> PostgresStats {
        PostgresStats {
            reconnect_retries: self.reconnect_retries.load(Ordering::Relaxed),
            conflict_retries: self.conflict_retries.load(Ordering::Relaxed),
        }
    }

    /// Checks the server and migrates the schema.
    async fn prepare_database(&self) -> Result<(), StoreError> {
        let setup = |reason: Cause| StoreError::Database {
            target: self.target.clone(),
            reason,
        };
        let mut conn = self.connection("connecting").await?;
        let encoding: String = conn
            .query_one("SHOW server_encoding", &[])
            .await
            .map_err(|e| errors::store_error(&self.target, "checking the server", e))?
            .get(0);
        if encoding != "UTF8" {
            return Err(setup(
                format!(
                    "the database's encoding is {encoding}; recordsync needs UTF8 (create the \
                 database with ENCODING 'UTF8')"
                )
                .into(),
            ));
        }
        let applied = migrations::migrate(&mut conn, &self.schema)
            .await
            .map_err(|e| match e {
                migrations::MigrateError::Newer { found } => setup(
                    format!(
                        "schema {:?} is at version {found}, written by a newer recordsync; this \
                     build knows versions up to {SCHEMA_VERSION}: run the newer recordsync",
                        self.schema
                    )
                    .into(),
                ),
                migrations::MigrateError::Db(e) => match errors::kind(&e) {
                    Kind::Unavailable => errors::store_error(&self.target, "migrating", e),
                    _ => setup(Cause::with_source(
                        format!(
                            "migrating schema {:?} failed, nothing was changed: {}",
                            self.schema,
                            errors::describe(&e)
                        ),
                        e,
                    )),
                },
            })?;
        let data_set: String = conn
            .query_one(&format!("SELECT id FROM {}.data_set", self.schema), &[])
            .await
            .map_err(|e| errors::store_error(&self.target, "reading the data set's id", e))?
            .get(0);
        let _ = self.data_set.set(data_set);
        let started = std::time::Instant::now();
        match replay::replay_pending(&mut conn, &self.schema, &self.history, crate::now_ms()).await
        {
            Ok(done) if done.listed > 0 => tracing::info!(
                target = %self.target,
                schema = %self.schema,
                records = done.listed,
                pruned = done.pruned,
                replayed_entries = done.entries,
                deleted_entries = done.deleted,
                refused = done.refused,
                millis = started.elapsed().as_millis() as u64,
                "replayed the journals of records upgraded from migration 2 for their \
                 milestones, and pruned their history beyond the retention settings"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                target = %self.target,
                schema = %self.schema,
                error = %errors::describe(&e),
                "replaying the journals of records upgraded from migration 2 failed; \
                 connecting without it (the next connect tries again)"
            ),
        }
        if applied.is_empty() {
            tracing::info!(target = %self.target, schema = %self.schema, version = SCHEMA_VERSION, "PostgreSQL store ready");
        } else {
            tracing::info!(target = %self.target, schema = %self.schema, ?applied, "PostgreSQL store migrated");
        }
        Ok(())
    }

    /// A connection from the pool, or `Unavailable` saying why none can be had.
    async fn connection(&self, what: &str) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => match errors::kind(&e) {
                Kind::Unavailable => errors::store_error(&self.target, what, e),
                _ => StoreError::Database {
                    target: self.target.clone(),
                    reason: Cause::with_source(
                        format!("{what}: cannot connect: {}", errors::describe(&e)),
                        e,
                    ),
                },
            },
            PoolError::Timeout(_) => errors::unavailable(
                &self.target,
                what,
                "no connection could be opened or freed in time",
            ),
            PoolError::PostCreateHook(e) => errors::unavailable(
                &self.target,
                what,
                &format!("setting up a new connection failed: {e}"),
            ),
            other => StoreError::Io(Cause::with_source(
                format!("{what} in PostgreSQL at {}: {other}", self.target),
                other,
            )),
        })
    }

    /// Runs `op` on a pooled connection, bounded by `op_timeout`, retrying on a new
    /// connection when `op`'s failure says that is safe. A connection whose call failed
    /// is discarded: after an error its state (an open transaction, a half-read reply)
    /// is not worth trusting.
    async fn run(&self, op: Op<'_>) -> Result<Output, StoreError> {
        let what = op.what();
        let deadline = tokio::time::Instant::now() + self.op_timeout;
        let mut attempt = 1;
        loop {
            let result = tokio::time::timeout_at(deadline, async {
                let mut conn = self.connection(what).await.map_err(Err)?;
                match self.attempt(&mut conn, &op).await {
                    Ok(value) => Ok(value),
                    Err(failure) => {
                        drop(Object::take(conn));
                        Err(Ok(failure))
                    }
                }
            })
            .await;
            let failure = match result {
                Ok(Ok(value)) => return Ok(value),
                // No connection to be had: retrying now would fail the same way.
                Ok(Err(Err(store_error))) => return Err(store_error),
                Ok(Err(Ok(failure))) => failure,
                Err(_) => {
                    return Err(errors::unavailable(
                        &self.target,
                        what,
                        &format!(
                            "no answer within {:?}{}",
                            self.op_timeout,
                            if matches!(op, Op::Commit(_)) {
                                "; the batch may or may not have been stored"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
            };
            let kind = errors::kind(&failure.error);
            let retry = match kind {
                Kind::Retry => {
                    self.conflict_retries.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Kind::Unavailable if !failure.maybe_committed => {
                    self.reconnect_retries.fetch_add(1, Ordering::Relaxed);
                    true
                }
                _ => false,
            };
            if retry && attempt < ATTEMPTS {
                tracing::debug!(error = %errors::describe(&failure.error), attempt, "{what}: retrying");
                attempt += 1;
                continue;
            }
            let maybe_committed = failure.maybe_committed;
            let mut error = errors::store_error(&self.target, what, failure.error);
            if maybe_committed && let StoreError::Unavailable(message) = &mut error {
                message.push_str("; the connection was lost while committing, so the batch may or may not have been stored");
            }
            return Err(error);
        }
    }
}

/// Turns `synchronous_commit` on for this session where the server has it off: an
/// acknowledged write must survive a crash of the database server.
async fn ensure_durable_commits(
    client: &mut deadpool_postgres::ClientWrapper,
) -> Result<(), tokio_postgres::Error> {
    let setting: String = client
        .query_one("SELECT current_setting('synchronous_commit')", &[])
        .await?
        .get(0);
    if setting == "off" {
        client.batch_execute("SET synchronous_commit = on").await?;
        tracing::warn!(
            "PostgreSQL has synchronous_commit off; recordsync turns it on for its own \
             sessions so that acknowledged writes survive a crash of the database"
        );
    }
    Ok(())
}

/// One call, as [`PostgresStore::run`] retries it.
enum Op<'a> {
    Ping,
    Get(&'a str),
    Journal(&'a str, i64, i64),
    Milestone(&'a str, i64),
    HistoryStart(&'a str),
    VersionAtTime(&'a str, i64),
    Commit(&'a [Write]),
    /// A query's SQL (`postgres/query.rs`) and its parameters.
    Query(&'a str, &'a [query::Param]),
    /// A page of a listing ([`Store::list`]): its SQL and parameters.
    List(&'a str, &'a [query::Param]),
}

enum Output {
    Row(Option<tokio_postgres::Row>),
    Rows(Vec<tokio_postgres::Row>),
    Outcomes(Vec<WriteOutcome>),
}

impl Op<'_> {
    fn what(&self) -> &'static str {
        match self {
            Op::Ping => "checking the connection",
            Op::Get(_) => "reading a record",
            Op::Journal(..) | Op::VersionAtTime(..) => "reading a journal",
            Op::Milestone(..) => "reading a milestone",
            Op::HistoryStart(_) => "reading a record",
            Op::Commit(_) => "committing writes",
            Op::Query(..) => "answering a query",
            Op::List(..) => "listing records",
        }
    }
}

/// A failed database call, and whether the batch may have been stored anyway.
struct Failure {
    error: tokio_postgres::Error,
    /// `COMMIT` had been sent: the outcome is unknown, so it must not be retried.
    maybe_committed: bool,
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Self {
        Failure {
            error,
            maybe_committed: false,
        }
    }
}

/// The statements, with the schema filled in.
struct Sql {
    lock: String,
    claim: String,
    current: String,
    milestones_of: String,
    upsert_records: String,
    insert_journal: String,
    insert_milestones: String,
    prune_journal: String,
    prune_milestones: String,
    get: String,
    journal: String,
    milestone: String,
    history_start: String,
    version_at_time: String,
}

impl Sql {
    fn new(schema: &str) -> Sql {
        let records = format!("{schema}.records");
        let journal = format!("{schema}.journal");
        let milestones = format!("{schema}.milestones");
        // Rows from parallel arrays: name, version, created, deleted, history start, JSON
        // text, whether jsonb can hold it, ctime, mtime.
        let record_rows = "FROM unnest($1::text[], $2::int8[], $3::int8[], $4::bool[], $5::int8[], \
             $6::text[], $7::bool[], $8::int8[], $9::int8[]) AS t(n, v, cr, del, hs, d, j, c, m)";
        let record_columns =
            "(name, version, created, deleted, history_start, data, data_json, ctime, mtime)";
        let record_values = "n, v, cr, del, hs, CASE WHEN j THEN d::jsonb END, d::json, c, m";
        // name, start: the journal rows at or below, the milestones below, go.
        let prune_rows = "unnest($1::text[], $2::int8[]) AS p(n, s)";
        Sql {
            lock: format!(
                "SELECT name, version, history_start FROM {records} \
                 WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE"
            ),
            claim: format!(
                "INSERT INTO {records} {record_columns} \
                 SELECT {record_values} {record_rows} ORDER BY n COLLATE \"C\" \
                 ON CONFLICT (name) DO NOTHING RETURNING name"
            ),
            current: format!("SELECT name, version FROM {records} WHERE name = ANY($1::text[])"),
            milestones_of: format!(
                "SELECT name, version, time FROM {milestones} WHERE name = ANY($1::text[]) \
                 ORDER BY name, version"
            ),
            upsert_records: format!(
                "INSERT INTO {records} {record_columns} \
                 SELECT {record_values} {record_rows} \
                 ON CONFLICT (name) DO UPDATE SET version = excluded.version, \
                 created = excluded.created, deleted = excluded.deleted, \
                 history_start = excluded.history_start, \
                 data = excluded.data, data_json = excluded.data_json, \
                 ctime = excluded.ctime, mtime = excluded.mtime"
            ),
            insert_journal: format!(
                "INSERT INTO {journal} (name, version, time, op, op_json, author, origin_src, origin_seq) \
                 SELECT n, v, t, CASE WHEN j THEN o::jsonb END, o::json, a, s, q \
                 FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::bool[], \
                 $6::text[], $7::text[], $8::int8[]) AS x(n, v, t, o, j, a, s, q) \
                 ON CONFLICT (name, version) DO UPDATE SET time = excluded.time, \
                 op = excluded.op, op_json = excluded.op_json, author = excluded.author, \
                 origin_src = excluded.origin_src, origin_seq = excluded.origin_seq"
            ),
            insert_milestones: format!(
                "INSERT INTO {milestones} (name, version, time, data, data_json) \
                 SELECT n, v, t, CASE WHEN j THEN d::jsonb END, d::json \
                 FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::bool[]) \
                 AS x(n, v, t, d, j) \
                 ON CONFLICT (name, version) DO UPDATE SET time = excluded.time, \
                 data = excluded.data, data_json = excluded.data_json"
            ),
            prune_journal: format!(
                "DELETE FROM {journal} j USING {prune_rows} WHERE j.name = p.n AND j.version <= p.s"
            ),
            prune_milestones: format!(
                "DELETE FROM {milestones} m USING {prune_rows} WHERE m.name = p.n AND m.version < p.s"
            ),
            get: format!(
                "SELECT version, data_json::text, ctime, mtime, created, deleted \
                 FROM {records} WHERE name = $1"
            ),
            journal: format!(
                "SELECT version, time, op_json::text, author, origin_src, origin_seq FROM {journal} \
                 WHERE name = $1 AND version BETWEEN $2 AND $3 ORDER BY version"
            ),
            milestone: format!(
                "SELECT version, data_json::text FROM {milestones} \
                 WHERE name = $1 AND version <= $2 ORDER BY version DESC LIMIT 1"
            ),
            history_start: format!("SELECT history_start FROM {records} WHERE name = $1"),
            version_at_time: format!(
                "SELECT version FROM {journal} WHERE name = $1 AND time <= $2 \
                 ORDER BY version DESC LIMIT 1"
            ),
        }
    }
}

/// `n` as a bigint, or why it cannot be one.
fn int8(name: &str, what: &str, n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Unstorable {
        name: name.to_owned(),
        reason: format!("{what} {n} is larger than PostgreSQL's bigint"),
    })
}

/// A live record from a row of `name, version, data_json::text, ctime, mtime, created`
/// (the columns listings and queries select).
fn live_record(row: &tokio_postgres::Row) -> Result<StoredRecord, StoreError> {
    let name: String = row.get(0);
    Ok(StoredRecord {
        version: uint(&name, "version", row.get(1))?,
        data: row.get(2),
        ctime: uint(&name, "ctime", row.get(3))?,
        mtime: uint(&name, "mtime", row.get(4))?,
        created: uint(&name, "created", row.get(5))?,
        deleted: false,
        name,
    })
}

fn uint(name: &str, what: &str, n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt {
        name: name.to_owned(),
        reason: format!("{what} is negative ({n}) in PostgreSQL").into(),
    })
}

/// Refuses, before anything is sent, a batch PostgreSQL would refuse as a whole.
fn check_storable(batch: &[Write]) -> Result<(), StoreError> {
    let unstorable = |name: &str, reason: &str| StoreError::Unstorable {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    for write in batch {
        let name = write.name();
        if name.contains('\0') {
            return Err(unstorable(
                name,
                "PostgreSQL cannot store the character U+0000 in a record name",
            ));
        }
        let Write::Put {
            record,
            base_version,
            entries,
        } = write;
        if record.data.contains('\0') || entries.iter().any(|e| e.op.contains('\0')) {
            return Err(unstorable(
                name,
                "the JSON text contains a raw U+0000 byte, which is not valid JSON",
            ));
        }
        let nul_in = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains('\0'));
        if entries
            .iter()
            .any(|e| nul_in(&e.author) || nul_in(&e.origin.as_ref().map(|o| o.src.clone())))
        {
            return Err(unstorable(
                name,
                "PostgreSQL cannot store the character U+0000 in an author or origin",
            ));
        }
        int8(name, "version", record.version)?;
        int8(name, "created", record.created)?;
        int8(name, "ctime", record.ctime)?;
        int8(name, "mtime", record.mtime)?;
        if let Some(base) = base_version {
            int8(name, "base version", *base)?;
        }
        for entry in entries {
            int8(name, "journal version", entry.version)?;
            int8(name, "journal time", entry.time)?;
            if let Some(origin) = &entry.origin {
                int8(name, "origin seq", origin.seq)?;
            }
        }
    }
    Ok(())
}

/// Parallel arrays of records, as `record_rows` in [`Sql::new`] takes them.
#[derive(Default)]
struct RecordRows<'a> {
    names: Vec<&'a str>,
    versions: Vec<i64>,
    created: Vec<i64>,
    deleted: Vec<bool>,
    starts: Vec<i64>,
    data: Vec<&'a str>,
    jsonb_ok: Vec<bool>,
    ctimes: Vec<i64>,
    mtimes: Vec<i64>,
}

impl<'a> RecordRows<'a> {
    /// Records with their history starts. Checked by [`check_storable`] already, so the
    /// casts cannot wrap (a start is an entry's version or a milestone's).
    fn new(records: &[(&'a StoredRecord, u64)]) -> Self {
        let mut rows = RecordRows::default();
        for &(r, start) in records {
            rows.names.push(&r.name);
            rows.versions.push(r.version as i64);
            rows.created.push(r.created as i64);
            rows.deleted.push(r.deleted);
            rows.starts.push(start as i64);
            rows.data.push(&r.data);
            rows.jsonb_ok.push(batch::jsonb_can_hold(&r.data));
            rows.ctimes.push(r.ctime as i64);
            rows.mtimes.push(r.mtime as i64);
        }
        rows
    }

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 9] {
        [
            &self.names,
            &self.versions,
            &self.created,
            &self.deleted,
            &self.starts,
            &self.data,
            &self.jsonb_ok,
            &self.ctimes,
            &self.mtimes,
        ]
    }
}

/// Parallel arrays of journal entries, as `insert_journal` takes them.
#[derive(Default)]
struct JournalRows<'a> {
    names: Vec<&'a str>,
    versions: Vec<i64>,
    times: Vec<i64>,
    ops: Vec<&'a str>,
    jsonb_ok: Vec<bool>,
    authors: Vec<Option<&'a str>>,
    srcs: Vec<Option<&'a str>>,
    seqs: Vec<Option<i64>>,
}

impl<'a> JournalRows<'a> {
    /// Checked by [`check_storable`] already, so the casts cannot wrap.
    fn new(entries: &[(&'a str, &'a JournalEntry)]) -> Self {
        let mut rows = JournalRows::default();
        for &(name, e) in entries {
            rows.names.push(name);
            rows.versions.push(e.version as i64);
            rows.times.push(e.time as i64);
            rows.ops.push(&e.op);
            rows.jsonb_ok.push(batch::jsonb_can_hold(&e.op));
            rows.authors.push(e.author.as_deref());
            rows.srcs.push(e.origin.as_ref().map(|o| o.src.as_str()));
            rows.seqs.push(e.origin.as_ref().map(|o| o.seq as i64));
        }
        rows
    }
}

impl PostgresStore {
    /// One attempt at `op` on `conn`.
    async fn attempt(&self, conn: &mut Object, op: &Op<'_>) -> Result<Output, Failure> {
        Ok(match *op {
            Op::Ping => Output::Rows(conn.query("SELECT 1", &[]).await?),
            Op::Get(name) => {
                let stmt = conn.prepare_cached(&self.sql.get).await?;
                Output::Row(conn.query_opt(&stmt, &[&name]).await?)
            }
            Op::Journal(name, from, to) => {
                let stmt = conn.prepare_cached(&self.sql.journal).await?;
                Output::Rows(conn.query(&stmt, &[&name, &from, &to]).await?)
            }
            Op::Milestone(name, version) => {
                let stmt = conn.prepare_cached(&self.sql.milestone).await?;
                Output::Row(conn.query_opt(&stmt, &[&name, &version]).await?)
            }
            Op::HistoryStart(name) => {
                let stmt = conn.prepare_cached(&self.sql.history_start).await?;
                Output::Row(conn.query_opt(&stmt, &[&name]).await?)
            }
            Op::VersionAtTime(name, time) => {
                let stmt = conn.prepare_cached(&self.sql.version_at_time).await?;
                Output::Row(conn.query_opt(&stmt, &[&name, &time]).await?)
            }
            Op::Commit(batch) => Output::Outcomes(self.commit_once(conn, batch).await?),
            Op::Query(sql, params) | Op::List(sql, params) => {
                // Not a cached statement: the text varies with the query, and an unnamed
                // statement is planned with its parameters' values, which lets an index
                // on an expression such as `data -> 'n'` match `data -> $3`.
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    params.iter().map(query::Param::as_sql).collect();
                Output::Rows(conn.query(sql, &params).await?)
            }
        })
    }

    /// One attempt at committing `batch` on `conn` (see `postgres/batch.rs`).
    async fn commit_once(
        &self,
        conn: &mut Object,
        batch: &[Write],
    ) -> Result<Vec<WriteOutcome>, Failure> {
        let names = batch::names(batch);
        let tx = conn.transaction().await?;

        // 1. Lock what exists.
        let lock = tx.prepare_cached(&self.sql.lock).await?;
        let mut existing: HashMap<String, batch::Existing> = HashMap::new();
        for row in tx.query(&lock, &[&names]).await? {
            existing.insert(
                row.get(0),
                batch::Existing {
                    version: row.get::<_, i64>(1).max(0) as u64,
                    history_start: row.get::<_, i64>(2).max(0) as u64,
                },
            );
        }

        // 2. Claim what the batch creates.
        let claims = batch::claims(batch, &existing);
        let mut claimed = HashSet::new();
        let mut lost = HashMap::new();
        if !claims.is_empty() {
            let rows = RecordRows::new(&claims);
            let claim = tx.prepare_cached(&self.sql.claim).await?;
            for row in tx.query(&claim, &rows.params()).await? {
                claimed.insert(row.get::<_, String>(0));
            }
            if claimed.len() < claims.len() {
                // Created by another node meanwhile: conflicts, reporting its version.
                let missed: Vec<&str> = claims
                    .iter()
                    .map(|(r, _)| r.name.as_str())
                    .filter(|n| !claimed.contains(*n))
                    .collect();
                let current = tx.prepare_cached(&self.sql.current).await?;
                let mut found: HashMap<String, u64> = HashMap::new();
                for row in tx.query(&current, &[&missed]).await? {
                    found.insert(row.get(0), row.get::<_, i64>(1).max(0) as u64);
                }
                for name in missed {
                    lost.insert(name.to_owned(), found.get(name).copied());
                }
            }
        }

        // 3. The milestones of the records that may prune.
        let mut milestones: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
        let pruning = batch::may_prune(batch, &existing, &self.history);
        if !pruning.is_empty() {
            let stmt = tx.prepare_cached(&self.sql.milestones_of).await?;
            for row in tx.query(&stmt, &[&pruning]).await? {
                milestones.entry(row.get(0)).or_default().push((
                    row.get::<_, i64>(1).max(0) as u64,
                    row.get::<_, i64>(2).max(0) as u64,
                ));
            }
        }

        // 4. Apply the net effect.
        let plan = batch::plan(
            batch,
            &existing,
            &claimed,
            &lost,
            &milestones,
            &self.history,
            crate::now_ms(),
        );
        if !plan.changes(claimed.len()) {
            // Nothing but conflicts: no commit, no fsync.
            tx.rollback().await?;
            return Ok(plan.outcomes);
        }
        let rows = RecordRows::new(&plan.upsert_records);
        let upsert = async {
            if rows.names.is_empty() {
                return Ok(0);
            }
            let stmt = tx.prepare_cached(&self.sql.upsert_records).await?;
            tx.execute(&stmt, &rows.params()).await
        };
        let j = JournalRows::new(&plan.journal);
        let journal = async {
            if j.names.is_empty() {
                return Ok(0);
            }
            let stmt = tx.prepare_cached(&self.sql.insert_journal).await?;
            tx.execute(
                &stmt,
                &[
                    &j.names,
                    &j.versions,
                    &j.times,
                    &j.ops,
                    &j.jsonb_ok,
                    &j.authors,
                    &j.srcs,
                    &j.seqs,
                ],
            )
            .await
        };
        let m_names: Vec<&str> = plan.milestones.iter().map(|m| m.0).collect();
        let m_versions: Vec<i64> = plan.milestones.iter().map(|m| m.1 as i64).collect();
        let m_times: Vec<i64> = plan.milestones.iter().map(|m| m.2 as i64).collect();
        let m_data: Vec<&str> = plan.milestones.iter().map(|m| m.3).collect();
        let m_jsonb: Vec<bool> = m_data.iter().map(|d| batch::jsonb_can_hold(d)).collect();
        let insert_milestones = async {
            if m_names.is_empty() {
                return Ok(0);
            }
            let stmt = tx.prepare_cached(&self.sql.insert_milestones).await?;
            tx.execute(&stmt, &[&m_names, &m_versions, &m_times, &m_data, &m_jsonb])
                .await
        };
        let p_names: Vec<&str> = plan.prune.iter().map(|p| p.0).collect();
        let p_starts: Vec<i64> = plan.prune.iter().map(|p| p.1 as i64).collect();
        let prune_journal = async {
            if p_names.is_empty() {
                return Ok(0);
            }
            let stmt = tx.prepare_cached(&self.sql.prune_journal).await?;
            tx.execute(&stmt, &[&p_names, &p_starts]).await
        };
        let prune_milestones = async {
            if p_names.is_empty() {
                return Ok(0);
            }
            let stmt = tx.prepare_cached(&self.sql.prune_milestones).await?;
            tx.execute(&stmt, &[&p_names, &p_starts]).await
        };
        // Sent together (one round trip), executed in this order.
        tokio::try_join!(
            upsert,
            journal,
            insert_milestones,
            prune_journal,
            prune_milestones
        )?;
        tx.commit().await.map_err(|error| Failure {
            error,
            maybe_committed: true,
        })?;
        Ok(plan.outcomes)
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn data_set(&self) -> Option<&str> {
        self.data_set.get().map(String::as_str)
    }

    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StoreError> {
        if name.contains('\0') {
            // Cannot be stored here, so it does not exist.
            return Ok(None);
        }
        let Output::Row(row) = self.run(Op::Get(name)).await? else {
            unreachable!("get returns a row")
        };
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(StoredRecord {
            name: name.to_owned(),
            version: uint(name, "version", row.get(0))?,
            created: uint(name, "created", row.get(4))?,
            deleted: row.get(5),
            data: row.get(1),
            ctime: uint(name, "ctime", row.get(2))?,
            mtime: uint(name, "mtime", row.get(3))?,
        }))
    }

    async fn commit(&self, batch: &[Write]) -> Result<Vec<WriteOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        batch.iter().try_for_each(Write::check)?;
        check_storable(batch)?;
        match self.run(Op::Commit(batch)).await? {
            Output::Outcomes(outcomes) => Ok(outcomes),
            _ => unreachable!("commit returns outcomes"),
        }
    }

    async fn journal(
        &self,
        name: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        if from > to || name.contains('\0') {
            return Ok(Vec::new());
        }
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let to = i64::try_from(to).unwrap_or(i64::MAX);
        let Output::Rows(rows) = self.run(Op::Journal(name, from, to)).await? else {
            unreachable!("journal returns rows")
        };
        rows.iter()
            .map(|row| {
                let origin = match (row.get::<_, Option<String>>(4), row.get(5)) {
                    (Some(src), Some(seq)) => Some(Origin {
                        src,
                        seq: uint(name, "origin seq", seq)?,
                    }),
                    _ => None,
                };
                Ok(JournalEntry {
                    version: uint(name, "journal version", row.get(0))?,
                    time: uint(name, "journal time", row.get(1))?,
                    op: row.get(2),
                    author: row.get(3),
                    origin,
                })
            })
            .collect()
    }

    async fn milestone(&self, name: &str, version: u64) -> Result<Option<Milestone>, StoreError> {
        if name.contains('\0') {
            return Ok(None);
        }
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        let Output::Row(row) = self.run(Op::Milestone(name, version)).await? else {
            unreachable!("milestone returns a row")
        };
        row.map(|row| {
            Ok(Milestone {
                version: uint(name, "milestone version", row.get(0))?,
                data: row.get(1),
            })
        })
        .transpose()
    }

    async fn history_start(&self, name: &str) -> Result<Option<u64>, StoreError> {
        if name.contains('\0') {
            return Ok(None);
        }
        let Output::Row(row) = self.run(Op::HistoryStart(name)).await? else {
            unreachable!("history_start returns a row")
        };
        row.map(|row| uint(name, "history start", row.get(0)))
            .transpose()
    }

    async fn version_at_time(&self, name: &str, time: u64) -> Result<Option<u64>, StoreError> {
        if name.contains('\0') {
            return Ok(None);
        }
        let time = i64::try_from(time).unwrap_or(i64::MAX);
        let Output::Row(row) = self.run(Op::VersionAtTime(name, time)).await? else {
            unreachable!("version_at_time returns a row")
        };
        row.map(|row| uint(name, "journal version", row.get(0)))
            .transpose()
    }

    /// One range of the primary key (names are `COLLATE "C"`: byte order), so a page
    /// reads its rows and the tombstones among them, not the whole prefix.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        if limit == 0 || prefix.contains('\0') {
            // No name holding a NUL can be stored here.
            return Ok(Vec::new());
        }
        // No stored name holds a NUL, so one is after `a\0…` exactly when it is after `a`.
        let after = after.map(|a| a.split('\0').next().unwrap_or_default());
        let (start, exclusive) = crate::listing::list_start(prefix, after);
        let end = crate::listing::prefix_end(prefix);
        if end.as_deref().is_some_and(|end| start >= end) {
            return Ok(Vec::new());
        }
        let mut params = vec![query::Param::Text(start.to_owned())];
        let upper = match end {
            Some(end) => {
                params.push(query::Param::Text(end));
                " AND name < $2"
            }
            None => "",
        };
        let sql = format!(
            "SELECT name, version, data_json::text, ctime, mtime, created FROM {}.records \
             WHERE name {} $1{upper} AND NOT deleted ORDER BY name LIMIT {}",
            self.schema,
            if exclusive { ">" } else { ">=" },
            i64::try_from(limit).unwrap_or(i64::MAX),
        );
        let Output::Rows(rows) = self.run(Op::List(&sql, &params)).await? else {
            unreachable!("a listing returns rows")
        };
        rows.iter().map(live_record).collect()
    }

    /// The rows the SQL sieve lets through (`postgres/query.rs` says which indexes
    /// help), decided, ordered and windowed in Rust as on every store.
    async fn query(
        &self,
        collection: &str,
        query: &Query,
    ) -> Result<Selection<StoredRecord>, StoreError> {
        let prefix = crate::query::prefix(collection)?;
        if prefix.contains('\0') {
            // No such name can be stored here.
            return crate::query::select(&prefix, query, Vec::new());
        }
        let end = crate::query::prefix_end(&prefix);
        let (sieve, mut params) = query::sieve(&query.filter, &prefix, 3);
        // Ids the query requires are names to read, whatever `data` holds: outside the
        // `data IS NULL OR ...`, so the primary key finds them without another index.
        let named = crate::query::named_ids(&query.filter).map(|ids| {
            let names = ids
                .iter()
                .filter(|id| !id.contains('\0'))
                .map(|id| format!("{prefix}{id}"))
                .collect();
            params.push(query::Param::Texts(names));
            format!(" AND name = ANY(${}::text[])", params.len() + 2)
        });
        let sql = format!(
            "SELECT name, version, data_json::text, ctime, mtime, created FROM {}.records \
             WHERE name >= $1 AND name < $2 AND NOT deleted{}{}",
            self.schema,
            named.unwrap_or_default(),
            match sieve {
                Some(sieve) => format!(" AND (data IS NULL OR {sieve})"),
                None => String::new(),
            }
        );
        params.splice(
            0..0,
            [query::Param::Text(prefix.clone()), query::Param::Text(end)],
        );
        let Output::Rows(rows) = self.run(Op::Query(&sql, &params)).await? else {
            unreachable!("a query returns rows")
        };
        let candidates = rows
            .iter()
            .map(live_record)
            .collect::<Result<Vec<_>, StoreError>>()?;
        crate::query::select(&prefix, query, candidates)
    }

    /// One `REPEATABLE READ` transaction (`postgres/backup.rs`).
    async fn export(
        &self,
        prefix: &str,
        history: bool,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<crate::RecordDump, StoreError>>, StoreError>
    {
        self.export_records(prefix, history).await
    }

    /// One transaction (`postgres/backup.rs`).
    async fn restore(&self, dumps: &[crate::RecordDump]) -> Result<(), StoreError> {
        self.restore_records(dumps).await
    }

    /// A round trip to the server (a `SELECT 1`), on a pooled connection.
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(Op::Ping).await.map(drop)
    }
}
