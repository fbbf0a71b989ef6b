//! The PostgreSQL store: several recordsync nodes share one database.
//!
//! `--storage postgres://user@host:5432/db?schema=recordsync` selects it. recordsync
//! creates and migrates its own schema on connect (`postgres/migrations.rs`; versioned
//! SQL embedded in the binary, applied in one transaction under an advisory lock, listed
//! in `schema_migrations`). Besides libpq's URL parameters, the URL takes `schema`
//! (default `recordsync`) and `pool_size` (default 8).
//!
//! # Tables (migration 1)
//!
//! - `records(name text PRIMARY KEY, version bigint, data jsonb, data_json json, ctime bigint, mtime bigint)`
//! - `journal(name text, version bigint, time bigint, op json, PRIMARY KEY (name, version))`
//!
//! # Migration 2
//!
//! - `data_set(id text)`: one row, a random id made with the schema, which every node on
//!   it reads at connect ([`Store::data_set`]) and scopes its bus topics with.
//!
//! **Key order.** recordsync keeps object keys in the order clients wrote them, and
//! jsonb does not (it sorts keys and drops duplicates). So the value is stored twice:
//! `data_json` (type `json`, which PostgreSQL keeps as the exact text) is what
//! recordsync reads back, byte for byte; `data` (jsonb) is the same value for SQL queries
//! and indexes. jsonb cannot hold a string containing U+0000 (`\u0000`), nor a number
//! beyond the range of PostgreSQL's `numeric` (`1e+200000`): such a value is still stored
//! exactly in `data_json`, with `data` NULL, rather than refused. Ops are
//! kept exactly as `json` too. A record *name* containing U+0000 cannot be stored at all
//! (PostgreSQL text refuses the byte): such a write fails its batch with
//! [`StoreError::Unstorable`], and reads of such a name find nothing.
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

mod batch;
mod errors;
mod migrations;
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
use tokio_postgres::NoTls;

use crate::error::StoreError;
use crate::store::{JournalEntry, Store, StoredRecord, Write, WriteOutcome};
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
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: "recordsync".into(),
            pool_size: 8,
            connect_timeout: url::DEFAULT_CONNECT_TIMEOUT,
            op_timeout: Duration::from_secs(30),
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
                reason: format!("the URL is not usable: {reason}"),
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
                reason: format!("cannot set up the connection pool: {e}"),
            })?;
        let store = PostgresStore {
            sql: Sql::new(&options.schema),
            pool,
            target,
            schema: options.schema,
            op_timeout: options.op_timeout,
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
        let setup = |reason: String| StoreError::Database {
            target: self.target.clone(),
            reason,
        };
        let mut conn = self.connection("connecting").await?;
        let encoding: String = conn
            .query_one("SHOW server_encoding", &[])
            .await
            .map_err(|e| errors::store_error(&self.target, "checking the server", &e))?
            .get(0);
        if encoding != "UTF8" {
            return Err(setup(format!(
                "the database's encoding is {encoding}; recordsync needs UTF8 (create the \
                 database with ENCODING 'UTF8')"
            )));
        }
        let applied = migrations::migrate(&mut conn, &self.schema)
            .await
            .map_err(|e| match e {
                migrations::MigrateError::Newer { found } => setup(format!(
                    "schema {:?} is at version {found}, written by a newer recordsync; this \
                     build knows versions up to {SCHEMA_VERSION}: run the newer recordsync",
                    self.schema
                )),
                migrations::MigrateError::Db(e) => match errors::kind(&e) {
                    Kind::Unavailable => errors::store_error(&self.target, "migrating", &e),
                    _ => setup(format!(
                        "migrating schema {:?} failed, nothing was changed: {}",
                        self.schema,
                        errors::describe(&e)
                    )),
                },
            })?;
        let data_set: String = conn
            .query_one(&format!("SELECT id FROM {}.data_set", self.schema), &[])
            .await
            .map_err(|e| errors::store_error(&self.target, "reading the data set's id", &e))?
            .get(0);
        let _ = self.data_set.set(data_set);
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
                Kind::Unavailable => errors::store_error(&self.target, what, &e),
                _ => StoreError::Database {
                    target: self.target.clone(),
                    reason: format!("{what}: cannot connect: {}", errors::describe(&e)),
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
            other => StoreError::Io(format!("{what} in PostgreSQL at {}: {other}", self.target)),
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
            let mut error = errors::store_error(&self.target, what, &failure.error);
            if failure.maybe_committed
                && let StoreError::Unavailable(message) = &mut error
            {
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
    Commit(&'a [Write]),
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
            Op::Journal(..) => "reading a journal",
            Op::Commit(_) => "committing writes",
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
    wipe_journals: String,
    delete_records: String,
    upsert_records: String,
    insert_journal: String,
    get: String,
    journal: String,
}

impl Sql {
    fn new(schema: &str) -> Sql {
        let records = format!("{schema}.records");
        let journal = format!("{schema}.journal");
        // Rows from parallel arrays: name, version, JSON text, whether jsonb can hold
        // it, ctime, mtime.
        let record_rows = "FROM unnest($1::text[], $2::int8[], $3::text[], $4::bool[], $5::int8[], $6::int8[]) \
             AS t(n, v, d, j, c, m)";
        let record_values = "n, v, CASE WHEN j THEN d::jsonb END, d::json, c, m";
        Sql {
            lock: format!(
                "SELECT name, version FROM {records} WHERE name = ANY($1::text[]) \
                 ORDER BY name FOR UPDATE"
            ),
            claim: format!(
                "INSERT INTO {records} (name, version, data, data_json, ctime, mtime) \
                 SELECT {record_values} {record_rows} ORDER BY n COLLATE \"C\" \
                 ON CONFLICT (name) DO NOTHING RETURNING name"
            ),
            current: format!("SELECT name, version FROM {records} WHERE name = ANY($1::text[])"),
            wipe_journals: format!("DELETE FROM {journal} WHERE name = ANY($1::text[])"),
            delete_records: format!("DELETE FROM {records} WHERE name = ANY($1::text[])"),
            upsert_records: format!(
                "INSERT INTO {records} (name, version, data, data_json, ctime, mtime) \
                 SELECT {record_values} {record_rows} \
                 ON CONFLICT (name) DO UPDATE SET version = excluded.version, \
                 data = excluded.data, data_json = excluded.data_json, \
                 ctime = excluded.ctime, mtime = excluded.mtime"
            ),
            insert_journal: format!(
                "INSERT INTO {journal} (name, version, time, op) \
                 SELECT n, v, t, o::json \
                 FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[]) AS x(n, v, t, o) \
                 ON CONFLICT (name, version) DO UPDATE SET time = excluded.time, op = excluded.op"
            ),
            get: format!(
                "SELECT version, data_json::text, ctime, mtime FROM {records} WHERE name = $1"
            ),
            journal: format!(
                "SELECT version, time, op::text FROM {journal} \
                 WHERE name = $1 AND version BETWEEN $2 AND $3 ORDER BY version"
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

fn uint(name: &str, what: &str, n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt {
        name: name.to_owned(),
        reason: format!("{what} is negative ({n}) in PostgreSQL"),
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
        match write {
            Write::Put { record, entry, .. } => {
                if record.data.contains('\0') || entry.as_ref().is_some_and(|e| e.op.contains('\0'))
                {
                    return Err(unstorable(
                        name,
                        "the JSON text contains a raw U+0000 byte, which is not valid JSON",
                    ));
                }
                int8(name, "version", record.version)?;
                int8(name, "ctime", record.ctime)?;
                int8(name, "mtime", record.mtime)?;
                if let Some(entry) = entry {
                    int8(name, "journal version", entry.version)?;
                    int8(name, "journal time", entry.time)?;
                }
            }
            Write::Delete { base_version, .. } => {
                int8(name, "version", *base_version)?;
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
    data: Vec<&'a str>,
    jsonb_ok: Vec<bool>,
    ctimes: Vec<i64>,
    mtimes: Vec<i64>,
}

impl<'a> RecordRows<'a> {
    /// Checked by [`check_storable`] already, so the casts cannot wrap.
    fn new(records: &[&'a StoredRecord]) -> Self {
        let mut rows = RecordRows::default();
        for r in records {
            rows.names.push(&r.name);
            rows.versions.push(r.version as i64);
            rows.data.push(&r.data);
            rows.jsonb_ok.push(batch::jsonb_can_hold(&r.data));
            rows.ctimes.push(r.ctime as i64);
            rows.mtimes.push(r.mtime as i64);
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
            Op::Commit(batch) => Output::Outcomes(self.commit_once(conn, batch).await?),
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
        let mut existing: HashMap<String, u64> = HashMap::new();
        for row in tx.query(&lock, &[&names]).await? {
            existing.insert(row.get(0), row.get::<_, i64>(1).max(0) as u64);
        }

        // 2. Claim what the batch creates.
        let claims = batch::claims(batch, &existing);
        let mut claimed = HashSet::new();
        let mut lost = HashMap::new();
        if !claims.is_empty() {
            let rows = RecordRows::new(&claims);
            let claim = tx.prepare_cached(&self.sql.claim).await?;
            for row in tx
                .query(
                    &claim,
                    &[
                        &rows.names,
                        &rows.versions,
                        &rows.data,
                        &rows.jsonb_ok,
                        &rows.ctimes,
                        &rows.mtimes,
                    ],
                )
                .await?
            {
                claimed.insert(row.get::<_, String>(0));
            }
            if claimed.len() < claims.len() {
                // Created by another node meanwhile: conflicts, reporting its version.
                let missed: Vec<&str> = claims
                    .iter()
                    .map(|r| r.name.as_str())
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

        // 3. Apply the net effect.
        let plan = batch::plan(batch, &existing, &claimed, &lost);
        if !plan.changes(claimed.len()) {
            // Nothing but conflicts: no commit, no fsync.
            tx.rollback().await?;
            return Ok(plan.outcomes);
        }
        let wipe = async {
            if plan.wipe_journals.is_empty() {
                return Ok(0);
            }
            let stmt = tx.prepare_cached(&self.sql.wipe_journals).await?;
            tx.execute(&stmt, &[&plan.wipe_journals]).await
        };
        let delete = async {
            if plan.delete_records.is_empty() {
                return Ok(0);
            }
            let stmt = tx.prepare_cached(&self.sql.delete_records).await?;
            tx.execute(&stmt, &[&plan.delete_records]).await
        };
        let rows = RecordRows::new(&plan.upsert_records);
        let upsert = async {
            if rows.names.is_empty() {
                return Ok(0);
            }
            let stmt = tx.prepare_cached(&self.sql.upsert_records).await?;
            tx.execute(
                &stmt,
                &[
                    &rows.names,
                    &rows.versions,
                    &rows.data,
                    &rows.jsonb_ok,
                    &rows.ctimes,
                    &rows.mtimes,
                ],
            )
            .await
        };
        let journal_names: Vec<&str> = plan.journal.iter().map(|(n, _)| *n).collect();
        let journal_versions: Vec<i64> =
            plan.journal.iter().map(|(_, e)| e.version as i64).collect();
        let journal_times: Vec<i64> = plan.journal.iter().map(|(_, e)| e.time as i64).collect();
        let journal_ops: Vec<&str> = plan.journal.iter().map(|(_, e)| e.op.as_str()).collect();
        let journal = async {
            if journal_names.is_empty() {
                return Ok(0);
            }
            let stmt = tx.prepare_cached(&self.sql.insert_journal).await?;
            tx.execute(
                &stmt,
                &[
                    &journal_names,
                    &journal_versions,
                    &journal_times,
                    &journal_ops,
                ],
            )
            .await
        };
        // Sent together (one round trip), executed in this order: the wipes before the
        // journal inserts that follow a delete in the batch.
        tokio::try_join!(wipe, delete, upsert, journal)?;
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
            data: row.get(1),
            ctime: uint(name, "ctime", row.get(2))?,
            mtime: uint(name, "mtime", row.get(3))?,
        }))
    }

    async fn commit(&self, batch: &[Write]) -> Result<Vec<WriteOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
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
                Ok(JournalEntry {
                    version: uint(name, "journal version", row.get(0))?,
                    time: uint(name, "journal time", row.get(1))?,
                    op: row.get(2),
                })
            })
            .collect()
    }

    /// A round trip to the server (a `SELECT 1`), on a pooled connection.
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(Op::Ping).await.map(drop)
    }
}
