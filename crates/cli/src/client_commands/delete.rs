//! `recordsync delete NAME`.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::{CliError, ConnectArgs};

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// The record
    pub name: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: DeleteArgs) -> Result<ExitCode, CliError> {
    let client = args.connect.connect().await?;
    if !client.has(&args.name).await? {
        return Err(CliError::NotFound(format!(
            "record {} does not exist",
            args.name
        )));
    }
    client.delete(&args.name).await?;
    client.close().await;
    args.connect.output().event(
        &format!("deleted {}", args.name),
        json!({ "name": args.name, "deleted": true }),
    )?;
    Ok(ExitCode::SUCCESS)
}
