//! The on-disk encoding of the embedded store's keys and values.
//!
//! Our own byte layout, rather than serde or redb's tuple types, for three reasons: a
//! record is read and written on every operation, so the header must cost nothing to
//! parse; a 5 MiB JSON value must be copied once, not re-escaped; and decoding must
//! never panic on damaged bytes (redb's `&str` decoding unwraps UTF-8), so every field is
//! checked and a failure becomes [`StoreError::Corrupt`] naming the record.
//!
//! All integers in values are little-endian; in keys big-endian, so that byte order is
//! numeric order.
//!
//! ## Record value (table `records`, key = the record name's UTF-8 bytes)
//!
//! | offset | size | field                                                   |
//! |--------|------|---------------------------------------------------------|
//! | 0      | 1    | format version: [`FORMAT_V3`] (written), [`FORMAT_V2`], |
//! |        |      | [`FORMAT_V1`]                                           |
//! | 1      | 4    | CRC-32 (IEEE) of the key bytes followed by bytes 5..end |
//! | 5      | 8    | record version                                          |
//! | 13     | 8    | ctime, ms since the epoch                               |
//! | 21     | 8    | mtime, ms since the epoch                               |
//! | 29     | 8    | V2 and V3: key in `log` of the record's newest journal  |
//! |        |      | entry, 0 when it has none there                         |
//! | 37     | 8    | V3: `created`, the version of the create that began the |
//! |        |      | record's current life                                   |
//! | 45     | 8    | V3: the record's history start (oldest readable version)|
//! | 53     | 1    | V3: flags; bit 0: a tombstone (`deleted`); bit 1: the   |
//! |        |      | newest log entry is at a milestone (`Head`)              |
//! | 29/37/54 | rest | data: the record's JSON text, UTF-8                   |
//!
//! Values of formats 1 and 2 were written before schema 4; opening a directory of an
//! older schema rewrites them as V3 (`created` 0, not deleted, history from 0), so only
//! a damaged file could still hold one, and they are read as that.
//!
//! ## Log entry (table `log`, key = u64 sequence number, from 1, in commit order)
//!
//! Journal entries written since schema 2. Every commit appends its entries at the end of
//! the log, so a commit of many records' writes touches the log's last page or two instead
//! of one page per record. Each entry links to the record's previous entry; a record's
//! journal is read by following the links back from the record's newest entry. The oldest
//! kept entry of a record links to 0 (pruning rewrites it so: see `embedded.rs`).
//!
//! | offset | size | field                                                   |
//! |--------|------|---------------------------------------------------------|
//! | 0      | 1    | format version: [`LOG_FORMAT_V2`] (written), V1         |
//! | 1      | 4    | CRC-32 (IEEE) of the key (u64 BE) followed by bytes 5.. |
//! | 5      | 8    | record version this entry produced                      |
//! | 13     | 8    | time, ms since the epoch                                |
//! | 21     | 8    | key of the record's previous entry in `log`, 0 if none  |
//! | 29     | 4    | length of the record name                               |
//! | 33     | 1    | V2: flags; bit 0: has an author, bit 1: has an origin   |
//! | 34     | 4    | V2: length of the author (0 without one)                |
//! | 38     | 4    | V2: length of the origin's `src` (0 without one)        |
//! | 42     | 8    | V2: the origin's `seq` (0 without one)                  |
//! | 33/50  | len  | record name, UTF-8                                      |
//! | …      | len  | V2: author, then origin `src`, UTF-8                    |
//! | …      | rest | op: JSON text, UTF-8                                    |
//!
//! ## Journal key (table `journal`: entries of schema 1, and the creates added by the
//! upgrade to schema 4; table `milestones`)
//!
//! `u32 BE name length ++ name bytes ++ u64 BE version`. The length prefix makes one
//! record's entries a contiguous, version-ordered key range that no other name can fall
//! into (with a bare `name ++ version`, record `a` would share a range with `a\0...`).
//!
//! ## Journal value (table `journal`), and milestone value (table `milestones`)
//!
//! | offset | size | field                                                   |
//! |--------|------|---------------------------------------------------------|
//! | 0      | 1    | format version, [`FORMAT_V1`]                           |
//! | 1      | 4    | CRC-32 (IEEE) of the key bytes followed by bytes 5..end |
//! | 5      | 8    | time, ms since the epoch (of a milestone: that of the   |
//! |        |      | journal entry of its version, for retention by age)     |
//! | 13     | rest | op (journal) or the record's data (milestone): JSON     |
//! |        |      | text, UTF-8                                             |
//!
//! `journal` entries have no author nor origin: those of schema 1 had none, and the
//! synthetic creates of the upgrade neither.
//!
//! The checksum covers the key too, so a value that ends up under the wrong key is caught
//! as well as flipped bits. redb checksums its pages but verifies them only when it
//! repairs a file after a crash; this check runs on every read.
//!
//! ## Batch (the payload of a write-ahead log frame, `src/embedded/wal.rs`)
//!
//! The writes of one commit that were stored (not those that conflicted), in order, with
//! their conditions, so that replaying them checks that they still hold. No checksum of
//! its own: the frame's covers it.
//!
//! | size | field                                                               |
//! |------|---------------------------------------------------------------------|
//! | 4    | number of writes                                                    |
//! | …    | each write, as below                                                |
//!
//! A put (kind 3, since schema 4):
//!
//! | size | field                                                               |
//! |------|---------------------------------------------------------------------|
//! | 1    | 3 = put                                                             |
//! | 4    | length of the record name, then the name, UTF-8                     |
//! | 8    | record version                                                      |
//! | 8    | ctime, ms since the epoch                                           |
//! | 8    | mtime, ms since the epoch                                           |
//! | 8    | created                                                             |
//! | 1    | 1 if the record is a tombstone, else 0                              |
//! | 1    | 1 if the write has a base version, 0 if the name must have no row   |
//! | 8    | base version (0 when it has none)                                   |
//! | 4    | number of journal entries, then each:                               |
//! |      | 8 version, 8 time, 4 + op text, 1 has-author flag, 4 + author,      |
//! |      | 1 has-origin flag, 4 + origin src, 8 origin seq                     |
//! | 4    | length of the record's JSON data, then the data                     |
//!
//! Schema 3 wrote kind 1 (a put with at most one entry: 1 byte flag, 8 version, 8 time,
//! 4 + op, after the base) and kind 2 (a delete that removed the record and its journal:
//! name, 8 base version). They are decoded as [`LegacyWrite`]s, replayed only when a
//! directory of schema 3 is opened after a crash, before it is upgraded.

use crate::error::{Cause, StoreError};
use crate::store::{JournalEntry, Origin, StoredRecord, Write};

/// The first value format: records without a link into `log`, `journal` entries and
/// milestones. A later format gets a new number; readers keep decoding the old ones.
pub const FORMAT_V1: u8 = 1;
/// Records written by schemas 2 and 3: V1 plus the key of the newest `log` entry.
pub const FORMAT_V2: u8 = 2;
/// Records written since schema 4: V2 plus `created`, the history start and the
/// tombstone flag.
pub const FORMAT_V3: u8 = 3;
/// `log` entries of schemas 2 and 3: no author nor origin.
pub const LOG_FORMAT_V1: u8 = 1;
/// `log` entries written since schema 4.
pub const LOG_FORMAT_V2: u8 = 2;

const RECORD_HEADER_V1: usize = 1 + 4 + 8 + 8 + 8;
const RECORD_HEADER_V2: usize = RECORD_HEADER_V1 + 8;
const RECORD_HEADER_V3: usize = RECORD_HEADER_V2 + 8 + 8 + 1;
const JOURNAL_HEADER: usize = 1 + 4 + 8;
const LOG_HEADER_V1: usize = 1 + 4 + 8 + 8 + 8 + 4;
const LOG_HEADER_V2: usize = LOG_HEADER_V1 + 1 + 4 + 4 + 8;

/// Whether a value's checksum covers its format byte: in the formats added by schema 4
/// (records V3, log entries V2), so that a flipped format byte cannot make a value read
/// as an older format with the same checksum. Older formats (and `journal` and
/// `milestones` values, of one format) keep their definition.
fn format_in_checksum(value: &[u8], first_covered: Option<u8>) -> bool {
    first_covered.is_some_and(|f| value.first().is_some_and(|&v| v >= f))
}

fn checksum(key: &[u8], value: &[u8], first_covered: Option<u8>) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key);
    if format_in_checksum(value, first_covered) {
        hasher.update(&value[..1]);
    }
    hasher.update(&value[5..]);
    hasher.finalize()
}

fn seal(key: &[u8], value: &mut [u8], first_covered: Option<u8>) {
    let crc = checksum(key, value, first_covered);
    value[1..5].copy_from_slice(&crc.to_le_bytes());
}

/// Record formats from this one on have their format byte in the checksum.
const RECORD_FORMAT_IN_CRC: Option<u8> = Some(FORMAT_V3);
/// Log formats from this one on have their format byte in the checksum.
const LOG_FORMAT_IN_CRC: Option<u8> = Some(LOG_FORMAT_V2);

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(buf)
}

fn u32_at(bytes: &[u8], at: usize) -> usize {
    let mut buf = [0u8; 4];
    buf.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(buf) as usize
}

/// A length as 4 bytes. Names are bounded far below 4 GiB by the protocol, and a batch's
/// strings are checked by [`batch_len_fits`]; a longer one would fail the checks on
/// reading rather than be misread.
fn len32(s: &str) -> [u8; 4] {
    u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes()
}

/// Checks the header and checksum shared by every value kind. `format` is the value's
/// format, `newest` the newest this build reads of that kind.
fn verify(
    name: &str,
    key: &[u8],
    value: &[u8],
    header: usize,
    newest: u8,
    first_covered: Option<u8>,
    what: &str,
) -> Result<(), String> {
    if value.first().is_some_and(|&f| f > newest) {
        return Err(format!(
            "{what} value has format version {}, this build reads only versions up to {newest} \
             (was the data directory written by a newer recordsync?)",
            value[0]
        ));
    }
    if value.len() < header {
        return Err(format!(
            "{what} value is {} bytes, shorter than its {header}-byte header",
            value.len()
        ));
    }
    if value[0] == 0 {
        return Err(format!(
            "{what} value has format version 0, which never existed"
        ));
    }
    let mut stored = [0u8; 4];
    stored.copy_from_slice(&value[1..5]);
    if u32::from_le_bytes(stored) != checksum(key, value, first_covered) {
        return Err(format!(
            "{what} checksum mismatch: the bytes on disk were damaged (restore {name:?} from a backup or delete it)"
        ));
    }
    Ok(())
}

pub fn record_key(name: &str) -> &[u8] {
    name.as_bytes()
}

/// What a commit needs of a stored record, besides its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub version: u64,
    /// The key of the record's newest `log` entry (0: none).
    pub log_head: u64,
    /// The record's history start.
    pub start: u64,
    /// Whether a milestone was stored at `version` (by the write that made it, or by the
    /// upgrade): the record's next write then indexes its first entry as that
    /// milestone's successor (`after_milestone`, in `embedded.rs`).
    pub milestone_at_head: bool,
}

/// Record flag bit 0: a tombstone.
const FLAG_DELETED: u8 = 1;
/// Record flag bit 1: [`Head::milestone_at_head`].
const FLAG_MILESTONE_AT_HEAD: u8 = 2;

/// A record's value (format V3), with `head`'s key of its newest `log` entry (0: none),
/// history start and milestone flag (`head.version` is the record's own).
pub fn encode_record(record: &StoredRecord, head: &Head) -> Vec<u8> {
    debug_assert_eq!(head.version, record.version, "{}", record.name);
    let mut value = Vec::with_capacity(RECORD_HEADER_V3 + record.data.len());
    value.push(FORMAT_V3);
    value.extend_from_slice(&[0; 4]);
    value.extend_from_slice(&record.version.to_le_bytes());
    value.extend_from_slice(&record.ctime.to_le_bytes());
    value.extend_from_slice(&record.mtime.to_le_bytes());
    value.extend_from_slice(&head.log_head.to_le_bytes());
    value.extend_from_slice(&record.created.to_le_bytes());
    value.extend_from_slice(&head.start.to_le_bytes());
    let mut flags = 0;
    if record.deleted {
        flags |= FLAG_DELETED;
    }
    if head.milestone_at_head {
        flags |= FLAG_MILESTONE_AT_HEAD;
    }
    value.push(flags);
    value.extend_from_slice(record.data.as_bytes());
    seal(record_key(&record.name), &mut value, RECORD_FORMAT_IN_CRC);
    value
}

/// A record's value as schemas 2 and 3 wrote it (format V2): for replaying a log of
/// schema 3 before the upgrade, and for tests of reading old files.
pub fn encode_record_v2(record: &StoredRecord, log_head: u64) -> Vec<u8> {
    let mut value = Vec::with_capacity(RECORD_HEADER_V2 + record.data.len());
    value.push(FORMAT_V2);
    value.extend_from_slice(&[0; 4]);
    value.extend_from_slice(&record.version.to_le_bytes());
    value.extend_from_slice(&record.ctime.to_le_bytes());
    value.extend_from_slice(&record.mtime.to_le_bytes());
    value.extend_from_slice(&log_head.to_le_bytes());
    value.extend_from_slice(record.data.as_bytes());
    seal(record_key(&record.name), &mut value, RECORD_FORMAT_IN_CRC);
    value
}

/// A record's value as schema 1 wrote it, for tests of reading old files.
#[cfg(test)]
pub fn encode_record_v1(record: &StoredRecord) -> Vec<u8> {
    let mut value = encode_record_v2(record, 0);
    value[0] = FORMAT_V1;
    value.drain(RECORD_HEADER_V1..RECORD_HEADER_V2);
    seal(record_key(&record.name), &mut value, RECORD_FORMAT_IN_CRC);
    value
}

/// Verifies the value; returns its format and header length.
fn verify_record(name: &str, value: &[u8]) -> Result<(u8, usize), StoreError> {
    let (format, header) = match value.first() {
        Some(&FORMAT_V1) => (FORMAT_V1, RECORD_HEADER_V1),
        Some(&FORMAT_V2) => (FORMAT_V2, RECORD_HEADER_V2),
        _ => (FORMAT_V3, RECORD_HEADER_V3),
    };
    verify(
        name,
        record_key(name),
        value,
        header,
        FORMAT_V3,
        RECORD_FORMAT_IN_CRC,
        "record",
    )
    .map_err(|reason| corrupt(name, reason))?;
    if format == FORMAT_V3 && value[53] & !(FLAG_DELETED | FLAG_MILESTONE_AT_HEAD) != 0 {
        return Err(corrupt(
            name,
            format!(
                "record flags are {:#x}, of which this build knows only bits 0 and 1",
                value[53]
            ),
        ));
    }
    Ok((format, header))
}

/// The format of a record's value (after verifying it).
pub fn record_format(name: &str, value: &[u8]) -> Result<u8, StoreError> {
    verify_record(name, value).map(|(format, _)| format)
}

/// What a commit needs of a stored record. Still verifies the checksum, since a damaged
/// version would make a conflict check pass or fail wrongly.
pub fn decode_record_head(name: &str, value: &[u8]) -> Result<Head, StoreError> {
    let (format, _) = verify_record(name, value)?;
    Ok(Head {
        version: u64_at(value, 5),
        log_head: if format >= FORMAT_V2 {
            u64_at(value, 29)
        } else {
            0
        },
        start: if format >= FORMAT_V3 {
            u64_at(value, 45)
        } else {
            0
        },
        milestone_at_head: format >= FORMAT_V3 && value[53] & FLAG_MILESTONE_AT_HEAD != 0,
    })
}

pub fn decode_record(name: &str, value: &[u8]) -> Result<StoredRecord, StoreError> {
    let (format, header) = verify_record(name, value)?;
    let data = std::str::from_utf8(&value[header..])
        .map_err(|e| corrupt(name, format!("record data is not UTF-8: {e}")))?;
    let v3 = format == FORMAT_V3;
    Ok(StoredRecord {
        name: name.to_owned(),
        version: u64_at(value, 5),
        created: if v3 { u64_at(value, 37) } else { 0 },
        deleted: v3 && value[53] & FLAG_DELETED != 0,
        data: data.to_owned(),
        ctime: u64_at(value, 13),
        mtime: u64_at(value, 21),
    })
}

/// A `log` entry of record `name` under key `seq`, linking to `prev` (0: none).
pub fn encode_log(seq: u64, name: &str, entry: &JournalEntry, prev: u64) -> Vec<u8> {
    let author = entry.author.as_deref().unwrap_or("");
    let src = entry.origin.as_ref().map_or("", |o| o.src.as_str());
    let mut value =
        Vec::with_capacity(LOG_HEADER_V2 + name.len() + author.len() + src.len() + entry.op.len());
    value.push(LOG_FORMAT_V2);
    value.extend_from_slice(&[0; 4]);
    value.extend_from_slice(&entry.version.to_le_bytes());
    value.extend_from_slice(&entry.time.to_le_bytes());
    value.extend_from_slice(&prev.to_le_bytes());
    value.extend_from_slice(&len32(name));
    value.push(u8::from(entry.author.is_some()) | u8::from(entry.origin.is_some()) << 1);
    value.extend_from_slice(&len32(author));
    value.extend_from_slice(&len32(src));
    value.extend_from_slice(&entry.origin.as_ref().map_or(0, |o| o.seq).to_le_bytes());
    value.extend_from_slice(name.as_bytes());
    value.extend_from_slice(author.as_bytes());
    value.extend_from_slice(src.as_bytes());
    value.extend_from_slice(entry.op.as_bytes());
    seal(&seq.to_be_bytes(), &mut value, LOG_FORMAT_IN_CRC);
    value
}

/// A `log` entry as schemas 2 and 3 wrote it, for tests of reading old files.
#[cfg(test)]
pub fn encode_log_v1(seq: u64, name: &str, entry: &JournalEntry, prev: u64) -> Vec<u8> {
    let mut value = Vec::with_capacity(LOG_HEADER_V1 + name.len() + entry.op.len());
    value.push(LOG_FORMAT_V1);
    value.extend_from_slice(&[0; 4]);
    value.extend_from_slice(&entry.version.to_le_bytes());
    value.extend_from_slice(&entry.time.to_le_bytes());
    value.extend_from_slice(&prev.to_le_bytes());
    value.extend_from_slice(&len32(name));
    value.extend_from_slice(name.as_bytes());
    value.extend_from_slice(entry.op.as_bytes());
    seal(&seq.to_be_bytes(), &mut value, LOG_FORMAT_IN_CRC);
    value
}

/// The entry under `seq`, which `name`'s chain led to, and the key of the previous one.
pub fn decode_log(name: &str, seq: u64, value: &[u8]) -> Result<(JournalEntry, u64), StoreError> {
    let fail = |reason: String| corrupt(name, format!("journal entry {seq} in the log: {reason}"));
    let header = match value.first() {
        Some(&LOG_FORMAT_V1) => LOG_HEADER_V1,
        _ => LOG_HEADER_V2,
    };
    verify(
        name,
        &seq.to_be_bytes(),
        value,
        header,
        LOG_FORMAT_V2,
        LOG_FORMAT_IN_CRC,
        "log entry",
    )
    .map_err(fail)?;
    let v2 = value[0] == LOG_FORMAT_V2;
    let (flags, author_len, src_len) = if v2 {
        (value[33], u32_at(value, 34), u32_at(value, 38))
    } else {
        (0, 0, 0)
    };
    if flags > 3 {
        return Err(fail(format!(
            "its flags are {flags:#x}, of which this build knows only bits 0 and 1"
        )));
    }
    let mut at = header;
    let mut field = |len: usize, what: &str| -> Result<&[u8], StoreError> {
        let end = at
            .checked_add(len)
            .filter(|&end| end <= value.len())
            .ok_or_else(|| fail(format!("{what} length {len} runs past the entry")))?;
        let bytes = &value[at..end];
        at = end;
        Ok(bytes)
    };
    if field(u32_at(value, 29), "name")? != name.as_bytes() {
        return Err(fail(
            "it belongs to another record (the record's link into the log is damaged)".into(),
        ));
    }
    let text = |bytes: &[u8], what: &str| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| fail(format!("{what} is not UTF-8: {e}")))
    };
    let author = text(field(author_len, "author")?, "author")?;
    let src = text(field(src_len, "origin")?, "origin")?;
    let op = text(&value[at..], "op")?;
    Ok((
        JournalEntry {
            version: u64_at(value, 5),
            time: u64_at(value, 13),
            op,
            author: (flags & 1 == 1).then_some(author),
            origin: (flags & 2 == 2).then(|| Origin {
                src,
                seq: u64_at(value, 42),
            }),
        },
        u64_at(value, 21),
    ))
}

/// Just the version of the entry under `seq` and the key of the previous one, without
/// decoding (or copying) the entry's op: a prune checks each entry it deletes with it
/// (a thousand per prune with the default retention). It checks what following the link
/// needs, that the entry is `name`'s and links backward; the entry's checksum is verified
/// whenever the entry itself is read ([`decode_log`]).
pub fn log_link(name: &str, seq: u64, value: &[u8]) -> Result<(u64, u64), StoreError> {
    let fail = |reason: &str| corrupt(name, format!("journal entry {seq} in the log: {reason}"));
    let header = match value.first() {
        Some(&LOG_FORMAT_V1) => LOG_HEADER_V1,
        Some(&LOG_FORMAT_V2) => LOG_HEADER_V2,
        _ => return Err(fail("its format is unknown")),
    };
    if value.len() < header {
        return Err(fail("it is shorter than its header"));
    }
    let name_end = header.checked_add(u32_at(value, 29));
    if name_end.and_then(|end| value.get(header..end)) != Some(name.as_bytes()) {
        return Err(fail(
            "it belongs to another record (the record's link into the log is damaged)",
        ));
    }
    let prev = u64_at(value, 21);
    if prev >= seq {
        return Err(fail("it links forward"));
    }
    Ok((u64_at(value, 5), prev))
}

pub fn journal_key(name: &str, version: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + name.len() + 8);
    // Names are bounded far below 4 GiB by the protocol; saturating keeps a hypothetical
    // longer name from panicking (it would then share a prefix only with itself anyway).
    let len = u32::try_from(name.len()).unwrap_or(u32::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(name.as_bytes());
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// The version part of a journal (or milestone) key of `name`.
pub fn journal_key_version(name: &str, key: &[u8]) -> Result<u64, StoreError> {
    let expected = 4 + name.len() + 8;
    if key.len() != expected {
        return Err(corrupt(
            name,
            format!(
                "journal key is {} bytes where {expected} were expected",
                key.len()
            ),
        ));
    }
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&key[expected - 8..]);
    Ok(u64::from_be_bytes(buf))
}

/// A value of table `journal` or `milestones`: `time` and JSON text under `key`.
fn encode_timed(key: &[u8], time: u64, text: &str) -> Vec<u8> {
    let mut value = Vec::with_capacity(JOURNAL_HEADER + text.len());
    value.push(FORMAT_V1);
    value.extend_from_slice(&[0; 4]);
    value.extend_from_slice(&time.to_le_bytes());
    value.extend_from_slice(text.as_bytes());
    seal(key, &mut value, None);
    value
}

/// Decodes a value of [`encode_timed`]: its version (from the key), time and text.
fn decode_timed(
    name: &str,
    key: &[u8],
    value: &[u8],
    what: &str,
) -> Result<(u64, u64, String), StoreError> {
    let version = journal_key_version(name, key)?;
    let fail = |reason: String| corrupt(name, format!("{what} for version {version}: {reason}"));
    verify(name, key, value, JOURNAL_HEADER, FORMAT_V1, None, what).map_err(fail)?;
    let text = std::str::from_utf8(&value[JOURNAL_HEADER..])
        .map_err(|e| fail(format!("its text is not UTF-8: {e}")))?;
    Ok((version, u64_at(value, 5), text.to_owned()))
}

/// A `journal` entry (key, value): schema 1's, and the creates the upgrade to schema 4
/// adds. Such entries have no author nor origin.
pub fn encode_journal(name: &str, entry: &JournalEntry) -> (Vec<u8>, Vec<u8>) {
    let key = journal_key(name, entry.version);
    let value = encode_timed(&key, entry.time, &entry.op);
    (key, value)
}

pub fn decode_journal(name: &str, key: &[u8], value: &[u8]) -> Result<JournalEntry, StoreError> {
    let (version, time, op) = decode_timed(name, key, value, "journal entry")?;
    Ok(JournalEntry {
        version,
        time,
        op,
        author: None,
        origin: None,
    })
}

/// A milestone (key, value) of `name`: its `data` at `version`, whose journal entry has
/// `time`.
pub fn encode_milestone(name: &str, version: u64, time: u64, data: &str) -> (Vec<u8>, Vec<u8>) {
    let key = journal_key(name, version);
    let value = encode_timed(&key, time, data);
    (key, value)
}

/// A milestone's version, the time of its entry and its data.
pub fn decode_milestone(
    name: &str,
    key: &[u8],
    value: &[u8],
) -> Result<(u64, u64, String), StoreError> {
    decode_timed(name, key, value, "milestone")
}

const BATCH_PUT_V1: u8 = 1;
const BATCH_DELETE_V1: u8 = 2;
const BATCH_PUT: u8 = 3;

/// A write of a schema-3 log frame, with schema 3's meaning: replayed only before a
/// directory of schema 3 is upgraded (`recovery.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyWrite {
    /// Store the record (`created` 0, not deleted) and append the entry, if any, if the
    /// record's version is `base_version` (`None`: it must not exist).
    Put {
        record: StoredRecord,
        base_version: Option<u64>,
        entry: Option<JournalEntry>,
    },
    /// Remove the record and its journal, if its version is `base_version`.
    Delete { name: String, base_version: u64 },
}

impl LegacyWrite {
    pub fn name(&self) -> &str {
        match self {
            LegacyWrite::Put { record, .. } => &record.name,
            LegacyWrite::Delete { name, .. } => name,
        }
    }

    pub fn base_version(&self) -> Option<u64> {
        match self {
            LegacyWrite::Put { base_version, .. } => *base_version,
            LegacyWrite::Delete { base_version, .. } => Some(*base_version),
        }
    }
}

/// A decoded frame: the writes of this schema, or those of a schema-3 log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    Current(Vec<Write>),
    Legacy(Vec<LegacyWrite>),
}

/// Appends a length-prefixed string. Lengths are checked by the caller
/// ([`batch_len_fits`]), so the saturation never happens.
fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&len32(s));
    out.extend_from_slice(s.as_bytes());
}

/// Whether every string of `write` fits a batch's 4-byte lengths.
pub fn batch_len_fits(write: &Write) -> bool {
    let fits = |s: &str| u32::try_from(s.len()).is_ok();
    let Write::Put {
        record, entries, ..
    } = write;
    fits(&record.name)
        && fits(&record.data)
        && u32::try_from(entries.len()).is_ok()
        && entries.iter().all(|e| {
            fits(&e.op)
                && e.author.as_deref().is_none_or(fits)
                && e.origin.as_ref().is_none_or(|o| fits(&o.src))
        })
}

/// Appends the batch of `writes` to `out` (a log frame being built).
pub fn encode_batch(writes: &[&Write], out: &mut Vec<u8>) {
    // A batch holds at most a few thousand writes (`GroupCommitter`'s cap).
    let n = u32::try_from(writes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    for write in writes {
        let Write::Put {
            record,
            base_version,
            entries,
        } = write;
        out.push(BATCH_PUT);
        put_str(out, &record.name);
        out.extend_from_slice(&record.version.to_le_bytes());
        out.extend_from_slice(&record.ctime.to_le_bytes());
        out.extend_from_slice(&record.mtime.to_le_bytes());
        out.extend_from_slice(&record.created.to_le_bytes());
        out.push(u8::from(record.deleted));
        out.push(u8::from(base_version.is_some()));
        out.extend_from_slice(&base_version.unwrap_or(0).to_le_bytes());
        let n = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for e in entries {
            out.extend_from_slice(&e.version.to_le_bytes());
            out.extend_from_slice(&e.time.to_le_bytes());
            put_str(out, &e.op);
            out.push(u8::from(e.author.is_some()));
            put_str(out, e.author.as_deref().unwrap_or(""));
            out.push(u8::from(e.origin.is_some()));
            put_str(out, e.origin.as_ref().map_or("", |o| o.src.as_str()));
            out.extend_from_slice(&e.origin.as_ref().map_or(0, |o| o.seq).to_le_bytes());
        }
        put_str(out, &record.data);
    }
}

/// A batch as schema 3 wrote it, for tests of replaying an old log.
#[cfg(test)]
pub fn encode_legacy_batch(writes: &[LegacyWrite], out: &mut Vec<u8>) {
    let n = u32::try_from(writes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    for write in writes {
        match write {
            LegacyWrite::Put {
                record,
                base_version,
                entry,
            } => {
                out.push(BATCH_PUT_V1);
                put_str(out, &record.name);
                out.extend_from_slice(&record.version.to_le_bytes());
                out.extend_from_slice(&record.ctime.to_le_bytes());
                out.extend_from_slice(&record.mtime.to_le_bytes());
                out.push(u8::from(base_version.is_some()));
                out.extend_from_slice(&base_version.unwrap_or(0).to_le_bytes());
                out.push(u8::from(entry.is_some()));
                out.extend_from_slice(&entry.as_ref().map_or(0, |e| e.version).to_le_bytes());
                out.extend_from_slice(&entry.as_ref().map_or(0, |e| e.time).to_le_bytes());
                put_str(out, entry.as_ref().map_or("", |e| e.op.as_str()));
                put_str(out, &record.data);
            }
            LegacyWrite::Delete { name, base_version } => {
                out.push(BATCH_DELETE_V1);
                put_str(out, name);
                out.extend_from_slice(&base_version.to_le_bytes());
            }
        }
    }
}

/// Reads a batch's fields in order; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("the batch ends inside {what} (at byte {})", self.at))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(buf))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(buf))
    }

    fn flag(&mut self, what: &str) -> Result<bool, String> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("{what} is {other}, not 0 or 1")),
        }
    }

    fn str(&mut self, what: &str) -> Result<String, String> {
        let len = self.u32(what)? as usize;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("{what} is not UTF-8: {e}"))
    }

    fn put(&mut self) -> Result<Write, String> {
        let name = self.str("a record name")?;
        let version = self.u64("a record version")?;
        let ctime = self.u64("a ctime")?;
        let mtime = self.u64("an mtime")?;
        let created = self.u64("a created version")?;
        let deleted = self.flag("a tombstone flag")?;
        let has_base = self.flag("a base-version flag")?;
        let base = self.u64("a base version")?;
        let n = self.u32("the number of journal entries")?;
        // Each entry takes at least 34 bytes: damaged bytes cannot over-allocate.
        let mut entries = Vec::with_capacity((n as usize).min(self.bytes.len() / 34));
        for _ in 0..n {
            let version = self.u64("a journal entry's version")?;
            let time = self.u64("a journal entry's time")?;
            let op = self.str("a journal entry's op")?;
            let has_author = self.flag("an author flag")?;
            let author = self.str("an author")?;
            let has_origin = self.flag("an origin flag")?;
            let src = self.str("an origin's src")?;
            let seq = self.u64("an origin's seq")?;
            entries.push(JournalEntry {
                version,
                time,
                op,
                author: has_author.then_some(author),
                origin: has_origin.then_some(Origin { src, seq }),
            });
        }
        let data = self.str("a record's data")?;
        Ok(Write::Put {
            record: StoredRecord {
                name,
                version,
                created,
                deleted,
                data,
                ctime,
                mtime,
            },
            base_version: has_base.then_some(base),
            entries,
        })
    }

    fn legacy_put(&mut self) -> Result<LegacyWrite, String> {
        let name = self.str("a record name")?;
        let version = self.u64("a record version")?;
        let ctime = self.u64("a ctime")?;
        let mtime = self.u64("an mtime")?;
        let has_base = self.flag("a base-version flag")?;
        let base = self.u64("a base version")?;
        let has_entry = self.flag("a journal-entry flag")?;
        let entry_version = self.u64("a journal entry's version")?;
        let time = self.u64("a journal entry's time")?;
        let op = self.str("a journal entry's op")?;
        let data = self.str("a record's data")?;
        Ok(LegacyWrite::Put {
            record: StoredRecord {
                name,
                version,
                created: 0,
                deleted: false,
                data,
                ctime,
                mtime,
            },
            base_version: has_base.then_some(base),
            entry: has_entry.then_some(JournalEntry {
                version: entry_version,
                time,
                op,
                author: None,
                origin: None,
            }),
        })
    }
}

/// The writes of a batch encoded by [`encode_batch`], or by schema 3. Errors say what is
/// wrong, for a message that names the log file and frame. A frame holds writes of one
/// schema only.
pub fn decode_batch(bytes: &[u8]) -> Result<Batch, String> {
    let mut r = Reader { bytes, at: 0 };
    let n = r.u32("the number of writes")?;
    // Each write takes at least 13 bytes: a count from damaged bytes cannot make us
    // reserve more than the batch could hold.
    let cap = (n as usize).min(bytes.len() / 13);
    let mut current = Vec::with_capacity(cap);
    let mut legacy = Vec::new();
    for i in 0..n {
        match r.u8("a write's kind")? {
            BATCH_PUT => current.push(r.put()?),
            BATCH_PUT_V1 => legacy.push(r.legacy_put()?),
            BATCH_DELETE_V1 => legacy.push(LegacyWrite::Delete {
                name: r.str("a record name")?,
                base_version: r.u64("a base version")?,
            }),
            other => {
                return Err(format!(
                    "write {i} has kind {other}, which this build does not know"
                ));
            }
        }
        if !current.is_empty() && !legacy.is_empty() {
            return Err(format!(
                "write {i} mixes the writes of schema 3 and of schema 4 in one frame"
            ));
        }
    }
    if r.at != bytes.len() {
        return Err(format!(
            "{} bytes follow the batch's {n} writes",
            bytes.len() - r.at
        ));
    }
    Ok(if legacy.is_empty() {
        Batch::Current(current)
    } else {
        Batch::Legacy(legacy)
    })
}

pub fn corrupt(name: &str, reason: impl Into<Cause>) -> StoreError {
    StoreError::Corrupt {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> StoredRecord {
        StoredRecord {
            name: "users/ada".into(),
            version: 7,
            created: 3,
            deleted: false,
            data: r#"{"name":"Ada","ü":1}"#.into(),
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_123,
        }
    }

    fn entry(version: u64) -> JournalEntry {
        JournalEntry {
            version,
            time: 5,
            op: r#"{"op":"update","data":{"a":1}}"#.into(),
            author: Some("ädä".into()),
            origin: Some(Origin {
                src: "client-1".into(),
                seq: u64::MAX,
            }),
        }
    }

    /// The links of `record` in the records table.
    fn links(record: &StoredRecord, log_head: u64, start: u64) -> Head {
        Head {
            version: record.version,
            log_head,
            start,
            milestone_at_head: false,
        }
    }

    #[test]
    fn record_round_trips() {
        let r = record();
        let head = links(&r, 42, 2);
        let bytes = encode_record(&r, &head);
        assert_eq!(bytes[0], FORMAT_V3);
        assert_eq!(decode_record(&r.name, &bytes).unwrap(), r);
        assert_eq!(decode_record_head(&r.name, &bytes).unwrap(), head);
        let tomb = StoredRecord {
            deleted: true,
            data: "null".into(),
            ..r.clone()
        };
        // Both flags, alone and together, read back as written.
        for milestone_at_head in [false, true] {
            let head = Head {
                milestone_at_head,
                ..links(&tomb, 0, 0)
            };
            let bytes = encode_record(&tomb, &head);
            assert_eq!(decode_record(&r.name, &bytes).unwrap(), tomb);
            assert_eq!(decode_record_head(&r.name, &bytes).unwrap(), head);
            let live = encode_record(&r, &Head { version: 7, ..head });
            assert_eq!(decode_record(&r.name, &live).unwrap(), r);
            assert_eq!(
                decode_record_head(&r.name, &live).unwrap(),
                Head { version: 7, ..head }
            );
        }
        // Values written before schema 4 still read, as records created at 0.
        let old = StoredRecord { created: 0, ..r };
        let v2 = encode_record_v2(&old, 42);
        assert_eq!(decode_record(&old.name, &v2).unwrap(), old);
        assert_eq!(record_format(&old.name, &v2).unwrap(), FORMAT_V2);
        assert_eq!(
            decode_record_head(&old.name, &v2).unwrap(),
            Head { start: 0, ..head }
        );
        let v1 = encode_record_v1(&old);
        assert_eq!(v1[0], FORMAT_V1);
        assert_eq!(decode_record(&old.name, &v1).unwrap(), old);
        assert_eq!(
            decode_record_head(&old.name, &v1).unwrap(),
            links(&old, 0, 0)
        );
    }

    #[test]
    fn unknown_record_flags_are_refused() {
        let r = record();
        let mut bytes = encode_record(&r, &links(&r, 1, 0));
        bytes[53] = 4;
        seal(record_key(&r.name), &mut bytes, RECORD_FORMAT_IN_CRC);
        assert!(matches!(
            decode_record(&r.name, &bytes),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn every_damaged_byte_is_caught() {
        let r = StoredRecord {
            created: 0,
            ..record()
        };
        for bytes in [
            encode_record(&r, &links(&r, 42, 1)),
            encode_record_v2(&r, 42),
            encode_record_v1(&r),
        ] {
            for i in 0..bytes.len() {
                let mut damaged = bytes.clone();
                damaged[i] ^= 0x01;
                match decode_record(&r.name, &damaged) {
                    Err(StoreError::Corrupt { name, .. }) => assert_eq!(name, r.name),
                    other => panic!("flipping byte {i} gave {other:?}"),
                }
            }
            for len in 0..bytes.len() {
                assert!(
                    decode_record(&r.name, &bytes[..len]).is_err(),
                    "truncated to {len}"
                );
            }
        }
    }

    #[test]
    fn value_under_another_key_is_caught() {
        let bytes = encode_record(&record(), &links(&record(), 1, 0));
        assert!(matches!(
            decode_record("users/bob", &bytes),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn newer_format_is_reported_as_such() {
        let mut bytes = encode_record(&record(), &links(&record(), 1, 0));
        bytes[0] = 9;
        let err = decode_record("users/ada", &bytes).unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
    }

    #[test]
    fn journal_round_trips_and_orders_by_name_then_version() {
        let e = JournalEntry {
            author: None,
            origin: None,
            ..entry(300)
        };
        let (key, value) = encode_journal("a", &e);
        assert_eq!(decode_journal("a", &key, &value).unwrap(), e);
        // Numeric, not lexicographic, version order within a name.
        assert!(journal_key("a", 2) < journal_key("a", 10));
        assert!(journal_key("a", u64::MAX) < journal_key("b", 0));
        // A longer name that starts with the same bytes never lands inside a's range.
        let a_range = journal_key("a", 0)..=journal_key("a", u64::MAX);
        assert!(!a_range.contains(&journal_key("a\0\0\0\0\0\0\0\0", 0)));
        assert!(!a_range.contains(&journal_key("ab", 0)));
    }

    #[test]
    fn milestone_round_trips_and_is_checked() {
        let (key, value) = encode_milestone("m", 200, 17, r#"{"x":"é"}"#);
        assert_eq!(
            decode_milestone("m", &key, &value).unwrap(),
            (200, 17, r#"{"x":"é"}"#.to_owned())
        );
        let (other, _) = encode_milestone("m", 201, 17, "{}");
        assert!(
            decode_milestone("m", &other, &value).is_err(),
            "another key"
        );
        for i in 0..value.len() {
            let mut damaged = value.clone();
            damaged[i] ^= 0x80;
            assert!(decode_milestone("m", &key, &damaged).is_err(), "byte {i}");
        }
    }

    #[test]
    fn log_entry_round_trips_and_is_checked() {
        for e in [
            entry(300),
            JournalEntry {
                author: None,
                ..entry(300)
            },
            JournalEntry {
                origin: None,
                author: Some(String::new()),
                ..entry(300)
            },
        ] {
            let value = encode_log(17, "users/ada", &e, 9);
            assert_eq!(decode_log("users/ada", 17, &value).unwrap(), (e, 9));
            // Another record's entry, or the entry under another key, is damage.
            assert!(decode_log("users/bob", 17, &value).is_err());
            assert!(decode_log("users/ada", 18, &value).is_err());
            for i in 0..value.len() {
                let mut damaged = value.clone();
                damaged[i] ^= 0x80;
                assert!(decode_log("users/ada", 17, &damaged).is_err(), "byte {i}");
            }
            for len in 0..value.len() {
                assert!(
                    decode_log("users/ada", 17, &value[..len]).is_err(),
                    "truncated to {len}"
                );
            }
        }
        // Entries of schemas 2 and 3 read, without author and origin.
        let old = JournalEntry {
            author: None,
            origin: None,
            ..entry(4)
        };
        let value = encode_log_v1(3, "r", &old, 1);
        assert_eq!(decode_log("r", 3, &value).unwrap(), (old, 1));
    }

    fn batch() -> Vec<Write> {
        vec![
            Write::Put {
                record: record(),
                base_version: Some(5),
                entries: vec![entry(6), entry(7)],
            },
            Write::Put {
                record: StoredRecord {
                    name: "new/\u{0}ü".into(),
                    version: 0,
                    created: 0,
                    deleted: false,
                    data: "{}".into(),
                    ctime: 5,
                    mtime: 5,
                },
                base_version: None,
                entries: vec![JournalEntry {
                    author: None,
                    origin: None,
                    ..entry(0)
                }],
            },
            Write::Put {
                record: StoredRecord {
                    name: "gone".into(),
                    version: u64::MAX,
                    created: 1,
                    deleted: true,
                    data: "null".into(),
                    ctime: 5,
                    mtime: 5,
                },
                base_version: Some(u64::MAX - 1),
                entries: vec![entry(u64::MAX)],
            },
        ]
    }

    #[test]
    fn batch_round_trips() {
        let writes = batch();
        let mut bytes = vec![0xAA; 3]; // encoding appends after what is there
        encode_batch(&writes.iter().collect::<Vec<_>>(), &mut bytes);
        assert_eq!(decode_batch(&bytes[3..]).unwrap(), Batch::Current(writes));
        let mut empty = Vec::new();
        encode_batch(&[], &mut empty);
        assert_eq!(decode_batch(&empty).unwrap(), Batch::Current(Vec::new()));
    }

    #[test]
    fn legacy_batches_decode() {
        let writes = vec![
            LegacyWrite::Put {
                record: StoredRecord {
                    created: 0,
                    ..record()
                },
                base_version: Some(6),
                entry: Some(JournalEntry {
                    author: None,
                    origin: None,
                    ..entry(7)
                }),
            },
            LegacyWrite::Put {
                record: StoredRecord {
                    name: "n".into(),
                    version: 0,
                    created: 0,
                    deleted: false,
                    data: "{}".into(),
                    ctime: 1,
                    mtime: 1,
                },
                base_version: None,
                entry: None,
            },
            LegacyWrite::Delete {
                name: "gone".into(),
                base_version: 3,
            },
        ];
        let mut bytes = Vec::new();
        encode_legacy_batch(&writes, &mut bytes);
        assert_eq!(decode_batch(&bytes).unwrap(), Batch::Legacy(writes));
    }

    /// The frame's checksum catches damage before decoding; still, no byte string may
    /// make decoding panic or over-allocate.
    #[test]
    fn damaged_batches_fail_to_decode_without_panicking() {
        let mut bytes = Vec::new();
        encode_batch(&batch().iter().collect::<Vec<_>>(), &mut bytes);
        for len in 0..bytes.len() {
            assert!(decode_batch(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for i in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[i] ^= flip;
                let _ = decode_batch(&damaged);
            }
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode_batch(&extra).unwrap_err().contains("follow"));
        assert!(decode_batch(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn damaged_journal_is_caught() {
        let e = JournalEntry {
            version: 1,
            time: 5,
            op: "{}".into(),
            author: None,
            origin: None,
        };
        let (key, value) = encode_journal("r", &e);
        for i in 0..value.len() {
            let mut damaged = value.clone();
            damaged[i] ^= 0x80;
            assert!(decode_journal("r", &key, &damaged).is_err(), "byte {i}");
        }
        assert!(decode_journal("r", &key[..5], &value).is_err());
    }
}
