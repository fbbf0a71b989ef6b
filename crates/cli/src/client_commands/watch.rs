//! `recordsync watch NAME [PATH]`: one JSON line now and one per change, until interrupted
//! or the record is deleted. Connection trouble is reported on stderr; the client
//! reconnects by itself and carries on.

use std::process::ExitCode;

use clap::Args;
use recordsync_client::{Client, ConnectionState};

use super::output::target;
use super::{CliError, ConnectArgs};

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The record (subscribing creates it if it does not exist)
    pub name: String,
    /// A path in it; the whole record if left out
    #[arg(default_value = "")]
    pub path: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: WatchArgs) -> Result<ExitCode, CliError> {
    let output = args.connect.output();
    let client = args.connect.connect().await?;
    let record = client.record(&args.name);
    let mut values = record.subscribe(&args.path)?;
    record.when_ready().await?;
    if !output.json {
        eprintln!(
            "watching {} (Ctrl-C to stop)",
            target(&args.name, &args.path)
        );
    }
    tokio::spawn(report_connection(client.clone()));
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            value = values.next() => match value {
                Some(value) => {
                    // One line per change, readable or not: JSON lines suit both.
                    super::output::Output { json: true }.value(&value)?;
                }
                None => {
                    if record.is_deleted() {
                        eprintln!("recordsync: record {} was deleted", args.name);
                        break;
                    }
                    // The client closed for good (e.g. it gave up reconnecting).
                    return Err(CliError::Client(record.when_ready().await.err().unwrap_or(
                        recordsync_client::Error::Closed { reason: "the connection ended".into(), source: None },
                    )));
                }
            },
            _ = &mut interrupted => break,
        }
    }
    drop(values);
    drop(record);
    client.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Says on stderr when the connection drops and when it is back.
pub async fn report_connection(client: Client) {
    let mut states = client.watch_connection();
    let mut was_open = true;
    while states.changed().await.is_ok() {
        let state = states.borrow_and_update().clone();
        match state {
            ConnectionState::Open if !was_open => {
                eprintln!("recordsync: reconnected to {}", client.url());
                was_open = true;
            }
            ConnectionState::Reconnecting { attempt } if was_open || attempt % 10 == 0 => {
                eprintln!(
                    "recordsync: connection to {} lost; reconnecting (attempt {attempt})",
                    client.url()
                );
                was_open = false;
            }
            _ => {}
        }
    }
}
