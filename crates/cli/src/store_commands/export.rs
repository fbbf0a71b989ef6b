//! `recordsync export`: every record (tombstones too, so a restore keeps their versions
//! and history) from one snapshot of the store ([`Store::export`](recordsync_store::Store::export)).

use std::io::Write;

use clap::Args;

use super::{StoreArgs, StoreCommandError, dump_format, now_ms};

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only the records whose names start with PREFIX
    #[arg(long, default_value = "")]
    prefix: String,
    /// Also write each record's journal entries and milestones (its kept history)
    #[arg(long)]
    history: bool,
}

pub async fn run(args: ExportArgs) -> Result<(), StoreCommandError> {
    let store = args.store.open().await?;
    let mut records = store.export(&args.prefix, args.history).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io = |source| StoreCommandError::Io {
        what: "writing the dump to stdout".into(),
        source,
    };
    dump_format::write_header(&mut out, &args.prefix, args.history, now_ms()).map_err(io)?;
    let mut count = 0;
    while let Some(dump) = records.recv().await {
        dump_format::write_record(&mut out, &dump?).map_err(io)?;
        count += 1;
    }
    // Written last: a dump without it was cut short, and import refuses it.
    dump_format::write_trailer(&mut out, count).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(())
}
