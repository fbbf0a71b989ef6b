//! Listening across nodes: providers on one node, subscribers on others, one provider per
//! record for the whole cluster, and a node that goes away.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[path = "support/severable.rs"]
mod severable;
mod support;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use recordsync_bus::{Bus, InProcessBus};
use recordsync_deepstream_protocol::{RecordAction, RecordMessage};
use recordsync_server::{Config, Server, StorageKind};
use recordsync_store::{MemoryStore, Store};
use severable::Severable;
use support::{RawClient, json_value, listen_msg};

struct Node {
    addr: String,
    severed: watch::Sender<bool>,
}

impl Node {
    fn sever(&self) {
        self.severed.send_replace(true);
    }

    fn heal(&self) {
        self.severed.send_replace(false);
    }
}

/// `n` nodes on one store and one in-process bus, with short heartbeats so that a silent
/// node is noticed within a second.
async fn cluster(n: usize) -> Vec<Node> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    let mut nodes = Vec::new();
    for _ in 0..n {
        let config = Config {
            port: 0,
            storage: StorageKind::Memory,
            cluster_heartbeat_interval: Duration::from_millis(100),
            listen_response_timeout: Duration::from_secs(5),
            ..Config::default()
        };
        let (link, severed) = Severable::link(bus.clone());
        let server = Server::bind_with(config, store.clone(), Some(link))
            .await
            .expect("node binds");
        let addr = server.local_addr().to_string();
        tokio::spawn(server.run(std::future::pending()));
        nodes.push(Node { addr, severed });
    }
    nodes
}

async fn listen(client: &mut RawClient, pattern: &str) {
    client
        .send(listen_msg(RecordAction::Listen, pattern, None))
        .await;
    let ack = client.recv_action(RecordAction::Listen).await;
    assert_eq!(ack.is_ack, Some(true), "{ack:?}");
}

async fn answer(client: &mut RawClient, action: RecordAction, pattern: &str, name: &str) {
    client.send(listen_msg(action, pattern, Some(name))).await;
}

async fn unsubscribe(client: &mut RawClient, name: &str) {
    client
        .send(RecordMessage {
            names: vec![name.into()],
            correlation_id: Some("u".into()),
            ..RecordMessage::new(RecordAction::Unsubscribe)
        })
        .await;
    let ack = client.recv_action(RecordAction::Unsubscribe).await;
    assert_eq!(ack.is_ack, Some(true), "{ack:?}");
}

/// The next offer or stop the provider hears: (action, record).
async fn provider_hears(client: &mut RawClient) -> (RecordAction, String) {
    let m = client
        .recv_action_in(&[
            RecordAction::SubscriptionForPatternFound,
            RecordAction::SubscriptionForPatternRemoved,
        ])
        .await;
    let action = RecordAction::try_from(m.action).expect("a known action");
    (action, m.subscription.expect("names the record"))
}

/// Whether a subscriber hears of a provider: the next HAS_PROVIDER or HAS_NO_PROVIDER.
async fn subscriber_hears(client: &mut RawClient) -> RecordAction {
    let m = client
        .recv_action_in(&[
            RecordAction::SubscriptionHasProvider,
            RecordAction::SubscriptionHasNoProvider,
        ])
        .await;
    RecordAction::try_from(m.action).expect("a known action")
}

#[tokio::test]
async fn a_provider_on_one_node_serves_subscribers_on_the_others_until_the_last_leaves() {
    let nodes = cluster(3).await;
    let mut provider = RawClient::connect(&nodes[0].addr).await;
    let mut on_2 = RawClient::connect(&nodes[1].addr).await;
    let mut on_3 = RawClient::connect(&nodes[2].addr).await;
    listen(&mut provider, "^prices/.*").await;

    on_2.subscribe("prices/gold").await;
    assert_eq!(
        provider_hears(&mut provider).await,
        (
            RecordAction::SubscriptionForPatternFound,
            "prices/gold".into()
        )
    );
    answer(
        &mut provider,
        RecordAction::ListenAccept,
        "^prices/.*",
        "prices/gold",
    )
    .await;
    assert_eq!(
        subscriber_hears(&mut on_2).await,
        RecordAction::SubscriptionHasProvider
    );

    // A subscriber on a third node hears of the provider; nobody is offered anything.
    on_3.subscribe("prices/gold").await;
    assert_eq!(
        subscriber_hears(&mut on_3).await,
        RecordAction::SubscriptionHasProvider
    );

    // The provider's writes reach both nodes.
    let set = RecordMessage {
        version: Some(-1),
        data: Some(r#"{"usd":2000}"#.into()),
        ..RecordMessage::named(RecordAction::CreateAndUpdate, "prices/gold")
    };
    provider.write(set, Some("p")).await;
    for c in [&mut on_2, &mut on_3] {
        let update = c.recv_action(RecordAction::Update).await;
        assert_eq!(json_value(&update.data), serde_json::json!({"usd": 2000}));
    }

    // onStop only once the last subscriber anywhere has gone. Node 2's client leaves
    // first, then subscribes to another record the provider listens to: the next thing the
    // provider hears shows whether a stop for prices/gold came in between.
    unsubscribe(&mut on_2, "prices/gold").await;
    on_2.subscribe("prices/silver").await;
    assert_eq!(
        provider_hears(&mut provider).await,
        (
            RecordAction::SubscriptionForPatternFound,
            "prices/silver".into()
        ),
        "node 3 still subscribes to prices/gold: no onStop yet"
    );
    unsubscribe(&mut on_3, "prices/gold").await;
    assert_eq!(
        provider_hears(&mut provider).await,
        (
            RecordAction::SubscriptionForPatternRemoved,
            "prices/gold".into()
        )
    );
}

#[tokio::test]
async fn one_provider_per_record_across_the_cluster() {
    let nodes = cluster(3).await;
    let mut listeners = [
        RawClient::connect(&nodes[0].addr).await,
        RawClient::connect(&nodes[2].addr).await,
    ];
    let mut subscriber = RawClient::connect(&nodes[1].addr).await;
    for l in &mut listeners {
        listen(l, "^feeds/").await;
    }

    subscriber.subscribe("feeds/a").await;
    // Exactly one of the two listeners is asked; which one is random.
    let [first, second] = &mut listeners;
    let (asked, heard) = tokio::select! {
        m = provider_hears(first) => (0, m),
        m = provider_hears(second) => (1, m),
    };
    assert_eq!(
        heard,
        (RecordAction::SubscriptionForPatternFound, "feeds/a".into())
    );
    let (asked, unasked) = if asked == 0 {
        (first, second)
    } else {
        (second, first)
    };
    // The other listener accepts unasked first: a willing provider beats none
    // (deepstream's rule), so it provides, and the subscriber hears so.
    answer(unasked, RecordAction::ListenAccept, "^feeds/", "feeds/a").await;
    assert_eq!(
        subscriber_hears(&mut subscriber).await,
        RecordAction::SubscriptionHasProvider
    );
    // The listener that was asked accepts too late: it is told to stop, and the record
    // keeps its one provider.
    answer(asked, RecordAction::ListenAccept, "^feeds/", "feeds/a").await;
    assert_eq!(
        provider_hears(asked).await,
        (
            RecordAction::SubscriptionForPatternRemoved,
            "feeds/a".into()
        )
    );
}

#[tokio::test]
async fn when_a_providers_node_goes_its_records_are_offered_to_a_provider_on_another_node() {
    let nodes = cluster(3).await;
    let mut subscriber = RawClient::connect(&nodes[1].addr).await;
    let mut doomed = RawClient::connect(&nodes[0].addr).await;
    listen(&mut doomed, "^ticks/").await;
    subscriber.subscribe("ticks/1").await;
    assert_eq!(
        provider_hears(&mut doomed).await,
        (RecordAction::SubscriptionForPatternFound, "ticks/1".into())
    );
    answer(
        &mut doomed,
        RecordAction::ListenAccept,
        "^ticks/",
        "ticks/1",
    )
    .await;
    assert_eq!(
        subscriber_hears(&mut subscriber).await,
        RecordAction::SubscriptionHasProvider
    );

    // A second listener on node 3 is not asked while the record has a provider.
    let mut survivor = RawClient::connect(&nodes[2].addr).await;
    listen(&mut survivor, "^ticks/").await;

    // Node 1 falls silent: cut off from the bus, as if its process had died. Its client
    // stays connected, so no goodbye reaches the cluster: the others notice the silence.
    nodes[0].sever();

    assert_eq!(
        provider_hears(&mut survivor).await,
        (RecordAction::SubscriptionForPatternFound, "ticks/1".into())
    );
    answer(
        &mut survivor,
        RecordAction::ListenAccept,
        "^ticks/",
        "ticks/1",
    )
    .await;
    // The provider publishes; its acknowledged write also shows node 3 has taken the
    // accept, which came first on the same connection.
    let set = RecordMessage {
        version: Some(-1),
        data: Some(r#"{"tick":1}"#.into()),
        ..RecordMessage::named(RecordAction::CreateAndUpdate, "ticks/1")
    };
    survivor.write(set, Some("t")).await;
    let update = subscriber.recv_action(RecordAction::Update).await;
    assert_eq!(json_value(&update.data), serde_json::json!({"tick": 1}));

    // The cluster knows the new provider: a subscriber arriving on node 3 is told.
    let mut late = RawClient::connect(&nodes[2].addr).await;
    late.subscribe("ticks/1").await;
    assert_eq!(
        subscriber_hears(&mut late).await,
        RecordAction::SubscriptionHasProvider
    );
    // (The first subscriber may or may not have heard HAS_NO_PROVIDER in between: if
    // node 1 coordinated, the new coordinator started from the reports of the live
    // nodes and found the record provided again before it settled.)

    // The new provider's onStop once both subscribers have gone.
    unsubscribe(&mut subscriber, "ticks/1").await;
    unsubscribe(&mut late, "ticks/1").await;
    assert_eq!(
        provider_hears(&mut survivor).await,
        (
            RecordAction::SubscriptionForPatternRemoved,
            "ticks/1".into()
        )
    );
}

#[tokio::test]
async fn subscribers_hear_their_provider_is_gone_whichever_node_coordinated() {
    let nodes = cluster(3).await;
    let mut provider = RawClient::connect(&nodes[0].addr).await;
    let mut subscriber = RawClient::connect(&nodes[1].addr).await;
    listen(&mut provider, "^quotes/").await;
    subscriber.subscribe("quotes/1").await;
    provider_hears(&mut provider).await;
    answer(
        &mut provider,
        RecordAction::ListenAccept,
        "^quotes/",
        "quotes/1",
    )
    .await;
    assert_eq!(
        subscriber_hears(&mut subscriber).await,
        RecordAction::SubscriptionHasProvider
    );
    nodes[0].sever();
    // If node 1 was not coordinating, the coordinator saw its provider go; if it was, the
    // new coordinator's settled word says the record has no provider.
    assert_eq!(
        subscriber_hears(&mut subscriber).await,
        RecordAction::SubscriptionHasNoProvider
    );
}

#[tokio::test]
async fn after_a_partition_heals_the_cluster_has_one_provider_per_record() {
    let nodes = cluster(3).await;
    let mut first = RawClient::connect(&nodes[0].addr).await;
    let mut subscriber = RawClient::connect(&nodes[1].addr).await;
    listen(&mut first, "^parted/").await;
    subscriber.subscribe("parted/1").await;
    provider_hears(&mut first).await;
    answer(
        &mut first,
        RecordAction::ListenAccept,
        "^parted/",
        "parted/1",
    )
    .await;
    assert_eq!(
        subscriber_hears(&mut subscriber).await,
        RecordAction::SubscriptionHasProvider
    );
    let mut second = RawClient::connect(&nodes[2].addr).await;
    listen(&mut second, "^parted/").await;

    // Node 1 is cut off. The majority side offers the record to the listener it still
    // has; on node 1's side nobody subscribes, so its provider is told to stop.
    nodes[0].sever();
    assert_eq!(
        provider_hears(&mut second).await,
        (RecordAction::SubscriptionForPatternFound, "parted/1".into())
    );
    answer(
        &mut second,
        RecordAction::ListenAccept,
        "^parted/",
        "parted/1",
    )
    .await;
    assert_eq!(
        provider_hears(&mut first).await,
        (
            RecordAction::SubscriptionForPatternRemoved,
            "parted/1".into()
        )
    );

    // Healed: node 1 rejoins and the cluster re-forms from the nodes' reports. While it
    // does, node 1's listener may be offered the record again (reports arrive one node at
    // a time); it is a candidate like any other, but the record keeps one provider.
    nodes[0].heal();
    // Node 1's writes reach node 2 again: it is back on the bus.
    subscribe_amid(&mut subscriber, "probe/healed").await;
    let probe = RecordMessage {
        version: Some(-1),
        data: Some(r#"{"healed":true}"#.into()),
        ..RecordMessage::named(RecordAction::CreateAndUpdate, "probe/healed")
    };
    first.send(probe).await;
    subscriber.recv_action(RecordAction::Update).await;

    // When the subscriber leaves, the second provider is told to stop...
    unsubscribe(&mut subscriber, "parted/1").await;
    assert_eq!(
        provider_hears(&mut second).await,
        (
            RecordAction::SubscriptionForPatternRemoved,
            "parted/1".into()
        )
    );
    // ...and a new subscription is offered to one of the two listeners.
    subscribe_amid(&mut subscriber, "parted/2").await;
    let offered = tokio::select! {
        m = offer_of(&mut first, "parted/2") => m,
        m = offer_of(&mut second, "parted/2") => m,
    };
    assert_eq!(offered, RecordAction::SubscriptionForPatternFound);
}

/// What a provider next hears about `name`, skipping anything about other records.
async fn offer_of(client: &mut RawClient, name: &str) -> RecordAction {
    loop {
        let (action, record) = provider_hears(client).await;
        if record == name {
            return action;
        }
    }
}

/// Subscribes while provider news about other records may still be arriving.
async fn subscribe_amid(client: &mut RawClient, name: &str) {
    client
        .send(RecordMessage {
            names: vec![name.into()],
            correlation_id: Some("s".into()),
            ..RecordMessage::new(RecordAction::SubscribeCreateAndRead)
        })
        .await;
    let read = client.recv_action(RecordAction::ReadResponse).await;
    assert_eq!(read.name.as_deref(), Some(name));
}

/// As deepstream's nodes ask their own listeners first, a record is offered to the
/// listeners on the node where it was subscribed before those on other nodes.
#[tokio::test]
async fn a_record_is_offered_first_to_a_listener_on_its_subscribers_node() {
    let nodes = cluster(3).await;
    let mut listeners = Vec::new();
    for node in &nodes {
        let mut listener = RawClient::connect(&node.addr).await;
        listen(&mut listener, "^near/.*").await;
        listeners.push(listener);
    }
    // With three listeners asked at random, six right guesses in a row would be luck
    // once in 729 runs. Subscribers stay, so that no provider is told to stop meanwhile.
    let mut subscribers = Vec::new();
    for i in 0..6 {
        let node = i % nodes.len();
        let name = format!("near/{i}");
        let mut subscriber = RawClient::connect(&nodes[node].addr).await;
        subscriber.subscribe(&name).await;
        let offered = &mut listeners[node];
        assert_eq!(
            provider_hears(offered).await,
            (RecordAction::SubscriptionForPatternFound, name.clone()),
            "the listener on node {node} is asked first"
        );
        answer(offered, RecordAction::ListenAccept, "^near/.*", &name).await;
        assert_eq!(
            subscriber_hears(&mut subscriber).await,
            RecordAction::SubscriptionHasProvider
        );
        subscribers.push(subscriber);
    }
}
