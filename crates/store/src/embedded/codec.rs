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
//! | 0      | 1    | format version: [`FORMAT_V2`] (written), [`FORMAT_V1`]  |
//! | 1      | 4    | CRC-32 (IEEE) of the key bytes followed by bytes 5..end |
//! | 5      | 8    | record version                                          |
//! | 13     | 8    | ctime, ms since the epoch                               |
//! | 21     | 8    | mtime, ms since the epoch                               |
//! | 29     | 8    | V2 only: key in `log` of the record's newest journal    |
//! |        |      | entry, 0 when it has none there                         |
//! | 29/37  | rest | data: the record's JSON text, UTF-8                     |
//!
//! ## Log entry (table `log`, key = u64 sequence number, from 1, in commit order)
//!
//! Journal entries written since schema 2. Every commit appends its entries at the end of
//! the log, so a commit of many records' writes touches the log's last page or two instead
//! of one page per record. Each entry links to the record's previous entry; a record's
//! journal is read by following the links back from the record's newest entry.
//!
//! | offset | size | field                                                   |
//! |--------|------|---------------------------------------------------------|
//! | 0      | 1    | format version, currently [`LOG_FORMAT_V1`]             |
//! | 1      | 4    | CRC-32 (IEEE) of the key (u64 BE) followed by bytes 5.. |
//! | 5      | 8    | record version this entry produced                      |
//! | 13     | 8    | time, ms since the epoch                                |
//! | 21     | 8    | key of the record's previous entry in `log`, 0 if none  |
//! | 29     | 4    | length of the record name                               |
//! | 33     | len  | record name, UTF-8                                      |
//! | …      | rest | op: JSON text, UTF-8                                    |
//!
//! ## Journal key (table `journal`, schema 1, read and deleted but no longer written)
//!
//! `u32 BE name length ++ name bytes ++ u64 BE version`. The length prefix makes one
//! record's entries a contiguous, version-ordered key range that no other name can fall
//! into (with a bare `name ++ version`, record `a` would share a range with `a\0...`).
//!
//! ## Journal value
//!
//! | offset | size | field                                                   |
//! |--------|------|---------------------------------------------------------|
//! | 0      | 1    | format version, [`FORMAT_V1`]                           |
//! | 1      | 4    | CRC-32 (IEEE) of the key bytes followed by bytes 5..end |
//! | 5      | 8    | time, ms since the epoch                                |
//! | 13     | rest | op: JSON text, UTF-8                                    |
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
//! A put:
//!
//! | size | field                                                               |
//! |------|---------------------------------------------------------------------|
//! | 1    | 1 = put                                                             |
//! | 4    | length of the record name, then the name, UTF-8                     |
//! | 8    | record version                                                      |
//! | 8    | ctime, ms since the epoch                                           |
//! | 8    | mtime, ms since the epoch                                           |
//! | 1    | 1 if the write has a base version, 0 if the record must not exist   |
//! | 8    | base version (0 when it has none)                                   |
//! | 1    | 1 if it has a journal entry, 0 if not (a record created empty)      |
//! | 8    | journal entry: the version it produced (0 when it has none)         |
//! | 8    | journal entry: time, ms since the epoch (0 when it has none)        |
//! | 4    | length of the op JSON text, then the text (0 when it has none)      |
//! | 4    | length of the record's JSON data, then the data                     |
//!
//! A delete:
//!
//! | size | field                                                               |
//! |------|---------------------------------------------------------------------|
//! | 1    | 2 = delete                                                          |
//! | 4    | length of the record name, then the name, UTF-8                     |
//! | 8    | base version                                                        |

use crate::error::StoreError;
use crate::store::{JournalEntry, StoredRecord, Write};

/// The first value format: records without a link into `log`, and `journal` entries.
/// A later format gets a new number; readers keep decoding the old ones so that an
/// upgrade never needs a rewrite of the file.
pub const FORMAT_V1: u8 = 1;
/// Records written since schema 2: V1 plus the key of the newest `log` entry.
pub const FORMAT_V2: u8 = 2;
/// The only format of `log` entries so far.
pub const LOG_FORMAT_V1: u8 = 1;

const RECORD_HEADER_V1: usize = 1 + 4 + 8 + 8 + 8;
const RECORD_HEADER_V2: usize = RECORD_HEADER_V1 + 8;
const JOURNAL_HEADER: usize = 1 + 4 + 8;
const LOG_HEADER: usize = 1 + 4 + 8 + 8 + 8 + 4;

fn checksum(key: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key);
    hasher.update(body);
    hasher.finalize()
}

fn seal(key: &[u8], value: &mut [u8]) {
    let crc = checksum(key, &value[5..]);
    value[1..5].copy_from_slice(&crc.to_le_bytes());
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(buf)
}

/// Checks the header and checksum shared by both value kinds; returns the body after the
/// common 5-byte prefix was verified.
fn verify(
    name: &str,
    key: &[u8],
    value: &[u8],
    header: usize,
    format: u8,
    what: &str,
) -> Result<(), String> {
    if value.first().is_some_and(|&f| f > format) {
        return Err(format!(
            "{what} value has format version {}, this build reads only versions up to {format} \
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
    if value[0] != format {
        return Err(format!(
            "{what} value has format version {}, where {format} was expected",
            value[0]
        ));
    }
    let mut stored = [0u8; 4];
    stored.copy_from_slice(&value[1..5]);
    if u32::from_le_bytes(stored) != checksum(key, &value[5..]) {
        return Err(format!(
            "{what} checksum mismatch: the bytes on disk were damaged (restore {name:?} from a backup or delete it)"
        ));
    }
    Ok(())
}

pub fn record_key(name: &str) -> &[u8] {
    name.as_bytes()
}

/// A record's value; `log_head` is the key of its newest `log` entry (0: none).
pub fn encode_record(record: &StoredRecord, log_head: u64) -> Vec<u8> {
    let mut value = Vec::with_capacity(RECORD_HEADER_V2 + record.data.len());
    value.push(FORMAT_V2);
    value.extend_from_slice(&[0; 4]);
    value.extend_from_slice(&record.version.to_le_bytes());
    value.extend_from_slice(&record.ctime.to_le_bytes());
    value.extend_from_slice(&record.mtime.to_le_bytes());
    value.extend_from_slice(&log_head.to_le_bytes());
    value.extend_from_slice(record.data.as_bytes());
    seal(record_key(&record.name), &mut value);
    value
}

/// A record's value as schema 1 wrote it, for tests of reading old files.
#[cfg(test)]
pub fn encode_record_v1(record: &StoredRecord) -> Vec<u8> {
    let mut value = encode_record(record, 0);
    value[0] = FORMAT_V1;
    value.drain(RECORD_HEADER_V1..RECORD_HEADER_V2);
    seal(record_key(&record.name), &mut value);
    value
}

/// Verifies the value; returns the header length of its format.
fn verify_record(name: &str, value: &[u8]) -> Result<usize, StoreError> {
    let (header, format) = match value.first() {
        Some(&FORMAT_V1) => (RECORD_HEADER_V1, FORMAT_V1),
        _ => (RECORD_HEADER_V2, FORMAT_V2),
    };
    verify(name, record_key(name), value, header, format, "record")
        .map_err(|reason| corrupt(name, reason))?;
    Ok(header)
}

/// What a commit needs of a stored record: its version and the key of its newest `log`
/// entry (0: none). Still verifies the checksum, since a damaged version would make a
/// conflict check pass or fail wrongly.
pub fn decode_record_head(name: &str, value: &[u8]) -> Result<(u64, u64), StoreError> {
    let header = verify_record(name, value)?;
    let log_head = if header == RECORD_HEADER_V2 {
        u64_at(value, 29)
    } else {
        0
    };
    Ok((u64_at(value, 5), log_head))
}

pub fn decode_record(name: &str, value: &[u8]) -> Result<StoredRecord, StoreError> {
    let header = verify_record(name, value)?;
    let data = std::str::from_utf8(&value[header..])
        .map_err(|e| corrupt(name, format!("record data is not UTF-8: {e}")))?;
    Ok(StoredRecord {
        name: name.to_owned(),
        version: u64_at(value, 5),
        data: data.to_owned(),
        ctime: u64_at(value, 13),
        mtime: u64_at(value, 21),
    })
}

/// A `log` entry of record `name` under key `seq`, linking to `prev` (0: none).
pub fn encode_log(seq: u64, name: &str, entry: &JournalEntry, prev: u64) -> Vec<u8> {
    let mut value = Vec::with_capacity(LOG_HEADER + name.len() + entry.op.len());
    value.push(LOG_FORMAT_V1);
    value.extend_from_slice(&[0; 4]);
    value.extend_from_slice(&entry.version.to_le_bytes());
    value.extend_from_slice(&entry.time.to_le_bytes());
    value.extend_from_slice(&prev.to_le_bytes());
    // Names are bounded far below 4 GiB by the protocol; a longer one would fail the
    // name check on reading rather than be misread.
    let len = u32::try_from(name.len()).unwrap_or(u32::MAX);
    value.extend_from_slice(&len.to_le_bytes());
    value.extend_from_slice(name.as_bytes());
    value.extend_from_slice(entry.op.as_bytes());
    seal(&seq.to_be_bytes(), &mut value);
    value
}

/// The entry under `seq`, which `name`'s chain led to, and the key of the previous one.
pub fn decode_log(name: &str, seq: u64, value: &[u8]) -> Result<(JournalEntry, u64), StoreError> {
    let fail = |reason: String| corrupt(name, format!("journal entry {seq} in the log: {reason}"));
    verify(
        name,
        &seq.to_be_bytes(),
        value,
        LOG_HEADER,
        LOG_FORMAT_V1,
        "log entry",
    )
    .map_err(fail)?;
    let mut len = [0u8; 4];
    len.copy_from_slice(&value[29..33]);
    let len = u32::from_le_bytes(len) as usize;
    let name_end = LOG_HEADER
        .checked_add(len)
        .filter(|&end| end <= value.len())
        .ok_or_else(|| fail(format!("name length {len} runs past the entry")))?;
    if &value[LOG_HEADER..name_end] != name.as_bytes() {
        return Err(fail(
            "it belongs to another record (the record's link into the log is damaged)".into(),
        ));
    }
    let op = std::str::from_utf8(&value[name_end..])
        .map_err(|e| fail(format!("op is not UTF-8: {e}")))?;
    Ok((
        JournalEntry {
            version: u64_at(value, 5),
            time: u64_at(value, 13),
            op: op.to_owned(),
        },
        u64_at(value, 21),
    ))
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

/// The version part of a journal key of `name`.
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

/// A `journal` entry as schema 1 wrote it, for tests of reading old files.
#[cfg(test)]
pub fn encode_journal(name: &str, entry: &JournalEntry) -> (Vec<u8>, Vec<u8>) {
    let key = journal_key(name, entry.version);
    let mut value = Vec::with_capacity(JOURNAL_HEADER + entry.op.len());
    value.push(FORMAT_V1);
    value.extend_from_slice(&[0; 4]);
    value.extend_from_slice(&entry.time.to_le_bytes());
    value.extend_from_slice(entry.op.as_bytes());
    seal(&key, &mut value);
    (key, value)
}

pub fn decode_journal(name: &str, key: &[u8], value: &[u8]) -> Result<JournalEntry, StoreError> {
    let version = journal_key_version(name, key)?;
    verify(name, key, value, JOURNAL_HEADER, FORMAT_V1, "journal entry").map_err(|reason| {
        corrupt(
            name,
            format!("journal entry for version {version}: {reason}"),
        )
    })?;
    let op = std::str::from_utf8(&value[JOURNAL_HEADER..]).map_err(|e| {
        corrupt(
            name,
            format!("journal entry for version {version}: op is not UTF-8: {e}"),
        )
    })?;
    Ok(JournalEntry {
        version,
        time: u64_at(value, 5),
        op: op.to_owned(),
    })
}

const BATCH_PUT: u8 = 1;
const BATCH_DELETE: u8 = 2;

/// Appends a length-prefixed string. Lengths are checked by the caller
/// ([`batch_len_fits`]), so the saturation never happens.
fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Whether every string of `write` fits a batch's 4-byte lengths.
pub fn batch_len_fits(write: &Write) -> bool {
    let fits = |s: &str| u32::try_from(s.len()).is_ok();
    match write {
        Write::Put { record, entry, .. } => {
            fits(&record.name) && fits(&record.data) && entry.as_ref().is_none_or(|e| fits(&e.op))
        }
        Write::Delete { name, .. } => fits(name),
    }
}

/// Appends the batch of `writes` to `out` (a log frame being built).
pub fn encode_batch(writes: &[&Write], out: &mut Vec<u8>) {
    // A batch holds at most a few thousand writes (`GroupCommitter`'s cap).
    let n = u32::try_from(writes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    for write in writes {
        match write {
            Write::Put {
                record,
                base_version,
                entry,
            } => {
                out.push(BATCH_PUT);
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
            Write::Delete { name, base_version } => {
                out.push(BATCH_DELETE);
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
}

/// The writes of a batch encoded by [`encode_batch`]. Errors say what is wrong, for a
/// message that names the log file and frame.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Write>, String> {
    let mut r = Reader { bytes, at: 0 };
    let n = r.u32("the number of writes")?;
    // Each write takes at least 13 bytes: a count from damaged bytes cannot make us
    // reserve more than the batch could hold.
    let mut writes = Vec::with_capacity((n as usize).min(bytes.len() / 13));
    for i in 0..n {
        let write = match r.u8("a write's kind")? {
            BATCH_PUT => {
                let name = r.str("a record name")?;
                let version = r.u64("a record version")?;
                let ctime = r.u64("a ctime")?;
                let mtime = r.u64("an mtime")?;
                let has_base = r.flag("a base-version flag")?;
                let base = r.u64("a base version")?;
                let has_entry = r.flag("a journal-entry flag")?;
                let entry_version = r.u64("a journal entry's version")?;
                let time = r.u64("a journal entry's time")?;
                let op = r.str("a journal entry's op")?;
                let data = r.str("a record's data")?;
                Write::Put {
                    record: StoredRecord {
                        name,
                        version,
                        data,
                        ctime,
                        mtime,
                    },
                    base_version: has_base.then_some(base),
                    entry: has_entry.then_some(JournalEntry {
                        version: entry_version,
                        time,
                        op,
                    }),
                }
            }
            BATCH_DELETE => Write::Delete {
                name: r.str("a record name")?,
                base_version: r.u64("a base version")?,
            },
            other => {
                return Err(format!(
                    "write {i} has kind {other}, which this build does not know"
                ));
            }
        };
        writes.push(write);
    }
    if r.at != bytes.len() {
        return Err(format!(
            "{} bytes follow the batch's {n} writes",
            bytes.len() - r.at
        ));
    }
    Ok(writes)
}

pub fn corrupt(name: &str, reason: impl Into<String>) -> StoreError {
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
            data: r#"{"name":"Ada","ü":1}"#.into(),
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_123,
        }
    }

    #[test]
    fn record_round_trips() {
        let r = record();
        let bytes = encode_record(&r, 42);
        assert_eq!(bytes[0], FORMAT_V2);
        assert_eq!(decode_record(&r.name, &bytes).unwrap(), r);
        assert_eq!(decode_record_head(&r.name, &bytes).unwrap(), (7, 42));
        // Values written before schema 2 still read, with no link into the log.
        let old = encode_record_v1(&r);
        assert_eq!(old[0], FORMAT_V1);
        assert_eq!(decode_record(&r.name, &old).unwrap(), r);
        assert_eq!(decode_record_head(&r.name, &old).unwrap(), (7, 0));
    }

    #[test]
    fn every_damaged_byte_is_caught() {
        let r = record();
        for bytes in [encode_record(&r, 42), encode_record_v1(&r)] {
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
        let bytes = encode_record(&record(), 1);
        assert!(matches!(
            decode_record("users/bob", &bytes),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn newer_format_is_reported_as_such() {
        let mut bytes = encode_record(&record(), 1);
        bytes[0] = 9;
        let err = decode_record("users/ada", &bytes).unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
    }

    #[test]
    fn journal_round_trips_and_orders_by_name_then_version() {
        let e = JournalEntry {
            version: 300,
            time: 5,
            op: r#"{"set":{"a":1}}"#.into(),
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
    fn log_entry_round_trips_and_is_checked() {
        let e = JournalEntry {
            version: 300,
            time: 5,
            op: r#"{"set":{"a":1}}"#.into(),
        };
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

    fn batch() -> Vec<Write> {
        vec![
            Write::Put {
                record: record(),
                base_version: Some(6),
                entry: Some(JournalEntry {
                    version: 7,
                    time: 99,
                    op: r#"{"set":1}"#.into(),
                }),
            },
            Write::Put {
                record: StoredRecord {
                    name: "new/\u{0}ü".into(),
                    version: 0,
                    data: "{}".into(),
                    ctime: 5,
                    mtime: 5,
                },
                base_version: None,
                entry: None,
            },
            Write::Delete {
                name: "gone".into(),
                base_version: u64::MAX,
            },
        ]
    }

    #[test]
    fn batch_round_trips() {
        let writes = batch();
        let mut bytes = vec![0xAA; 3]; // encoding appends after what is there
        encode_batch(&writes.iter().collect::<Vec<_>>(), &mut bytes);
        assert_eq!(decode_batch(&bytes[3..]).unwrap(), writes);
        let mut empty = Vec::new();
        encode_batch(&[], &mut empty);
        assert_eq!(decode_batch(&empty).unwrap(), Vec::<Write>::new());
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
