//! `recordsync emit NAME JSON`: emits an event (deepstream's `event.emit`); every
//! subscriber of NAME but this client gets it. Events are neither stored nor
//! acknowledged, so the command ends once the event is sent: a subscriber that is not
//! there misses it, and a refusal by the server's rules is not reported here.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::set::parse_json;
use super::{CliError, ConnectArgs};

#[derive(Args, Debug)]
// A negative number is data to send (`emit ticks -1`), not an option.
#[command(allow_negative_numbers = true)]
pub struct EmitArgs {
    /// The event name
    pub name: String,
    /// The event's data as JSON (`null` for none). Quote strings: '"text"'
    #[arg(value_name = "JSON")]
    pub data: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: EmitArgs) -> Result<ExitCode, CliError> {
    let data = parse_json(&args.data)?;
    let client = args.connect.connect().await?;
    client.emit(&args.name, &data)?;
    // Closing sends what is queued first.
    client.close().await;
    args.connect.output().event(
        &format!("emitted {}", args.name),
        json!({ "name": args.name, "emitted": true }),
    )?;
    Ok(ExitCode::SUCCESS)
}
