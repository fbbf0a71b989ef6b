//! `recordsync get NAME [PATH]`: a record's value, read once without subscribing.

use std::process::ExitCode;

use clap::Args;

use super::{CliError, ConnectArgs};

#[derive(Args, Debug)]
pub struct GetArgs {
    /// The record
    pub name: String,
    /// A path in it, like `address.city` or `pets[0]`; the whole record if left out
    #[arg(default_value = "")]
    pub path: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: GetArgs) -> Result<ExitCode, CliError> {
    let client = args.connect.connect().await?;
    let snapshot = client.snapshot(&args.name).await?;
    let value = snapshot.get(&args.path)?.cloned();
    client.close().await;
    let value = value.ok_or_else(|| {
        CliError::NotFound(format!(
            "record {} has no value at {}",
            args.name, args.path
        ))
    })?;
    args.connect.output().value(&value)?;
    Ok(ExitCode::SUCCESS)
}
