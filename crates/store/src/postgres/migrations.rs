//! Versioned schema migrations, embedded in the binary and applied by recordsync itself.
//!
//! Each migration is a SQL file under `migrations/`, numbered; `schema_migrations` in
//! recordsync's schema lists those applied. On connect, every node runs [`migrate`]: in
//! one transaction, under an advisory lock on the schema (so that nodes starting at once
//! take turns, and the second finds the work done), it creates the schema and the
//! bookkeeping table if missing, applies the missing migrations in order and records
//! them. A failure rolls all of it back. A database migrated by a newer recordsync
//! (a version this build does not know) is refused rather than misread.

use tokio_postgres::Client;

/// One schema change.
pub(super) struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Append only: a shipped migration is never edited.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "records and journal",
        sql: include_str!("migrations/0001_records_and_journal.sql"),
    },
    Migration {
        version: 2,
        name: "data set id",
        sql: include_str!("migrations/0002_data_set.sql"),
    },
    Migration {
        version: 3,
        name: "history",
        sql: include_str!("migrations/0003_history.sql"),
    },
    Migration {
        version: 4,
        name: "history replay",
        sql: include_str!("migrations/0004_history_replay.sql"),
    },
    Migration {
        version: 5,
        name: "index of rows whose data jsonb cannot hold",
        sql: include_str!("migrations/0005_null_data_index.sql"),
    },
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// First key of recordsync's advisory locks (`pg_advisory_xact_lock(int, int)`): "rsyn".
/// The second is a hash of the schema name, so schemas migrate independently.
const LOCK_CLASS: i32 = 0x7273_796e;

/// Why migrating failed.
pub(super) enum MigrateError {
    Db(tokio_postgres::Error),
    /// The database is ahead of this build.
    Newer {
        found: i32,
    },
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Db(e)
    }
}

/// Brings `schema` (an identifier already checked by the caller) up to
/// [`SCHEMA_VERSION`]. Returns the migrations applied by this call (none when another
/// node, or an earlier start, did the work).
pub(super) async fn migrate(client: &mut Client, schema: &str) -> Result<Vec<i32>, MigrateError> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_CLASS, &schema_lock_key(schema)],
    )
    .await?;
    // Checked before creating, so that a role without CREATE on the database can use a
    // schema someone else made (CREATE SCHEMA IF NOT EXISTS checks the privilege first).
    let exists = tx
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await?
        .is_some();
    if !exists {
        tx.batch_execute(&format!("CREATE SCHEMA {schema}")).await?;
    }
    let table = format!("{schema}.schema_migrations");
    let has_table: bool = tx
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await?
        .get(0);
    if !has_table {
        tx.batch_execute(&format!(
            "CREATE TABLE {table} (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )"
        ))
        .await?;
    }
    let applied: Vec<i32> = tx
        .query(
            &format!("SELECT version FROM {table} ORDER BY version"),
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if let Some(&found) = applied.iter().find(|&&v| v > SCHEMA_VERSION) {
        return Err(MigrateError::Newer { found });
    }
    let mut done = Vec::new();
    for migration in MIGRATIONS {
        if applied.contains(&migration.version) {
            continue;
        }
        tx.batch_execute(&format!("SET LOCAL search_path TO {schema}"))
            .await?;
        tx.batch_execute(migration.sql).await?;
        tx.execute(
            &format!("INSERT INTO {table} (version, name) VALUES ($1, $2)"),
            &[&migration.version, &migration.name],
        )
        .await?;
        done.push(migration.version);
    }
    tx.commit().await?;
    Ok(done)
}

/// A stable 32-bit hash (FNV-1a) of the schema name: the same on every node and build.
fn schema_lock_key(schema: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in schema.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.name);
            assert!(!m.sql.trim().is_empty());
        }
    }

    #[test]
    fn lock_key_is_stable() {
        // Nodes of different builds must agree on it: never change the function.
        assert_eq!(schema_lock_key("recordsync"), schema_lock_key("recordsync"));
        assert_eq!(schema_lock_key(""), 0x811c_9dc5_u32 as i32);
        assert_ne!(schema_lock_key("a"), schema_lock_key("b"));
    }
}
