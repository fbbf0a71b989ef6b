//! Collection watchers (`Engine::watch`): told of every committed change to a record of
//! their collection, whether or not anyone subscribes to it, and of nothing else.
#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::oneshot;

use recordsync_core::WriteOp;
use recordsync_engine::{Base, Watcher, WriteDone, WriteRequest};
use recordsync_store::MemoryStore;
use support::{engine_on, submit};

struct Log {
    id: u64,
    names: Mutex<Vec<String>>,
}

impl Watcher for Log {
    fn id(&self) -> u64 {
        self.id
    }

    fn changed(&self, name: &str) {
        self.names.lock().push(name.to_owned());
    }

    fn resync(&self) {
        self.names.lock().push("*".to_owned());
    }
}

#[tokio::test]
async fn a_watcher_hears_every_commit_to_its_collection_until_unwatched() {
    let engine = engine_on(Arc::new(MemoryStore::new()));
    let log = Arc::new(Log {
        id: 7,
        names: Mutex::new(Vec::new()),
    });
    engine.watch("books", log.clone());
    let write = |path: &str, n: i64| {
        WriteRequest::new(
            1,
            WriteOp::Patch {
                path: path.into(),
                data: json!(n),
            },
            Base::Produces(-1),
        )
    };
    // Nobody subscribes to these records: the watcher hears of them all the same.
    submit(&engine, "books/a", write("n", 1)).await.unwrap();
    submit(&engine, "films/a", write("n", 1)).await.unwrap();
    submit(&engine, "books/b/c", write("n", 1)).await.unwrap();
    let (tx, rx) = oneshot::channel();
    engine
        .delete(
            1,
            None,
            "books/a",
            WriteDone::new(move |r| drop(tx.send(r))),
        )
        .await;
    rx.await.unwrap().unwrap();
    engine.flush().await;
    // A write to a missing record is its create and its write: two commits, one notice
    // each at least (notices are "may have changed", so repeats are allowed).
    let heard = log.names.lock().clone();
    assert!(heard.iter().all(|n| n.starts_with("books/")), "{heard:?}");
    for name in ["books/a", "books/b/c"] {
        assert!(heard.iter().any(|n| n == name), "{name} in {heard:?}");
    }
    assert_eq!(
        heard.last().map(String::as_str),
        Some("books/a"),
        "the delete"
    );
    assert!(engine.unwatch("books", 7));
    let before = log.names.lock().len();
    submit(&engine, "books/d", write("n", 1)).await.unwrap();
    engine.flush().await;
    assert_eq!(log.names.lock().len(), before, "nothing after unwatch");
}
