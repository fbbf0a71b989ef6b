//! Running a ShareDB query ([`recordsync_core::query::Query`]) over stored records: what
//! every store shares once it has the candidate records of a collection.
//!
//! ShareDB's document `(collection, id)` is the record `collection/id` (split at the
//! first `/`), so a collection is the name prefix `collection/`: a collection name holds
//! no `/`, and an id may.

use recordsync_core::query::{Cond, Doc, Filter, Query, Selection};
use serde_json::Value;

use crate::error::{Cause, StoreError};
use crate::store::StoredRecord;

/// The name prefix of `collection`'s records (`collection/`), or why the name cannot be
/// a collection's.
pub(crate) fn prefix(collection: &str) -> Result<String, StoreError> {
    if collection.is_empty() || collection.contains('/') {
        return Err(StoreError::InvalidQuery(format!(
            "{collection:?} cannot be a collection: a collection name is not empty and holds \
             no '/' (document (collection, id) is record \"collection/id\")"
        )));
    }
    Ok(format!("{collection}/"))
}

/// The exclusive upper bound of the names starting with `prefix` (which ends in `/`):
/// the same text with its last byte `/` raised to `0`.
pub(crate) fn prefix_end(prefix: &str) -> String {
    let mut end = prefix[..prefix.len() - 1].to_owned();
    end.push('0');
    end
}

/// The ids a query is limited to when its filter requires `_id` to be one of a few
/// strings (`{_id: "x"}`, `{_id: {$in: [...]}}`, alone or beside other conditions at the
/// top): the stores without an index on the data then read those records by name
/// instead of scanning the collection. `None`: no such condition.
pub(crate) fn named_ids(filter: &Filter) -> Option<Vec<String>> {
    let conjuncts = match filter {
        Filter::And(filters) => filters.as_slice(),
        other => std::slice::from_ref(other),
    };
    conjuncts.iter().find_map(|f| {
        let Filter::Field { path, conds } = f else {
            return None;
        };
        if path.as_str() != "_id" {
            return None;
        }
        conds.iter().find_map(|c| {
            let values = match c {
                Cond::Eq(v) => std::slice::from_ref(v),
                Cond::In(vs) => vs.as_slice(),
                _ => return None,
            };
            // Ids are strings: other values match nothing.
            Some(
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            )
        })
    })
}

/// ShareDB's version of a live record stored at engine version `version` (the create at
/// `c` is ShareDB's `c + 1`, each op after it one more; see the engine's `versions.rs`):
/// what `_v` compares with.
pub(crate) fn sharedb_version(version: u64) -> u64 {
    version.saturating_add(1)
}

/// Filters, orders and windows `candidates`: live records whose names start with
/// `prefix` (others are skipped, as are duplicates of a name already seen, so a caller
/// may pass records it looked up by name). Tombstones among them are skipped (a deleted document is never an answer).
/// `Corrupt` if a record's data is not JSON.
pub(crate) fn select(
    prefix: &str,
    query: &Query,
    candidates: Vec<StoredRecord>,
) -> Result<Selection<StoredRecord>, StoreError> {
    let mut seen = std::collections::HashSet::new();
    let values: Vec<(StoredRecord, Value)> = candidates
        .into_iter()
        .filter(|r| !r.deleted && r.name.starts_with(prefix))
        .filter(|r| seen.insert(r.name.clone()))
        .map(|r| {
            let value = recordsync_core::json::parse(&r.data).map_err(|e| StoreError::Corrupt {
                name: r.name.clone(),
                reason: Cause::with_source(format!("its value is not JSON: {e}"), e),
            })?;
            Ok((r, value))
        })
        .collect::<Result<_, StoreError>>()?;
    let matched = values
        .iter()
        .map(|(r, value)| (doc(prefix, r, value), r))
        .filter(|(doc, _)| query.matches(doc))
        .collect();
    Ok(match query.select(matched) {
        Selection::Items(items) => Selection::Items(items.into_iter().cloned().collect()),
        Selection::Count(n) => Selection::Count(n),
    })
}

/// The document a query sees for `record` (named `prefix` + id), whose value is `value`.
pub(crate) fn doc<'a>(prefix: &str, record: &'a StoredRecord, value: &'a Value) -> Doc<'a> {
    Doc::new(
        &record.name[prefix.len()..],
        value,
        sharedb_version(record.version),
        record.ctime,
        record.mtime,
    )
}
