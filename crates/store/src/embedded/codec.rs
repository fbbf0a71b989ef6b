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

use crate::error::StoreError;
use crate::store::{JournalEntry, StoredRecord};

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
