//! The cluster's one listen registry, kept by the coordinating node (sans-IO).
//!
//! [`ListenRegistry`] thinks in connections and in records that have "a subscriber". Across
//! nodes a connection is an [`Endpoint`] (node, connection), and a record has a subscriber
//! while any node reports one, so the first node to subscribe starts the search and the
//! last to leave fires the provider's `onStop`. A node that goes silent loses its
//! listeners and its subscriptions at once.
//!
//! A record's search asks the listeners on the node that first subscribed before those on
//! other nodes, as deepstream's nodes ask their own listeners first; while that node has
//! no subscriber left, the next subscribing node takes its place.
//!
//! A new coordinator starts empty and rebuilds from each node's [`NodeReport`]. Reports
//! arrive one at a time, so a provider can be reported before any node reports the
//! record's subscriber: such claims wait a few ticks for a subscriber, and are stopped if
//! none comes. Existing providers keep their records instead of being offered them again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use recordsync_core::listen::{ListenAction, ListenError, ListenRegistry, TimerId};

use super::wire::{Endpoint, Input, NodeReport};

/// What the coordinator decides: the registry's actions, and one of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    Registry(ListenAction<Endpoint>),
    /// `node`'s subscribers of `name` have just arrived and the record is provided: tell
    /// them (the registry speaks only when a record's provider changes).
    ProviderKnown {
        node: u64,
        name: Arc<str>,
    },
    /// The coordinator's word, once its registry has settled, on which subscribed records
    /// have a provider (see [`Coordinator::settled`]): every node tells its subscribers
    /// whatever differs from what they last heard.
    Settled {
        provided: Vec<Arc<str>>,
    },
}

pub type Actions = Vec<Directive>;

fn wrap(actions: Vec<ListenAction<Endpoint>>) -> Actions {
    actions.into_iter().map(Directive::Registry).collect()
}

/// How many ticks (heartbeat intervals) a reported provider waits for a subscriber.
const PENDING_TICKS: u64 = 3;

pub struct Coordinator {
    registry: ListenRegistry<Endpoint>,
    /// The nodes on which each record has a subscriber; a record is here while any does.
    /// (A short list: clusters have a handful of nodes, and one node is the common case.)
    subscribed: HashMap<Arc<str>, Vec<u64>>,
    nodes: HashMap<u64, NodeEntry>,
    /// Reported providers of records nobody subscribes to yet.
    pending: BTreeMap<Arc<str>, Pending>,
    tick: u64,
    /// Whether [`settled`](Coordinator::settled) has answered.
    settled: bool,
}

#[derive(Default)]
struct NodeEntry {
    listens: BTreeSet<(u64, Arc<str>)>,
    names: BTreeSet<Arc<str>>,
}

struct Pending {
    endpoint: Endpoint,
    pattern: Arc<str>,
    since: u64,
}

impl Coordinator {
    /// `shuffle`: deepstream's `listen.shuffleProviders`.
    pub fn new(seed: u64, shuffle: bool) -> Self {
        Coordinator {
            registry: ListenRegistry::new(seed)
                .shuffle_providers(shuffle)
                .places(|endpoint| endpoint.node),
            subscribed: HashMap::new(),
            nodes: HashMap::new(),
            pending: BTreeMap::new(),
            tick: 0,
            settled: false,
        }
    }

    /// One input from `node`. LISTEN and UNLISTEN can be refused; the node checked them
    /// before sending, so a refusal here means the two disagree and is only logged.
    pub fn input(&mut self, node: u64, input: Input) -> Result<Actions, ListenError> {
        let ep = |conn| Endpoint { node, conn };
        Ok(match input {
            Input::Listen { conn, pattern } => {
                let out = wrap(self.registry.listen(ep(conn), &pattern)?);
                self.node(node).listens.insert((conn, Arc::from(pattern)));
                out
            }
            Input::Unlisten { conn, pattern } => {
                let out = wrap(self.registry.unlisten(ep(conn), &pattern)?);
                self.node(node)
                    .listens
                    .remove(&(conn, Arc::from(&*pattern)));
                self.pending
                    .retain(|_, p| !(p.endpoint == ep(conn) && *p.pattern == *pattern));
                out
            }
            Input::Accept {
                conn,
                pattern,
                name,
            } => wrap(self.registry.accept(ep(conn), &pattern, &name)),
            Input::Reject {
                conn,
                pattern,
                name,
            } => wrap(self.registry.reject(ep(conn), &pattern, &name)),
            Input::Closed { conn } => self.closed(ep(conn)),
            Input::Subscribed { name } => self.subscribe(node, &name),
            Input::Unsubscribed { name } => self.unsubscribe(node, &name),
        })
    }

    /// `node`'s whole state: what the coordinator knew of it is made to match.
    pub fn report(&mut self, node: u64, report: NodeReport) -> Actions {
        let mut out = Vec::new();
        let ep = |conn| Endpoint { node, conn };
        let listens: BTreeSet<(u64, Arc<str>)> = report
            .listens
            .into_iter()
            .map(|(conn, p)| (conn, Arc::from(p)))
            .collect();
        let known = std::mem::take(&mut self.node(node).listens);

        // Gone first, so that nothing below is offered to a registration that has ended.
        let live_conns: BTreeSet<u64> = listens.iter().map(|(c, _)| *c).collect();
        let mut closed = BTreeSet::new();
        for (conn, pattern) in known.difference(&listens) {
            if !live_conns.contains(conn) {
                if closed.insert(*conn) {
                    out.extend(self.closed(ep(*conn)));
                }
            } else if let Ok(actions) = self.registry.unlisten(ep(*conn), pattern) {
                out.extend(wrap(actions));
            }
        }

        // New registrations take the idle records they already provide, without offers.
        for (conn, pattern) in listens.difference(&known) {
            let provided: BTreeSet<&str> = report
                .provides
                .iter()
                .filter(|(c, p, _)| c == conn && **p == **pattern)
                .map(|(_, _, name)| name.as_str())
                .collect();
            match self
                .registry
                .listen_providing(ep(*conn), pattern, &provided)
            {
                Ok(actions) => out.extend(wrap(actions)),
                Err(e) => tracing::warn!(%pattern, "a reported LISTEN was refused: {e}"),
            }
        }
        self.node(node).listens = listens;

        // Claims on records subscribed somewhere: kept, or stopped if another provides.
        // Claims on records nobody subscribes to yet wait for their subscriber.
        for (conn, pattern, name) in &report.provides {
            let claim = ep(*conn);
            if self.subscribed.contains_key(name.as_str()) {
                out.extend(wrap(self.registry.accept(claim, pattern, name)));
            } else if self
                .pending
                .get(name.as_str())
                .is_some_and(|p| p.endpoint != claim)
            {
                // Another node's claim on the record waits already: one provider.
                out.push(stop(claim, pattern, name));
            } else {
                let pending = Pending {
                    endpoint: claim,
                    pattern: Arc::from(pattern.as_str()),
                    since: self.tick,
                };
                self.pending.insert(Arc::from(name.as_str()), pending);
            }
        }

        let names: BTreeSet<Arc<str>> = report
            .subscribed
            .iter()
            .map(|n| Arc::from(n.as_str()))
            .collect();
        let known = self.node(node).names.clone();
        for name in names.difference(&known) {
            out.extend(self.subscribe(node, name));
        }
        for name in known.difference(&names) {
            out.extend(self.unsubscribe(node, name));
        }
        out
    }

    /// `node` is gone: its listeners and its subscriptions with it.
    pub fn node_gone(&mut self, node: u64) -> Actions {
        let Some(entry) = self.nodes.remove(&node) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let conns: BTreeSet<u64> = entry.listens.iter().map(|(c, _)| *c).collect();
        for conn in conns {
            out.extend(wrap(
                self.registry.connection_closed(Endpoint { node, conn }),
            ));
        }
        self.pending.retain(|_, p| p.endpoint.node != node);
        // Re-inserted so that `unsubscribe` finds the names; removed again below.
        self.nodes.insert(
            node,
            NodeEntry {
                listens: BTreeSet::new(),
                names: entry.names.clone(),
            },
        );
        for name in &entry.names {
            out.extend(self.unsubscribe(node, name));
        }
        self.nodes.remove(&node);
        out
    }

    /// Called once per heartbeat interval: reported providers whose record found no
    /// subscriber in time are told to stop.
    pub fn tick(&mut self) -> Actions {
        self.tick += 1;
        let now = self.tick;
        let expired: Vec<Arc<str>> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.since) >= PENDING_TICKS)
            .map(|(name, _)| name.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|name| {
                let p = self.pending.remove(&name)?;
                Some(stop(p.endpoint, &p.pattern, &name))
            })
            .collect()
    }

    /// Once, when every node has had time to report to this new coordinator: the
    /// subscribed records that have a provider. Each node tells its subscribers whatever
    /// differs from what they last heard, which repairs what the change of coordinator
    /// lost (a provider that vanished with the old coordinator's registry, say).
    pub fn settled(&mut self) -> Option<Vec<Arc<str>>> {
        if self.settled || self.tick < PENDING_TICKS {
            return None;
        }
        self.settled = true;
        let provided = self
            .subscribed
            .keys()
            .filter(|name| self.registry.has_provider(name))
            .cloned()
            .collect();
        Some(provided)
    }

    pub fn response_timeout(&mut self, name: &str, timer: TimerId) -> Actions {
        wrap(self.registry.response_timeout(name, timer))
    }

    pub fn rematch(&mut self) -> Actions {
        wrap(self.registry.rematch())
    }

    fn closed(&mut self, ep: Endpoint) -> Actions {
        if let Some(entry) = self.nodes.get_mut(&ep.node) {
            entry.listens.retain(|(c, _)| *c != ep.conn);
        }
        self.pending.retain(|_, p| p.endpoint != ep);
        wrap(self.registry.connection_closed(ep))
    }

    fn subscribe(&mut self, node: u64, name: &str) -> Actions {
        let name: Arc<str> = match self.subscribed.get_key_value(name) {
            Some((key, _)) => key.clone(),
            None => Arc::from(name),
        };
        self.node(node).names.insert(name.clone());
        let nodes = self.subscribed.entry(name.clone()).or_default();
        let first = nodes.is_empty();
        let added = !nodes.contains(&node);
        if added {
            nodes.push(node);
        }
        if !first {
            return if added && self.registry.has_provider(&name) {
                vec![Directive::ProviderKnown { node, name }]
            } else {
                Vec::new()
            };
        }
        match self.pending.remove(&name) {
            Some(p) => wrap(
                self.registry
                    .first_subscriber_provided_by(&name, node, p.endpoint, &p.pattern),
            ),
            None => wrap(self.registry.first_subscriber_at(&name, node)),
        }
    }

    fn unsubscribe(&mut self, node: u64, name: &str) -> Actions {
        if let Some(entry) = self.nodes.get_mut(&node) {
            entry.names.remove(name);
        }
        let Some(nodes) = self.subscribed.get_mut(name) else {
            return Vec::new();
        };
        let was_home = nodes.first() == Some(&node);
        nodes.retain(|n| *n != node);
        if let Some(&next) = nodes.first() {
            if was_home {
                self.registry.move_home(name, next);
            }
            return Vec::new();
        }
        self.subscribed.remove(name);
        wrap(self.registry.last_subscriber_left(name))
    }

    fn node(&mut self, node: u64) -> &mut NodeEntry {
        self.nodes.entry(node).or_default()
    }
}

fn stop(endpoint: Endpoint, pattern: &str, name: &str) -> Directive {
    Directive::Registry(ListenAction::Stop {
        conn: endpoint,
        pattern: Arc::from(pattern),
        name: Arc::from(name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 1;
    const B: u64 = 2;
    const C: u64 = 3;

    fn ep(node: u64, conn: u64) -> Endpoint {
        Endpoint { node, conn }
    }

    fn listen(c: &mut Coordinator, node: u64, conn: u64, pattern: &str) -> Actions {
        let input = Input::Listen {
            conn,
            pattern: pattern.into(),
        };
        c.input(node, input).unwrap()
    }

    fn subscribed(c: &mut Coordinator, node: u64, name: &str) -> Actions {
        c.input(node, Input::Subscribed { name: name.into() })
            .unwrap()
    }

    fn unsubscribed(c: &mut Coordinator, node: u64, name: &str) -> Actions {
        c.input(node, Input::Unsubscribed { name: name.into() })
            .unwrap()
    }

    fn accept(c: &mut Coordinator, node: u64, conn: u64, pattern: &str, name: &str) -> Actions {
        let input = Input::Accept {
            conn,
            pattern: pattern.into(),
            name: name.into(),
        };
        c.input(node, input).unwrap()
    }

    /// The endpoints offered `name` in `actions`.
    fn offered(actions: &Actions, name: &str) -> Vec<Endpoint> {
        actions
            .iter()
            .filter_map(|d| match d {
                Directive::Registry(ListenAction::Offer { conn, name: n, .. }) if &**n == name => {
                    Some(*conn)
                }
                _ => None,
            })
            .collect()
    }

    fn stops(actions: &Actions) -> Vec<(Endpoint, String)> {
        actions
            .iter()
            .filter_map(|d| match d {
                Directive::Registry(ListenAction::Stop { conn, name, .. }) => {
                    Some((*conn, name.to_string()))
                }
                _ => None,
            })
            .collect()
    }

    fn changed(actions: &Actions, name: &str) -> Vec<bool> {
        actions
            .iter()
            .filter_map(|d| match d {
                Directive::Registry(ListenAction::ProviderChanged {
                    name: n,
                    has_provider,
                }) if &**n == name => Some(*has_provider),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_provider_on_one_node_is_offered_a_subscription_made_on_another() {
        let mut c = Coordinator::new(7, true);
        assert!(listen(&mut c, A, 10, "a/.*").is_empty());
        let out = subscribed(&mut c, B, "a/1");
        assert_eq!(offered(&out, "a/1"), vec![ep(A, 10)]);
        let out = accept(&mut c, A, 10, "a/.*", "a/1");
        assert_eq!(changed(&out, "a/1"), vec![true]);
    }

    #[test]
    fn on_stop_fires_when_the_last_subscriber_anywhere_leaves() {
        let mut c = Coordinator::new(7, true);
        listen(&mut c, A, 10, "a/.*");
        subscribed(&mut c, B, "a/1");
        accept(&mut c, A, 10, "a/.*", "a/1");
        let out = subscribed(&mut c, C, "a/1");
        assert_eq!(
            out,
            vec![Directive::ProviderKnown {
                node: C,
                name: Arc::from("a/1")
            }],
            "C's subscribers learn of the provider; nobody is offered anything"
        );
        assert!(
            unsubscribed(&mut c, B, "a/1").is_empty(),
            "C still subscribes"
        );
        let out = unsubscribed(&mut c, C, "a/1");
        assert_eq!(stops(&out), vec![(ep(A, 10), "a/1".into())]);
    }

    #[test]
    fn one_provider_per_record_across_the_cluster() {
        let mut c = Coordinator::new(7, true);
        listen(&mut c, A, 10, "a/.*");
        listen(&mut c, C, 30, "a/.*");
        let out = subscribed(&mut c, B, "a/1");
        let first = offered(&out, "a/1");
        assert_eq!(first.len(), 1);
        let first = first[0];
        let other = if first == ep(A, 10) {
            ep(C, 30)
        } else {
            ep(A, 10)
        };
        accept(&mut c, first.node, first.conn, "a/.*", "a/1");
        // A late accept from the other listener is turned down.
        let out = accept(&mut c, other.node, other.conn, "a/.*", "a/1");
        assert_eq!(stops(&out), vec![(other, "a/1".into())]);
    }

    #[test]
    fn a_node_that_goes_silent_loses_its_providers_and_its_subscriptions() {
        let mut c = Coordinator::new(7, true);
        listen(&mut c, A, 10, "a/.*");
        listen(&mut c, C, 30, "a/.*");
        subscribed(&mut c, B, "a/1");
        // Whoever was offered accepts.
        let provider = {
            let out = accept(&mut c, A, 10, "a/.*", "a/1");
            if changed(&out, "a/1") == vec![true] {
                ep(A, 10)
            } else {
                accept(&mut c, C, 30, "a/.*", "a/1");
                ep(C, 30)
            }
        };
        let survivor = if provider.node == A {
            ep(C, 30)
        } else {
            ep(A, 10)
        };
        let out = c.node_gone(provider.node);
        assert_eq!(changed(&out, "a/1"), vec![false]);
        assert_eq!(offered(&out, "a/1"), vec![survivor]);
        accept(&mut c, survivor.node, survivor.conn, "a/.*", "a/1");
        // The subscribing node goes: the surviving provider's onStop.
        let out = c.node_gone(B);
        assert_eq!(stops(&out), vec![(survivor, "a/1".into())]);
    }

    fn report(
        listens: &[(u64, &str)],
        provides: &[(u64, &str, &str)],
        subscribed: &[&str],
    ) -> NodeReport {
        NodeReport {
            listens: listens.iter().map(|(c, p)| (*c, p.to_string())).collect(),
            provides: provides
                .iter()
                .map(|(c, p, n)| (*c, p.to_string(), n.to_string()))
                .collect(),
            subscribed: subscribed.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_new_coordinator_keeps_existing_providers_whatever_order_reports_come_in() {
        for provider_first in [true, false] {
            let mut c = Coordinator::new(7, true);
            let providers = report(&[(10, "a/.*")], &[(10, "a/.*", "a/1")], &[]);
            let subscribers = report(&[], &[], &["a/1"]);
            let mut out = Vec::new();
            if provider_first {
                out.extend(c.report(A, providers));
                out.extend(c.report(B, subscribers));
            } else {
                out.extend(c.report(B, subscribers));
                out.extend(c.report(A, providers));
            }
            assert!(offered(&out, "a/1").is_empty(), "{out:?}");
            assert!(stops(&out).is_empty(), "{out:?}");
            assert_eq!(changed(&out, "a/1"), vec![true]);
            // And it is a provider: onStop when the subscriber goes.
            let out = unsubscribed(&mut c, B, "a/1");
            assert_eq!(stops(&out), vec![(ep(A, 10), "a/1".into())]);
        }
    }

    #[test]
    fn a_second_claim_on_a_record_is_stopped() {
        let mut c = Coordinator::new(7, true);
        c.report(A, report(&[(10, "a/.*")], &[(10, "a/.*", "a/1")], &[]));
        let out = c.report(C, report(&[(30, "a/.*")], &[(30, "a/.*", "a/1")], &[]));
        assert_eq!(stops(&out), vec![(ep(C, 30), "a/1".into())]);
        let out = c.report(B, report(&[], &[], &["a/1"]));
        assert_eq!(changed(&out, "a/1"), vec![true]);
        assert!(offered(&out, "a/1").is_empty());
    }

    #[test]
    fn a_claim_on_a_record_nobody_subscribes_to_is_stopped_after_a_few_ticks() {
        let mut c = Coordinator::new(7, true);
        c.report(A, report(&[(10, "a/.*")], &[(10, "a/.*", "a/1")], &[]));
        for _ in 1..PENDING_TICKS {
            assert!(c.tick().is_empty());
        }
        assert_eq!(stops(&c.tick()), vec![(ep(A, 10), "a/1".into())]);
    }

    #[test]
    fn once_settled_the_coordinator_states_which_records_have_providers() {
        let mut c = Coordinator::new(7, true);
        c.report(
            A,
            report(&[(10, "a/.*")], &[(10, "a/.*", "a/1")], &["a/1", "a/2"]),
        );
        assert_eq!(c.settled(), None, "nodes are still reporting");
        for _ in 0..PENDING_TICKS {
            c.tick();
        }
        let provided = c.settled().expect("settled");
        assert_eq!(provided, vec![Arc::<str>::from("a/1")]);
        assert_eq!(c.settled(), None, "said once");
    }

    #[test]
    fn reports_are_idempotent_and_reconcile_what_changed() {
        let mut c = Coordinator::new(7, true);
        let r = report(&[(10, "a/.*")], &[], &["a/1"]);
        let out = c.report(A, r.clone());
        assert_eq!(offered(&out, "a/1"), vec![ep(A, 10)]);
        accept(&mut c, A, 10, "a/.*", "a/1");
        let again = report(&[(10, "a/.*")], &[(10, "a/.*", "a/1")], &["a/1"]);
        assert!(c.report(A, again).is_empty(), "nothing changed");
        // The connection is gone and so is the subscription.
        let out = c.report(A, report(&[], &[], &[]));
        assert_eq!(changed(&out, "a/1"), vec![false]);
        assert!(offered(&out, "a/1").is_empty());
        assert!(
            subscribed(&mut c, B, "a/1").is_empty(),
            "nobody listens any more"
        );
    }
}
