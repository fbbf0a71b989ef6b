//! `recordsync subscribe NAME`: one JSON line per event emitted to NAME by anyone else
//! (its data; `null` for an event without data), until interrupted. The client
//! subscribes again after a reconnect; events emitted meanwhile are missed, since events
//! are not stored.

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::output::Output;
use super::watch::report_connection;
use super::{CliError, ConnectArgs};

#[derive(Args, Debug)]
pub struct SubscribeArgs {
    /// The event name
    pub name: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: SubscribeArgs) -> Result<ExitCode, CliError> {
    let output = args.connect.output();
    let client = args.connect.connect().await?;
    let mut events = client.subscribe_event(&args.name).await?;
    if !output.json {
        eprintln!("subscribed to event {} (Ctrl-C to stop)", args.name);
    }
    tokio::spawn(report_connection(client.clone()));
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            event = events.next() => match event {
                // One line per event, readable or not: JSON lines suit both.
                Some(data) => Output { json: true }.value(&data.unwrap_or(Value::Null))?,
                // The client closed for good (e.g. it gave up reconnecting).
                None => {
                    return Err(CliError::Client(recordsync_client::Error::Closed {
                        reason: "the connection ended".into(),
                        source: None,
                    }));
                }
            },
            _ = &mut interrupted => break,
        }
    }
    drop(events);
    client.close().await;
    Ok(ExitCode::SUCCESS)
}
