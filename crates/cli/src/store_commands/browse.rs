//! `recordsync ls` and `recordsync history`: reading a data set's records and their
//! past straight from the store, or through a running server's REST API (`--url`). Each
//! prints JSON lines, the same either way.

use std::io::Write;

use clap::Args;
use recordsync_core::JournalOp;
use recordsync_store::dump_format;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::remote::Remote;
use super::{Source, StoreArgs, StoreCommandError};

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
    let store = match args.store.source().await? {
        Source::Store(store) => store,
        Source::Server(remote) => return ls_through(&remote, &args.prefix).await,
    };
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
    let store = match args.store.source().await? {
        Source::Store(store) => store,
        Source::Server(remote) => {
            return match args.version {
                None => journal_through(&remote, &args.name).await,
                Some(version) => version_through(&remote, &args.name, version).await,
            };
        }
    };
    let name = &args.name;
    let Some(current) = store.get(name).await? else {
        return Err(StoreCommandError::NotFound(format!("no record {name:?}")));
    };
    let start = store.history_start(name).await?.unwrap_or(0);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let Some(version) = args.version else {
        for e in store.journal(name, 0, u64::MAX).await? {
            let origin = e.origin.as_ref().map(|o| (o.src.as_str(), o.seq));
            write_entry(
                &mut out,
                e.version,
                e.time,
                e.author.as_deref(),
                origin,
                &e.op,
            )?;
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

/// One journal entry's line.
fn write_entry(
    out: &mut impl Write,
    version: u64,
    time: u64,
    author: Option<&str>,
    origin: Option<(&str, u64)>,
    op: &str,
) -> Result<(), StoreCommandError> {
    let author = author.map_or("null".to_owned(), string);
    let origin = origin.map_or("null".to_owned(), |(src, seq)| {
        format!(r#"{{"src":{},"seq":{seq}}}"#, string(src))
    });
    writeln!(
        out,
        r#"{{"version":{version},"time":{time},"author":{author},"origin":{origin},{}}}"#,
        dump_format::raw("op", op)
    )
    .map_err(io)
}

/// A page of `GET /v1/records`.
#[derive(Deserialize)]
struct ListPage {
    records: Vec<Listed>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct Listed {
    name: String,
    version: u64,
}

/// A page of `GET /v1/records/{name}/history`.
#[derive(Deserialize)]
struct HistoryPage {
    entries: Vec<Entry>,
    next: Option<u64>,
}

#[derive(Deserialize)]
struct Entry {
    version: u64,
    time: u64,
    author: Option<String>,
    origin: Option<EntryOrigin>,
    op: Box<RawValue>,
}

#[derive(Deserialize)]
struct EntryOrigin {
    src: String,
    seq: u64,
}

/// The JSON body of a REST answer as `T`.
async fn json<T: for<'de> Deserialize<'de>>(
    remote: &Remote,
    response: reqwest::Response,
) -> Result<T, StoreCommandError> {
    let text = response
        .text()
        .await
        .map_err(|source| remote.unreachable(source))?;
    dump_format::parse(&text).map_err(|e| StoreCommandError::Refused {
        status: 200,
        code: String::new(),
        message: format!(
            "an answer that is not the REST API's ({e}): is --url a recordsync server?"
        ),
    })
}

/// `ls` through the server: `GET /v1/records` page by page (its cursors are stable
/// while records come and go; a listing is not a snapshot).
async fn ls_through(remote: &Remote, prefix: &str) -> Result<(), StoreCommandError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("prefix", prefix)];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let url = remote.url(&["v1", "records"], &query);
        let page: ListPage = json(remote, remote.send(Method::GET, url).await?).await?;
        for r in &page.records {
            writeln!(
                out,
                r#"{{"name":{},"version":{}}}"#,
                string(&r.name),
                r.version
            )
            .map_err(io)?;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    out.flush().map_err(io)
}

/// `history NAME` through the server: `GET /v1/records/{name}/history` page by page.
/// A record without kept entries is asked for (`HEAD`) to tell "no such record" (exit
/// code 5) from an empty history.
async fn journal_through(remote: &Remote, name: &str) -> Result<(), StoreCommandError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut from = 0u64;
    let mut printed = 0usize;
    loop {
        let from_text = from.to_string();
        let url = remote.url(
            &["v1", "records", name, "history"],
            &[("from", from_text.as_str())],
        );
        let page: HistoryPage = json(remote, remote.send(Method::GET, url).await?).await?;
        for e in &page.entries {
            let origin = e.origin.as_ref().map(|o| (o.src.as_str(), o.seq));
            write_entry(
                &mut out,
                e.version,
                e.time,
                e.author.as_deref(),
                origin,
                e.op.get(),
            )?;
        }
        printed += page.entries.len();
        match page.next {
            Some(next) if next > from => from = next,
            _ => break,
        }
    }
    if printed == 0 {
        let url = remote.url(&["v1", "records", name], &[]);
        if let Err(StoreCommandError::Refused { status: 404, .. }) =
            remote.send(Method::HEAD, url).await
        {
            return Err(StoreCommandError::NotFound(format!("no record {name:?}")));
        }
    }
    out.flush().map_err(io)
}

/// `history NAME --version N` through the server: `GET /v1/records/{name}?version=N`,
/// printed as the store path prints it (`"value":null`: deleted then).
async fn version_through(
    remote: &Remote,
    name: &str,
    version: u64,
) -> Result<(), StoreCommandError> {
    let version_text = version.to_string();
    let url = remote.url(
        &["v1", "records", name],
        &[("version", version_text.as_str())],
    );
    let value = match remote.send(Method::GET, url).await {
        Ok(response) => response
            .text()
            .await
            .map_err(|source| remote.unreachable(source))?,
        Err(StoreCommandError::Refused {
            status: 404, code, ..
        }) if code == "not_at_version" => "null".to_owned(),
        Err(StoreCommandError::Refused {
            status: 404,
            message,
            ..
        }) => return Err(StoreCommandError::NotFound(message)),
        Err(e) => return Err(e),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    writeln!(
        out,
        r#"{{"version":{version},{}}}"#,
        dump_format::raw("value", &value)
    )
    .map_err(io)?;
    out.flush().map_err(io)
}
