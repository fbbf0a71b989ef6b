//! The client against recordsync and against the real deepstream 7 server: every
//! scenario here runs, unchanged, against both (`<scenario>::recordsync` and
//! `<scenario>::deepstream`).

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[macro_use]
mod support;

use std::time::Duration;

use serde_json::{Value, json};

use recordsync_client::{
    Client, ConnectError, ConnectionState, Error, MergeStrategy, Reconnect, Record, StopReason, uid,
};
use support::{Proxy, TestServer, client, next, options, state, until, within};

fn unique(prefix: &str) -> String {
    format!("{prefix}/{}", uid())
}

async fn ready(record: &Record) {
    within(&format!("{} ready", record.name()), record.when_ready())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", record.name()));
}

/// Waits until the record's subscription shows `expected` at `path`.
async fn sees(record: &Record, path: &str, expected: Value) {
    let mut values = record.subscribe(path).expect("subscribe");
    let what = format!("{}.{path} == {expected}", record.name());
    until(&what, &mut values, |v| *v == expected).await;
}

// ----- records --------------------------------------------------------------------------

async fn records_sync_between_clients(server: &TestServer) {
    let name = unique("sync");
    let a = server.client().await;
    let b = server.client().await;
    let ra = a.record(&name);
    ready(&ra).await;
    assert_eq!(ra.get(""), Some(json!({})), "a new record is {{}}");
    assert_eq!(
        ra.version(),
        Some(0),
        "a record created by subscribing is version 0"
    );

    let rb = b.record(&name);
    let mut whole = rb.subscribe("").unwrap();
    let mut color = rb.subscribe("pets[1].fur.color").unwrap();
    assert_eq!(next("b's first value", &mut whole).await, json!({}));
    assert_eq!(next("b's first color", &mut color).await, Value::Null);

    ra.set("pets[1].fur.color", "brown").unwrap();
    assert_eq!(
        ra.get("pets[1].fur.color"),
        Some(json!("brown")),
        "local at once"
    );
    assert_eq!(next("the color", &mut color).await, json!("brown"));
    assert_eq!(
        next("the whole value", &mut whole).await,
        json!({"pets": [null, {"fur": {"color": "brown"}}]}),
        "setting a path creates arrays and objects on the way"
    );

    within("a's ack", ra.set_with_ack("", json!({"a": 1})))
        .await
        .unwrap();
    assert_eq!(
        next("the replaced value", &mut whole).await,
        json!({"a": 1})
    );
    assert_eq!(next("the color gone", &mut color).await, Value::Null);

    // And back: b writes, a sees.
    let mut a_values = ra.subscribe("").unwrap();
    within("b's ack", rb.set_with_ack("b", json!([1, 2])))
        .await
        .unwrap();
    until("a sees b's write", &mut a_values, |v| {
        *v == json!({"a": 1, "b": [1, 2]})
    })
    .await;
    ra.erase("a").unwrap();
    until("b sees the erase", &mut whole, |v| {
        *v == json!({"b": [1, 2]})
    })
    .await;
    assert_eq!(ra.version(), Some(4));
    assert_eq!(rb.version(), Some(4));
    assert_eq!(rb.get_as::<Vec<i32>>("b").unwrap(), Some(vec![1, 2]));
}
both!(records_sync, records_sync_between_clients);

async fn one_off_requests(server: &TestServer) {
    let name = unique("oneoff");
    let c = server.client().await;
    assert!(!c.has(&name).await.unwrap());
    assert_eq!(c.head(&name).await.unwrap(), None);
    assert_eq!(
        c.snapshot(&name).await,
        Err(Error::NotFound { name: name.clone() })
    );
    assert!(!c.has(&name).await.unwrap(), "reading does not create");

    c.set_data_with_ack(&name, "", json!({"x": 1}))
        .await
        .unwrap();
    assert!(c.has(&name).await.unwrap());
    assert_eq!(
        c.head(&name).await.unwrap(),
        Some(1),
        "a record created by set_data starts at version 1"
    );
    c.set_data_with_ack(&name, "y.z", true).await.unwrap();
    let snapshot = c.snapshot(&name).await.unwrap();
    assert_eq!(snapshot.version, 2);
    assert_eq!(snapshot.data, json!({"x": 1, "y": {"z": true}}));

    // Without an ack, and seen by a subscriber.
    let record = c.record(&name);
    c.set_data(&name, "x", 5).unwrap();
    sees(&record, "x", json!(5)).await;

    // Mistakes are caught before anything is sent.
    assert!(matches!(
        c.set_data(&name, "", 5),
        Err(Error::InvalidValue { .. })
    ));
    assert!(matches!(
        record.set("a[", 1),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(record.erase(""), Err(Error::InvalidPath { .. })));
}
both!(one_off, one_off_requests);

async fn delete_notifies_every_holder(server: &TestServer) {
    let name = unique("delete");
    let a = server.client().await;
    let b = server.client().await;
    let ra = a.record(&name);
    ready(&ra).await;
    ra.set_with_ack("doomed", true).await.unwrap();
    let rb = b.record(&name);
    ready(&rb).await;
    let mut b_values = rb.subscribe("").unwrap();
    until("b's value", &mut b_values, |v| {
        *v == json!({"doomed": true})
    })
    .await;

    within("delete", ra.delete()).await.unwrap();
    within("b's delete event", rb.deleted()).await;
    within("a's own delete event", ra.deleted()).await;
    assert!(rb.is_deleted());
    assert_eq!(
        within("b's stream to end", b_values.next()).await,
        None,
        "subscriptions end"
    );
    assert!(!a.has(&name).await.unwrap());
    assert!(matches!(ra.set("x", 1), Err(Error::Deleted { .. })));

    // Deleting without holding the record.
    let other = unique("delete");
    a.set_data_with_ack(&other, "", json!({})).await.unwrap();
    a.delete(&other).await.unwrap();
    assert!(!b.has(&other).await.unwrap());
}
both!(delete, delete_notifies_every_holder);

async fn lists_hold_record_names(server: &TestServer) {
    let name = unique("list");
    let a = server.client().await;
    let b = server.client().await;
    let la = a.list(&name);
    within("list ready", la.when_ready()).await.unwrap();
    assert!(la.is_empty(), "a new list is empty");
    la.set_entries_with_ack(&["x", "y"]).await.unwrap();

    let lb = b.list(&name);
    let mut entries = lb.subscribe().unwrap();
    assert_eq!(next("b's entries", &mut entries).await, vec!["x", "y"]);
    la.add_entry("z", None).unwrap();
    la.add_entry("w", Some(0)).unwrap();
    la.remove_entry("x").unwrap();
    until("b sees the edits", &mut entries, |e| {
        *e == vec!["w", "y", "z"]
    })
    .await;
    lb.remove_at(1).unwrap();
    let mut a_entries = la.subscribe().unwrap();
    until("a sees b's edit", &mut a_entries, |e| *e == vec!["w", "z"]).await;
    assert_eq!(
        a.snapshot(&name).await.unwrap().data,
        json!(["w", "z"]),
        "stored as a JSON array of names"
    );
}
both!(lists, lists_hold_record_names);

// ----- reference counting ---------------------------------------------------------------

/// Messages to the server are handled in order, so after a round trip by `subscriber`
/// and then one by `provider`, the provider has received anything the server sent it
/// because of what the subscriber did before.
async fn round_trips(subscriber: &Client, provider: &Client) {
    subscriber.head("round/trip").await.unwrap();
    provider.head("round/trip").await.unwrap();
}

async fn handles_share_one_subscription(server: &TestServer) {
    let id = uid();
    let name = format!("refs/{id}/r");
    let provider = server.client().await;
    let mut listening = provider.listen(&format!("^refs/{id}/.*")).await.unwrap();
    let c = server.client().await;

    let first = c.record(&name);
    let second = c.record(&name);
    let third = first.clone();
    ready(&first).await;
    assert!(second.is_ready(), "one record underneath");
    let offer = next("the offer", &mut listening).await;
    assert_eq!(offer.name(), name);
    let mut provision = offer.accept();
    let mut has_provider = third.watch_provider();
    within("has_provider", has_provider.wait_for(|p| *p))
        .await
        .unwrap();

    drop(first);
    second.discard();
    round_trips(&c, &provider).await;
    assert_eq!(
        provision.try_stopped(),
        None,
        "a handle is still alive: the server was not told to unsubscribe"
    );
    drop(third);
    assert_eq!(
        within("the provider's stop", provision.stopped()).await,
        StopReason::Unsubscribed,
        "the last handle unsubscribed"
    );
}
both!(reference_counting, handles_share_one_subscription);

async fn unload_delay_spares_quick_resubscribes(server: &TestServer) {
    let id = uid();
    let name = format!("unload/{id}/r");
    let provider = server.client().await;
    let mut listening = provider.listen(&format!("^unload/{id}/.*")).await.unwrap();
    let c = Client::connect_with(options(&server.url()).unload_delay(Duration::from_secs(60)))
        .await
        .unwrap();

    let record = c.record(&name);
    ready(&record).await;
    let mut provision = next("the offer", &mut listening).await.accept();
    drop(record);
    let again = c.record(&name);
    assert!(again.is_ready(), "still loaded: no new subscription");
    round_trips(&c, &provider).await;
    assert_eq!(provision.try_stopped(), None, "never unsubscribed");
    drop(again);
    round_trips(&c, &provider).await;
    assert_eq!(provision.try_stopped(), None, "the delay is not over");
    c.close().await;
    // Closing the connection does end the subscription.
    assert_eq!(
        within("stop after close", provision.stopped()).await,
        StopReason::Unsubscribed
    );
}
both!(unload_delay, unload_delay_spares_quick_resubscribes);

// ----- listening ------------------------------------------------------------------------

async fn listen_accept_reject_and_stop(server: &TestServer) {
    let id = uid();
    let pattern = format!("^listen/{id}/.*");
    let first = format!("listen/{id}/one");
    let subscriber = server.client().await;

    // A provider that declines everything.
    let rejecter = server.client().await;
    let mut rejecting = rejecter.listen(&pattern).await.unwrap();
    let record = subscriber.record(&first);
    ready(&record).await;
    let offer = next("the rejecter's offer", &mut rejecting).await;
    assert_eq!(offer.name(), first, "a subscription for a match is offered");
    offer.reject();
    tokio::spawn(async move {
        while let Some(offer) = rejecting.next().await {
            offer.reject();
        }
    });
    assert!(!record.has_provider());

    // A provider that accepts: offered the existing subscription when it starts.
    let provider = server.client().await;
    let mut providing = provider.listen(&pattern).await.unwrap();
    let offer = next("the provider's offer", &mut providing).await;
    assert_eq!(offer.name(), first);
    let mut provision = offer.accept();
    let mut has_provider = record.watch_provider();
    within("has_provider", has_provider.wait_for(|p| *p))
        .await
        .unwrap();

    // The provider publishes; the subscriber sees it.
    provider.set_data(&first, "temperature", 21).unwrap();
    sees(&record, "temperature", json!(21)).await;

    drop(record);
    assert_eq!(
        within("the stop", provision.stopped()).await,
        StopReason::Unsubscribed
    );

    // A second record; the provider stops listening while providing it.
    let second = format!("listen/{id}/two");
    let record = subscriber.record(&second);
    let offer = until("the second offer", &mut providing, |o| o.name() == second).await;
    let mut provision = offer.accept();
    let mut has_provider = record.watch_provider();
    within("has_provider", has_provider.wait_for(|p| *p))
        .await
        .unwrap();
    providing.stop();
    assert_eq!(provision.stopped().await, StopReason::Unlistened);
    within("has_provider false", has_provider.wait_for(|p| !*p))
        .await
        .unwrap();
}
both!(listening, listen_accept_reject_and_stop);

async fn a_bad_pattern_is_refused(server: &TestServer) {
    let c = server.client().await;
    match c.listen("bad/[").await {
        Err(Error::Listen { pattern, .. }) => assert_eq!(pattern, "bad/["),
        other => panic!("expected Error::Listen, got {:?}", other.map(|_| ())),
    }
    // Listening to the same pattern twice from one client is refused locally.
    let _first = c.listen("^good/.*").await.unwrap();
    assert!(matches!(
        c.listen("^good/.*").await.map(|_| ()),
        Err(Error::Listen { .. })
    ));
}
both!(bad_listen_pattern, a_bad_pattern_is_refused);

// ----- events ---------------------------------------------------------------------------

async fn events_reach_every_subscriber_but_the_emitter(server: &TestServer) {
    let name = unique("event");
    let a = server.client().await;
    let b = server.client().await;
    let mut on_a = within("a subscribes", a.subscribe_event(&name))
        .await
        .unwrap();
    let mut on_b = within("b subscribes", b.subscribe_event(&name))
        .await
        .unwrap();
    // A second subscription of one client shares its one server subscription.
    let mut on_b2 = within("b subscribes again", b.subscribe_event(&name))
        .await
        .unwrap();
    let data = json!({"z": 1, "a": [1.5, null, "x"], "n": -0.125});
    a.emit(&name, &data).unwrap();
    for (what, events) in [("b", &mut on_b), ("b again", &mut on_b2)] {
        let got = next(what, events).await.unwrap();
        assert_eq!(got, data);
        assert_eq!(got.to_string(), data.to_string(), "key order");
    }
    // The emitter's own subscription gets its event locally, once: the server does not
    // send it back, so a's next event is b's.
    assert_eq!(next("a's own event", &mut on_a).await, Some(data));
    b.emit(&name, "from b").unwrap();
    assert_eq!(
        next("b's event at a", &mut on_a).await,
        Some(json!("from b"))
    );
    assert_eq!(
        next("b's own event", &mut on_b).await,
        Some(json!("from b"))
    );

    // Once b's subscriptions are dropped, b's server subscription ends; a's goes on.
    drop(on_b);
    drop(on_b2);
    // A round trip of b's: the server has taken b's unsubscribe (a connection's messages
    // are handled in order), so the next event is not on its way to b when b subscribes
    // again.
    drop(
        within(
            "b's round trip",
            b.subscribe_event(&format!("{name}-other")),
        )
        .await
        .unwrap(),
    );
    let c = server.client().await;
    let mut on_c = within("c subscribes", c.subscribe_event(&name))
        .await
        .unwrap();
    a.emit(&name, 3).unwrap();
    assert_eq!(next("c's event", &mut on_c).await, Some(json!(3)));
    assert_eq!(next("a's own", &mut on_a).await, Some(json!(3)));
    let mut b_again = within("b subscribes once more", b.subscribe_event(&name))
        .await
        .unwrap();
    c.emit(&name, 4).unwrap();
    assert_eq!(
        next("b's fresh subscription", &mut b_again).await,
        Some(json!(4))
    );
}
both!(events, events_reach_every_subscriber_but_the_emitter);

// ----- conflicts ------------------------------------------------------------------------

/// Two clients write version 2 of a record at once: `a` first, then `b`, whose view is
/// held back by a proxy so that it cannot have seen `a`'s write. Returns both records
/// and `b`'s acknowledgement.
async fn conflict(
    server: &TestServer,
    strategy: MergeStrategy,
) -> (Client, Record, Client, Record, Proxy, Result<(), Error>) {
    let name = unique("conflict");
    let proxy = Proxy::start(server.addr()).await;
    let a = server.client().await;
    let b = Client::connect_with(options(&proxy.url()).merge_strategy(strategy))
        .await
        .unwrap();
    let ra = a.record(&name);
    let rb = b.record(&name);
    ready(&ra).await;
    ra.set_with_ack("v", "start").await.unwrap();
    sees(&rb, "v", json!("start")).await;

    proxy.hold();
    ra.set_with_ack("v", "from A").await.unwrap();
    let b_ack = rb.set_with_ack("v", "from B");
    assert_eq!(rb.get("v"), Some(json!("from B")), "local at once");
    proxy.release();
    let b_ack = within("b's ack", b_ack).await;
    (a, ra, b, rb, proxy, b_ack)
}

async fn remote_wins(server: &TestServer) {
    let (_a, ra, _b, rb, _proxy, b_ack) = conflict(server, MergeStrategy::RemoteWins).await;
    assert_eq!(
        b_ack,
        Err(Error::Conflict {
            name: rb.name().to_owned()
        })
    );
    sees(&rb, "v", json!("from A")).await;
    // Back in step: b's next write goes through.
    rb.set_with_ack("after", 1).await.unwrap();
    sees(&ra, "after", json!(1)).await;
    assert_eq!(ra.get("v"), Some(json!("from A")));
}
both!(merge_remote_wins, remote_wins);

async fn local_wins(server: &TestServer) {
    let (_a, ra, _b, rb, _proxy, b_ack) = conflict(server, MergeStrategy::LocalWins).await;
    assert_eq!(b_ack, Ok(()));
    sees(&ra, "v", json!("from B")).await;
    assert_eq!(rb.get("v"), Some(json!("from B")));
    assert_eq!(ra.version(), Some(3));
    assert_eq!(rb.version(), Some(3));
}
both!(merge_local_wins, local_wins);

async fn custom_merge(server: &TestServer) {
    let strategy = MergeStrategy::custom(|c| {
        let remote = c.remote["v"].as_str().unwrap_or_default();
        let local = c.local["v"].as_str().unwrap_or_default();
        json!({ "v": format!("{remote} + {local}") })
    });
    let (_a, ra, _b, rb, _proxy, b_ack) = conflict(server, strategy).await;
    assert_eq!(b_ack, Ok(()));
    sees(&ra, "v", json!("from A + from B")).await;
    assert_eq!(rb.get("v"), Some(json!("from A + from B")));
}
both!(merge_custom, custom_merge);

async fn set_data_never_conflicts(server: &TestServer) {
    // As in `conflict`, but b's write is a set_data on a record b holds.
    let name = unique("setdata");
    let proxy = Proxy::start(server.addr()).await;
    let a = server.client().await;
    let b = client(&proxy.url()).await;
    let ra = a.record(&name);
    let rb = b.record(&name);
    ready(&ra).await;
    ra.set_with_ack("v", "start").await.unwrap();
    sees(&rb, "v", json!("start")).await;

    proxy.hold();
    ra.set_with_ack("v", "from A").await.unwrap();
    let b_ack = b.set_data_with_ack(&name, "w", "from B");
    proxy.release();
    within("b's ack", b_ack)
        .await
        .expect("set_data applies on top of the other write");
    sees(&ra, "", json!({"v": "from A", "w": "from B"})).await;
    sees(&rb, "", json!({"v": "from A", "w": "from B"})).await;
}
both!(set_data_on_a_held_record, set_data_never_conflicts);

/// Two clients write 50 different paths each into one record, all at once, and wait for
/// every acknowledgement; then both must show the server's final value.
async fn burst(server: &TestServer, strategy: MergeStrategy) -> (usize, usize, Value) {
    let name = unique("burst");
    let connect = || Client::connect_with(options(&server.url()).merge_strategy(strategy.clone()));
    let (a, b) = (connect().await.unwrap(), connect().await.unwrap());
    let (ra, rb) = (a.record(&name), b.record(&name));
    ready(&ra).await;
    ready(&rb).await;
    let mut acks = Vec::new();
    for i in 0..50 {
        acks.push(ra.set_with_ack(&format!("a{i}"), i));
        acks.push(rb.set_with_ack(&format!("b{i}"), i));
    }
    let (mut ok, mut conflicts) = (0, 0);
    for ack in acks {
        match within("an ack", ack).await {
            Ok(()) => ok += 1,
            Err(Error::Conflict { .. }) => conflicts += 1,
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    let last = a.snapshot(&name).await.unwrap().data;
    sees(&ra, "", last.clone()).await;
    sees(&rb, "", last.clone()).await;
    (ok, conflicts, last)
}

async fn concurrent_bursts_converge(server: &TestServer) {
    // Remote wins: every write is acknowledged or reported as a conflict, and exactly the
    // acknowledged ones are in the record.
    let (ok, conflicts, value) = burst(server, MergeStrategy::RemoteWins).await;
    assert_eq!(ok + conflicts, 100);
    assert_eq!(value.as_object().unwrap().len(), ok);

    // A merge that keeps both sides' keys loses nothing.
    let union = MergeStrategy::custom(|c| {
        let mut merged = c.remote.as_object().cloned().unwrap_or_default();
        for (key, value) in c.local.as_object().cloned().unwrap_or_default() {
            merged.entry(key).or_insert(value);
        }
        Value::Object(merged)
    });
    let (ok, conflicts, value) = burst(server, union).await;
    assert_eq!((ok, conflicts), (100, 0));
    assert_eq!(value.as_object().unwrap().len(), 100);
}
both!(bursts_converge, concurrent_bursts_converge);

// ----- reconnection ---------------------------------------------------------------------

async fn reconnect_after_a_network_cut(server: &TestServer) {
    let id = uid();
    let own = format!("cut/{id}/own");
    let shared = format!("cut/{id}/shared");
    let proxy = Proxy::start(server.addr()).await;
    let w = client(&proxy.url()).await; // behind the proxy
    let s = server.client().await; // direct
    let provider = client(&proxy.url()).await;
    let mut listening = provider
        .listen(&format!("^cut/{id}/provided/.*"))
        .await
        .unwrap();

    let w_own = w.record(&own);
    let w_shared = w.record(&shared);
    ready(&w_own).await;
    ready(&w_shared).await;
    let s_own = s.record(&own);
    ready(&s_own).await;
    let before = s.record(&format!("cut/{id}/provided/before"));
    let mut provision = next("an offer", &mut listening).await.accept();

    proxy.refuse();
    proxy.cut();
    state(&w, "w offline", |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    assert_eq!(
        within("the provision to stop", provision.stopped()).await,
        StopReason::ConnectionLost
    );

    // Offline: writes are applied locally and queued.
    w_own.set("n", 1).unwrap();
    let ack = w_own.set_with_ack("m", 2);
    assert_eq!(w_own.get(""), Some(json!({"n": 1, "m": 2})));
    // Meanwhile another client changes a record w holds.
    s.set_data_with_ack(&shared, "from_s", "hello")
        .await
        .unwrap();

    proxy.admit();
    state(&w, "w back", |s| *s == ConnectionState::Open).await;
    within("the offline write's ack", ack).await.unwrap();
    sees(&s_own, "", json!({"n": 1, "m": 2})).await;
    sees(&w_shared, "from_s", json!("hello")).await;
    // The subscription is live again.
    s.set_data(&shared, "again", true).unwrap();
    sees(&w_shared, "again", json!(true)).await;

    // The listen is back: existing and new subscriptions are offered again.
    let after = format!("cut/{id}/provided/after");
    let _wanted = s.record(&after);
    let mut offered = Vec::new();
    while offered.len() < 2 {
        let offer = next("offers after reconnecting", &mut listening).await;
        offered.push(offer.name().to_owned());
        offer.accept();
    }
    offered.sort();
    let mut expected = vec![before.name().to_owned(), after];
    expected.sort();
    assert_eq!(offered, expected);
}
both!(reconnect, reconnect_after_a_network_cut);

async fn writes_in_flight_land_exactly_once(server: &TestServer) {
    let name = unique("inflight");
    let proxy = Proxy::start(server.addr()).await;
    let w = client(&proxy.url()).await;
    let record = w.record(&name);
    ready(&record).await;
    let acks: Vec<_> = (0..100)
        .map(|i| record.set_with_ack(&format!("k{i}"), i))
        .collect();
    // Cut while the writes are on their way: some reached the server, some did not, and
    // the answers to many are lost.
    proxy.cut();
    for ack in acks {
        within("every write's ack", ack).await.unwrap();
    }
    let snapshot = server.client().await.snapshot(&name).await.unwrap();
    assert_eq!(snapshot.data.as_object().unwrap().len(), 100);
    assert_eq!(snapshot.version, 100, "each write applied exactly once");
    sees(&record, "", snapshot.data).await;
}
both!(in_flight_writes, writes_in_flight_land_exactly_once);

async fn survive_a_server_restart(server: &TestServer) {
    let id = uid();
    let name = format!("restart/{id}/data");
    // The in-memory deepstream forgets everything when it restarts: LocalWins writes
    // this client's value back. recordsync keeps it (checked below).
    let w = Client::connect_with(options(&server.url()).merge_strategy(MergeStrategy::LocalWins))
        .await
        .unwrap();
    let s = server.client().await;
    let provider = server.client().await;
    let mut listening = provider
        .listen(&format!("^restart/{id}/provided"))
        .await
        .unwrap();

    let record = w.record(&name);
    ready(&record).await;
    record.set_with_ack("n", 1).await.unwrap();
    let watched = s.record(&name);
    let mut n = watched.subscribe("n").unwrap();
    until("s sees n = 1", &mut n, |v| *v == json!(1)).await;
    let provided = s.record(&format!("restart/{id}/provided"));
    let mut provision = next("the offer", &mut listening).await.accept();

    server.stop();
    for c in [&w, &s, &provider] {
        state(c, "offline", |s| {
            matches!(s, ConnectionState::Reconnecting { .. })
        })
        .await;
    }
    assert_eq!(
        within("the provision to stop", provision.stopped()).await,
        StopReason::ConnectionLost
    );
    record.set("n", 2).unwrap();
    let ack = record.set_with_ack("m", 3);

    server.launch();
    for c in [&w, &s, &provider] {
        state(c, "back online", |s| *s == ConnectionState::Open).await;
    }
    within("the offline write's ack", ack).await.unwrap();
    until("s sees n = 2", &mut n, |v| *v == json!(2)).await;
    sees(&watched, "m", json!(3)).await;

    // Listening is restored and the renewed subscription is offered again.
    let offer = next("the offer after the restart", &mut listening).await;
    assert_eq!(offer.name(), provided.name());
    offer.accept();
    let mut has_provider = provided.watch_provider();
    within("has_provider again", has_provider.wait_for(|p| *p))
        .await
        .unwrap();

    // Writes keep flowing both ways.
    watched.set_with_ack("from_s", true).await.unwrap();
    sees(&record, "from_s", json!(true)).await;
    if server.target == support::Target::Recordsync {
        let snapshot = s.snapshot(&name).await.unwrap();
        assert_eq!(
            snapshot.version, 4,
            "recordsync kept every write: n=1, n=2, m=3, from_s"
        );
    }
}
both!(restart, survive_a_server_restart);

async fn connect_errors_say_what_is_wrong(server: &TestServer) {
    let closed_port = support::free_port();
    match Client::connect(&format!("127.0.0.1:{closed_port}")).await {
        Err(ConnectError::Refused { url }) => {
            assert_eq!(url, format!("ws://127.0.0.1:{closed_port}/deepstream"))
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    match Client::connect(&format!("ws://127.0.0.1:{}/not-here", server.port)).await {
        Err(ConnectError::NotDeepstream { .. } | ConnectError::Unreachable { .. }) => {}
        other => panic!("expected NotDeepstream, got {other:?}"),
    }
    assert!(matches!(
        Client::connect("wss://example.com").await,
        Err(ConnectError::InvalidUrl { .. })
    ));
}
both!(connect_errors, connect_errors_say_what_is_wrong);

async fn gives_up_after_the_last_attempt(server: &TestServer) {
    let proxy = Proxy::start(server.addr()).await;
    let c = Client::connect_with(options(&proxy.url()).reconnect(Reconnect {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(50),
        max_attempts: Some(2),
    }))
    .await
    .unwrap();
    let record = c.record(&unique("giveup"));
    ready(&record).await;
    proxy.refuse();
    proxy.cut();
    state(&c, "the client to give up", |s| {
        matches!(s, ConnectionState::Failed { .. })
    })
    .await;
    assert!(matches!(record.set("a", 1), Err(Error::Closed { .. })));
    assert!(matches!(c.head("x").await, Err(Error::Closed { .. })));
    assert!(matches!(
        record.when_ready().await,
        Err(Error::Closed { .. })
    ));
}
both!(give_up, gives_up_after_the_last_attempt);

// ----- numbers --------------------------------------------------------------------------

/// Every number comes back exactly as written: to a subscriber, after a path write, and
/// in a snapshot. deepstream (JavaScript) keeps numbers only in JavaScript's spelling of
/// doubles; recordsync keeps every spelling (integers beyond 64 bits, `-0`, `1.50`,
/// `1e+400`, ...).
async fn numbers_come_back_as_written(server: &TestServer) {
    use proptest::strategy::{Strategy, ValueTree};
    use recordsync_core::testing::{Doc, document, js_document};
    let strategy = match server.target {
        support::Target::Recordsync => document().boxed(),
        support::Target::Deepstream => js_document().boxed(),
    };
    let mut runner = proptest::test_runner::TestRunner::default();
    let a = server.client().await;
    let b = server.client().await;
    for i in 0..10 {
        let mut doc: Doc = strategy
            .new_tree(&mut runner)
            .expect("a document")
            .current();
        let name = unique("numbers");
        let ra = a.record(&name);
        let rb = b.record(&name);
        ready(&ra).await;
        ready(&rb).await;
        let mut seen = rb.subscribe("").unwrap();
        assert_eq!(next("the empty record", &mut seen).await, json!({}));

        let value: Value = serde_json::from_str(&doc.to_json()).unwrap();
        within("the whole write", ra.set_with_ack("", &value))
            .await
            .unwrap();
        let got = next("the whole value", &mut seen).await;
        assert_eq!(got.to_string(), doc.to_json(), "document {i}");

        if let Some(path) = doc.number_paths().first().cloned() {
            // A number other than the one there: a write that changes nothing is not
            // notified to subscribers (the client sends a value only when it changed).
            let parsed = recordsync_core::Path::parse(&path).unwrap();
            let old = recordsync_core::path::get(&value, &parsed).map(Value::to_string);
            let extremes = recordsync_core::testing::EXTREMES;
            let token = *extremes[i % 3..]
                .iter()
                .chain(extremes)
                .find(|t| old.as_deref() != Some(**t))
                .expect("EXTREMES holds different numbers");
            let leaf: Value = serde_json::from_str(token).unwrap();
            within("the path write", ra.set_with_ack(&path, leaf))
                .await
                .unwrap();
            doc.set(&path, Doc::Number(token.to_owned()));
            let got = next("the patched value", &mut seen).await;
            assert_eq!(got.to_string(), doc.to_json(), "document {i} patched");
        }
        let snapshot = within("a snapshot", a.snapshot(&name)).await.unwrap();
        assert_eq!(
            snapshot.data.to_string(),
            doc.to_json(),
            "document {i} snapshot"
        );
    }
}
both!(numbers, numbers_come_back_as_written);
