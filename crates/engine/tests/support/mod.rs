//! What the engine's black-box tests share: an engine on a store, and a write awaited.
#![allow(dead_code, reason = "each test crate uses its own part of the helpers")]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use recordsync_engine::listen::Listening;
use recordsync_engine::{Engine, EngineVersion, WriteDone, WriteFailure, WriteRequest};
use recordsync_store::Store;

/// An engine on `store`, as a node runs it (listening on, no cluster).
pub fn engine_on(store: Arc<dyn Store>) -> Arc<Engine> {
    Engine::new(
        store,
        Listening::new(Duration::from_millis(500), true),
        Duration::from_secs(30),
        None,
    )
}

/// Sends `request` and waits for its answer.
pub async fn submit(
    engine: &Engine,
    name: &str,
    request: WriteRequest,
) -> Result<EngineVersion, WriteFailure> {
    let (tx, rx) = oneshot::channel();
    engine
        .write(name, request, WriteDone::new(move |r| drop(tx.send(r))))
        .await;
    rx.await.expect("every write is answered")
}
