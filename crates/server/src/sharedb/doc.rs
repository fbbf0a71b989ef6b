//! ShareDB documents as recordsync records, and ShareDB's versions over the engine's.

use recordsync_engine::RecordState;

/// The record of document `(c, d)`: `c/d`. The collection holds no `/` (the protocol
/// crate refuses one), so the name splits back at its first `/`.
pub fn record_name(c: &str, d: &str) -> String {
    format!("{c}/{d}")
}

/// The document of record `name`, if it names one (`collection/id`, both non-empty).
pub fn document(name: &str) -> Option<(&str, &str)> {
    name.split_once('/')
        .filter(|(c, d)| !c.is_empty() && !d.is_empty())
}

/// A record's state as ShareDB sees it: its version, and its value's JSON text unless
/// it does not exist (type null).
#[derive(Debug, Clone)]
pub struct DocState {
    pub version: u64,
    pub data: Option<std::sync::Arc<str>>,
}

impl DocState {
    pub fn of(state: RecordState) -> DocState {
        match state {
            RecordState::Exists(s) => DocState {
                version: s.version.for_sharedb(),
                data: Some(s.data),
            },
            // A missing record's ShareDB version is where its next life would begin: 0
            // if never created, the tombstone's engine version plus one after a delete.
            RecordState::Missing { next_create } => DocState {
                version: next_create,
                data: None,
            },
        }
    }
}

/// JSON text the engine holds (a value, which may nest to `json::MAX_DEPTH`), as a raw
/// value to send as it is. `None` if it is not JSON (damaged data).
pub fn raw(text: &str) -> Option<&serde_json::value::RawValue> {
    use serde::Deserialize;
    let mut de = serde_json::Deserializer::from_str(text);
    // Values the engine holds nest at most `json::MAX_DEPTH` levels (the core refuses
    // deeper ones), so this recursion is bounded.
    de.disable_recursion_limit();
    <&serde_json::value::RawValue>::deserialize(&mut de).ok()
}

/// [`raw`], or ShareDB's unknown error naming the damaged document.
pub fn raw_or_error<'a>(
    text: &'a str,
    name: &str,
) -> Result<&'a serde_json::value::RawValue, recordsync_sharedb_protocol::ShareDbError> {
    raw(text).ok_or_else(|| {
        recordsync_sharedb_protocol::ShareDbError::new(
            recordsync_sharedb_protocol::ErrorCode::ERR_UNKNOWN_ERROR,
            format!("the stored value of {name:?} is not JSON"),
        )
    })
}

/// One document's entry of a bulk reply (`bf`, `bs`): its snapshot, or the error reading
/// it met (each document answers for itself, as ShareDB's bulk replies do).
pub fn bulk_entry<'a>(
    result: Result<&'a DocState, &recordsync_sharedb_protocol::ShareDbError>,
    name: &str,
) -> recordsync_sharedb_protocol::BulkEntry<'a> {
    use recordsync_sharedb_protocol::{BulkEntry, SnapshotData};
    let snapshot = result.map_err(Clone::clone).and_then(|state| {
        let data = state
            .data
            .as_deref()
            .map(|t| raw_or_error(t, name))
            .transpose()?;
        Ok(SnapshotData {
            v: state.version,
            data,
        })
    });
    match snapshot {
        Ok(snapshot) => BulkEntry::Snapshot(snapshot),
        Err(error) => BulkEntry::Error { error },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_records_split_at_the_first_slash() {
        assert_eq!(record_name("books", "a/b"), "books/a/b");
        assert_eq!(document("books/a/b"), Some(("books", "a/b")));
        assert_eq!(document("plain"), None);
        assert_eq!(document("/x"), None);
        assert_eq!(document("x/"), None);
    }
}
