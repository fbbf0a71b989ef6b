//! Watching a whole collection: hearing of every change to the records named
//! `collection/...`, committed on this node or announced by another, whether or not
//! anyone subscribes to the record (ShareDB's live queries follow a collection this way).
//!
//! A record event reaches a record's subscribers only; a record nobody on this node
//! subscribes to is not even held in memory, and another node's change to it is dropped
//! (`Engine::apply_remote`). So watchers are told separately, by name only: a watcher
//! that wants the record's state reads it (from the store, the truth). Notices are
//! level-triggered: "this record may have changed", possibly more than once for one
//! change, never zero times for a change this node hears of.
//!
//! Where watchers are told:
//! - every change this node commits (`Engine::announce`, called by every commit callback,
//!   after the record's subscribers got the event);
//! - every announcement of another node (`Engine::apply_remote`), and every refetch another
//!   node asks for (`Engine::refetch_cached`);
//! - a record reloaded with a different value than this node had (`Engine::apply_loaded`);
//! - [`Watcher::resync`]: this node lost news from the bus; anything may have changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

/// Something that follows every record of a collection (see the module docs).
pub trait Watcher: Send + Sync {
    /// Unique among live watchers; used to find the watch again on [`crate::Engine::unwatch`].
    fn id(&self) -> u64;

    /// Record `name` (of the watched collection) changed, or may have. Called under the
    /// record's lock, from commit callbacks and the bus: must not block and must not call
    /// back into the engine (queue the name and do the work elsewhere).
    fn changed(&self, name: &str);

    /// Any record may have changed without a notice (this node lost news from the bus).
    fn resync(&self);
}

/// Each collection's watchers.
type ByCollection = HashMap<Box<str>, Vec<Arc<dyn Watcher>>>;

/// The watchers, by collection (the part of a record name before its first `/`).
#[derive(Default)]
pub(crate) struct Watchers {
    by_collection: RwLock<ByCollection>,
    /// How many watchers there are: while none, a notice costs one atomic load.
    count: AtomicUsize,
}

impl Watchers {
    pub fn add(&self, collection: &str, watcher: Arc<dyn Watcher>) {
        let mut map = self.by_collection.write();
        let list = map.entry(Box::from(collection)).or_default();
        if list.iter().all(|w| w.id() != watcher.id()) {
            list.push(watcher);
            self.count.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Removes watcher `id` from `collection`; returns whether it was there.
    pub fn remove(&self, collection: &str, id: u64) -> bool {
        let mut map = self.by_collection.write();
        let Some(list) = map.get_mut(collection) else {
            return false;
        };
        let before = list.len();
        list.retain(|w| w.id() != id);
        let removed = list.len() != before;
        if list.is_empty() {
            map.remove(collection);
        }
        if removed {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        removed
    }

    /// Tells the watchers of `name`'s collection that it changed.
    pub fn notify(&self, name: &str) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let Some((collection, _)) = name.split_once('/') else {
            return;
        };
        if let Some(list) = self.by_collection.read().get(collection) {
            for w in list {
                w.changed(name);
            }
        }
    }

    /// Tells every watcher that anything may have changed.
    pub fn resync(&self) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        for w in self.by_collection.read().values().flatten() {
            w.resync();
        }
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;

    struct Log(u64, Mutex<Vec<String>>);

    impl Watcher for Log {
        fn id(&self) -> u64 {
            self.0
        }
        fn changed(&self, name: &str) {
            self.1.lock().push(name.to_owned());
        }
        fn resync(&self) {
            self.1.lock().push("*".to_owned());
        }
    }

    #[test]
    fn a_watcher_hears_of_its_collection_only_until_removed() {
        let watchers = Watchers::default();
        let log = Arc::new(Log(1, Mutex::new(Vec::new())));
        watchers.add("books", log.clone());
        watchers.add("books", log.clone());
        watchers.notify("books/a");
        watchers.notify("books/a/b");
        watchers.notify("bookshelf/a");
        watchers.notify("books");
        watchers.notify("films/a");
        watchers.resync();
        assert_eq!(*log.1.lock(), ["books/a", "books/a/b", "*"]);
        assert!(watchers.remove("books", 1));
        assert!(!watchers.remove("books", 1));
        watchers.notify("books/c");
        assert_eq!(log.1.lock().len(), 3);
    }
}
