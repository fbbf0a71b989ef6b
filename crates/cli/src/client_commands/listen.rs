//! `recordsync listen PATTERN`: provides every record the server offers for the pattern,
//! printing each, and printing when it is no longer wanted.

use std::process::ExitCode;

use clap::Args;
use recordsync_client::StopReason;
use serde_json::json;

use super::output::Output;
use super::{CliError, ConnectArgs};

#[derive(Args, Debug)]
pub struct ListenArgs {
    /// A regular expression for record names, e.g. '^weather/.*'
    pub pattern: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: ListenArgs) -> Result<ExitCode, CliError> {
    let output = args.connect.output();
    let client = args.connect.connect().await?;
    let mut listening = client.listen(&args.pattern).await?;
    if !output.json {
        eprintln!("listening to {} (Ctrl-C to stop)", args.pattern);
    }
    tokio::spawn(super::watch::report_connection(client.clone()));
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            offer = listening.next() => {
                let Some(offer) = offer else { break };
                let name = offer.name().to_owned();
                let mut provision = offer.accept();
                print_event(output, "match", &name, None)?;
                tokio::spawn(async move {
                    let reason = provision.stopped().await;
                    let _ = print_event(output, "stop", &name, Some(reason));
                });
            }
            _ = &mut interrupted => break,
        }
    }
    drop(listening);
    client.close().await;
    Ok(ExitCode::SUCCESS)
}

fn print_event(
    output: Output,
    event: &str,
    name: &str,
    reason: Option<StopReason>,
) -> std::io::Result<()> {
    let reason_text = reason.map(|r| match r {
        StopReason::Unsubscribed => "unsubscribed",
        StopReason::ConnectionLost => "connection lost",
        StopReason::Unlistened => "stopped listening",
        StopReason::Closed => "closed",
    });
    let human = match reason_text {
        None => format!("+ {name}  (providing)"),
        Some(why) => format!("- {name}  ({why})"),
    };
    let mut json = json!({ "event": event, "name": name });
    if let Some(why) = reason_text {
        json["reason"] = why.into();
    }
    output.event(&human, json)
}
