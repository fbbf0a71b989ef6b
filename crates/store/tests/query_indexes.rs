//! The memory and embedded stores' answers to random queries against the core
//! evaluator's, while their field indexes (`src/field_index.rs`, made by the first
//! equality query) follow random writes, deletes and re-creates, and, on the embedded
//! store, a restart: every answer must be what a scan of the current documents gives.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::sync::Arc;

use proptest::prelude::*;
use recordsync_core::query::{Doc, Query, Selection};
use recordsync_core::testing::query::{document, filter, sort};
use recordsync_store::{
    EmbeddedStore, JournalEntry, MemoryStore, Store, StoredRecord, Write, WriteOutcome,
};
use serde_json::{Value, json};

const C: &str = "docs";

/// One document's state: its engine version and value (`None`: deleted or never made).
type State = Vec<(u64, Option<Value>)>;

fn entry(version: u64) -> JournalEntry {
    JournalEntry {
        version,
        time: 1_000 + version,
        op: r#"{"op":"create","data":{}}"#.into(),
        author: None,
        origin: None,
    }
}

/// The writes that take the documents from `state` to `next` (a value, a delete, a
/// re-create), updating `state`.
fn writes(state: &mut State, next: &[Option<Value>]) -> Vec<Write> {
    let mut batch = Vec::new();
    for (i, (slot, want)) in state.iter_mut().zip(next).enumerate() {
        let (version, current) = slot;
        if current.is_none() && want.is_none() {
            continue;
        }
        let base = (*version > 0).then_some(*version);
        let new = *version + 1;
        batch.push(Write::Put {
            record: StoredRecord {
                name: format!("{C}/d{i:02}"),
                version: new,
                created: 0,
                deleted: want.is_none(),
                data: want.as_ref().map_or("null".to_owned(), Value::to_string),
                ctime: 1_000 + new,
                mtime: 2_000 - new,
            },
            base_version: base,
            entries: (base.map_or(0, |_| new)..=new).map(entry).collect(),
        });
        *slot = (new, want.clone());
    }
    batch
}

/// What the core evaluator answers over `state`.
fn expected(query: &Query, state: &State) -> Selection<String> {
    let ids: Vec<String> = (0..state.len()).map(|i| format!("d{i:02}")).collect();
    let matched = state
        .iter()
        .zip(&ids)
        .filter_map(|((v, d), id)| Some((d.as_ref()?, *v, id)))
        .map(|(d, v, id)| (Doc::new(id, d, v + 1, 1_000 + v, 2_000 - v), id.clone()))
        .filter(|(doc, _)| query.matches(doc))
        .collect();
    query.select(matched)
}

/// The queries of a case: every other one sorted and windowed, every third counted.
fn queries(filters: &[Value], s: &Value, window: (u64, u64)) -> Vec<(Value, Query)> {
    filters
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let mut q = f.as_object().unwrap().clone();
            if k % 2 == 1 {
                q.insert("$sort".into(), s.clone());
                q.insert("$skip".into(), json!(window.0));
                q.insert("$limit".into(), json!(window.1));
            }
            if k % 3 == 2 {
                q.insert("$count".into(), json!(true));
            }
            let q = Value::Object(q);
            let query = Query::parse(&q).unwrap();
            (q, query)
        })
        .collect()
}

async fn check(
    store: &dyn Store,
    queries: &[(Value, Query)],
    state: &State,
    when: &str,
) -> Result<(), TestCaseError> {
    for (q, query) in queries {
        let ours = match store.query(C, query).await {
            Ok(Selection::Items(records)) => Selection::Items(
                records
                    .into_iter()
                    .map(|r| r.name[C.len() + 1..].to_owned())
                    .collect(),
            ),
            Ok(Selection::Count(n)) => Selection::Count(n),
            Err(e) => return Err(TestCaseError::fail(format!("{q}: {e}"))),
        };
        prop_assert_eq!(
            ours,
            expected(query, state),
            "{}: query {} on {:?}",
            when,
            q,
            state
        );
    }
    Ok(())
}

async fn commit(store: &dyn Store, batch: Vec<Write>) {
    let n = batch.len();
    let outcomes = store.commit(&batch).await.unwrap();
    assert_eq!(outcomes, vec![WriteOutcome::Committed; n]);
}

fn docs() -> impl Strategy<Value = Vec<Option<Value>>> {
    prop::collection::vec(prop::option::weighted(0.8, document()), 12)
}

/// Runs a case on `store`: the first documents, every query (which makes the indexes),
/// the second documents, every query again. Returns the state.
async fn case(
    store: &dyn Store,
    first: &[Option<Value>],
    second: &[Option<Value>],
    queries: &[(Value, Query)],
) -> Result<State, TestCaseError> {
    let mut state: State = vec![(0, None); first.len()];
    commit(store, writes(&mut state, first)).await;
    check(store, queries, &state, "after the first writes").await?;
    commit(store, writes(&mut state, second)).await;
    check(store, queries, &state, "after the second writes").await?;
    Ok(state)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn memory_indexes_follow_writes(
        first in docs(),
        second in docs(),
        filters in prop::collection::vec(filter(2), 1..8),
        s in sort(),
        window in (0u64..3, 0u64..4),
    ) {
        let queries = queries(&filters, &s, window);
        let store = Arc::new(MemoryStore::new());
        runtime().block_on(case(store.as_ref(), &first, &second, &queries))?;
    }

    #[test]
    fn embedded_indexes_follow_writes_and_restarts(
        first in docs(),
        second in docs(),
        filters in prop::collection::vec(filter(2), 1..8),
        s in sort(),
        window in (0u64..3, 0u64..4),
    ) {
        let queries = queries(&filters, &s, window);
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let state = {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            rt.block_on(case(&store, &first, &second, &queries))?
        };
        // After a restart the indexes are made again, from what is on disk.
        let store = EmbeddedStore::open(dir.path()).unwrap();
        rt.block_on(check(&store, &queries, &state, "after a restart"))?;
    }
}
