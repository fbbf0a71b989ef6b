//! One test per protocol rule, each walking the message flow a client pair would see.

use std::sync::Arc;

use super::*;

type A = ListenAction<u32>;

fn reg() -> ListenRegistry<u32> {
    let r = ListenRegistry::new(42);
    r.check_invariants();
    r
}

/// The single offer in `actions` (there must be exactly one): (conn, pattern, timer).
fn the_offer(actions: &[A], name: &str) -> (u32, String, TimerId) {
    let offers: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            ListenAction::Offer {
                conn,
                pattern,
                name: n,
                timer,
            } => {
                assert_eq!(&**n, name);
                Some((*conn, pattern.to_string(), *timer))
            }
            _ => None,
        })
        .collect();
    assert_eq!(offers.len(), 1, "{actions:?}");
    offers.into_iter().next().unwrap()
}

fn stop(conn: u32, pattern: &str, name: &str) -> A {
    ListenAction::Stop {
        conn,
        pattern: Arc::from(pattern),
        name: Arc::from(name),
    }
}

fn changed(name: &str, has_provider: bool) -> A {
    ListenAction::ProviderChanged {
        name: Arc::from(name),
        has_provider,
    }
}

fn cancel(timer: TimerId) -> A {
    ListenAction::CancelTimer { timer }
}

fn offer(conn: u32, pattern: &str, name: &str, timer: TimerId) -> A {
    ListenAction::Offer {
        conn,
        pattern: Arc::from(pattern),
        name: Arc::from(name),
        timer,
    }
}

#[test]
fn accept_makes_a_provider_until_the_last_subscriber_leaves() {
    let mut r = reg();
    assert_eq!(r.listen(1, "a/.*").unwrap(), vec![]);
    let out = r.first_subscriber("a/1");
    let (conn, pattern, t) = the_offer(&out, "a/1");
    assert_eq!((conn, pattern.as_str()), (1, "a/.*"));
    assert!(!r.has_provider("a/1"));

    let out = r.accept(1, "a/.*", "a/1");
    assert_eq!(out, vec![cancel(t), changed("a/1", true)]);
    assert!(r.has_provider("a/1"));
    assert_eq!(r.provider("a/1"), Some((1, "a/.*")));
    r.check_invariants();

    // onStop: only the provider hears; there are no subscribers left to tell.
    assert_eq!(r.last_subscriber_left("a/1"), vec![stop(1, "a/.*", "a/1")]);
    assert!(!r.has_provider("a/1"));
    // Answers for a record nobody subscribes to: an accept is told to stop, a reject is moot.
    assert_eq!(r.accept(1, "a/.*", "a/1"), vec![stop(1, "a/.*", "a/1")]);
    assert_eq!(r.reject(1, "a/.*", "a/1"), vec![]);
    assert_eq!(r.footprint(), (1, 1, 0));
    r.check_invariants();
}

#[test]
fn records_without_matching_listeners_wait_quietly() {
    let mut r = reg();
    r.listen(1, "^b/").unwrap();
    assert_eq!(r.first_subscriber("a/1"), vec![]);
    assert_eq!(
        r.first_subscriber("a/1"),
        vec![],
        "a repeated first is a no-op"
    );
    assert_eq!(r.rematch(), vec![]);
    assert_eq!(r.last_subscriber_left("a/1"), vec![]);
    assert_eq!(r.last_subscriber_left("a/1"), vec![]);
    r.check_invariants();
}

#[test]
fn a_new_listener_is_offered_existing_unprovided_subscriptions() {
    let mut r = reg();
    r.first_subscriber("b/1");
    r.first_subscriber("b/2");
    r.first_subscriber("c/1");
    let out = r.listen(1, "b/.*").unwrap();
    let mut names: Vec<_> = out
        .iter()
        .map(|a| match a {
            ListenAction::Offer {
                conn: 1,
                pattern,
                name,
                ..
            } if &**pattern == "b/.*" => name.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    names.sort();
    assert_eq!(names, ["b/1", "b/2"]);

    // Provided records and records being offered are not disturbed by more listeners.
    r.accept(1, "b/.*", "b/1");
    assert_eq!(r.listen(2, "b/.*").unwrap(), vec![]);
    assert_eq!(r.listen(3, "^b").unwrap(), vec![]);
    r.check_invariants();
}

#[test]
fn reject_asks_the_next_candidate_until_none_is_left() {
    let mut r = reg();
    r.listen(1, "a/.*").unwrap();
    r.listen(2, "a/[0-9]").unwrap();
    r.listen(3, "^zz").unwrap();
    let (c1, p1, t1) = the_offer(&r.first_subscriber("a/1"), "a/1");
    let out = r.reject(c1, &p1, "a/1");
    assert_eq!(out[0], cancel(t1));
    let (c2, p2, t2) = the_offer(&out, "a/1");
    assert_ne!(c1, c2);
    assert!([1, 2].contains(&c2));
    r.check_invariants();

    // Every candidate said no: the record is left alone, unprovided.
    assert_eq!(r.reject(c2, &p2, "a/1"), vec![cancel(t2)]);
    assert!(!r.has_provider("a/1"));
    assert_eq!(r.reject(c2, &p2, "a/1"), vec![], "stale reject");
    // Until the periodic rematch, which asks everybody again.
    let (c3, _, _) = the_offer(&r.rematch(), "a/1");
    assert!([1, 2].contains(&c3));
    assert_eq!(r.rematch(), vec![], "a running search is left to run");
    r.check_invariants();
}

#[test]
fn after_all_refused_a_new_listener_restarts_the_search_for_everyone() {
    // Which of the two is asked first is random: over seeds, the earlier refuser is asked
    // again in some runs, as in deepstream.
    let mut firsts = std::collections::BTreeSet::new();
    for seed in 0..32 {
        let mut r = ListenRegistry::new(seed);
        r.listen(1, "a/.*").unwrap();
        let (_, _, t) = the_offer(&r.first_subscriber("a/1"), "a/1");
        assert_eq!(r.reject(1, "a/.*", "a/1"), vec![cancel(t)]);
        assert_eq!(r.listen(3, "nomatch").unwrap(), vec![]);
        let (c, _, _) = the_offer(&r.listen(2, "a/").unwrap(), "a/1");
        firsts.insert(c);
        r.check_invariants();
    }
    assert_eq!(firsts.into_iter().collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn a_listener_joining_mid_search_is_asked_in_that_search() {
    let mut r = reg();
    r.listen(1, "a/.*").unwrap();
    let (_, _, t1) = the_offer(&r.first_subscriber("a/1"), "a/1");
    assert_eq!(r.listen(2, "a/.*").unwrap(), vec![]);
    let out = r.reject(1, "a/.*", "a/1");
    assert_eq!(out[0], cancel(t1));
    assert_eq!(the_offer(&out, "a/1").0, 2);
}

#[test]
fn one_connection_with_two_matching_patterns_is_two_candidates() {
    let mut r = reg();
    r.listen(1, "a/.*").unwrap();
    r.listen(1, "a/[0-9]").unwrap();
    let (c, p1, _) = the_offer(&r.first_subscriber("a/1"), "a/1");
    assert_eq!(c, 1);
    let (c, p2, t2) = the_offer(&r.reject(1, &p1, "a/1"), "a/1");
    assert_eq!(c, 1);
    assert_ne!(p1, p2);
    assert_eq!(r.reject(1, &p2, "a/1"), vec![cancel(t2)]);
}

#[test]
fn only_the_outstanding_offer_can_be_rejected() {
    let mut r = reg();
    r.listen(1, "a/.*").unwrap();
    r.listen(1, "a/[0-9]").unwrap();
    r.listen(2, "a/.*").unwrap();
    let (c, p, t) = the_offer(&r.first_subscriber("a/1"), "a/1");
    let other_pattern = if p == "a/.*" { "a/[0-9]" } else { "a/.*" };
    assert_eq!(r.reject(c, other_pattern, "a/1"), vec![]);
    assert_eq!(r.reject(3 - c, &p, "a/1"), vec![]);
    assert_eq!(r.reject(c, &p, "a/2"), vec![]);
    // Still outstanding: its accept is taken.
    assert_eq!(
        r.accept(c, &p, "a/1"),
        vec![cancel(t), changed("a/1", true)]
    );
}

#[test]
fn a_timeout_tells_the_candidate_and_asks_the_next() {
    let mut r = reg();
    r.listen(1, "a/.*").unwrap();
    r.listen(2, "a/[0-9]").unwrap();
    let (c1, p1, t1) = the_offer(&r.first_subscriber("a/1"), "a/1");
    let out = r.response_timeout("a/1", t1);
    assert_eq!(
        out[0],
        ListenAction::TimedOut {
            conn: c1,
            name: Arc::from("a/1")
        }
    );
    assert!(
        !out.contains(&cancel(t1)),
        "the fired timer needs no cancel"
    );
    let (c2, p2, t2) = the_offer(&out, "a/1");
    assert_ne!(c1, c2);
    // The old timer firing again, or a timer of another record, changes nothing.
    assert_eq!(r.response_timeout("a/1", t1), vec![]);
    assert_eq!(r.response_timeout("b/1", t2), vec![]);

    // The timed-out candidate accepts late: a willing provider beats none, and the
    // candidate being asked now is released.
    assert_eq!(
        r.accept(c1, &p1, "a/1"),
        vec![cancel(t2), changed("a/1", true)]
    );
    assert_eq!(r.provider("a/1"), Some((c1, p1.as_str())));
    // Its own later accept is refused with REMOVED so its onStop runs; a reject is moot.
    assert_eq!(r.accept(c2, &p2, "a/1"), vec![stop(c2, &p2, "a/1")]);
    assert_eq!(r.reject(c2, &p2, "a/1"), vec![]);
    assert_eq!(r.response_timeout("a/1", t2), vec![]);
    r.check_invariants();
}

#[test]
fn the_last_timeout_leaves_the_record_unprovided() {
    let mut r = reg();
    r.listen(1, "a").unwrap();
    let (_, _, t) = the_offer(&r.first_subscriber("a/1"), "a/1");
    assert_eq!(
        r.response_timeout("a/1", t),
        vec![ListenAction::TimedOut {
            conn: 1,
            name: Arc::from("a/1")
        }]
    );
    assert!(!r.has_provider("a/1"));
    // Late, but nobody else wants it: taken.
    assert_eq!(r.accept(1, "a", "a/1"), vec![changed("a/1", true)]);
}

#[test]
fn leaving_during_an_offer_withdraws_it() {
    let mut r = reg();
    r.listen(1, "a/.*").unwrap();
    let (_, _, t) = the_offer(&r.first_subscriber("a/1"), "a/1");
    assert_eq!(r.last_subscriber_left("a/1"), vec![cancel(t)]);
    assert_eq!(r.response_timeout("a/1", t), vec![]);
    // deepstream would make the late accepter provider of a record nobody wants, forever.
    assert_eq!(r.accept(1, "a/.*", "a/1"), vec![stop(1, "a/.*", "a/1")]);
    assert!(!r.has_provider("a/1"));
    assert_eq!(r.footprint(), (1, 1, 0));
    r.check_invariants();
}

#[test]
fn a_provider_that_unlistens_is_stopped_and_replaced() {
    let mut r = reg();
    r.listen(1, "a/.*").unwrap();
    let (_, _, _) = the_offer(&r.first_subscriber("a/1"), "a/1");
    r.accept(1, "a/.*", "a/1");
    assert_eq!(r.listen(2, "a/[0-9]").unwrap(), vec![]);
    let out = r.unlisten(1, "a/.*").unwrap();
    let (c, p, t) = the_offer(&out, "a/1");
    assert_eq!(
        out,
        vec![
            stop(1, "a/.*", "a/1"),
            changed("a/1", false),
            offer(2, "a/[0-9]", "a/1", t)
        ]
    );
    assert_eq!(
        r.accept(c, &p, "a/1"),
        vec![cancel(t), changed("a/1", true)]
    );
    assert_eq!(r.footprint(), (1, 1, 1));
    r.check_invariants();
}

#[test]
fn a_provider_keeps_the_records_of_its_other_patterns_when_unlistening_one() {
    let mut r = reg();
    r.listen(1, "^a").unwrap();
    r.listen(1, "^b").unwrap();
    let (_, _, _) = the_offer(&r.first_subscriber("a/1"), "a/1");
    let (_, _, _) = the_offer(&r.first_subscriber("b/1"), "b/1");
    r.accept(1, "^a", "a/1");
    r.accept(1, "^b", "b/1");
    assert_eq!(
        r.unlisten(1, "^a").unwrap(),
        vec![stop(1, "^a", "a/1"), changed("a/1", false)]
    );
    assert_eq!(r.provider("b/1"), Some((1, "^b")));
    r.check_invariants();
}

#[test]
fn a_provider_that_disconnects_is_replaced_without_messages_to_it() {
    let mut r = reg();
    r.listen(1, "a/.*").unwrap();
    r.listen(1, "a/[0-9]").unwrap();
    let (c, p, _) = the_offer(&r.first_subscriber("a/1"), "a/1");
    assert_eq!(c, 1);
    r.accept(1, &p, "a/1");
    r.listen(2, "a/.*").unwrap();
    let out = r.connection_closed(1);
    // Its second pattern also matches, yet it is not asked again: it is gone.
    let (_, _, t) = the_offer(&out, "a/1");
    assert_eq!(out, vec![changed("a/1", false), offer(2, "a/.*", "a/1", t)]);
    assert_eq!(r.connection_closed(1), vec![]);
    assert_eq!(r.footprint(), (1, 1, 1));
    r.check_invariants();
}

#[test]
fn a_candidate_that_disconnects_or_unlistens_is_skipped_at_once() {
    let mut r = reg();
    r.listen(1, "a/.*").unwrap();
    let (_, _, t1) = the_offer(&r.first_subscriber("a/1"), "a/1");
    r.listen(2, "a/.*").unwrap();
    r.listen(3, "a/.*").unwrap();
    let out = r.connection_closed(1);
    assert_eq!(out[0], cancel(t1));
    let (c, p, t2) = the_offer(&out, "a/1");
    let out = r.unlisten(c, &p).unwrap();
    assert_eq!(out[0], cancel(t2));
    let (c3, p3, _) = the_offer(&out, "a/1");
    assert_ne!(c3, c);
    // The unlistened candidate answers anyway: refused, so its onStop (if any) runs.
    assert_eq!(r.accept(c, &p, "a/1"), vec![stop(c, &p, "a/1")]);
    assert_eq!(r.provider("a/1"), None);
    assert_eq!(r.accept(c3, &p3, "a/1").last(), Some(&changed("a/1", true)));
    r.check_invariants();
}

#[test]
fn accepts_that_cannot_be_taken_are_answered_with_removed() {
    let mut r = reg();
    r.listen(1, "a/.*").unwrap();
    r.listen(2, "^b").unwrap();
    r.first_subscriber("b/1");
    r.first_subscriber("a/1");
    // Not listening at all, or under a pattern that does not match the record.
    assert_eq!(r.accept(9, "a/.*", "a/1"), vec![stop(9, "a/.*", "a/1")]);
    assert_eq!(r.accept(2, "^b", "a/1"), vec![stop(2, "^b", "a/1")]);
    assert_eq!(r.provider("a/1"), None);
    // Provided by someone else.
    r.accept(1, "a/.*", "a/1");
    r.listen(2, "a/").unwrap();
    assert_eq!(r.accept(2, "a/", "a/1"), vec![stop(2, "a/", "a/1")]);
    // The provider itself repeating itself, under any pattern: no REMOVED, since its
    // client keys onStop by record name and would stop providing.
    r.listen(1, "1").unwrap();
    assert_eq!(r.accept(1, "a/.*", "a/1"), vec![]);
    assert_eq!(r.accept(1, "1", "a/1"), vec![]);
    assert_eq!(r.provider("a/1"), Some((1, "a/.*")));
    r.check_invariants();
}

#[test]
fn listen_and_unlisten_errors_change_nothing() {
    let mut r = reg();
    r.first_subscriber("a/1");
    let out = r.listen(1, "a/.*").unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(r.listen(1, "a/.*"), Err(ListenError::AlreadyListening));
    assert_eq!(r.unlisten(1, "b/.*"), Err(ListenError::NotListening));
    assert_eq!(r.unlisten(2, "a/.*"), Err(ListenError::NotListening));
    assert_eq!(r.footprint(), (1, 1, 1));
    // Another connection may listen to the same pattern; the regex is shared.
    assert_eq!(r.listen(2, "a/.*").unwrap(), vec![]);
    assert_eq!(r.footprint(), (1, 2, 1));
    r.unlisten(2, "a/.*").unwrap();
    assert_eq!(r.unlisten(2, "a/.*"), Err(ListenError::NotListening));
    r.check_invariants();
}

#[test]
fn invalid_patterns_are_refused_and_leave_no_trace() {
    let mut r = reg();
    assert!(matches!(
        r.listen(1, "a("),
        Err(ListenError::InvalidPattern(PatternError::Syntax(_)))
    ));
    assert_eq!(
        r.listen(1, "a(?!b)"),
        Err(ListenError::InvalidPattern(PatternError::Unsupported(
            "look-around"
        )))
    );
    assert!(matches!(
        r.listen(1, &"x".repeat(5000)),
        Err(ListenError::InvalidPattern(PatternError::TooLong { .. }))
    ));
    assert_eq!(r.footprint(), (0, 0, 0));
    r.check_invariants();
}

#[test]
fn one_connection_holds_a_bounded_number_of_patterns() {
    let limits = Limits {
        max_patterns_per_connection: 2,
        ..Limits::default()
    };
    let mut r = ListenRegistry::with_limits(1, limits);
    r.listen(1, "a").unwrap();
    r.listen(1, "b").unwrap();
    assert_eq!(r.listen(1, "c"), Err(ListenError::TooManyPatterns(2)));
    r.listen(2, "c").unwrap();
    r.unlisten(1, "a").unwrap();
    r.listen(1, "c").unwrap();
    r.check_invariants();
}

#[test]
fn everything_released_leaves_nothing_behind() {
    let mut r = reg();
    for conn in 0..5 {
        r.listen(conn, "^r/").unwrap();
        r.listen(conn, &format!("/{conn}$")).unwrap();
    }
    for i in 0..20 {
        let name = format!("r/{i}");
        let (conn, pattern, _) = the_offer(&r.first_subscriber(&name), &name);
        if i % 2 == 0 {
            r.accept(conn, &pattern, &name);
        }
    }
    r.check_invariants();
    for i in 0..10 {
        r.last_subscriber_left(&format!("r/{i}"));
    }
    for conn in 0..5 {
        r.connection_closed(conn);
        r.check_invariants();
    }
    for i in 10..20 {
        r.last_subscriber_left(&format!("r/{i}"));
    }
    assert_eq!(r.footprint(), (0, 0, 0));
}

#[test]
fn the_seed_decides_who_is_asked_and_nothing_else_does() {
    let run = |seed: u64| -> Vec<A> {
        let mut r = ListenRegistry::new(seed);
        let mut log = Vec::new();
        for conn in 0..4 {
            log.extend(r.listen(conn, "^item/").unwrap());
        }
        for i in 0..8 {
            log.extend(r.first_subscriber(&format!("item/{i}")));
        }
        log
    };
    assert_eq!(run(5), run(5));
    let firsts: std::collections::BTreeSet<u32> = (0..40)
        .map(|seed| the_offer(&run(seed)[..1], "item/0").0)
        .collect();
    assert_eq!(firsts.len(), 4, "every listener gets chosen for some seed");
}

#[test]
fn a_restored_provider_keeps_its_record_without_a_new_offer() {
    let mut r = reg();
    r.listen(1, "a/.*").unwrap();
    r.listen(2, "a/.*").unwrap();
    let out = r.first_subscriber_provided_by("a/1", 0, 2, "a/.*");
    assert_eq!(out, vec![changed("a/1", true)]);
    assert_eq!(r.provider("a/1"), Some((2, "a/.*")));
    r.check_invariants();
    // It is a provider like any other: onStop when the last subscriber leaves.
    assert_eq!(r.last_subscriber_left("a/1"), vec![stop(2, "a/.*", "a/1")]);
    r.check_invariants();
}

#[test]
fn a_restored_provider_that_no_longer_listens_is_stopped_and_the_record_searched() {
    let mut r = reg();
    r.listen(1, "a/.*").unwrap();
    let out = r.first_subscriber_provided_by("a/1", 0, 2, "a/.*");
    assert_eq!(out[0], stop(2, "a/.*", "a/1"));
    let (conn, _, _) = the_offer(&out[1..], "a/1");
    assert_eq!(conn, 1);
    assert!(!r.has_provider("a/1"));
    r.check_invariants();
}

#[test]
fn a_restored_provider_of_a_record_provided_elsewhere_is_stopped() {
    let mut r = reg();
    r.listen(1, "a/.*").unwrap();
    r.listen(2, "a/.*").unwrap();
    let out = r.first_subscriber_provided_by("a/1", 0, 1, "a/.*");
    assert_eq!(out, vec![changed("a/1", true)]);
    // A second claim on the same record: the first provider stays, the second stops.
    let out = r.first_subscriber_provided_by("a/1", 0, 2, "a/.*");
    assert_eq!(out, vec![stop(2, "a/.*", "a/1")]);
    assert_eq!(r.provider("a/1"), Some((1, "a/.*")));
    r.check_invariants();
}

#[test]
fn a_listen_that_already_provides_takes_its_idle_records_without_offers() {
    let mut r = reg();
    assert_eq!(r.first_subscriber("a/1"), vec![]);
    assert_eq!(r.first_subscriber("a/2"), vec![]);
    let provided = ["a/1"].into_iter().collect();
    let out = r.listen_providing(1, "a/.*", &provided).unwrap();
    assert_eq!(out[0], changed("a/1", true));
    let (conn, _, _) = the_offer(&out[1..], "a/2");
    assert_eq!(conn, 1);
    assert_eq!(r.provider("a/1"), Some((1, "a/.*")));
    r.check_invariants();
}

/// Every conn asked for `name`, in order, when each rejects, starting from `out`.
fn asked_in_turn(r: &mut ListenRegistry<u32>, out: Vec<A>, name: &str) -> Vec<u32> {
    let mut asked = vec![the_offer(&out, name).0];
    let mut out = out;
    loop {
        let (conn, pattern, _) = the_offer(&out, name);
        out = r.reject(conn, &pattern, name);
        r.check_invariants();
        match out.iter().any(|a| matches!(a, ListenAction::Offer { .. })) {
            true => asked.push(the_offer(&out, name).0),
            false => return asked,
        }
    }
}

#[test]
fn without_shuffling_listeners_are_asked_in_deepstreams_registration_order() {
    let mut r = ListenRegistry::new(42).shuffle_providers(false);
    // deepstream's order: patterns in the order first listened to, then each pattern's
    // listeners in the order they registered.
    r.listen(1, "a/.*").unwrap();
    r.listen(2, "a/1|b").unwrap();
    r.listen(3, "a/.*").unwrap();
    r.listen(4, "^a").unwrap();
    let out = r.first_subscriber("a/1");
    assert_eq!(asked_in_turn(&mut r, out, "a/1"), vec![1, 3, 2, 4]);
    // The same in every new search (here, the rematch).
    let out = r.rematch();
    let first = the_offer(&out, "a/1").0;
    assert_eq!(first, 1);
    // Registrations made while a search runs are asked after the others, in the order
    // they came, even under a pattern listened to before.
    r.listen(5, "1$").unwrap();
    r.listen(6, "a/.*").unwrap();
    r.check_invariants();
    assert_eq!(asked_in_turn(&mut r, out, "a/1"), vec![1, 3, 2, 4, 5, 6]);
}

#[test]
fn shuffled_or_not_listeners_where_the_record_was_first_subscribed_are_asked_first() {
    // Connections 1xx are in place 1, 2xx in place 2.
    for shuffle in [true, false] {
        for seed in 0..20 {
            let mut r = ListenRegistry::new(seed)
                .shuffle_providers(shuffle)
                .places(|conn: &u32| u64::from(*conn / 100));
            for conn in [101, 201, 102, 202] {
                r.listen(conn, "a/.*").unwrap();
            }
            let out = r.first_subscriber_at("a/1", 2);
            let asked = asked_in_turn(&mut r, out, "a/1");
            let places: Vec<u32> = asked.iter().map(|c| c / 100).collect();
            assert_eq!(places, vec![2, 2, 1, 1], "shuffle {shuffle}, seed {seed}");
            if !shuffle {
                assert_eq!(asked, vec![201, 202, 101, 102]);
            }
            // When the home place's subscribers have gone and another place's remain,
            // that place's listeners come first.
            r.move_home("a/1", 1);
            let out = r.rematch();
            let asked = asked_in_turn(&mut r, out, "a/1");
            assert_eq!(asked[0] / 100, 1, "shuffle {shuffle}, seed {seed}");
        }
    }
}

#[test]
fn shuffled_candidates_are_drawn_from_all_listeners() {
    // The default shuffles: over a few seeds, every listener is asked first sometimes.
    let mut first = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let mut r = ListenRegistry::new(seed);
        for conn in 1..=4 {
            r.listen(conn, "a/.*").unwrap();
        }
        first.insert(the_offer(&r.first_subscriber("a/1"), "a/1").0);
    }
    assert_eq!(first.into_iter().collect::<Vec<u32>>(), vec![1, 2, 3, 4]);
}
