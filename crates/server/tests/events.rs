//! deepstream's EVENT topic, black box: raw protocol clients on a real server (and on
//! three nodes over Redis and NATS): subscribe / emit / unsubscribe and their acks on both
//! transports, payloads passed through unchanged, listening on event names, bad input,
//! and a subscriber that does not read.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use recordsync_bus::connect;
use recordsync_deepstream_protocol::{
    EventAction, EventMessage, Message, ParserAction, RecordAction,
};
use recordsync_server::{Config, Server, StorageKind};
use recordsync_store::{MemoryStore, Store};
use support::{RawClient, listen_msg, start_server};

/// A short wait for something that must not come.
const QUIET: Duration = Duration::from_millis(300);

async fn server(adjust: impl FnOnce(&mut Config)) -> String {
    let mut config = Config {
        storage: StorageKind::Memory,
        ..Config::default()
    };
    adjust(&mut config);
    start_server(config).await
}

fn event_listen(action: EventAction, pattern: &str, subscription: Option<&str>) -> EventMessage {
    EventMessage {
        subscription: subscription.map(Into::into),
        ..EventMessage::named(action, pattern)
    }
}

/// Nothing comes to `c` for a moment (its socket still open).
async fn nothing_for(c: &mut RawClient) {
    if let Some(m) = c.try_recv(QUIET).await {
        panic!("expected nothing, got {m:?}");
    }
}

#[tokio::test]
async fn emit_reaches_every_subscriber_on_both_transports_but_the_emitter() {
    let addr = server(|_| {}).await;
    let mut emitter = RawClient::connect(&addr).await;
    let mut bin = RawClient::connect(&addr).await;
    let mut js = RawClient::connect_to(&addr, "/deepstream-json").await;
    let mut bystander = RawClient::connect(&addr).await;
    for c in [&mut emitter, &mut bin, &mut js] {
        c.subscribe_event("news").await;
    }
    bystander.subscribe_event("other").await;

    // Data is JSON text: passed through byte for byte (key order, number spelling).
    let data = r#"{"z":1,"a":[1.50,"two",null,1e400],"s":"\u00e9"}"#;
    emitter.emit("news", Some(data)).await;
    for c in [&mut bin, &mut js] {
        let got = c.recv_event().await;
        assert_eq!(got.action, EventAction::Emit as i32);
        assert_eq!(got.name.as_deref(), Some("news"));
        assert_eq!(got.data.as_deref(), Some(data));
    }
    // An event without data arrives without data.
    js.emit("news", None).await;
    let got = bin.recv_event().await;
    assert_eq!((got.name.as_deref(), got.data), (Some("news"), None));
    assert_eq!(emitter.recv_event().await.data, None);
    nothing_for(&mut emitter).await;
    nothing_for(&mut js).await;
    nothing_for(&mut bystander).await;
}

#[tokio::test]
async fn subscribing_twice_unsubscribing_and_unsubscribing_again() {
    let addr = server(|_| {}).await;
    let mut emitter = RawClient::connect(&addr).await;
    let mut sub = RawClient::connect(&addr).await;
    sub.subscribe_event("e").await;
    // A second subscribe of the same name: MULTIPLE_SUBSCRIPTIONS, then the request's ack.
    sub.send(EventMessage {
        names: vec!["e".into()],
        correlation_id: Some("2".into()),
        ..EventMessage::new(EventAction::Subscribe)
    })
    .await;
    let twice = sub.recv_event().await;
    assert_eq!(
        (twice.action, twice.name.as_deref(), twice.original_action),
        (
            EventAction::MultipleSubscriptions as i32,
            Some("e"),
            Some(EventAction::Subscribe as i32)
        )
    );
    assert_eq!(sub.recv_event().await.is_ack, Some(true));
    // Still one subscription: one delivery.
    emitter.emit("e", Some("1")).await;
    assert_eq!(sub.recv_event().await.data.as_deref(), Some("1"));
    nothing_for(&mut sub).await;

    let unsubscribe = EventMessage {
        names: vec!["e".into()],
        correlation_id: Some("3".into()),
        ..EventMessage::new(EventAction::Unsubscribe)
    };
    sub.send(unsubscribe.clone()).await;
    let ack = sub.recv_event().await;
    assert_eq!(
        (ack.action, ack.is_ack, ack.correlation_id.as_deref()),
        (EventAction::Unsubscribe as i32, Some(true), Some("3"))
    );
    emitter.emit("e", Some("2")).await;
    nothing_for(&mut sub).await;
    // Unsubscribing from a name not subscribed to is acked, and nothing else.
    sub.send(unsubscribe).await;
    assert_eq!(sub.recv_event().await.is_ack, Some(true));
    nothing_for(&mut sub).await;
}

#[tokio::test]
async fn bad_event_input_is_answered_to_its_sender_and_others_are_unaffected() {
    let addr = server(|c| c.max_message_size = 4096).await;
    let mut good = RawClient::connect(&addr).await;
    let mut listener = RawClient::connect(&addr).await;
    let mut bad = RawClient::connect(&addr).await;
    good.subscribe_event("fine").await;

    // An action number deepstream does not define, and actions only servers send.
    for action in [
        99,
        EventAction::SubscriptionForPatternFound as i32,
        EventAction::MessageDenied as i32,
    ] {
        bad.send(EventMessage {
            action,
            name: Some("fine".into()),
            ..Default::default()
        })
        .await;
        let reply = bad.recv_event().await;
        assert_eq!(
            reply.action,
            EventAction::InvalidMessageData as i32,
            "{action}"
        );
        assert_eq!(
            (reply.original_action, reply.is_error),
            (Some(action), Some(true))
        );
        assert!(reply.data.is_some_and(|d| d.contains("action")));
    }
    // An emit without a name, a subscribe without names.
    bad.send(EventMessage::new(EventAction::Emit)).await;
    assert_eq!(
        bad.recv_event().await.action,
        EventAction::InvalidMessageData as i32
    );
    bad.send(EventMessage::new(EventAction::Subscribe)).await;
    assert_eq!(
        bad.recv_event().await.action,
        EventAction::InvalidMessageData as i32
    );
    // A pattern that is not a regex; an answer that names no subscription.
    bad.send(event_listen(EventAction::Listen, "([", None))
        .await;
    assert_eq!(
        bad.recv_event().await.action,
        EventAction::InvalidListenRegex as i32
    );
    listener
        .send(event_listen(EventAction::ListenAccept, "^fine", None))
        .await;
    assert_eq!(
        listener.recv_event().await.action,
        EventAction::InvalidMessageData as i32
    );
    // An oversized payload: MAXIMUM_MESSAGE_SIZE_EXCEEDED, and that socket is closed.
    bad.emit("fine", Some(&format!("\"{}\"", "x".repeat(8192))))
        .await;
    match bad.recv().await {
        Message::Parser(p) => {
            assert_eq!(p.action, ParserAction::MaximumMessageSizeExceeded as i32)
        }
        other => panic!("expected MAXIMUM_MESSAGE_SIZE_EXCEEDED, got {other:?}"),
    }
    bad.expect_closed().await;

    // Nobody else heard any of it, and events still flow.
    nothing_for(&mut good).await;
    listener.emit("fine", Some("[1]")).await;
    assert_eq!(good.recv_event().await.data.as_deref(), Some("[1]"));
}

#[tokio::test]
async fn events_before_login_are_refused() {
    let addr = server(|_| {}).await;
    let mut c = RawClient::connect_raw(&addr, "/deepstream").await;
    c.send(EventMessage::named(EventAction::Emit, "e")).await;
    match c.recv().await {
        Message::Connection(m) => assert_eq!(m.is_error, Some(true)),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn an_event_flood_cuts_off_a_subscriber_that_does_not_read_and_no_one_else() {
    let addr = server(|c| c.outbound_queue_limit = 16).await;
    let mut emitter = RawClient::connect(&addr).await;
    let mut reader = RawClient::connect(&addr).await;
    let mut sleeper = RawClient::connect(&addr).await;
    reader.subscribe_event("firehose").await;
    sleeper.subscribe_event("firehose").await;
    let payload = format!("{{\"pad\":\"{}\"}}", "z".repeat(60_000));
    // The sleeper never reads: its socket buffers and then its queue fill up.
    for i in 0..400 {
        emitter.emit("firehose", Some(&payload)).await;
        let got = reader.recv_event().await;
        assert_eq!(
            got.data.as_deref().map(str::len),
            Some(payload.len()),
            "{i}"
        );
    }
    sleeper.expect_closed().await;
    emitter.emit("firehose", Some("\"last\"")).await;
    assert_eq!(reader.recv_event().await.data.as_deref(), Some("\"last\""));
}

#[tokio::test]
async fn listening_on_event_names_accept_reject_and_on_stop() {
    let addr = server(|_| {}).await;
    let mut provider = RawClient::connect(&addr).await;
    let mut refuser = RawClient::connect(&addr).await;
    let mut record_listener = RawClient::connect(&addr).await;
    let mut sub = RawClient::connect(&addr).await;
    let pattern = "^ticks/.*";
    // A record listener on the same pattern is never offered event names.
    record_listener
        .send(listen_msg(RecordAction::Listen, pattern, None))
        .await;
    assert_eq!(record_listener.recv_record().await.is_ack, Some(true));
    refuser
        .send(event_listen(EventAction::Listen, pattern, None))
        .await;
    let ack = refuser.recv_event().await;
    assert_eq!(
        (ack.action, ack.is_ack, ack.name.as_deref()),
        (EventAction::Listen as i32, Some(true), Some(pattern))
    );

    sub.subscribe_event("ticks/a").await;
    let found = refuser.recv_event().await;
    assert_eq!(
        (
            found.action,
            found.name.as_deref(),
            found.subscription.as_deref()
        ),
        (
            EventAction::SubscriptionForPatternFound as i32,
            Some(pattern),
            Some("ticks/a")
        )
    );
    refuser
        .send(event_listen(
            EventAction::ListenReject,
            pattern,
            Some("ticks/a"),
        ))
        .await;
    // A new listener is offered the unprovided subscription, and accepts.
    provider
        .send(event_listen(EventAction::Listen, pattern, None))
        .await;
    assert_eq!(provider.recv_event().await.is_ack, Some(true));
    let found = provider.recv_event().await;
    assert_eq!(
        (found.action, found.subscription.as_deref()),
        (
            EventAction::SubscriptionForPatternFound as i32,
            Some("ticks/a")
        )
    );
    provider
        .send(event_listen(
            EventAction::ListenAccept,
            pattern,
            Some("ticks/a"),
        ))
        .await;
    provider.emit("ticks/a", Some("42")).await;
    // Event subscribers are told nothing of providers: the next message is the event.
    assert_eq!(sub.recv_event().await.data.as_deref(), Some("42"));

    // onStop when the last subscriber leaves.
    sub.send(EventMessage {
        names: vec!["ticks/a".into()],
        correlation_id: Some("u".into()),
        ..EventMessage::new(EventAction::Unsubscribe)
    })
    .await;
    let removed = provider.recv_event().await;
    assert_eq!(
        (
            removed.action,
            removed.name.as_deref(),
            removed.subscription.as_deref()
        ),
        (
            EventAction::SubscriptionForPatternRemoved as i32,
            Some(pattern),
            Some("ticks/a")
        )
    );
    nothing_for(&mut record_listener).await;
}

/// Starts `n` nodes on one store, each with a bus connection of its own to `bus_url`.
async fn nodes_on_bus(n: usize, bus_url: &str) -> Vec<String> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut addrs = Vec::new();
    for _ in 0..n {
        let bus = connect(bus_url).await.expect("the machine's bus");
        let config = Config {
            port: 0,
            storage: StorageKind::Memory,
            ..Config::default()
        };
        let server = Server::bind_with(config, store.clone(), Some(bus))
            .await
            .expect("node binds");
        addrs.push(server.local_addr().to_string());
        tokio::spawn(server.run(std::future::pending()));
    }
    addrs
}

fn unique(name: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    format!(
        "{name}/{}",
        RandomState::new().hash_one(std::time::SystemTime::now())
    )
}

/// An event emitted on node 1 reaches subscribers on nodes 1, 2 and 3 (not its emitter),
/// in order; a listener on node 3 is offered a subscription made on node 1, provides it,
/// and is stopped when it ends.
async fn events_across_three_nodes(bus_url: &str) {
    let addrs = nodes_on_bus(3, bus_url).await;
    let name = unique("cluster-event");
    let mut emitter = RawClient::connect(&addrs[0]).await;
    let mut subs = Vec::new();
    for addr in &addrs {
        let mut c = RawClient::connect(addr).await;
        c.subscribe_event(&name).await;
        subs.push(c);
    }
    emitter.subscribe_event(&name).await;
    // Subscriptions are local to each node: no wait for the bus is needed, but the other
    // nodes' bus subscriptions are made when they bind.
    for i in 0..20 {
        emitter
            .emit(&name, Some(&format!(r#"{{"i":{i},"x":[1.0,"2"]}}"#)))
            .await;
    }
    for c in &mut subs {
        for i in 0..20 {
            let got = c.recv_event().await;
            assert_eq!(got.data, Some(format!(r#"{{"i":{i},"x":[1.0,"2"]}}"#)));
        }
    }
    nothing_for(&mut emitter).await;

    let prefix = unique("cluster-listen");
    let pattern = format!("^{prefix}/.*");
    let mut provider = RawClient::connect(&addrs[2]).await;
    provider
        .send(event_listen(EventAction::Listen, &pattern, None))
        .await;
    assert_eq!(provider.recv_event().await.is_ack, Some(true));
    let provided = format!("{prefix}/x");
    // LISTEN reaches the coordinating node over the bus; a subscription made before it
    // arrives is offered when it does.
    let mut sub = RawClient::connect(&addrs[0]).await;
    sub.subscribe_event(&provided).await;
    let found = provider.recv_event().await;
    assert_eq!(
        (found.action, found.subscription.as_deref()),
        (
            EventAction::SubscriptionForPatternFound as i32,
            Some(provided.as_str())
        )
    );
    provider
        .send(event_listen(
            EventAction::ListenAccept,
            &pattern,
            Some(&provided),
        ))
        .await;
    provider.emit(&provided, Some("\"from node 3\"")).await;
    assert_eq!(
        sub.recv_event().await.data.as_deref(),
        Some("\"from node 3\"")
    );
    sub.send(EventMessage {
        names: vec![provided.clone()],
        ..EventMessage::new(EventAction::Unsubscribe)
    })
    .await;
    let removed = provider.recv_event().await;
    assert_eq!(
        (removed.action, removed.subscription.as_deref()),
        (
            EventAction::SubscriptionForPatternRemoved as i32,
            Some(provided.as_str())
        )
    );
}

#[tokio::test]
async fn redis_bus_events_reach_every_node() {
    events_across_three_nodes("redis://127.0.0.1:6379").await;
}

#[tokio::test]
async fn nats_bus_events_reach_every_node() {
    events_across_three_nodes("nats://127.0.0.1:4222").await;
}
