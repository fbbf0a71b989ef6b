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
//! | 0      | 1    | format version, currently [`FORMAT_V1`]                 |
//! | 1      | 4    | CRC-32 (IEEE) of the key bytes followed by bytes 5..end |
//! | 5      | 8    | record version                                          |
//! | 13     | 8    | ctime, ms since the epoch                               |
//! | 21     | 8    | mtime, ms since the epoch                               |
//! | 29     | rest | data: the record's JSON text, UTF-8                     |
//!
//! ## Journal key (table `journal`)
//!
//! `u32 BE name length ++ name bytes ++ u64 BE version`. The length prefix makes one
//! record's entries a contiguous, version-ordered key range that no other name can fall
//! into (with a bare `name ++ version`, record `a` would share a range with `a\0...`).
//!
//! ## Journal value
//!
//! | offset | size | field                                                   |
//! |--------|------|---------------------------------------------------------|
//! | 0      | 1    | format version, currently [`FORMAT_V1`]                 |
//! | 1      | 4    | CRC-32 (IEEE) of the key bytes followed by bytes 5..end |
//! | 5      | 8    | time, ms since the epoch                                |
//! | 13     | rest | op: JSON text, UTF-8                                    |
//!
//! The checksum covers the key too, so a value that ends up under the wrong key is caught
//! as well as flipped bits. redb checksums its pages but verifies them only when it
//! repairs a file after a crash; this check runs on every read.

use crate::error::StoreError;
use crate::store::{JournalEntry, StoredRecord};

/// The only value format so far. A later format gets a new number; readers keep decoding
/// the old ones so that an upgrade never needs a rewrite of the file.
pub const FORMAT_V1: u8 = 1;

const RECORD_HEADER: usize = 1 + 4 + 8 + 8 + 8;
const JOURNAL_HEADER: usize = 1 + 4 + 8;

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
fn verify(name: &str, key: &[u8], value: &[u8], header: usize, what: &str) -> Result<(), String> {
    if value.len() < header {
        return Err(format!(
            "{what} value is {} bytes, shorter than its {header}-byte header",
            value.len()
        ));
    }
    if value[0] != FORMAT_V1 {
        return Err(format!(
            "{what} value has format version {}, this build reads only version {FORMAT_V1} \
             (was the data directory written by a newer recordsync?)",
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

pub fn encode_record(record: &StoredRecord) -> Vec<u8> {
    let mut value = Vec::with_capacity(RECORD_HEADER + record.data.len());
    value.push(FORMAT_V1);
    value.extend_from_slice(&[0; 4]);
    value.extend_from_slice(&record.version.to_le_bytes());
    value.extend_from_slice(&record.ctime.to_le_bytes());
    value.extend_from_slice(&record.mtime.to_le_bytes());
    value.extend_from_slice(record.data.as_bytes());
    seal(record_key(&record.name), &mut value);
    value
}

/// The version alone, for base-version checks; still verifies the checksum, since a
/// damaged version would make a conflict check pass or fail wrongly.
pub fn decode_record_version(name: &str, value: &[u8]) -> Result<u64, StoreError> {
    verify(name, record_key(name), value, RECORD_HEADER, "record")
        .map_err(|reason| corrupt(name, reason))?;
    Ok(u64_at(value, 5))
}

pub fn decode_record(name: &str, value: &[u8]) -> Result<StoredRecord, StoreError> {
    let version = decode_record_version(name, value)?;
    let data = std::str::from_utf8(&value[RECORD_HEADER..])
        .map_err(|e| corrupt(name, format!("record data is not UTF-8: {e}")))?;
    Ok(StoredRecord {
        name: name.to_owned(),
        version,
        data: data.to_owned(),
        ctime: u64_at(value, 13),
        mtime: u64_at(value, 21),
    })
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
    verify(name, key, value, JOURNAL_HEADER, "journal entry").map_err(|reason| {
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
        let bytes = encode_record(&r);
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(decode_record(&r.name, &bytes).unwrap(), r);
        assert_eq!(decode_record_version(&r.name, &bytes).unwrap(), 7);
    }

    #[test]
    fn every_damaged_byte_is_caught() {
        let r = record();
        let bytes = encode_record(&r);
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

    #[test]
    fn value_under_another_key_is_caught() {
        let bytes = encode_record(&record());
        assert!(matches!(
            decode_record("users/bob", &bytes),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn newer_format_is_reported_as_such() {
        let mut bytes = encode_record(&record());
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
