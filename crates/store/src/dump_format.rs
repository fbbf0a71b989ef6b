//! The dump format of `recordsync export` and `import` (docs/backup.md): JSON lines, a
//! header, one line per record, a trailer with the count. Written by the CLI from a store
//! and by a server's `GET /v1/export` from its store, read by the CLI's import: one
//! format, so that a dump made either way loads the other.
//!
//! Values and ops are the stored JSON text, spliced into the line as they are (never
//! parsed and re-printed), so numbers, strings and key order come back byte for byte. A
//! text holding a raw line break (whitespace between tokens) would end the line early:
//! it is written as a JSON string under `value_text` / `op_text` instead.

use std::io::Write;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{JournalEntry, KeptHistory, KeptMilestone, Origin, RecordDump, StoredRecord};

/// The `format` of the header line.
pub const FORMAT: &str = "recordsync-dump";
/// The format's version: bumped on any change an older import would misread.
pub const VERSION: u64 = 1;

/// The first line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub version: u64,
    pub prefix: String,
    pub history: bool,
    pub exported_at: u64,
}

/// The last line: how many record lines precede it, so a dump cut at a line break is
/// found out too.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trailer {
    pub end: bool,
    pub records: u64,
}

/// The first line: the format, what the dump covers, when it was written (`now`, ms
/// since the Unix epoch).
pub fn write_header(
    out: &mut impl Write,
    prefix: &str,
    history: bool,
    now: u64,
) -> std::io::Result<()> {
    writeln!(
        out,
        r#"{{"format":"{FORMAT}","version":{VERSION},"prefix":{},"history":{history},"exported_at":{now}}}"#,
        string(prefix)
    )
}

/// The last line, with the number of record lines written before it.
pub fn write_trailer(out: &mut impl Write, records: u64) -> std::io::Result<()> {
    writeln!(out, r#"{{"end":true,"records":{records}}}"#)
}

/// One record line.
pub fn write_record(out: &mut impl Write, dump: &RecordDump) -> std::io::Result<()> {
    let r = &dump.record;
    write!(
        out,
        r#"{{"name":{},"version":{},"created":{},"deleted":{},"ctime":{},"mtime":{},{}"#,
        string(&r.name),
        r.version,
        r.created,
        r.deleted,
        r.ctime,
        r.mtime,
        raw("value", &r.data)
    )?;
    if let Some(h) = &dump.history {
        write!(out, r#","history":{{"start":{},"milestones":["#, h.start)?;
        for (i, m) in h.milestones.iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            write!(
                out,
                r#"{comma}{{"version":{},"time":{},{}}}"#,
                m.version,
                m.time,
                raw("value", &m.data)
            )?;
        }
        write!(out, r#"],"entries":["#)?;
        for (i, e) in h.entries.iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            let author = e.author.as_deref().map_or("null".to_owned(), string);
            let origin = e.origin.as_ref().map_or("null".to_owned(), |o| {
                format!(r#"{{"src":{},"seq":{}}}"#, string(&o.src), o.seq)
            });
            write!(
                out,
                r#"{comma}{{"version":{},"time":{},"author":{author},"origin":{origin},{}}}"#,
                e.version,
                e.time,
                raw("op", &e.op)
            )?;
        }
        write!(out, "]}}")?;
    }
    writeln!(out, "}}")
}

/// `s` as a JSON string.
pub fn string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

/// `"key":TEXT`, or `"key_text":"TEXT"` when the text holds a line break.
pub fn raw(key: &str, text: &str) -> String {
    if text.contains(['\n', '\r']) {
        format!(r#""{key}_text":{}"#, string(text))
    } else {
        format!(r#""{key}":{text}"#)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordLine {
    name: String,
    version: u64,
    created: u64,
    deleted: bool,
    ctime: u64,
    mtime: u64,
    #[serde(default, deserialize_with = "present")]
    value: Option<Box<RawValue>>,
    value_text: Option<String>,
    history: Option<HistoryLine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryLine {
    start: u64,
    milestones: Vec<MilestoneLine>,
    entries: Vec<EntryLine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MilestoneLine {
    version: u64,
    time: u64,
    #[serde(default, deserialize_with = "present")]
    value: Option<Box<RawValue>>,
    value_text: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryLine {
    version: u64,
    time: u64,
    author: Option<String>,
    origin: Option<OriginLine>,
    #[serde(default, deserialize_with = "present")]
    op: Option<Box<RawValue>>,
    op_text: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OriginLine {
    src: String,
    seq: u64,
}

/// A field that is present, `null` included (a plain `Option` reads `null` as absent,
/// and a tombstone's value is `null`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// Parses `line` as `T`, without serde_json's nesting limit of 128: stored values nest
/// up to `recordsync_core::json::MAX_DEPTH` levels.
pub fn parse<'a, T: Deserialize<'a>>(line: &'a str) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_str(line);
    de.disable_recursion_limit();
    let value = T::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// The JSON text under `key` or `key_text`, exactly one of them.
fn text(key: &str, raw: Option<Box<RawValue>>, text: Option<String>) -> Result<String, String> {
    match (raw, text) {
        (Some(raw), None) => Ok(raw.get().to_owned()),
        (None, Some(text)) => {
            recordsync_core::json::parse::<serde::de::IgnoredAny>(&text)
                .map_err(|e| format!("{key}_text is not JSON: {e}"))?;
            Ok(text)
        }
        _ => Err(format!("needs exactly one of {key:?} and \"{key}_text\"")),
    }
}

/// A record line as the store's [`RecordDump`].
pub fn parse_record(line: &str) -> Result<RecordDump, String> {
    let l: RecordLine = parse(line)?;
    let record = StoredRecord {
        data: text("value", l.value, l.value_text)?,
        name: l.name,
        version: l.version,
        created: l.created,
        deleted: l.deleted,
        ctime: l.ctime,
        mtime: l.mtime,
    };
    let history = match l.history {
        None => None,
        Some(h) => Some(KeptHistory {
            start: h.start,
            milestones: h
                .milestones
                .into_iter()
                .map(|m| {
                    Ok(KeptMilestone {
                        version: m.version,
                        time: m.time,
                        data: text("value", m.value, m.value_text)?,
                    })
                })
                .collect::<Result<_, String>>()?,
            entries: h
                .entries
                .into_iter()
                .map(|e| {
                    Ok(JournalEntry {
                        version: e.version,
                        time: e.time,
                        op: text("op", e.op, e.op_text)?,
                        author: e.author,
                        origin: e.origin.map(|o| Origin {
                            src: o.src,
                            seq: o.seq,
                        }),
                    })
                })
                .collect::<Result<_, String>>()?,
        }),
    };
    if let Some(h) = &history {
        h.check(&record)?;
    }
    Ok(RecordDump { record, history })
}
