//! `recordsync has NAME`: prints `true` or `false`; exits 0 or 5 (not found).

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::error::code;
use super::{CliError, ConnectArgs};

#[derive(Args, Debug)]
pub struct HasArgs {
    /// The record
    pub name: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: HasArgs) -> Result<ExitCode, CliError> {
    let client = args.connect.connect().await?;
    let exists = client.has(&args.name).await?;
    client.close().await;
    args.connect.output().value(&Value::Bool(exists))?;
    Ok(if exists {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(code::NOT_FOUND)
    })
}
