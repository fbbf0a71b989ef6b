//! Random input sequences against the registry, checked by a harness that carries out the
//! actions the way the runtime would (timers, subscribers' has-provider flags) and by the
//! registry's own consistency checks.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

const SLOTS: usize = 4;
const PATTERNS: [&str; 7] = ["a/.*", "a/[0-9]", "^b", "1$", ".", "^zz$", "x("];
const NAMES: [&str; 6] = ["a/1", "a/x", "b/1", "ba", "c1", "zz"];

#[derive(Debug, Clone)]
enum Op {
    Listen(usize, usize),
    Unlisten(usize, usize),
    Subscribe(usize),
    Unsubscribe(usize),
    /// Any connection accepting anything, solicited or not.
    Accept(usize, usize, usize),
    Reject(usize, usize, usize),
    /// The connection holding the outstanding offer for a record answers it.
    Answer(usize, bool),
    /// An armed timer fires.
    Fire(usize),
    /// A cancelled or already fired timer fires anyway (the async race).
    FireStale(usize),
    Close(usize),
    Rematch,
}

fn op() -> impl Strategy<Value = Op> {
    let (s, p, n) = (0..SLOTS, 0..PATTERNS.len(), 0..NAMES.len());
    prop_oneof![
        3 => (s.clone(), p.clone()).prop_map(|(s, p)| Op::Listen(s, p)),
        1 => (s.clone(), p.clone()).prop_map(|(s, p)| Op::Unlisten(s, p)),
        3 => n.clone().prop_map(Op::Subscribe),
        2 => n.clone().prop_map(Op::Unsubscribe),
        1 => (s.clone(), p.clone(), n.clone()).prop_map(|(s, p, n)| Op::Accept(s, p, n)),
        1 => (s.clone(), p, n.clone()).prop_map(|(s, p, n)| Op::Reject(s, p, n)),
        4 => (n, any::<bool>()).prop_map(|(n, a)| Op::Answer(n, a)),
        2 => any::<usize>().prop_map(Op::Fire),
        1 => any::<usize>().prop_map(Op::FireStale),
        1 => s.prop_map(Op::Close),
        1 => Just(Op::Rematch),
    ]
}

/// What the runtime would know, rebuilt from the actions alone.
#[derive(Default)]
struct Harness {
    /// Connection id of each slot: a closed connection's slot gets a fresh id.
    generation: [u32; SLOTS],
    closed: BTreeSet<u32>,
    listens: BTreeSet<(u32, usize)>,
    subscribed: BTreeSet<&'static str>,
    /// Outstanding offer per record: (conn, pattern, timer).
    offers: BTreeMap<String, (u32, String, TimerId)>,
    armed: BTreeMap<TimerId, String>,
    spent: Vec<(TimerId, String)>,
    /// What subscribers were last told, per subscribed record.
    told_has_provider: BTreeMap<String, bool>,
    log: Vec<ListenAction<u32>>,
}

impl Harness {
    fn conn(&self, slot: usize) -> u32 {
        slot as u32 * 1000 + self.generation[slot]
    }

    fn carry_out(&mut self, actions: Vec<ListenAction<u32>>) {
        for action in actions {
            match &action {
                ListenAction::Offer {
                    conn,
                    pattern,
                    name,
                    timer,
                } => {
                    assert!(!self.closed.contains(conn), "offer to closed {conn}");
                    assert!(self.subscribed.contains(&**name), "offer of unsubscribed");
                    let p = PATTERNS.iter().position(|p| **p == **pattern).unwrap();
                    assert!(
                        self.listens.contains(&(*conn, p)),
                        "offer to a non-listener"
                    );
                    let previous = self
                        .offers
                        .insert(name.to_string(), (*conn, pattern.to_string(), *timer));
                    assert!(previous.is_none(), "two outstanding offers for {name}");
                    assert!(
                        !self.told_has_provider[&**name],
                        "offer of a provided record"
                    );
                    assert!(self.armed.insert(*timer, name.to_string()).is_none());
                }
                ListenAction::CancelTimer { timer } => {
                    let name = self
                        .armed
                        .remove(timer)
                        .expect("cancel of an unarmed timer");
                    let (_, _, t) = self.offers.remove(&name).expect("offer behind timer");
                    assert_eq!(t, *timer);
                    self.spent.push((*timer, name));
                }
                ListenAction::TimedOut { conn, name } => {
                    assert!(!self.closed.contains(conn));
                    assert!(!self.offers.contains_key(&**name), "fired offer still open");
                }
                ListenAction::Stop { conn, .. } => {
                    assert!(!self.closed.contains(conn), "REMOVED to closed {conn}");
                }
                ListenAction::ProviderChanged { name, has_provider } => {
                    let told = self
                        .told_has_provider
                        .get_mut(&**name)
                        .expect("provider news for a record nobody subscribes to");
                    assert_ne!(*told, *has_provider, "repeated provider news");
                    *told = *has_provider;
                }
            }
            self.log.push(action);
        }
    }

    fn step(&mut self, r: &mut ListenRegistry<u32>, op: &Op) {
        match *op {
            Op::Listen(s, p) => {
                let conn = self.conn(s);
                match r.listen(conn, PATTERNS[p]) {
                    Ok(actions) => {
                        assert!(self.listens.insert((conn, p)));
                        self.carry_out(actions);
                    }
                    Err(ListenError::AlreadyListening) => {
                        assert!(self.listens.contains(&(conn, p)))
                    }
                    Err(ListenError::InvalidPattern(_)) => assert_eq!(PATTERNS[p], "x("),
                    Err(e) => panic!("{e}"),
                }
            }
            Op::Unlisten(s, p) => {
                let conn = self.conn(s);
                match r.unlisten(conn, PATTERNS[p]) {
                    Ok(actions) => {
                        assert!(self.listens.remove(&(conn, p)));
                        self.carry_out(actions);
                    }
                    Err(ListenError::NotListening) => {
                        assert!(!self.listens.contains(&(conn, p)))
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            Op::Subscribe(n) => {
                if self.subscribed.insert(NAMES[n]) {
                    self.told_has_provider.insert(NAMES[n].to_string(), false);
                    let actions = r.first_subscriber(NAMES[n]);
                    self.carry_out(actions);
                }
            }
            Op::Unsubscribe(n) => {
                if self.subscribed.remove(NAMES[n]) {
                    self.told_has_provider.remove(NAMES[n]);
                    let actions = r.last_subscriber_left(NAMES[n]);
                    self.carry_out(actions);
                }
            }
            Op::Accept(s, p, n) => {
                let actions = r.accept(self.conn(s), PATTERNS[p], NAMES[n]);
                self.carry_out(actions);
            }
            Op::Reject(s, p, n) => {
                let actions = r.reject(self.conn(s), PATTERNS[p], NAMES[n]);
                self.carry_out(actions);
            }
            Op::Answer(n, accept) => {
                if let Some((conn, pattern, _)) = self.offers.get(NAMES[n]).cloned() {
                    let actions = if accept {
                        r.accept(conn, &pattern, NAMES[n])
                    } else {
                        r.reject(conn, &pattern, NAMES[n])
                    };
                    assert!(!actions.is_empty(), "the outstanding offer's answer counts");
                    self.carry_out(actions);
                    if accept {
                        assert_eq!(r.provider(NAMES[n]), Some((conn, pattern.as_str())));
                    }
                }
            }
            Op::Fire(i) => {
                if let Some((&timer, name)) = self.armed.iter().nth(i % self.armed.len().max(1)) {
                    let name = name.clone();
                    self.armed.remove(&timer);
                    let (conn, _, _) = self.offers.remove(&name).unwrap();
                    self.spent.push((timer, name.clone()));
                    let actions = r.response_timeout(&name, timer);
                    assert_eq!(
                        actions.first(),
                        Some(&ListenAction::TimedOut {
                            conn,
                            name: name.as_str().into()
                        })
                    );
                    self.carry_out(actions);
                }
            }
            Op::FireStale(i) => {
                if !self.spent.is_empty() {
                    let (timer, name) = self.spent[i % self.spent.len()].clone();
                    assert_eq!(r.response_timeout(&name, timer), vec![]);
                }
            }
            Op::Close(s) => {
                let conn = self.conn(s);
                self.closed.insert(conn);
                self.generation[s] += 1;
                self.listens.retain(|(c, _)| *c != conn);
                let actions = r.connection_closed(conn);
                self.carry_out(actions);
            }
            Op::Rematch => {
                let actions = r.rematch();
                self.carry_out(actions);
            }
        }
    }

    /// The rules that must hold between any two inputs.
    fn check(&self, r: &ListenRegistry<u32>) {
        r.check_invariants();
        for name in NAMES {
            let subscribed = self.subscribed.contains(name);
            let has = r.has_provider(name);
            assert!(subscribed || !has, "{name} provided with no subscribers");
            if subscribed {
                assert_eq!(
                    self.told_has_provider[name], has,
                    "{name}: subscribers misled"
                );
            }
            assert!(
                !(has && self.offers.contains_key(name)),
                "offer of provided {name}"
            );
            if let Some((conn, pattern)) = r.provider(name) {
                assert!(!self.closed.contains(&conn));
                let p = PATTERNS.iter().position(|p| *p == pattern).unwrap();
                assert!(self.listens.contains(&(conn, p)), "provider not listening");
                let regex = ListenPattern::compile(pattern, PatternLimits::default()).unwrap();
                assert!(regex.matches(name), "provider's pattern does not match");
            }
        }
        assert_eq!(self.armed.len(), self.offers.len());
    }
}

fn run(seed: u64, ops: &[Op]) -> Vec<ListenAction<u32>> {
    let mut r = ListenRegistry::new(seed);
    let mut h = Harness::default();
    for op in ops {
        h.step(&mut r, op);
        h.check(&r);
    }
    // Tear everything down: nothing may be left, no timer left armed.
    for s in 0..SLOTS {
        h.step(&mut r, &Op::Close(s));
        h.check(&r);
    }
    for n in 0..NAMES.len() {
        h.step(&mut r, &Op::Unsubscribe(n));
    }
    assert!(h.armed.is_empty(), "timers left armed: {:?}", h.armed);
    assert_eq!(r.footprint(), (0, 0, 0));
    h.log
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_inputs_keep_every_rule(seed in any::<u64>(), ops in prop::collection::vec(op(), 0..120)) {
        let log = run(seed, &ops);
        prop_assert_eq!(log, run(seed, &ops), "same seed and inputs, same actions");
    }
}
