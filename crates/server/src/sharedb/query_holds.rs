//! Which documents a ShareDB connection follows, and why: its own subscriptions (`s`,
//! `bs`) and the results of its live queries. The connection is one engine subscriber,
//! subscribed to a record once however many reasons it has; it unsubscribes when the
//! last reason goes (a `u` must not cut the ops of a document a live query still
//! shows, and a document leaving a live query's results must not end the client's own
//! subscription to it).
//!
//! Shared between the connection's request handler and its live queries' tasks (a
//! cheap clone). Only the bookkeeping is here: callers subscribe and unsubscribe with the
//! engine. Invariant: a name is in here exactly while the connection should be
//! subscribed to it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

#[derive(Clone, Default)]
pub struct DocHolds(Arc<Mutex<Holds>>);

#[derive(Default)]
struct Holds {
    /// Documents the client subscribed to itself.
    own: HashSet<Arc<str>>,
    /// Documents in live queries' results, with the ids of those queries.
    queries: HashMap<Arc<str>, HashSet<u64>>,
}

impl Holds {
    fn held(&self, name: &str) -> bool {
        self.own.contains(name) || self.queries.contains_key(name)
    }
}

impl DocHolds {
    /// The client subscribed to `name` itself.
    pub fn insert(&self, name: Arc<str>) -> bool {
        self.0.lock().own.insert(name)
    }

    /// Whether the connection is subscribed to `name`, for any reason.
    pub fn contains(&self, name: &str) -> bool {
        self.0.lock().held(name)
    }

    /// The client unsubscribed from `name`: returns whether nothing holds it any more
    /// (the caller then unsubscribes from the engine).
    pub fn remove(&self, name: &str) -> bool {
        let mut holds = self.0.lock();
        holds.own.remove(name);
        !holds.held(name)
    }

    /// Live query `query` shows `name`.
    pub fn hold(&self, name: Arc<str>, query: u64) {
        self.0.lock().queries.entry(name).or_default().insert(query);
    }

    /// Live query `query` no longer shows `name`: returns whether nothing holds it any
    /// more.
    pub fn release(&self, name: &str, query: u64) -> bool {
        let mut holds = self.0.lock();
        if let Some(queries) = holds.queries.get_mut(name) {
            queries.remove(&query);
            if queries.is_empty() {
                holds.queries.remove(name);
            }
        }
        !holds.held(name)
    }

    /// Live query `query` ended: releases everything it held, returning the names
    /// nothing holds any more.
    pub fn release_query(&self, query: u64) -> Vec<Arc<str>> {
        let mut holds = self.0.lock();
        let mut freed = Vec::new();
        holds.queries.retain(|name, queries| {
            queries.remove(&query);
            let keep = !queries.is_empty();
            if !keep {
                freed.push(name.clone());
            }
            keep
        });
        freed.retain(|name| !holds.own.contains(name));
        freed
    }

    /// Everything held, emptied (the connection is closing).
    pub fn take_all(&self) -> Vec<Arc<str>> {
        let holds = std::mem::take(&mut *self.0.lock());
        let mut all: Vec<Arc<str>> = holds.own.into_iter().collect();
        all.extend(holds.queries.into_keys());
        all.sort();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_followed_while_any_reason_remains() {
        let holds = DocHolds::default();
        holds.insert(Arc::from("c/a"));
        holds.hold(Arc::from("c/a"), 1);
        holds.hold(Arc::from("c/b"), 1);
        holds.hold(Arc::from("c/b"), 2);
        assert!(!holds.remove("c/a"), "query 1 still shows c/a");
        assert!(holds.release("c/a", 1));
        assert!(!holds.release("c/b", 1), "query 2 still shows c/b");
        holds.hold(Arc::from("c/c"), 2);
        holds.insert(Arc::from("c/c"));
        assert_eq!(holds.release_query(2), vec![Arc::from("c/b")]);
        assert_eq!(holds.take_all(), vec![Arc::from("c/c")]);
        assert!(holds.take_all().is_empty());
    }
}
