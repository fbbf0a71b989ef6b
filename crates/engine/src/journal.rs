//! The journal entries the engine writes besides ops: a record's create and its delete.
//!
//! Their text is `recordsync_core`'s journal form (`{"op":"create","data":{}}`,
//! `{"op":"delete"}`), which stores keep as it is and history readers parse back.

use recordsync_store::JournalEntry;

/// A record's create as `{}`, deepstream's empty record, at engine version `version`.
pub(crate) fn create(version: u64, time: u64, author: Option<String>) -> JournalEntry {
    JournalEntry {
        version,
        time,
        op: r#"{"op":"create","data":{}}"#.to_owned(),
        author,
        origin: None,
    }
}

/// A record's delete, at engine version `version`.
pub(crate) fn delete(version: u64, time: u64, author: Option<String>) -> JournalEntry {
    JournalEntry {
        version,
        time,
        op: r#"{"op":"delete"}"#.to_owned(),
        author,
        origin: None,
    }
}
