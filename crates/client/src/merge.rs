//! What to do when this client's writes and another's collide.
//!
//! deepstream orders the writes to a record by version: a write that was based on an
//! old version is refused (VERSION_EXISTS), and the writer must reconcile its local
//! value with the server's. The client does that with a [`MergeStrategy`], chosen per
//! client ([`Options::merge_strategy`](crate::Options::merge_strategy)) or per record
//! ([`Record::set_merge_strategy`](crate::Record::set_merge_strategy)).

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// How to reconcile a record after a write conflict, or after reconnecting to find that
/// the record changed on the server while this client had unsent writes.
#[derive(Clone, Default)]
pub enum MergeStrategy {
    /// Keep the server's value and drop the local writes (their acknowledgements fail
    /// with [`Error::Conflict`](crate::Error::Conflict)). deepstream's default.
    #[default]
    RemoteWins,
    /// Write the local value over the server's.
    LocalWins,
    /// Compute the value to keep from both; returning the remote value drops the local
    /// writes, anything else is written. The function runs while the client's state is
    /// locked: it must be quick, must not call back into the client, and must not own
    /// handles of it ([`Record`](crate::Record), [`List`](crate::List), ...).
    Custom(Arc<dyn Fn(&Conflict<'_>) -> Value + Send + Sync>),
}

impl MergeStrategy {
    /// A [`MergeStrategy::Custom`] from a closure.
    ///
    /// ```
    /// use recordsync_client::MergeStrategy;
    /// use serde_json::json;
    ///
    /// // Keep the larger counter.
    /// let strategy = MergeStrategy::custom(|c| {
    ///     let local = c.local["count"].as_i64().unwrap_or(0);
    ///     let remote = c.remote["count"].as_i64().unwrap_or(0);
    ///     json!({ "count": local.max(remote) })
    /// });
    /// # let _ = strategy;
    /// ```
    pub fn custom(merge: impl Fn(&Conflict<'_>) -> Value + Send + Sync + 'static) -> Self {
        MergeStrategy::Custom(Arc::new(merge))
    }

    /// The value to keep.
    pub(crate) fn merge(&self, conflict: &Conflict<'_>) -> Value {
        match self {
            MergeStrategy::RemoteWins => conflict.remote.clone(),
            MergeStrategy::LocalWins => conflict.local.clone(),
            MergeStrategy::Custom(merge) => merge(conflict),
        }
    }
}

impl fmt::Debug for MergeStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeStrategy::RemoteWins => f.write_str("RemoteWins"),
            MergeStrategy::LocalWins => f.write_str("LocalWins"),
            MergeStrategy::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Both sides of a conflict, handed to a [`MergeStrategy::Custom`].
#[derive(Debug)]
pub struct Conflict<'a> {
    /// The record.
    pub name: &'a str,
    /// This client's value: the last value it knew from the server with its own writes applied.
    pub local: &'a Value,
    /// The server's current value.
    pub remote: &'a Value,
    /// The server's current version.
    pub remote_version: u64,
}
