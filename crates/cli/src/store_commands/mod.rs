//! The commands that work on a data set directly, without a server: `export` and
//! `import` (backups, in the dump format of `dump_format.rs`, docs/backup.md), `ls`
//! and `history`. They open the store as `serve` does (`--data-dir`, `--storage`); an
//! embedded data directory can be open in one process at a time, so stop its server
//! first (a PostgreSQL data set can be read while nodes serve it).
//!
//! - `dump_format.rs` — the lines of a dump, written and parsed;
//! - `export.rs`, `import.rs` — the backup commands;
//! - `browse.rs` — `ls` and `history`.

mod browse;
mod dump_format;
mod export;
mod import;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use recordsync_server::StorageKind;
use recordsync_store::embedded::EmbeddedOptions;
use recordsync_store::{EmbeddedStore, History, PostgresOptions, PostgresStore, Store, StoreError};

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Write a consistent snapshot of the data set (or of the records named PREFIX…) to
    /// stdout as JSON lines (docs/backup.md).
    Export(export::ExportArgs),
    /// Load a dump written by `export` into an empty data set.
    Import(import::ImportArgs),
    /// List the live records (or those named PREFIX…) with their versions.
    Ls(browse::LsArgs),
    /// Print a record's journal entries, or its value at a version.
    History(browse::HistoryArgs),
}

/// Which data set, as `serve` takes it.
#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// Directory of the embedded store [default: ./data]
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// `embedded` (the default) or a PostgreSQL URL,
    /// postgres://user@host:5432/db[?schema=recordsync]
    #[arg(long)]
    pub storage: Option<String>,
}

/// Why a store command failed: the one line printed after `recordsync: `.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreCommandError {
    #[error(transparent)]
    Config(#[from] recordsync_server::ConfigError),
    #[error(
        "--storage memory holds nothing outside a running server: name a data directory or a PostgreSQL URL"
    )]
    Memory,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A dump that cannot be loaded; `line` counts from 1.
    #[error("{file}, line {line}: {reason}; nothing was imported")]
    Dump {
        file: String,
        line: u64,
        reason: String,
    },
    #[error(
        "the target data set is not empty (it holds {name:?}): import loads into an empty data set only; nothing was imported"
    )]
    NotEmpty { name: String },
    /// The store failed part way through an import: `done` records are in it.
    #[error(
        "{source}; {done} of {total} records were imported before this failure: empty the target before importing again"
    )]
    Partial {
        done: usize,
        total: usize,
        #[source]
        source: StoreError,
    },
    #[error("{0}")]
    NotFound(String),
    /// A stored journal entry does not replay (`history --version`).
    #[error("{0}")]
    Corrupt(String),
}

impl StoreArgs {
    /// Opens the data set, keeping every journal entry it holds: opening an embedded
    /// store prunes history beyond its retention settings, and a backup must not.
    async fn open(&self) -> Result<Arc<dyn Store>, StoreCommandError> {
        let kind = match &self.storage {
            Some(storage) => storage.parse::<StorageKind>()?,
            None => StorageKind::Embedded,
        };
        let history = History::keep_everything();
        Ok(match kind {
            StorageKind::Memory => return Err(StoreCommandError::Memory),
            StorageKind::Postgres(url) => {
                let options = PostgresOptions {
                    history,
                    ..PostgresOptions::default()
                };
                Arc::new(PostgresStore::connect_with(&url, options).await?)
            }
            StorageKind::Embedded => {
                let dir = self.data_dir.clone();
                let options = EmbeddedOptions {
                    history,
                    ..EmbeddedOptions::default()
                };
                let store =
                    tokio::task::spawn_blocking(move || EmbeddedStore::open_with(&dir, options))
                        .await
                        .map_err(|e| {
                            StoreError::Io(format!("opening the embedded store: {e}").into())
                        })??;
                Arc::new(store)
            }
        })
    }
}

/// Runs a store command and turns its outcome into an exit code.
pub async fn run(command: StoreCommand) -> ExitCode {
    let result = match command {
        StoreCommand::Export(args) => export::run(args).await,
        StoreCommand::Import(args) => import::run(args).await,
        StoreCommand::Ls(args) => browse::ls(args).await,
        StoreCommand::History(args) => browse::history(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(StoreCommandError::NotFound(message)) => {
            eprintln!("recordsync: {message}");
            ExitCode::from(5)
        }
        Err(error) => {
            eprintln!("recordsync: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
