//! The listen registry: which connections listen to which patterns, which records are
//! subscribed, and for each such record whether it is idle, being offered, or provided.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use thiserror::Error;

use super::pattern::{ListenPattern, PatternError, PatternLimits};
use super::rng::SplitMix64;

/// Names one offer's response timer. A fresh id per offer lets a timer that fires after its
/// offer was answered (the usual race with an async timer) be recognised and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

/// Something the runtime must do. Actions are returned in the order they must be carried
/// out, so that e.g. subscribers hear HAS_NO_PROVIDER before the next offer goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAction<C> {
    /// Send `SUBSCRIPTION_FOR_PATTERN_FOUND {name: pattern, subscription: name}` to `conn`,
    /// and arm a `listenResponseTimeout` timer that calls
    /// [`ListenRegistry::response_timeout`]`(name, timer)` when it fires.
    Offer {
        conn: C,
        pattern: Arc<str>,
        name: Arc<str>,
        timer: TimerId,
    },
    /// The offer behind this timer was answered or withdrawn; disarm the timer. If it fires
    /// anyway, the registry ignores it.
    CancelTimer { timer: TimerId },
    /// The offer to `conn` timed out: send it `LISTEN_RESPONSE_TIMEOUT {subscription: name}`.
    /// (The timer has fired, so there is nothing to cancel.)
    TimedOut { conn: C, name: Arc<str> },
    /// Send `SUBSCRIPTION_FOR_PATTERN_REMOVED {name: pattern, subscription: name}` to
    /// `conn`: its `onStop` for `name` runs and it stops publishing.
    Stop {
        conn: C,
        pattern: Arc<str>,
        name: Arc<str>,
    },
    /// Send `SUBSCRIPTION_HAS_PROVIDER` (or `SUBSCRIPTION_HAS_NO_PROVIDER`) `{name}` to every
    /// current subscriber of `name`.
    ProviderChanged { name: Arc<str>, has_provider: bool },
}

/// Why a LISTEN or UNLISTEN was refused. Nothing changed in the registry. New kinds may
/// be added: match with a `_` arm.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ListenError {
    /// deepstream: `INVALID_LISTEN_REGEX {name: pattern}`.
    #[error(transparent)]
    InvalidPattern(#[from] PatternError),
    /// deepstream: `MULTIPLE_SUBSCRIPTIONS {originalAction: LISTEN, name: pattern}`.
    #[error("the connection already listens to this pattern")]
    AlreadyListening,
    /// deepstream sends nothing back (no ack, no error).
    #[error("the connection does not listen to this pattern")]
    NotListening,
    /// Ours, not deepstream's: bounds what one connection can make the server hold.
    #[error("a connection may listen to at most {0} patterns")]
    TooManyPatterns(usize),
}

/// The bounds that keep a hostile client from making the registry large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub pattern: PatternLimits,
    pub max_patterns_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            pattern: PatternLimits::default(),
            max_patterns_per_connection: 128,
        }
    }
}

/// One LISTEN registration. A re-LISTEN after UNLISTEN gets a new id, so it counts as a new
/// candidate even for a search that already asked the old registration.
type ListenId = u64;

#[derive(Debug)]
struct PatternEntry<C> {
    regex: ListenPattern,
    listeners: BTreeMap<C, ListenId>,
    /// The registration that brought this pattern in: patterns are ordered by it when
    /// candidates are asked in registration order.
    since: ListenId,
}

/// A search for a provider of one record: who has been asked, and which registrations
/// existed when it started (those that arrive later join at the end of the queue).
#[derive(Debug)]
struct Search {
    asked: BTreeSet<ListenId>,
    started: ListenId,
}

/// A candidate's place in registration order: registrations older than the search first,
/// by their pattern's age and then their own; then those made during the search, by age.
type RegistrationOrder = (bool, ListenId, ListenId);

/// Where a connection is; in a cluster, its node. Listeners in the place where a record
/// was first subscribed are asked before the others.
pub type Place = u64;

/// Indexes from a connection to its share of the state, so that closing a connection or
/// unlistening costs what that connection holds, not what the whole server holds.
#[derive(Debug)]
struct ConnEntry {
    patterns: BTreeSet<Arc<str>>,
    provides: BTreeSet<Arc<str>>,
    offered: BTreeSet<Arc<str>>,
}

#[derive(Debug)]
enum RecordState<C> {
    /// Subscribed, unprovided, nobody being asked: either no listener matches or all that
    /// matched said no. Left alone until a new listener, a rematch, or a lost provider.
    Idle,
    /// `conn` has been offered the record under `pattern` and has not answered yet.
    /// `asked` holds every registration asked in this search, `conn`'s included.
    Offered {
        conn: C,
        pattern: Arc<str>,
        timer: TimerId,
        search: Search,
    },
    Provided {
        conn: C,
        pattern: Arc<str>,
    },
}

/// deepstream's listener registry as a pure state machine. See the [module docs](super).
///
/// Every map is ordered so that, for a given seed and input sequence, the actions are
/// identical run after run.
#[derive(Debug)]
pub struct ListenRegistry<C> {
    limits: Limits,
    rng: SplitMix64,
    /// deepstream's `listen.shuffleProviders`: draw candidates at random (`true`) or in
    /// registration order.
    shuffle: bool,
    /// Where each connection is (see [`Place`]); everywhere the same unless the runtime
    /// says otherwise with [`ListenRegistry::places`].
    place_of: fn(&C) -> Place,
    next_listen: ListenId,
    next_timer: u64,
    patterns: BTreeMap<Arc<str>, PatternEntry<C>>,
    conns: BTreeMap<C, ConnEntry>,
    /// Exactly the records that have at least one subscriber.
    records: BTreeMap<Arc<str>, RecordState<C>>,
    /// Where each subscribed record's listeners are asked first; absent: the default
    /// place 0.
    homes: BTreeMap<Arc<str>, Place>,
}

type Actions<C> = Vec<ListenAction<C>>;

impl<C: Copy + Eq + Hash + Ord + Debug> ListenRegistry<C> {
    pub fn new(seed: u64) -> Self {
        Self::with_limits(seed, Limits::default())
    }

    pub fn with_limits(seed: u64, limits: Limits) -> Self {
        ListenRegistry {
            limits,
            rng: SplitMix64::new(seed),
            shuffle: true,
            place_of: |_| 0,
            next_listen: 0,
            next_timer: 0,
            patterns: BTreeMap::new(),
            conns: BTreeMap::new(),
            records: BTreeMap::new(),
            homes: BTreeMap::new(),
        }
    }

    /// deepstream's `listen.shuffleProviders`. `true` (the default, as in deepstream):
    /// each candidate is drawn at random from those not yet asked. `false`: candidates are
    /// asked in deepstream's registration order: by pattern, in the order the patterns
    /// were first listened to, and within a pattern in the order its listeners
    /// registered; registrations made while a search runs are asked after the others,
    /// in the order they came.
    pub fn shuffle_providers(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Tells the registry where each connection is. A record's listeners in the place
    /// given to [`first_subscriber_at`](Self::first_subscriber_at) are asked before any
    /// other, as deepstream asks the listeners on the subscriber's own node first.
    pub fn places(mut self, place_of: fn(&C) -> Place) -> Self {
        self.place_of = place_of;
        self
    }

    /// From now on, the listeners in `place` are asked first for `name` (in a cluster:
    /// the node that first subscribed has no subscriber left, but another does).
    pub fn move_home(&mut self, name: &str, place: Place) {
        if let Some((key, _)) = self.records.get_key_value(name) {
            self.homes.insert(key.clone(), place);
        }
    }

    /// LISTEN. On success the runtime acks the LISTEN and carries out the actions: offers of
    /// existing unprovided subscriptions that this pattern matches.
    pub fn listen(&mut self, conn: C, pattern: &str) -> Result<Vec<ListenAction<C>>, ListenError> {
        self.listen_providing(conn, pattern, &BTreeSet::new())
    }

    /// LISTEN from a connection that already provides `provided` (what a registry that has
    /// just taken over, a new cluster coordinator, hears from the node of a provider):
    /// those of them that are subscribed and idle become provided by `conn` at once, with
    /// no offer, and the rest of the matching idle records are offered as by
    /// [`listen`](Self::listen).
    pub fn listen_providing(
        &mut self,
        conn: C,
        pattern: &str,
        provided: &BTreeSet<&str>,
    ) -> Result<Vec<ListenAction<C>>, ListenError> {
        if self
            .patterns
            .get(pattern)
            .is_some_and(|e| e.listeners.contains_key(&conn))
        {
            return Err(ListenError::AlreadyListening);
        }
        let max = self.limits.max_patterns_per_connection;
        if self.conns.get(&conn).map_or(0, |c| c.patterns.len()) >= max {
            return Err(ListenError::TooManyPatterns(max));
        }
        let id = self.next_listen;
        let key = match self.patterns.get_key_value(pattern) {
            Some((key, _)) => key.clone(),
            None => {
                let regex = ListenPattern::compile(pattern, self.limits.pattern)?;
                let key: Arc<str> = Arc::from(pattern);
                let entry = PatternEntry {
                    regex,
                    listeners: BTreeMap::new(),
                    since: id,
                };
                self.patterns.insert(key.clone(), entry);
                key
            }
        };
        self.next_listen += 1;
        let entry = self.patterns.get_mut(&key).expect("inserted above");
        entry.listeners.insert(conn, id);
        self.conns
            .entry(conn)
            .or_insert_with(|| ConnEntry {
                patterns: BTreeSet::new(),
                provides: BTreeSet::new(),
                offered: BTreeSet::new(),
            })
            .patterns
            .insert(key.clone());

        // Searches already running pick the new registration up by themselves; only idle
        // records need a new search. Like deepstream, that search draws from all matching
        // listeners, so listeners that said no before may be asked again.
        let regex = &self.patterns[&key].regex;
        let idle: Vec<Arc<str>> = self
            .records
            .iter()
            .filter(|(name, state)| matches!(state, RecordState::Idle) && regex.matches(name))
            .map(|(name, _)| name.clone())
            .collect();
        let mut out = Vec::new();
        for name in idle {
            if provided.contains(&*name) {
                let state = RecordState::Provided {
                    conn,
                    pattern: key.clone(),
                };
                self.records.insert(name.clone(), state);
                self.conn_mut(conn).provides.insert(name.clone());
                out.push(ListenAction::ProviderChanged {
                    name,
                    has_provider: true,
                });
            } else {
                self.offer_next(name, None, &mut out);
            }
        }
        Ok(out)
    }

    /// UNLISTEN. On success the runtime acks the UNLISTEN and carries out the actions: the
    /// records this registration provided are stopped, their subscribers told, and offered
    /// elsewhere; offers it had not answered go to the next candidate.
    pub fn unlisten(
        &mut self,
        conn: C,
        pattern: &str,
    ) -> Result<Vec<ListenAction<C>>, ListenError> {
        let key = self
            .remove_registration(conn, pattern)
            .ok_or(ListenError::NotListening)?;
        let mut out = Vec::new();
        let (provided, offered) = self.names_held_under(conn, &key);
        for name in provided {
            // deepstream sends no REMOVED here, leaving the client publishing a record that
            // now has another provider; the REMOVED runs the client's onStop.
            out.push(ListenAction::Stop {
                conn,
                pattern: key.clone(),
                name: name.clone(),
            });
            self.lose_provider(conn, name, &mut out);
        }
        for name in offered {
            let (timer, search) = self.take_offer(conn, &name);
            out.push(ListenAction::CancelTimer { timer });
            self.offer_next(name, Some(search), &mut out);
        }
        self.drop_conn_if_empty(conn);
        Ok(out)
    }

    /// The connection is gone: everything it listened to, provided or was offered is
    /// released. Nothing is addressed to `conn` itself.
    pub fn connection_closed(&mut self, conn: C) -> Vec<ListenAction<C>> {
        let Some(patterns) = self.conns.get(&conn).map(|c| c.patterns.clone()) else {
            return Vec::new();
        };
        // All registrations go first, so that no re-offer below can pick `conn` again
        // under one of its other patterns.
        for pattern in &patterns {
            self.remove_registration(conn, pattern);
        }
        let c = &self.conns[&conn];
        let provided: Vec<Arc<str>> = c.provides.iter().cloned().collect();
        let offered: Vec<Arc<str>> = c.offered.iter().cloned().collect();
        let mut out = Vec::new();
        for name in provided {
            self.lose_provider(conn, name, &mut out);
        }
        for name in offered {
            let (timer, search) = self.take_offer(conn, &name);
            out.push(ListenAction::CancelTimer { timer });
            self.offer_next(name, Some(search), &mut out);
        }
        self.drop_conn_if_empty(conn);
        out
    }

    /// Call when `name` goes from no subscribers to one (any connection, the listeners
    /// included). Calling it for a record already subscribed does nothing.
    pub fn first_subscriber(&mut self, name: &str) -> Vec<ListenAction<C>> {
        self.first_subscriber_at(name, 0)
    }

    /// [`first_subscriber`](Self::first_subscriber), where the subscriber is in `place`:
    /// listeners there are asked first (see [`places`](Self::places)).
    pub fn first_subscriber_at(&mut self, name: &str, place: Place) -> Vec<ListenAction<C>> {
        if self.records.contains_key(name) {
            return Vec::new();
        }
        let name: Arc<str> = Arc::from(name);
        self.records.insert(name.clone(), RecordState::Idle);
        self.homes.insert(name.clone(), place);
        let mut out = Vec::new();
        self.offer_next(name, None, &mut out);
        out
    }

    /// Like [`first_subscriber`](Self::first_subscriber), for a record that already has a
    /// provider out there: `conn` says it provides `name` under `pattern`. This is how a
    /// registry that has just taken over (a new cluster coordinator, rebuilt from what
    /// each node reports) keeps existing providers instead of offering their records
    /// afresh. If `conn` does not listen to a `pattern` that matches, it is told to stop
    /// and the record is searched for as usual. A record already subscribed is treated as
    /// an [`accept`](Self::accept).
    pub fn first_subscriber_provided_by(
        &mut self,
        name: &str,
        place: Place,
        conn: C,
        pattern: &str,
    ) -> Vec<ListenAction<C>> {
        if self.records.contains_key(name) {
            return self.accept(conn, pattern, name);
        }
        let listens = self
            .patterns
            .get(pattern)
            .is_some_and(|e| e.listeners.contains_key(&conn) && e.regex.matches(name));
        if !listens {
            let mut out = vec![ListenAction::Stop {
                conn,
                pattern: Arc::from(pattern),
                name: Arc::from(name),
            }];
            out.extend(self.first_subscriber_at(name, place));
            return out;
        }
        let (name, pattern): (Arc<str>, Arc<str>) = (Arc::from(name), self.pattern_key(pattern));
        self.homes.insert(name.clone(), place);
        self.records.insert(
            name.clone(),
            RecordState::Provided {
                conn,
                pattern: pattern.clone(),
            },
        );
        self.conn_mut(conn).provides.insert(name.clone());
        vec![ListenAction::ProviderChanged {
            name,
            has_provider: true,
        }]
    }

    /// Call when the last subscriber of `name` has gone. As in deepstream 7, a provider
    /// subscribed to its own record is a subscriber like any other, so it keeps the record
    /// alive. No HAS_NO_PROVIDER is emitted: there is nobody left to tell.
    pub fn last_subscriber_left(&mut self, name: &str) -> Vec<ListenAction<C>> {
        let Some((name, state)) = self.records.remove_entry(name) else {
            return Vec::new();
        };
        self.homes.remove(&name);
        match state {
            RecordState::Idle => Vec::new(),
            RecordState::Offered { conn, timer, .. } => {
                self.conn_mut(conn).offered.remove(&name);
                vec![ListenAction::CancelTimer { timer }]
            }
            RecordState::Provided { conn, pattern } => {
                self.conn_mut(conn).provides.remove(&name);
                vec![ListenAction::Stop {
                    conn,
                    pattern,
                    name,
                }]
            }
        }
    }

    /// LISTEN_ACCEPT `{name: pattern, subscription: name}` from `conn`.
    ///
    /// Taken if the record is subscribed and unprovided and `conn` listens to `pattern`,
    /// which matches `name`, even if the offer was withdrawn meanwhile (a late answer after a
    /// timeout, or an accept racing another candidate): a willing provider beats none.
    /// Otherwise `conn` is sent REMOVED, so a client that believes it provides stops doing
    /// so, unless `conn` already provides the record: its client keys `onStop` by record
    /// name alone, and a REMOVED would stop its real providing.
    pub fn accept(&mut self, conn: C, pattern: &str, name: &str) -> Vec<ListenAction<C>> {
        let takeable = match self.records.get(name) {
            Some(RecordState::Provided { conn: p, .. }) if *p == conn => return Vec::new(),
            Some(RecordState::Idle | RecordState::Offered { .. }) => self
                .patterns
                .get(pattern)
                .is_some_and(|e| e.listeners.contains_key(&conn) && e.regex.matches(name)),
            _ => false,
        };
        if !takeable {
            return vec![ListenAction::Stop {
                conn,
                pattern: Arc::from(pattern),
                name: Arc::from(name),
            }];
        }
        let (name, pattern) = (self.record_key(name), self.pattern_key(pattern));
        let mut out = Vec::new();
        let state = RecordState::Provided {
            conn,
            pattern: pattern.clone(),
        };
        let previous = self.records.insert(name.clone(), state);
        if let Some(RecordState::Offered {
            conn: asked, timer, ..
        }) = previous
        {
            self.conn_mut(asked).offered.remove(&name);
            out.push(ListenAction::CancelTimer { timer });
        }
        self.conn_mut(conn).provides.insert(name.clone());
        out.push(ListenAction::ProviderChanged {
            name,
            has_provider: true,
        });
        out
    }

    /// LISTEN_REJECT `{name: pattern, subscription: name}` from `conn`. Only the answer to
    /// the outstanding offer counts; anything else is stale and ignored.
    pub fn reject(&mut self, conn: C, pattern: &str, name: &str) -> Vec<ListenAction<C>> {
        match self.records.get(name) {
            Some(RecordState::Offered {
                conn: c,
                pattern: p,
                ..
            }) if *c == conn && **p == *pattern => {}
            _ => return Vec::new(),
        }
        let name = self.record_key(name);
        let (timer, search) = self.take_offer(conn, &name);
        let mut out = vec![ListenAction::CancelTimer { timer }];
        self.offer_next(name, Some(search), &mut out);
        out
    }

    /// The timer of an [`ListenAction::Offer`] fired. If that offer is still outstanding,
    /// its connection is told and the next candidate is asked.
    pub fn response_timeout(&mut self, name: &str, timer: TimerId) -> Vec<ListenAction<C>> {
        let conn = match self.records.get(name) {
            Some(RecordState::Offered { conn, timer: t, .. }) if *t == timer => *conn,
            _ => return Vec::new(),
        };
        let name = self.record_key(name);
        let mut out = vec![ListenAction::TimedOut {
            conn,
            name: name.clone(),
        }];
        let (_, search) = self.take_offer(conn, &name);
        self.offer_next(name, Some(search), &mut out);
        out
    }

    /// deepstream's `listen.rematchInterval` (default 30 s): every idle record that some
    /// pattern matches is searched for again, so listeners that said no get another chance.
    /// The runtime calls this on that interval. Costs one match per (idle record, pattern).
    pub fn rematch(&mut self) -> Vec<ListenAction<C>> {
        let idle: Vec<Arc<str>> = self
            .records
            .iter()
            .filter(|(_, state)| matches!(state, RecordState::Idle))
            .map(|(name, _)| name.clone())
            .collect();
        let mut out = Vec::new();
        for name in idle {
            self.offer_next(name, None, &mut out);
        }
        out
    }

    /// Whether `name` has a provider. When a subscriber joins a record that has one, the
    /// runtime sends that subscriber `SUBSCRIPTION_HAS_PROVIDER {name}` (deepstream sends
    /// nothing when there is none).
    pub fn has_provider(&self, name: &str) -> bool {
        matches!(self.records.get(name), Some(RecordState::Provided { .. }))
    }

    /// Who provides `name`, and under which pattern.
    pub fn provider(&self, name: &str) -> Option<(C, &str)> {
        match self.records.get(name) {
            Some(RecordState::Provided { conn, pattern }) => Some((*conn, pattern)),
            _ => None,
        }
    }

    /// Asks the next candidate for `name` in `search` (`None`: a new search), or leaves the
    /// record idle if every matching registration has been asked. Candidates in the
    /// record's home place come first; among them, and then among the others, they are
    /// drawn uniformly, like deepstream's shuffled list, or taken in registration order
    /// (see [`shuffle_providers`](Self::shuffle_providers)). A registration that arrived
    /// mid-search is one more candidate.
    fn offer_next(&mut self, name: Arc<str>, search: Option<Search>, out: &mut Actions<C>) {
        let mut search = search.unwrap_or(Search {
            asked: BTreeSet::new(),
            started: self.next_listen,
        });
        let home = self.homes.get(&name).copied().unwrap_or(0);
        let mut candidates: Vec<(C, Arc<str>, ListenId, RegistrationOrder)> = Vec::new();
        let mut home_only = false;
        for (pattern, entry) in &self.patterns {
            if !entry.regex.matches(&name) {
                continue;
            }
            for (&conn, &id) in &entry.listeners {
                if search.asked.contains(&id) {
                    continue;
                }
                let at_home = (self.place_of)(&conn) == home;
                if home_only && !at_home {
                    continue;
                }
                if at_home && !home_only {
                    home_only = true;
                    candidates.retain(|&(c, ..)| (self.place_of)(&c) == home);
                }
                let order = if id < search.started {
                    (false, entry.since, id)
                } else {
                    (true, 0, id)
                };
                candidates.push((conn, pattern.clone(), id, order));
            }
        }
        if candidates.is_empty() {
            self.records.insert(name, RecordState::Idle);
            return;
        }
        let pick = if self.shuffle {
            self.rng.below(candidates.len())
        } else {
            (0..candidates.len())
                .min_by_key(|&i| candidates[i].3)
                .expect("not empty")
        };
        let (conn, pattern, id, _) = candidates.swap_remove(pick);
        search.asked.insert(id);
        let timer = TimerId(self.next_timer);
        self.next_timer += 1;
        self.conn_mut(conn).offered.insert(name.clone());
        let state = RecordState::Offered {
            conn,
            pattern: pattern.clone(),
            timer,
            search,
        };
        self.records.insert(name.clone(), state);
        out.push(ListenAction::Offer {
            conn,
            pattern,
            name,
            timer,
        });
    }

    /// Ends `conn`'s outstanding offer of `name`, leaving the record idle. Returns the
    /// offer's timer and its search, for the caller to continue.
    fn take_offer(&mut self, conn: C, name: &str) -> (TimerId, Search) {
        self.conn_mut(conn).offered.remove(name);
        let slot = self
            .records
            .get_mut(name)
            .expect("offered record is subscribed");
        match std::mem::replace(slot, RecordState::Idle) {
            RecordState::Offered { timer, search, .. } => (timer, search),
            _ => unreachable!("take_offer on a record without an offer"),
        }
    }

    /// `conn` no longer provides `name`: subscribers hear so, then a fresh search starts.
    fn lose_provider(&mut self, conn: C, name: Arc<str>, out: &mut Actions<C>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.provides.remove(&name);
        }
        out.push(ListenAction::ProviderChanged {
            name: name.clone(),
            has_provider: false,
        });
        self.offer_next(name, None, out);
    }

    /// Removes `conn`'s registration of `pattern` (and the pattern, once nobody listens to
    /// it). Returns the pattern's key, or `None` if there was no such registration.
    fn remove_registration(&mut self, conn: C, pattern: &str) -> Option<Arc<str>> {
        let (key, entry) = self.patterns.get_key_value(pattern)?;
        if !entry.listeners.contains_key(&conn) {
            return None;
        }
        let key = key.clone();
        let entry = self.patterns.get_mut(pattern).expect("looked up above");
        entry.listeners.remove(&conn);
        if entry.listeners.is_empty() {
            self.patterns.remove(pattern);
        }
        self.conn_mut(conn).patterns.remove(pattern);
        Some(key)
    }

    /// The records `conn` provides, and those it is being offered, under `pattern`.
    fn names_held_under(&self, conn: C, pattern: &str) -> (Vec<Arc<str>>, Vec<Arc<str>>) {
        let Some(c) = self.conns.get(&conn) else {
            return (Vec::new(), Vec::new());
        };
        let under = |names: &BTreeSet<Arc<str>>| -> Vec<Arc<str>> {
            names
                .iter()
                .filter(|name| match &self.records[*name] {
                    RecordState::Offered { pattern: p, .. }
                    | RecordState::Provided { pattern: p, .. } => **p == *pattern,
                    RecordState::Idle => false,
                })
                .cloned()
                .collect()
        };
        (under(&c.provides), under(&c.offered))
    }

    fn drop_conn_if_empty(&mut self, conn: C) {
        if self.conns.get(&conn).is_some_and(|c| c.patterns.is_empty()) {
            let c = self.conns.remove(&conn).expect("checked above");
            debug_assert!(c.provides.is_empty() && c.offered.is_empty());
        }
    }

    fn conn_mut(&mut self, conn: C) -> &mut ConnEntry {
        self.conns
            .get_mut(&conn)
            .expect("a connection that holds an offer or a record listens to something")
    }

    fn record_key(&self, name: &str) -> Arc<str> {
        self.records
            .get_key_value(name)
            .map(|(k, _)| k.clone())
            .expect("record is subscribed")
    }

    fn pattern_key(&self, pattern: &str) -> Arc<str> {
        self.patterns
            .get_key_value(pattern)
            .map(|(k, _)| k.clone())
            .expect("pattern is registered")
    }
}

#[cfg(test)]
impl<C: Copy + Eq + Hash + Ord + Debug> ListenRegistry<C> {
    /// Panics unless every index agrees with every other and every rule of the module holds.
    pub(crate) fn check_invariants(&self) {
        for (pattern, entry) in &self.patterns {
            assert!(
                !entry.listeners.is_empty(),
                "pattern {pattern:?} kept alive"
            );
            for conn in entry.listeners.keys() {
                assert!(self.conns[conn].patterns.contains(pattern));
            }
        }
        let live = |conn: &C, pattern: &Arc<str>| {
            self.patterns
                .get(pattern)
                .and_then(|e| e.listeners.get(conn))
                .copied()
        };
        for (conn, c) in &self.conns {
            assert!(!c.patterns.is_empty(), "{conn:?} kept alive");
            for p in &c.patterns {
                assert!(live(conn, p).is_some());
            }
            for name in &c.provides {
                assert!(
                    matches!(&self.records[name], RecordState::Provided { conn: x, .. } if x == conn)
                );
            }
            for name in &c.offered {
                assert!(
                    matches!(&self.records[name], RecordState::Offered { conn: x, .. } if x == conn)
                );
            }
        }
        assert!(
            self.homes.keys().eq(self.records.keys()),
            "every subscribed record, and only those, has a home"
        );
        for (name, state) in &self.records {
            match state {
                RecordState::Idle => {}
                RecordState::Offered {
                    conn,
                    pattern,
                    search,
                    ..
                } => {
                    let id = live(conn, pattern).expect("offer to a live registration");
                    assert!(search.asked.contains(&id));
                    assert!(self.patterns[pattern].regex.matches(name));
                    assert!(self.conns[conn].offered.contains(name));
                }
                RecordState::Provided { conn, pattern } => {
                    assert!(live(conn, pattern).is_some(), "provider not listening");
                    assert!(self.patterns[pattern].regex.matches(name));
                    assert!(self.conns[conn].provides.contains(name));
                }
            }
        }
    }

    /// (patterns, connections, subscribed records) held: what must shrink back to nothing.
    pub(crate) fn footprint(&self) -> (usize, usize, usize) {
        (self.patterns.len(), self.conns.len(), self.records.len())
    }
}
