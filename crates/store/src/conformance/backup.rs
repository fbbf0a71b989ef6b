//! The backup cases of the conformance suite: what [`Store::export`] reads,
//! [`Store::restore`] writes back exactly, on every store.
//!
//! The stores may be shared between cases, so a case restores its records under another
//! unique prefix and compares them renamed back.

use std::sync::Arc;

use super::{commit_ok, delete, put, recreate, unique};
use crate::dump::RecordDump;
use crate::error::StoreError;
use crate::store::Store;

async fn export(store: &Arc<dyn Store>, prefix: &str, history: bool) -> Vec<RecordDump> {
    let mut rx = store.export(prefix, history).await.expect("export failed");
    let mut dumps = Vec::new();
    while let Some(d) = rx.recv().await {
        dumps.push(d.expect("export failed"));
    }
    dumps
}

fn renamed(dumps: &[RecordDump], from: &str, to: &str) -> Vec<RecordDump> {
    dumps
        .iter()
        .cloned()
        .map(|mut d| {
            d.record.name = d.record.name.replacen(from, to, 1);
            d
        })
        .collect()
}

/// Records with deletes, re-creates, authors and origins, exported with their history
/// and restored under other names: the same records, versions, times, journals and
/// milestones come back; a name that exists is refused and nothing of that call stored.
pub async fn backup_round_trip(store: Arc<dyn Store>) {
    let base = format!("{}/", unique("backup_from"));
    let copy = format!("{}/", unique("backup_to"));
    let names: Vec<String> = ["a", "b", "ü/🦀", "z"]
        .iter()
        .map(|t| format!("{base}{t}"))
        .collect();
    commit_ok(&store, names.iter().map(|n| put(n, 1)).collect()).await;
    commit_ok(&store, (2..=5).map(|v| put(&names[0], v)).collect()).await;
    commit_ok(&store, vec![delete(&names[1], 2)]).await;
    commit_ok(&store, vec![delete(&names[2], 2)]).await;
    commit_ok(&store, vec![recreate(&names[2], 2, 4)]).await;

    let dumps = export(&store, &base, true).await;
    assert_eq!(
        dumps.iter().map(|d| &d.record.name).collect::<Vec<_>>(),
        {
            let mut sorted: Vec<&String> = names.iter().collect();
            sorted.sort();
            sorted
        },
        "every record, a tombstone too, in name order"
    );
    for d in &dumps {
        let h = d.history.as_ref().unwrap();
        h.check(&d.record).unwrap();
        let journal = store.journal(&d.record.name, 0, u64::MAX).await.unwrap();
        assert_eq!(h.entries, journal);
    }
    let a = &dumps[0].history.as_ref().unwrap().entries;
    assert_eq!(
        a.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5]
    );

    store.restore(&renamed(&dumps, &base, &copy)).await.unwrap();
    let back = renamed(&export(&store, &copy, true).await, &copy, &base);
    assert_eq!(back, dumps);
    for d in &back {
        let name = d.record.name.replacen(&base, &copy, 1);
        assert_eq!(
            store.get(&name).await.unwrap().map(|r| (r.version, r.data)),
            Some((d.record.version, d.record.data.clone()))
        );
    }

    // Restored without history: the current state, readable from its version on.
    let bare = format!("{}/", unique("backup_bare"));
    let current = export(&store, &base, false).await;
    assert!(current.iter().all(|d| d.history.is_none()));
    store
        .restore(&renamed(&current, &base, &bare))
        .await
        .unwrap();
    let name = names[0].replacen(&base, &bare, 1);
    assert_eq!(store.history_start(&name).await.unwrap(), Some(5));
    let m = store.milestone(&name, 5).await.unwrap().unwrap();
    assert_eq!((m.version, m.data), (5, r#"{"v":5}"#.to_owned()));
    // And it takes writes on from there.
    commit_ok(&store, vec![put(&name, 6)]).await;

    // A taken name refuses the whole call.
    let again = format!("{}/", unique("backup_again"));
    let mut clash = renamed(&dumps, &base, &again);
    clash[3].record.name = dumps[3].record.name.replacen(&base, &copy, 1);
    match store.restore(&clash).await {
        Err(StoreError::Exists { name }) => assert_eq!(name, clash[3].record.name),
        other => panic!("expected Exists, got {other:?}"),
    }
    assert!(
        export(&store, &again, true).await.is_empty(),
        "nothing was stored"
    );

    // A history with a hole is refused before anything is written.
    let mut holed = renamed(&dumps, &base, &again);
    holed[0].history.as_mut().unwrap().entries.remove(2);
    assert!(matches!(
        store.restore(&holed).await,
        Err(StoreError::Malformed { .. })
    ));
    assert!(
        export(&store, &again, true).await.is_empty(),
        "nothing was stored"
    );
}

/// An export reads one state: writes committed while it is being read (here after its
/// first record arrived, to records further on, past the first pages of a store that
/// reads in pages) are not in it.
pub async fn export_reads_one_snapshot(store: Arc<dyn Store>) {
    let base = format!("{}/", unique("backup_snapshot"));
    let names: Vec<String> = (0..1600).map(|i| format!("{base}r{i:04}")).collect();
    for chunk in names.chunks(400) {
        commit_ok(&store, chunk.iter().map(|n| put(n, 1)).collect()).await;
    }
    let mut rx = store.export(&base, true).await.unwrap();
    let first = rx.recv().await.unwrap().unwrap();
    assert_eq!(first.record.name, names[0]);
    // Later records change, one is deleted, a new one appears at the end.
    commit_ok(&store, vec![put(&names[1599], 2), delete(&names[1500], 2)]).await;
    let late = format!("{base}r9999");
    commit_ok(&store, vec![put(&late, 1)]).await;
    let mut rest = Vec::new();
    while let Some(d) = rx.recv().await {
        rest.push(d.unwrap());
    }
    assert_eq!(rest.len(), 1599, "the records as they were, none added");
    assert!(
        rest.iter()
            .all(|d| d.record.version == 1 && !d.record.deleted)
    );
    let last = rest.last().unwrap();
    assert_eq!(last.record.name, names[1599]);
    assert_eq!(
        last.history.as_ref().unwrap().entries.len(),
        2,
        "versions 0 and 1"
    );
}
