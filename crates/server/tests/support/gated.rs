//! A store whose reads and commits a test can hold back or fail (`cluster.rs`,
//! `http_api.rs`). Not in `support/mod.rs`, which the CLI's tests share.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use recordsync_store::Store;

/// A store whose reads and commits a test can hold back: a read is held after it has
/// read, so a load that began before a change finishes after it; a commit is held before
/// it commits, so a write stays in flight.
pub struct Gated {
    inner: Arc<dyn Store>,
    /// While set, reads fail as when PostgreSQL cannot be reached.
    fail_reads: Arc<std::sync::atomic::AtomicBool>,
    hold_reads: tokio::sync::watch::Receiver<bool>,
    hold_commits: tokio::sync::watch::Receiver<bool>,
    /// Told of each read or commit held.
    held: tokio::sync::mpsc::UnboundedSender<&'static str>,
}

/// The switches of a [`Gated`] store, and what it reports holding.
pub struct Gates {
    pub fail_reads: Arc<std::sync::atomic::AtomicBool>,
    pub reads: tokio::sync::watch::Sender<bool>,
    pub commits: tokio::sync::watch::Sender<bool>,
    pub held: tokio::sync::mpsc::UnboundedReceiver<&'static str>,
}

impl Gates {
    /// Waits until the store holds a `what` ("read" or "commit").
    pub async fn holding(&mut self, what: &str) {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), self.held.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} was held"));
            if next == Some(what) {
                return;
            }
        }
    }
}

impl Gated {
    pub fn wrap(inner: Arc<dyn Store>) -> (Arc<dyn Store>, Gates) {
        let (reads, hold_reads) = tokio::sync::watch::channel(false);
        let (commits, hold_commits) = tokio::sync::watch::channel(false);
        let (held_tx, held) = tokio::sync::mpsc::unbounded_channel();
        let fail_reads = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let store = Arc::new(Gated {
            inner,
            fail_reads: fail_reads.clone(),
            hold_reads,
            hold_commits,
            held: held_tx,
        });
        (
            store,
            Gates {
                fail_reads,
                reads,
                commits,
                held,
            },
        )
    }

    async fn wait(&self, gate: &tokio::sync::watch::Receiver<bool>, what: &'static str) {
        let mut gate = gate.clone();
        if *gate.borrow_and_update() {
            let _ = self.held.send(what);
            let _ = gate.wait_for(|hold| !*hold).await;
        }
    }
}

#[async_trait::async_trait]
impl Store for Gated {
    fn data_set(&self) -> Option<&str> {
        self.inner.data_set()
    }

    async fn get(
        &self,
        name: &str,
    ) -> Result<Option<recordsync_store::StoredRecord>, recordsync_store::StoreError> {
        if self.fail_reads.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(recordsync_store::StoreError::Unavailable(
                "the test cut the database off".into(),
            ));
        }
        let read = self.inner.get(name).await;
        self.wait(&self.hold_reads, "read").await;
        read
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<recordsync_store::StoredRecord>, recordsync_store::StoreError> {
        self.inner.list(prefix, after, limit).await
    }

    async fn commit(
        &self,
        batch: &[recordsync_store::Write],
    ) -> Result<Vec<recordsync_store::WriteOutcome>, recordsync_store::StoreError> {
        self.wait(&self.hold_commits, "commit").await;
        self.inner.commit(batch).await
    }

    async fn journal(
        &self,
        name: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<recordsync_store::JournalEntry>, recordsync_store::StoreError> {
        self.inner.journal(name, from, to).await
    }

    async fn milestone(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<recordsync_store::Milestone>, recordsync_store::StoreError> {
        self.inner.milestone(name, version).await
    }

    async fn history_start(&self, name: &str) -> Result<Option<u64>, recordsync_store::StoreError> {
        self.inner.history_start(name).await
    }

    async fn version_at_time(
        &self,
        name: &str,
        time: u64,
    ) -> Result<Option<u64>, recordsync_store::StoreError> {
        self.inner.version_at_time(name, time).await
    }
}
