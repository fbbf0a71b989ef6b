//! One connection's presence: the channels it subscribes to, the presences it has
//! published and not cleared (so that they can be cleared for the others when it leaves),
//! and its budget of presence messages (a flood is refused, not fanned out).
//!
//! Invariants: at most [`MAX_CHANNELS`] subscribed channels and [`MAX_PRESENCES`] live
//! (not cleared) presences per connection; a cleared presence is forgotten at once, so
//! the memory a connection holds is bounded by what it shows now, not by its history.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::presence_hub::PresenceHub;

/// Channels one connection may subscribe to at once.
pub const MAX_CHANNELS: usize = 1000;
/// Presences one connection may show at once (over all channels).
pub const MAX_PRESENCES: usize = 1000;
/// Presence messages (`p`, `pr`) a connection may send per second, sustained.
pub const RATE_PER_SECOND: f64 = 100.0;
/// ... and in a burst.
pub const BURST: f64 = 200.0;

/// What a connection last published as one presence: enough to clear it for the others
/// (`p: null` with the same `pv`, which the client takes as the newest).
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub pv: Option<u64>,
    pub c: Option<String>,
    pub d: Option<String>,
    pub v: Option<u64>,
}

/// One connection's presence state; owned by its [`super::connection::Connection`].
pub struct PresenceState {
    pub hub: Arc<PresenceHub>,
    /// Channels this connection subscribes to.
    pub subscribed: HashSet<Arc<str>>,
    /// Channel → presence id → its last publish, for presences not cleared.
    pub published: HashMap<Arc<str>, HashMap<String, Published>>,
    /// How many entries `published` holds, over all channels.
    live: usize,
    budget: Budget,
}

/// Why a presence message was refused by the connection's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Rate,
    Channels,
    Presences,
}

impl PresenceState {
    pub fn new(hub: Arc<PresenceHub>) -> PresenceState {
        PresenceState {
            hub,
            subscribed: HashSet::new(),
            published: HashMap::new(),
            live: 0,
            budget: Budget::new(),
        }
    }

    /// Spends one message of the budget; `Err` when the connection floods.
    pub fn spend(&mut self) -> Result<(), Limit> {
        if self.budget.take(Instant::now()) {
            Ok(())
        } else {
            Err(Limit::Rate)
        }
    }

    /// May the connection subscribe to one more channel (or is it subscribed already)?
    pub fn may_subscribe(&self, ch: &str) -> Result<(), Limit> {
        if self.subscribed.contains(ch) || self.subscribed.len() < MAX_CHANNELS {
            Ok(())
        } else {
            Err(Limit::Channels)
        }
    }

    /// Records a publish of presence `id` on `ch` (`p` null: it is cleared, and
    /// forgotten). A publish older than the one held (lower `pv`) does not replace it, as
    /// in ShareDB. `Err` when it would be one presence too many; nothing is recorded then.
    pub fn record(
        &mut self,
        ch: &str,
        id: &str,
        p: &Value,
        published: Published,
    ) -> Result<(), Limit> {
        if p.is_null() {
            if let Some(ids) = self.published.get_mut(ch) {
                if ids.remove(id).is_some() {
                    self.live -= 1;
                }
                if ids.is_empty() {
                    self.published.remove(ch);
                }
            }
            return Ok(());
        }
        if let Some(held) = self.published.get_mut(ch).and_then(|ids| ids.get_mut(id)) {
            if held.pv <= published.pv {
                *held = published;
            }
            return Ok(());
        }
        if self.live >= MAX_PRESENCES {
            return Err(Limit::Presences);
        }
        self.published
            .entry(Arc::from(ch))
            .or_default()
            .insert(id.to_owned(), published);
        self.live += 1;
        Ok(())
    }

    /// Forgets, and returns, the presences published on `ch` (the connection leaves it).
    pub fn take_published(&mut self, ch: &str) -> HashMap<String, Published> {
        let ids = self.published.remove(ch).unwrap_or_default();
        self.live -= ids.len();
        ids
    }
}

/// A token bucket: [`RATE_PER_SECOND`] tokens a second, at most [`BURST`] saved.
struct Budget {
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            tokens: BURST,
            at: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * RATE_PER_SECOND;
        self.tokens = (self.tokens + earned).min(BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn at(pv: u64) -> Published {
        Published {
            pv: Some(pv),
            c: None,
            d: None,
            v: None,
        }
    }

    #[test]
    fn a_flood_is_refused_and_the_budget_refills() {
        let mut budget = Budget::new();
        let start = budget.at;
        let spent = (0..1000).take_while(|_| budget.take(start)).count();
        assert_eq!(spent, BURST as usize);
        assert!(!budget.take(start));
        assert!(
            budget.take(start + Duration::from_millis(20)),
            "two tokens earned"
        );
    }

    #[test]
    fn cleared_presences_are_forgotten_and_live_ones_are_bounded() {
        let mut state = PresenceState::new(PresenceHub::new(0));
        for i in 0..MAX_PRESENCES {
            state
                .record("ch", &i.to_string(), &json!(1), at(1))
                .unwrap();
        }
        assert_eq!(
            state.record("other", "x", &json!(1), at(1)),
            Err(Limit::Presences)
        );
        // An update of a held presence is no new one.
        state.record("ch", "0", &json!(2), at(2)).unwrap();
        // An older one does not replace it.
        state.record("ch", "0", &json!(3), at(1)).unwrap();
        assert_eq!(state.published["ch"]["0"].pv, Some(2));
        state.record("ch", "0", &Value::Null, at(3)).unwrap();
        state.record("other", "x", &json!(1), at(1)).unwrap();
        assert_eq!(state.take_published("ch").len(), MAX_PRESENCES - 1);
        assert_eq!(state.live, 1);
    }
}
