//! The commands that work on a data set: `export` and `import` (backups, in the dump
//! format of `recordsync_store::dump_format`, docs/backup.md), `ls` and `history`. They
//! open the store as `serve` does (`--data-dir`, `--storage`); an embedded data directory
//! can be open in one process at a time, so stop its server first (a PostgreSQL data set
//! can be read while nodes serve it). `export`, `ls` and `history` also work through a
//! running server (`--url`, its REST API); `import` does not (see `import.rs`).
//!
//! - `export.rs`, `import.rs` — the backup commands;
//! - `browse.rs` — `ls` and `history`;
//! - `remote.rs` — a running server's REST API, logged in as `--auth` says.

mod browse;
mod export;
mod import;
mod remote;

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
    /// A running server to go through instead (its REST API): http://host:port
    #[arg(long, value_name = "URL", conflicts_with_all = ["data_dir", "storage"])]
    pub url: Option<String>,
    /// With --url: login data as JSON, e.g. '{"username":"ada","password":"secret"}'
    #[arg(long, env = "RECORDSYNC_AUTH", value_name = "JSON")]
    pub auth: Option<String>,
}

/// Where a command reads: a store opened here, or a running server.
pub enum Source {
    Store(Arc<dyn Store>),
    Server(remote::Remote),
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
    /// `--url` is not a server's URL.
    #[error("--url {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// `--auth` (or `RECORDSYNC_AUTH`) is not JSON.
    #[error("--auth must be JSON, like '{{\"username\":\"ada\",\"password\":\"secret\"}}': {0}")]
    InvalidAuth(#[source] serde_json::Error),
    /// The server could not be reached, or its answer not read.
    #[error("cannot reach the server at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server refused the request: its status, its error code (docs/rest.md) and
    /// message.
    #[error("the server refused: {message}{}", if code.is_empty() { String::new() } else { format!(" ({code})") })]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// `import --url`: see `import.rs` for why.
    #[error(
        "import does not go through a running server: it writes records with their versions and history beneath the server, into an empty data set, which a serving server cannot promise (its clients write meanwhile, and its nodes keep what they have read); stop the server and import with --data-dir, or with --storage before starting the nodes; nothing was imported"
    )]
    ImportThroughServer,
    /// A stored journal entry does not replay (`history --version`).
    #[error("{0}")]
    Corrupt(String),
}

impl StoreArgs {
    /// The running server of `--url`, or else the store.
    async fn source(&self) -> Result<Source, StoreCommandError> {
        match &self.url {
            Some(url) => Ok(Source::Server(
                remote::Remote::connect(url, self.auth.as_deref()).await?,
            )),
            None => Ok(Source::Store(self.open().await?)),
        }
    }

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
        Err(error) => {
            eprintln!("recordsync: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

impl StoreCommandError {
    /// The exit code, as the client commands have them (see `client_commands`).
    fn exit_code(&self) -> u8 {
        use crate::client_commands::code;
        match self {
            StoreCommandError::NotFound(_) => code::NOT_FOUND,
            StoreCommandError::BadUrl { .. }
            | StoreCommandError::InvalidAuth(_)
            | StoreCommandError::ImportThroughServer => code::USAGE,
            StoreCommandError::Unreachable { .. } => code::CONNECTION,
            StoreCommandError::Refused { status, .. } => match status {
                401 => code::AUTH,
                403 => code::PERMISSION,
                404 => code::NOT_FOUND,
                _ => code::FAILURE,
            },
            _ => code::FAILURE,
        }
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
