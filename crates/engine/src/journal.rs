//! The journal entries the engine writes besides ops: a record's create and its delete,
//! in `recordsync_core::JournalOp`'s journal form, which stores keep as it is and history
//! readers parse back.

use recordsync_core::JournalOp;
use recordsync_store::{JournalEntry, Origin};
use serde_json::Value;

/// A record's create as `{}`, deepstream's empty record, at engine version `version`.
pub(crate) fn create(version: u64, time: u64, author: Option<String>) -> JournalEntry {
    let op = JournalOp::Create {
        data: Value::Object(Default::default()),
    };
    entry(version, time, &op, author)
}

/// A record's delete, at engine version `version`.
pub(crate) fn delete(
    version: u64,
    time: u64,
    author: Option<String>,
    origin: Option<Origin>,
) -> JournalEntry {
    JournalEntry {
        origin,
        ..entry(version, time, &JournalOp::Delete, author)
    }
}

fn entry(version: u64, time: u64, op: &JournalOp, author: Option<String>) -> JournalEntry {
    JournalEntry {
        version,
        time,
        op: op.to_journal(),
        author,
        origin: None,
    }
}
