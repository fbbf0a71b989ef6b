//! `recordsync head NAME`: the record's version.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::{CliError, ConnectArgs};

#[derive(Args, Debug)]
pub struct HeadArgs {
    /// The record
    pub name: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: HeadArgs) -> Result<ExitCode, CliError> {
    let client = args.connect.connect().await?;
    let version = client.head(&args.name).await?;
    client.close().await;
    let version = version
        .ok_or_else(|| CliError::NotFound(format!("record {} does not exist", args.name)))?;
    args.connect.output().value(&json!(version))?;
    Ok(ExitCode::SUCCESS)
}
