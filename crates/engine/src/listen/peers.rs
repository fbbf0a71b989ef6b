//! Which nodes are alive, and so which one coordinates listening: the lowest live id.
//!
//! Each node decides from the heartbeats it has seen, with no voting. Views can differ
//! for a moment (a heartbeat not yet seen, a node just expired); a node that is told
//! something meant for a coordinator it does not believe it is ignores it, and every node
//! re-reports when its view changes, so the cluster converges on one registry.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct Peers {
    me: u64,
    /// Other live nodes, by when they were last heard from.
    seen: HashMap<u64, Instant>,
    /// A node silent for this long is gone.
    expiry: Duration,
}

impl Peers {
    pub fn new(me: u64, expiry: Duration) -> Self {
        Peers {
            me,
            seen: HashMap::new(),
            expiry,
        }
    }

    /// The coordinator in this node's view.
    pub fn coordinator(&self) -> u64 {
        self.seen.keys().copied().fold(self.me, u64::min)
    }

    /// `node` was heard from. Returns whether it was not known alive before.
    pub fn heard(&mut self, node: u64, now: Instant) -> bool {
        node != self.me && self.seen.insert(node, now).is_none()
    }

    /// Forgets the nodes silent for longer than the expiry; returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<u64> {
        let expiry = self.expiry;
        let gone: Vec<u64> = self
            .seen
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) > expiry)
            .map(|(node, _)| *node)
            .collect();
        for node in &gone {
            self.seen.remove(node);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_live_node_coordinates_and_silent_nodes_expire() {
        let t0 = Instant::now();
        let mut peers = Peers::new(5, Duration::from_secs(3));
        assert_eq!(peers.coordinator(), 5, "alone, a node coordinates");
        assert!(peers.heard(9, t0));
        assert_eq!(peers.coordinator(), 5);
        assert!(peers.heard(2, t0));
        assert!(!peers.heard(2, t0), "already known");
        assert_eq!(peers.coordinator(), 2);
        assert!(!peers.heard(5, t0), "a node's own messages do not count");

        peers.heard(9, t0 + Duration::from_secs(2));
        assert_eq!(peers.expire(t0 + Duration::from_secs(3)), Vec::<u64>::new());
        assert_eq!(peers.expire(t0 + Duration::from_secs(4)), vec![2]);
        assert_eq!(peers.coordinator(), 5, "2 expired, 9 is higher");
        assert_eq!(peers.expire(t0 + Duration::from_secs(6)), vec![9]);
    }
}
