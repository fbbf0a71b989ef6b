//! `recordsync id new` and `recordsync id show`: identities for signed records
//! (crates/identity, docs/identity.md).
//!
//! - `new.rs`  — make a `did:key` identity, write its file (mode 0600) and, with
//!   `--did-dir`, its DID document listing the `--endpoint` nodes;
//! - `show.rs` — print an identity's DID and DID document, never its key.
//!
//! Output is readable on a terminal and JSON when stdout is not one (or with `--json`),
//! as for the client commands. Exit codes: 0 success, 1 failure (a file that exists, one
//! that cannot be read or written), 2 usage.

mod new;
mod show;

use std::process::ExitCode;

use clap::Subcommand;
use recordsync_identity::{DidDirError, IdentityError, ResolveError};

#[derive(Subcommand)]
pub enum IdCommand {
    /// Make a new identity (a did:key with an Ed25519 key): write it to --out, print
    /// its DID, and with --did-dir write its DID document there.
    New(new::NewArgs),
    /// Print an identity's DID and DID document (never its key).
    Show(show::ShowArgs),
}

/// Why an id command failed: the one line printed after `recordsync: `.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdCommandError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    DidDir(#[from] DidDirError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// Arguments that do not go together.
    #[error("{0}")]
    Usage(String),
    #[error("cannot write to stdout: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs an id command and turns its outcome into an exit code.
pub async fn run(command: IdCommand) -> ExitCode {
    let result = match command {
        IdCommand::New(args) => new::run(args),
        IdCommand::Show(args) => show::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("recordsync: {error}");
            ExitCode::from(match error {
                IdCommandError::Usage(_) => 2,
                _ => 1,
            })
        }
    }
}

/// Prints a result: `human` on a terminal, `json` otherwise (or with `--json`).
fn print(force_json: bool, human: &str, json: &serde_json::Value) -> std::io::Result<()> {
    use std::io::{IsTerminal as _, Write as _};
    let mut out = std::io::stdout().lock();
    if force_json || !std::io::stdout().is_terminal() {
        writeln!(out, "{json}")?;
    } else {
        writeln!(out, "{human}")?;
    }
    out.flush()
}
