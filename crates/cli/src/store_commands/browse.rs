//! `recordsync ls` and `recordsync history`: reading a data set's records and their
//! past straight from the store. Each prints JSON lines.

use std::io::Write;

use clap::Args;
use recordsync_core::JournalOp;
use serde_json::Value;

use super::{StoreArgs, StoreCommandError, dump_format};

/// Records per [`Store::list`](recordsync_store::Store::list) page.
const PAGE: usize = 1000;

#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only the records whose names start with PREFIX
    #[arg(default_value = "")]
    prefix: String,
}

#[derive(Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The record
    name: String,
    /// Print the record's value at this version instead of its journal
    #[arg(long, value_name = "N")]
    version: Option<u64>,
}

fn io(source: std::io::Error) -> StoreCommandError {
    StoreCommandError::Io {
        what: "writing to stdout".into(),
        source,
    }
}

fn string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

/// One line per live record, in name order: `{"name":…,"version":…}`, paged through
/// the store's listing (a name is the cursor).
pub async fn ls(args: LsArgs) -> Result<(), StoreCommandError> {
    let store = args.store.open().await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut after: Option<String> = None;
    loop {
        let page = store.list(&args.prefix, after.as_deref(), PAGE).await?;
        for r in &page {
            writeln!(
                out,
                r#"{{"name":{},"version":{}}}"#,
                string(&r.name),
                r.version
            )
            .map_err(io)?;
        }
        if page.len() < PAGE {
            break;
        }
        after = page.last().map(|r| r.name.clone());
    }
    out.flush().map_err(io)
}

/// The journal, one entry a line (`version`, `time`, `author`, `origin`, `op` as
/// stored, or `op_text` as in a dump when the text holds a line break); with `--version N`, `{"version":N,"value":…}` (`null`: deleted then): the
/// stored text at the current version, else the value rebuilt from the newest milestone
/// and the entries after it, as the engine reads a past version (and prints it as the
/// server would: `serde_json`'s form of the numbers, such as `1e+400`).
pub async fn history(args: HistoryArgs) -> Result<(), StoreCommandError> {
    let store = args.store.open().await?;
    let name = &args.name;
    let Some(current) = store.get(name).await? else {
        return Err(StoreCommandError::NotFound(format!("no record {name:?}")));
    };
    let start = store.history_start(name).await?.unwrap_or(0);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let Some(version) = args.version else {
        for e in store.journal(name, 0, u64::MAX).await? {
            let author = e.author.as_deref().map_or("null".to_owned(), string);
            let origin = e.origin.as_ref().map_or("null".to_owned(), |o| {
                format!(r#"{{"src":{},"seq":{}}}"#, string(&o.src), o.seq)
            });
            writeln!(
                out,
                r#"{{"version":{},"time":{},"author":{author},"origin":{origin},{}}}"#,
                e.version,
                e.time,
                dump_format::raw("op", &e.op)
            )
            .map_err(io)?;
        }
        return out.flush().map_err(io);
    };
    if version < start || version > current.version {
        return Err(StoreCommandError::NotFound(format!(
            "record {name:?} has versions {start} to {} in its history, not {version}",
            current.version
        )));
    }
    if version == current.version {
        // The stored text, as written.
        let value = dump_format::raw("value", &current.data);
        writeln!(out, r#"{{"version":{version},{value}}}"#).map_err(io)?;
        return out.flush().map_err(io);
    }
    // The newest milestone at or below, then the entries after it (as the engine reads
    // a past version).
    let (mut data, from) = match store.milestone(name, version).await? {
        Some(m) => {
            let value: Value = recordsync_core::json::parse(&m.data).map_err(|e| {
                StoreCommandError::Corrupt(format!("milestone {} of {name:?}: {e}", m.version))
            })?;
            ((!value.is_null()).then_some(value), m.version + 1)
        }
        None => (None, 0),
    };
    for entry in store.journal(name, from, version).await? {
        let corrupt = |e: String| {
            StoreCommandError::Corrupt(format!("journal entry {} of {name:?}: {e}", entry.version))
        };
        let op = JournalOp::from_journal(&entry.op).map_err(|e| corrupt(e.to_string()))?;
        op.apply(&mut data).map_err(|e| corrupt(e.to_string()))?;
    }
    let value = match &data {
        Some(v) => {
            serde_json::to_string(v).map_err(|e| StoreCommandError::Corrupt(e.to_string()))?
        }
        None => "null".into(),
    };
    writeln!(out, r#"{{"version":{version},"value":{value}}}"#).map_err(io)?;
    out.flush().map_err(io)
}
