//! The shared Store conformance suite, run against every backend of this crate.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::sync::Arc;

use recordsync_store::embedded::EmbeddedOptions;
use recordsync_store::{EmbeddedStore, History, MemoryStore, Store};

mod memory {
    use super::*;

    recordsync_store::store_conformance_tests!(async {
        (Arc::new(MemoryStore::new()) as Arc<dyn Store>, ())
    });

    mod history {
        use super::*;

        recordsync_store::store_history_conformance_tests!(|history: History| async move {
            (
                Arc::new(MemoryStore::with_history(history)) as Arc<dyn Store>,
                (),
            )
        });
    }
}

mod embedded {
    use super::*;

    recordsync_store::store_conformance_tests!(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path()).expect("open");
        (Arc::new(store) as Arc<dyn Store>, dir)
    });

    mod history {
        use super::*;

        recordsync_store::store_history_conformance_tests!(|history: History| async move {
            let dir = tempfile::tempdir().expect("tempdir");
            let options = EmbeddedOptions {
                history,
                ..EmbeddedOptions::default()
            };
            let store = EmbeddedStore::open_with(dir.path(), options).expect("open");
            (Arc::new(store) as Arc<dyn Store>, dir)
        });
    }
}

/// `run_all` is what a backend without per-case tests calls; it must work on one store
/// shared by every case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_one_shared_embedded_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(EmbeddedStore::open(dir.path()).expect("open"));
    recordsync_store::conformance::run_all(store).await;
}

#[tokio::test]
async fn run_all_on_memory_store_with_a_current_thread_runtime() {
    recordsync_store::conformance::run_all(Arc::new(MemoryStore::new())).await;
}
