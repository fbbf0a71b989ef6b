//! For tests that need a real PostgreSQL (feature `testing`): a schema of their own on
//! the test server, dropped when the test ends.
//!
//! The server is `RECORDSYNC_TEST_POSTGRES` (a `postgres://` URL), by default
//! [`DEFAULT_TEST_URL`]. Each [`TestSchema`] has a name no other test or run uses, so
//! tests run in parallel and runs never collide; schemas left by killed runs are
//! dropped by a later run once they are an hour old.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{PostgresOptions, PostgresStore};

/// The machine's shared test server: trust auth, database `test`.
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// What to run when the test server is down (Debian's packaging).
pub const START_HINT: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

/// Prefix of every test schema.
const PREFIX: &str = "rstest_";

/// The test server's URL, without a `schema` parameter.
pub fn test_url() -> String {
    std::env::var("RECORDSYNC_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_TEST_URL.to_owned())
}

/// `url` with `schema=...` added.
pub fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

/// A schema for one test on the test server, dropped (with everything in it) on drop.
#[derive(Debug)]
pub struct TestSchema {
    base: String,
    schema: String,
}

impl TestSchema {
    /// A fresh name; nothing is created until a store connects to it.
    pub fn new(tag: &str) -> TestSchema {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let tag: String = tag
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let mut schema = format!(
            "{PREFIX}{secs}_{}_{}_{tag}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        schema.truncate(63);
        TestSchema {
            base: test_url(),
            schema,
        }
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The test server's URL with this schema: what `--storage` takes.
    pub fn url(&self) -> String {
        with_schema(&self.base, &self.schema)
    }

    /// A store on this schema. Panics, saying how to start the server, when it cannot
    /// connect.
    pub async fn connect(&self) -> PostgresStore {
        self.connect_with(PostgresOptions::default()).await
    }

    pub async fn connect_with(&self, options: PostgresOptions) -> PostgresStore {
        sweep_once(&self.base).await;
        match PostgresStore::connect_with(&self.url(), options).await {
            Ok(store) => store,
            Err(e) => panic!(
                "cannot use the test PostgreSQL at {} ({e}).\nIs it running? Start it with:\n  \
                 {START_HINT}\nor point RECORDSYNC_TEST_POSTGRES at another server.",
                super::redact_url(&self.base)
            ),
        }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        // Drop cannot await, and may run inside a runtime: a thread of its own.
        let base = self.base.clone();
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let client = connect(&base).await?;
                client.batch_execute(&sql).await.ok()
            })
        })
        .join();
        if !matches!(done, Ok(Some(()))) {
            eprintln!("note: could not drop test schema {}", self.schema);
        }
    }
}

async fn connect(base: &str) -> Option<tokio_postgres::Client> {
    let (config, _) = super::url::parse(base, &PostgresOptions::default()).ok()?;
    let (client, connection) = tokio::time::timeout(
        Duration::from_secs(10),
        config.connect(tokio_postgres::NoTls),
    )
    .await
    .ok()?
    .ok()?;
    tokio::spawn(connection);
    Some(client)
}

/// Drops test schemas more than an hour old (left by runs that were killed).
async fn sweep_once(base: &str) {
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if SWEPT.swap(true, Ordering::Relaxed) {
        return;
    }
    let Some(client) = connect(base).await else {
        return;
    };
    let Ok(rows) = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
            &[&PREFIX],
        )
        .await
    else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    for row in rows {
        let name: String = row.get(0);
        let created = name[PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|t| t + 3600 < now) {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await;
        }
    }
}
