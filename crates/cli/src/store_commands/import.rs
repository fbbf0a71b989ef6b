//! `recordsync import`: loads a dump into an empty data set.
//!
//! The whole dump is read and checked first (every line, the header, the trailer's
//! count): a corrupt or truncated dump is refused with its line number before anything
//! is written. Then the records go to the store in batches of [`BATCH`], each stored
//! whole ([`Store::restore`](recordsync_store::Store::restore)); if the store fails part way (a lost connection, a full
//! disk), the records of the batches before stay, the error says how many, and the
//! target must be emptied before a retry (import loads only into an empty data set).
//!
//! Not through a running server (`--url` is refused, clearly): the records are written
//! with their versions and history beneath the engine, which a serving server cannot
//! keep true. Its clients may write while the import runs (the data set is then not
//! empty, or a record half-restored), and its nodes keep records they have read in
//! memory (a record they saw missing would stay missing to them). A dump made through a
//! server (`export --url`) loads into a stopped server's store.

use std::io::{BufRead, Read};
use std::path::PathBuf;

use clap::Args;
use recordsync_store::RecordDump;

use super::{StoreArgs, StoreCommandError};
use recordsync_store::dump_format::{self, Header, Trailer};

/// Records per restore call: one transaction each.
const BATCH: usize = 500;

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The dump written by `export`; `-` or nothing reads stdin
    file: Option<PathBuf>,
}

pub async fn run(args: ImportArgs) -> Result<(), StoreCommandError> {
    if args.store.url.is_some() {
        return Err(StoreCommandError::ImportThroughServer);
    }
    let (label, input): (String, Box<dyn Read>) = match &args.file {
        None => ("stdin".into(), Box::new(std::io::stdin())),
        Some(p) if p.as_os_str() == "-" => ("stdin".into(), Box::new(std::io::stdin())),
        Some(p) => (
            p.display().to_string(),
            Box::new(
                std::fs::File::open(p).map_err(|source| StoreCommandError::Io {
                    what: format!("cannot read {}", p.display()),
                    source,
                })?,
            ),
        ),
    };
    let (header, dumps) = read_dump(&label, std::io::BufReader::new(input))?;
    let store = args.store.open().await?;
    let mut existing = store.export("", false).await?;
    if let Some(first) = existing.recv().await {
        return Err(StoreCommandError::NotEmpty {
            name: first?.record.name,
        });
    }
    drop(existing);
    let mut done = 0;
    for batch in dumps.chunks(BATCH) {
        store
            .restore(batch)
            .await
            .map_err(|source| StoreCommandError::Partial {
                done,
                total: dumps.len(),
                source,
            })?;
        done += batch.len();
    }
    eprintln!(
        "recordsync: imported {done} records{} from {label} (exported at {} ms since the epoch, {})",
        if header.prefix.is_empty() {
            String::new()
        } else {
            format!(" named {:?}…", header.prefix)
        },
        header.exported_at,
        if header.history {
            "with their history"
        } else {
            "without history"
        },
    );
    Ok(())
}

/// Every record of the dump, checked: the header first, the trailer last with the
/// number of record lines, nothing after it.
fn read_dump(
    label: &str,
    input: impl BufRead,
) -> Result<(Header, Vec<RecordDump>), StoreCommandError> {
    let refuse = |line: u64, reason: String| StoreCommandError::Dump {
        file: label.to_owned(),
        line,
        reason,
    };
    let mut dumps = Vec::new();
    let mut header: Option<Header> = None;
    let mut trailer: Option<(u64, Trailer)> = None;
    let mut number = 0;
    for line in input.split(b'\n') {
        number += 1;
        let bytes = line.map_err(|source| StoreCommandError::Io {
            what: format!("cannot read {label}"),
            source,
        })?;
        let text =
            std::str::from_utf8(&bytes).map_err(|e| refuse(number, format!("not UTF-8 ({e})")))?;
        if number == 1 {
            let h: Header = dump_format::parse(text)
                .map_err(|e| refuse(1, format!("not a recordsync dump header ({e})")))?;
            if h.format != dump_format::FORMAT || h.version != dump_format::VERSION {
                return Err(refuse(
                    1,
                    format!(
                        "format {:?} version {} is not {:?} version {}; use the recordsync that wrote it",
                        h.format,
                        h.version,
                        dump_format::FORMAT,
                        dump_format::VERSION
                    ),
                ));
            }
            header = Some(h);
            continue;
        }
        if let Some((at, _)) = &trailer {
            return Err(refuse(
                number,
                format!("a line after the end of the dump (line {at})"),
            ));
        }
        if text.starts_with(r#"{"end""#) {
            let t: Trailer = dump_format::parse(text).map_err(|e| refuse(number, e))?;
            trailer = Some((number, t));
            continue;
        }
        let dump = dump_format::parse_record(text).map_err(|e| refuse(number, e))?;
        if dump.history.is_some() != header.as_ref().is_some_and(|h| h.history) {
            return Err(refuse(
                number,
                "the record's history does not match the header's \"history\"".into(),
            ));
        }
        if !header
            .as_ref()
            .is_some_and(|h| dump.record.name.starts_with(&h.prefix))
        {
            return Err(refuse(
                number,
                "the record's name lacks the header's \"prefix\"".into(),
            ));
        }
        dumps.push(dump);
    }
    let Some(header) = header else {
        return Err(refuse(1, "the dump is empty".into()));
    };
    let Some((at, t)) = trailer else {
        return Err(refuse(
            number + 1,
            "the dump ends before its last line (`{\"end\":true,...}`): it was cut short".into(),
        ));
    };
    if !t.end || t.records != dumps.len() as u64 {
        return Err(refuse(
            at,
            format!(
                "the dump says it holds {} records, but {} precede its end",
                t.records,
                dumps.len()
            ),
        ));
    }
    let mut names = std::collections::HashSet::new();
    for (i, d) in dumps.iter().enumerate() {
        if !names.insert(d.record.name.as_str()) {
            return Err(refuse(
                i as u64 + 2,
                format!("record {:?} appears twice", d.record.name),
            ));
        }
    }
    Ok((header, dumps))
}
