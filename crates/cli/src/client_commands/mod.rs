//! The client commands of `recordsync`: `get`, `set`, `delete`, `has`, `head`, `watch` and
//! `listen` for records, `emit` and `subscribe` for events, each a small program on top of
//! `recordsync-client`, against any recordsync or deepstream server.
//!
//! Output is readable on a terminal and JSON when stdout is not one (or with `--json`).
//! Failures print one line on stderr and exit with a code that says what went wrong:
//!
//! | code | meaning                                              |
//! |------|------------------------------------------------------|
//! | 0    | success (`has`: the record exists)                   |
//! | 1    | any other failure (e.g. a timeout, a server error)   |
//! | 2    | usage: bad arguments, a value that is not JSON       |
//! | 3    | cannot connect: connection refused, unreachable      |
//! | 4    | authentication failed                                |
//! | 5    | not found: no such record, or nothing at the path    |
//! | 6    | permission denied                                    |

mod delete;
mod emit;
mod error;
mod get;
mod has;
mod head;
mod listen;
mod output;
mod set;
mod subscribe;
mod watch;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use recordsync_client::{Client, Options};

pub use error::{CliError, code};
use output::Output;

/// Where a client command connects.
pub const DEFAULT_URL: &str = "ws://127.0.0.1:6020/deepstream";

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Print a record, or the value at PATH in it.
    Get(get::GetArgs),
    /// Write JSON to a record (the whole value, or at PATH), creating it if needed.
    Set(set::SetArgs),
    /// Delete a record.
    Delete(delete::DeleteArgs),
    /// Say whether a record exists (exit code 0 if it does, 5 if not).
    Has(has::HasArgs),
    /// Print a record's version.
    Head(head::HeadArgs),
    /// Print a record (or the value at PATH) now and after every change, one JSON line
    /// each, until interrupted. Subscribing creates the record if it does not exist.
    Watch(watch::WatchArgs),
    /// Provide the records matching PATTERN (a regular expression): accept every record
    /// the server offers and print it, and print when it is no longer wanted.
    Listen(listen::ListenArgs),
    /// Emit an event with JSON data to every subscriber of NAME (but this client).
    Emit(emit::EmitArgs),
    /// Print the data of every event emitted to NAME, one JSON line each, until
    /// interrupted.
    Subscribe(subscribe::SubscribeArgs),
}

/// The options every client command takes.
#[derive(Args, Clone, Debug)]
pub struct ConnectArgs {
    /// The server: ws://host:port/path, or just host:port
    #[arg(long, env = "RECORDSYNC_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// Login data as JSON, e.g. '{"username":"ada","password":"secret"}'
    #[arg(long, env = "RECORDSYNC_AUTH", value_name = "JSON")]
    pub auth: Option<String>,
    /// Print JSON even on a terminal
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for the server
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
}

impl ConnectArgs {
    async fn connect(&self) -> Result<Client, CliError> {
        let mut options = Options::new(&self.url)
            .connect_timeout(Duration::from_secs(self.timeout))
            .request_timeout(Duration::from_secs(self.timeout));
        if let Some(auth) = &self.auth {
            let auth = serde_json::from_str(auth).map_err(CliError::InvalidAuth)?;
            options = options.auth(auth);
        }
        Ok(Client::connect_with(options).await?)
    }

    fn output(&self) -> Output {
        Output::detect(self.json)
    }
}

/// Runs a client command and turns its outcome into an exit code.
pub async fn run(command: ClientCommand) -> ExitCode {
    let result = match command {
        ClientCommand::Get(args) => get::run(args).await,
        ClientCommand::Set(args) => set::run(args).await,
        ClientCommand::Delete(args) => delete::run(args).await,
        ClientCommand::Has(args) => has::run(args).await,
        ClientCommand::Head(args) => head::run(args).await,
        ClientCommand::Watch(args) => watch::run(args).await,
        ClientCommand::Listen(args) => listen::run(args).await,
        ClientCommand::Emit(args) => emit::run(args).await,
        ClientCommand::Subscribe(args) => subscribe::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("recordsync: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
