//! Upgrading a data file to schema 4 (history across deletes), in place, on opening.
//!
//! `init_schema` brings files of schema 1 and 2 to schema 3 (it gives them their
//! write-ahead log); a file of schema 3 may have frames of schema 3 to replay, which
//! `recovery.rs` applies with schema 3's meaning first. Then this, in one durable redb
//! transaction, for every record whose value predates format V3:
//!
//! - its value is rewritten as V3: `created` 0 (every record of schema 3 was created at
//!   version 0), not deleted (schema 3 removed deleted records), history from version 0;
//! - a create entry `{"op":"create","data":{}}` at version 0, with the record's ctime and
//!   no author nor origin, goes to `journal` (which sorts before the log's entries): the
//!   record's journal then starts with its create, as every journal does from schema 4
//!   on. Its other entries keep their versions and their place;
//! - a milestone of its current value at its current version (time: its mtime), so that
//!   retention can later move its history start there and free what schema 3 kept
//!   without bound.
//!
//! and `meta` says schema 4. A crash before that commit leaves the file of schema 3, and
//! the next opening does it all again.

use std::path::Path;

use redb::{Database, ReadableTable};

use super::{JOURNAL, META, MILESTONES, RECORDS, SCHEMA_KEY, SCHEMA_VERSION, codec};
use crate::error::StoreError;
use crate::store::{JournalEntry, StoredRecord};

/// The journal op of the create added for records older than schema 4.
pub const CREATE_OP: &str = r#"{"op":"create","data":{}}"#;

/// Upgrades the file to [`SCHEMA_VERSION`] (see the module doc). Returns how many
/// records it rewrote.
pub(super) fn upgrade(db: &Database, file: &Path) -> Result<u64, StoreError> {
    let fail = |e: redb::Error| StoreError::Open {
        path: file.display().to_string(),
        reason: format!("upgrading the data file to schema {SCHEMA_VERSION}: {e}"),
    };
    let txn = db.begin_write().map_err(|e| fail(e.into()))?;
    let mut upgraded = 0;
    {
        let mut records = txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
        let mut journal = txn.open_table(JOURNAL).map_err(|e| fail(e.into()))?;
        let mut milestones = txn.open_table(MILESTONES).map_err(|e| fail(e.into()))?;
        // Names first: the table cannot change while it is iterated.
        let mut old = Vec::new();
        for item in records.iter().map_err(|e| fail(e.into()))? {
            let (key, value) = item.map_err(|e| fail(e.into()))?;
            let name = std::str::from_utf8(key.value()).map_err(|e| {
                codec::corrupt(
                    &String::from_utf8_lossy(key.value()),
                    format!("a record name is not UTF-8: {e}"),
                )
            })?;
            if codec::record_format(name, value.value())? < codec::FORMAT_V3 {
                old.push(name.to_owned());
            }
        }
        for name in &old {
            let (record, head) = {
                let guard = records
                    .get(codec::record_key(name))
                    .map_err(|e| fail(e.into()))?
                    .ok_or_else(|| codec::corrupt(name, "vanished during the upgrade"))?;
                (
                    codec::decode_record(name, guard.value())?,
                    codec::decode_record_head(name, guard.value())?,
                )
            };
            let record = StoredRecord {
                created: 0,
                deleted: false,
                ..record
            };
            let (key, value) = codec::encode_journal(
                name,
                &JournalEntry {
                    version: 0,
                    time: record.ctime,
                    op: CREATE_OP.to_owned(),
                    author: None,
                    origin: None,
                },
            );
            // Schema 3 never journaled version 0 (a record was created empty, without an
            // entry); should one be there, it is kept.
            if journal
                .get(key.as_slice())
                .map_err(|e| fail(e.into()))?
                .is_none()
            {
                journal
                    .insert(key.as_slice(), value.as_slice())
                    .map_err(|e| fail(e.into()))?;
            }
            if record.version > 0 {
                let (key, value) =
                    codec::encode_milestone(name, record.version, record.mtime, &record.data);
                milestones
                    .insert(key.as_slice(), value.as_slice())
                    .map_err(|e| fail(e.into()))?;
            }
            let value = codec::encode_record(&record, head.log_head, 0);
            records
                .insert(codec::record_key(name), value.as_slice())
                .map_err(|e| fail(e.into()))?;
            upgraded += 1;
        }
        txn.open_table(META)
            .map_err(|e| fail(e.into()))?
            .insert(SCHEMA_KEY, SCHEMA_VERSION)
            .map_err(|e| fail(e.into()))?;
    }
    txn.commit().map_err(|e| fail(e.into()))?;
    tracing::info!(
        file = %file.display(),
        records = upgraded,
        schema = SCHEMA_VERSION,
        "upgraded the data file: every record keeps its versions and journal, and has a \
         create entry at version 0"
    );
    Ok(upgraded)
}
