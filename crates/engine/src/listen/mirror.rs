//! What this node knows of its own listening: its connections' LISTENs, the records they
//! believe they provide, and the records subscribed here.
//!
//! Requests are checked here, so a client hears about a bad pattern or a duplicate
//! LISTEN at once even when the coordinator is another node; and this is what the node
//! reports to a new coordinator.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use recordsync_core::listen::{Limits, ListenError, ListenPattern};

use super::wire::NodeReport;

#[derive(Default)]
pub struct Mirror {
    limits: Limits,
    listens: BTreeMap<u64, BTreeSet<String>>,
    /// (connection, record) → the pattern it provides the record under.
    provides: BTreeMap<(u64, String), String>,
    subscribed: HashSet<Arc<str>>,
}

impl Mirror {
    /// Checks and records a LISTEN, with the registry's rules and limits.
    pub fn listen(&mut self, conn: u64, pattern: &str) -> Result<(), ListenError> {
        let patterns = self.listens.get(&conn);
        if patterns.is_some_and(|p| p.contains(pattern)) {
            return Err(ListenError::AlreadyListening);
        }
        let max = self.limits.max_patterns_per_connection;
        if patterns.map_or(0, BTreeSet::len) >= max {
            return Err(ListenError::TooManyPatterns(max));
        }
        ListenPattern::compile(pattern, self.limits.pattern)?;
        self.listens
            .entry(conn)
            .or_default()
            .insert(pattern.to_owned());
        Ok(())
    }

    /// Forgets a LISTEN and what was provided under it. Returns whether there was one.
    pub fn unlisten(&mut self, conn: u64, pattern: &str) -> bool {
        let Some(patterns) = self.listens.get_mut(&conn) else {
            return false;
        };
        if !patterns.remove(pattern) {
            return false;
        }
        if patterns.is_empty() {
            self.listens.remove(&conn);
        }
        self.provides
            .retain(|(c, _), p| !(*c == conn && p == pattern));
        true
    }

    /// The connection accepted `name`: it provides it unless the coordinator says stop.
    pub fn accepted(&mut self, conn: u64, pattern: &str, name: &str) {
        if self.listens.get(&conn).is_some_and(|p| p.contains(pattern)) {
            self.provides
                .insert((conn, name.to_owned()), pattern.to_owned());
        }
    }

    /// The connection was told to stop providing `name`.
    pub fn stopped(&mut self, conn: u64, name: &str) {
        self.provides.remove(&(conn, name.to_owned()));
    }

    /// Forgets a closed connection. Returns whether it listened to anything (and so
    /// whether the coordinator must hear of it).
    pub fn closed(&mut self, conn: u64) -> bool {
        self.provides.retain(|(c, _), _| *c != conn);
        self.listens.remove(&conn).is_some()
    }

    /// Reports the connections of this node that listen to at least one pattern, as the
    /// `recordsync_listen_providers` gauge (after every change, under the mirror's lock,
    /// so that two changes cannot report out of order).
    pub fn count_providers(&self, topic: &'static str) {
        metrics::gauge!("recordsync_listen_providers", "topic" => topic)
            .set(self.listens.len() as f64);
    }

    pub fn subscribed(&mut self, name: &str) {
        self.subscribed.insert(Arc::from(name));
    }

    pub fn unsubscribed(&mut self, name: &str) {
        self.subscribed.remove(name);
    }

    /// The shared key of `name` if it has a subscriber here.
    pub fn subscribed_key(&self, name: &str) -> Option<Arc<str>> {
        self.subscribed.get(name).cloned()
    }

    pub fn subscribed_names(&self) -> Vec<Arc<str>> {
        self.subscribed.iter().cloned().collect()
    }

    pub fn report(&self) -> NodeReport {
        NodeReport {
            listens: self
                .listens
                .iter()
                .flat_map(|(conn, patterns)| patterns.iter().map(|p| (*conn, p.clone())))
                .collect(),
            provides: self
                .provides
                .iter()
                .map(|((conn, name), pattern)| (*conn, pattern.clone(), name.clone()))
                .collect(),
            subscribed: self.subscribed.iter().map(|n| n.to_string()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_listens_like_the_registry_and_reports_what_it_holds() {
        let mut m = Mirror::default();
        m.listen(1, "a/.*").unwrap();
        assert_eq!(m.listen(1, "a/.*"), Err(ListenError::AlreadyListening));
        assert!(matches!(
            m.listen(1, "a/("),
            Err(ListenError::InvalidPattern(_))
        ));
        m.accepted(1, "a/.*", "a/1");
        m.accepted(1, "b/.*", "b/1"); // not listening to b/.*: ignored
        m.subscribed("a/1");
        assert_eq!(
            m.report(),
            NodeReport {
                listens: vec![(1, "a/.*".into())],
                provides: vec![(1, "a/.*".into(), "a/1".into())],
                subscribed: vec!["a/1".into()],
            }
        );
        assert!(m.unlisten(1, "a/.*"));
        assert!(!m.unlisten(1, "a/.*"));
        assert!(m.report().provides.is_empty());
        assert!(!m.closed(1), "nothing left to tell");
    }

    #[test]
    fn a_connection_may_listen_to_a_bounded_number_of_patterns() {
        let mut m = Mirror::default();
        let max = Limits::default().max_patterns_per_connection;
        for i in 0..max {
            m.listen(1, &format!("p{i}/.*")).unwrap();
        }
        assert_eq!(
            m.listen(1, "one-more"),
            Err(ListenError::TooManyPatterns(max))
        );
    }
}
