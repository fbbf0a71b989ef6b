//! The `recordsync` command.
//!
//! `recordsync serve` runs the server. Settings come from defaults, then `--config FILE`
//! (a deepstream-style config.yml), then the flags given here, which win.
//!
//! `recordsync get|set|delete|has|head|watch|listen` are the client commands, one file
//! each in `client_commands/`.
//!
//! `recordsync export|import|ls|history` work on a data set directly, without a server
//! (`store_commands/`).
//!
//! `recordsync id new|show` make and show identities for signed records (`id_commands/`).

mod client_commands;
mod id_commands;
mod store_commands;

/// mimalloc instead of the system allocator: a server allocates and frees small buffers
/// for every message (frames, queues, JSON values), and glibc's malloc and free were 29%
/// of the server's own instructions in the fan-out benchmark (callgrind); see
/// `bench/NOTES.md` for the figures with mimalloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use recordsync_server::{Config, ConfigError, Server, ServerError, StorageKind};

#[derive(Parser)]
#[command(
    name = "recordsync",
    version,
    about = "A realtime record store and sync server that speaks deepstream's protocol"
)]
struct Cli {
    /// How log lines are written to stderr: `text` for people, `json` for a log
    /// collector (one JSON object a line; a connection's lines carry its id and protocol)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "RECORDSYNC_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Print an Argon2id hash of a password, for a users.yml (`auth: type: file`).
    Hash {
        /// The password to hash.
        password: String,
    },
    #[command(flatten)]
    Client(client_commands::ClientCommand),
    #[command(flatten)]
    Store(store_commands::StoreCommand),
    /// Identities for signed records: `id new`, `id show` (docs/identity.md).
    #[command(subcommand)]
    Id(id_commands::IdCommand),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on; 0 picks a free one [default: 6020]
    #[arg(long)]
    port: Option<u16>,
    /// Directory of the embedded store [default: ./data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// `embedded` (durable, on disk, the default), `memory` (nothing survives a restart)
    /// or a PostgreSQL URL, postgres://user@host:5432/db[?schema=recordsync], for several nodes
    #[arg(long)]
    storage: Option<String>,
    /// Memory for the embedded store's page cache: bytes, or a number with KiB, MiB or
    /// GiB (e.g. 256MiB) [default: 64MiB]
    #[arg(long, value_name = "SIZE")]
    cache_size: Option<String>,
    /// Journal entries kept per record (older ones are pruned, from a milestone), or `all`
    /// to keep every entry (history then grows with every write) [default: 1000]
    #[arg(long, value_name = "N|all")]
    keep_history: Option<String>,
    /// A YAML config file; deepstream's config.yml keys are understood where they apply
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Join a cluster through this bus (redis://host:port or nats://host:port); every
    /// node of a cluster must use the same shared storage
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RECORDSYNC_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        // The spans' fields (a connection's `id` and `protocol`) are on every line logged
        // within them, flattened into the line's `span` and `spans`.
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
    let result = match cli.command {
        Command::Serve(args) => serve(args, cli.log_format).await,
        Command::Hash { password } => {
            println!(
                "{}",
                recordsync_server::auth::file::hash_password(&password)
            );
            Ok(())
        }
        Command::Client(command) => return client_commands::run(command).await,
        Command::Store(command) => return store_commands::run(command).await,
        Command::Id(command) => return id_commands::run(command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("recordsync: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Why `recordsync serve` stopped: its message, printed after `recordsync: `, is all the
/// user sees, so each says what to change.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    /// The config file, or a setting given as a flag (`--storage`), is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A flag's value does not parse; `flag` is its name without the dashes.
    #[error("--{flag}: {reason}")]
    Flag { flag: &'static str, reason: String },
    /// The server could not start (store, bus, socket), or stopped with an error.
    #[error(transparent)]
    Server(#[from] ServerError),
}

async fn serve(args: ServeArgs, log_format: LogFormat) -> Result<(), ServeError> {
    let mut config = match &args.config {
        Some(path) => {
            let (config, warnings) = Config::from_file(path)?;
            for warning in warnings {
                tracing::warn!("{}: {warning}", path.display());
            }
            config
        }
        None => Config::default(),
    };
    // Only a log collector groups lines by connection; text logs name the session where
    // it matters, and spare every connection its span.
    config.connection_spans = log_format == LogFormat::Json;
    if let Some(host) = args.host {
        config.host = host;
    }
    if let Some(port) = args.port {
        config.port = port;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(url) = args.cluster {
        config.cluster = Some(url);
    }
    if let Some(storage) = args.storage {
        config.storage = storage.parse::<StorageKind>()?;
    }
    if let Some(size) = args.cache_size {
        config.storage_cache_size =
            recordsync_server::parse_size(&size).map_err(|reason| ServeError::Flag {
                flag: "cache-size",
                reason,
            })?;
    }
    if let Some(keep) = args.keep_history {
        config.history.keep_ops =
            recordsync_server::parse_keep_ops(&keep).map_err(|reason| ServeError::Flag {
                flag: "keep-history",
                reason,
            })?;
    }
    let storage = match &config.storage {
        StorageKind::Embedded => {
            let cache = config.storage_cache_size;
            let cache = if cache % (1 << 20) == 0 {
                format!("{} MiB", cache >> 20)
            } else {
                format!("{cache} bytes")
            };
            format!(
                "embedded store in {}, {cache} of cache",
                config.data_dir.display()
            )
        }
        // The store logs which server and schema when it connects.
        StorageKind::Postgres(_) => "PostgreSQL".to_owned(),
        StorageKind::Memory => "memory (nothing is kept across restarts)".to_owned(),
    };
    let server = Server::bind(config).await?;
    tracing::info!(
        "recordsync listening on {} ({storage})",
        server.local_addr()
    );
    server.run(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down: finishing pending writes");
}
