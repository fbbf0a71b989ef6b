//! Every bus against the real thing: the machine's Redis and NATS, and private servers
//! that the fault tests stop and restart.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use recordsync_bus::{Bus, BusError, BusEvent, InProcessBus, NatsBus, RedisBus, connect};

const WAIT: Duration = Duration::from_secs(10);

fn unique_topic() -> String {
    format!("recordsync-test.{}.{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

async fn next_message(rx: &mut mpsc::Receiver<BusEvent>) -> Bytes {
    loop {
        match tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("an event in time")
            .expect("open")
        {
            BusEvent::Message(m) => return m,
            BusEvent::Resync => continue,
        }
    }
}

async fn fan_out(bus: Arc<dyn Bus>) {
    let topic = unique_topic();
    let mut a = bus.subscribe(&topic).await.unwrap();
    let mut b = bus.subscribe(&topic).await.unwrap();
    let mut other = bus.subscribe(&unique_topic()).await.unwrap();
    for i in 0..50u8 {
        bus.publish(&topic, Bytes::from(vec![i])).await.unwrap();
    }
    // Then batches (a Redis pipeline each), interleaved with single messages.
    let batch = |from: u8| {
        (from..from + 40)
            .map(|i| Bytes::from(vec![i]))
            .collect::<Vec<_>>()
    };
    bus.publish_all(&topic, &batch(50)).await.unwrap();
    bus.publish(&topic, Bytes::from(vec![90])).await.unwrap();
    bus.publish_all(&topic, &batch(91)).await.unwrap();
    bus.publish_all(&topic, &[]).await.unwrap();
    bus.publish_all(&topic, &[Bytes::from(vec![131])])
        .await
        .unwrap();
    for i in 0..132u8 {
        assert_eq!(next_message(&mut a).await, Bytes::from(vec![i]), "in order");
        assert_eq!(next_message(&mut b).await, Bytes::from(vec![i]));
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), other.recv())
            .await
            .is_err(),
        "other topics hear nothing"
    );
}

#[tokio::test]
async fn in_process_bus_delivers_in_order_to_every_subscriber() {
    fan_out(Arc::new(InProcessBus::new())).await;
}

#[tokio::test]
async fn redis_bus_delivers_in_order_to_every_subscriber() {
    fan_out(
        connect("redis://127.0.0.1:6379")
            .await
            .expect("the machine's redis"),
    )
    .await;
}

#[tokio::test]
async fn nats_bus_delivers_in_order_to_every_subscriber() {
    fan_out(
        connect("nats://127.0.0.1:4222")
            .await
            .expect("the machine's nats"),
    )
    .await;
}

#[tokio::test]
async fn unknown_bus_urls_are_refused() {
    let Err(e) = connect("carrier-pigeon://u:secret@x").await else {
        panic!("a carrier pigeon is no bus")
    };
    assert!(matches!(e, BusError::UnsupportedUrl { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "unsupported bus URL \"carrier-pigeon://u:***@x\": use redis://host:port or nats://host:port"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process of our own, killed on drop.
struct Private(Child);

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis(port: u16) -> Private {
    Private(
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed"),
    )
}

fn start_nats(port: u16) -> Private {
    Private(
        Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed"),
    )
}

async fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

/// Kills the bus server under a live subscription, restarts it, and expects a Resync
/// followed by working delivery.
async fn survives_restart(
    start: fn(u16) -> Private,
    url: String,
    port: u16,
    bus_for: impl AsyncFn(&str) -> Arc<dyn Bus>,
) {
    let server = start(port);
    wait_for_port(port).await;
    let bus = bus_for(&url).await;
    let topic = unique_topic();
    let mut rx = bus.subscribe(&topic).await.unwrap();
    bus.publish(&topic, Bytes::from_static(b"before"))
        .await
        .unwrap();
    assert_eq!(next_message(&mut rx).await, Bytes::from_static(b"before"));

    drop(server);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // During the outage a publish fails (Redis) or is buffered by the client (NATS);
    // either way, nothing may break.
    let _ = bus.publish(&topic, Bytes::from_static(b"during")).await;
    let _server = start(port);
    wait_for_port(port).await;

    // The subscriber is told it may have missed messages...
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("a resync in time")
        {
            Some(BusEvent::Resync) => break,
            Some(BusEvent::Message(_)) => continue,
            None => panic!("subscription ended"),
        }
    }
    // ...and publishing works again once the publisher has reconnected.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if bus
            .publish(&topic, Bytes::from_static(b"after"))
            .await
            .is_ok()
        {
            while let Ok(Some(event)) =
                tokio::time::timeout(Duration::from_millis(500), rx.recv()).await
            {
                match event {
                    BusEvent::Message(m) if m == Bytes::from_static(b"after") => return,
                    BusEvent::Message(m) => {
                        assert_eq!(m, Bytes::from_static(b"during"), "only known messages")
                    }
                    BusEvent::Resync => {}
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery resumed in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn redis_bus_resyncs_after_the_server_restarts() {
    let port = free_port();
    survives_restart(
        start_redis,
        format!("redis://127.0.0.1:{port}"),
        port,
        async |url: &str| Arc::new(RedisBus::connect(url).await.unwrap()) as Arc<dyn Bus>,
    )
    .await;
}

#[tokio::test]
async fn nats_bus_resyncs_after_the_server_restarts() {
    let port = free_port();
    survives_restart(
        start_nats,
        format!("nats://127.0.0.1:{port}"),
        port,
        async |url: &str| Arc::new(NatsBus::connect(url).await.unwrap()) as Arc<dyn Bus>,
    )
    .await;
}

/// A node started with a wrong bus URL, or before its bus, stops at once with an error
/// naming the URL (rather than waiting silently, or retrying for many seconds).
#[tokio::test]
async fn a_bus_that_is_not_there_fails_at_once_naming_its_url() {
    for scheme in ["redis", "nats"] {
        let url = format!("{scheme}://127.0.0.1:{}", free_port());
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(WAIT, connect(&url))
            .await
            .unwrap_or_else(|_| panic!("{url}: still trying after {WAIT:?}"));
        let Err(e) = result else {
            panic!("{url}: connected to nothing")
        };
        assert!(e.to_string().contains(&url), "{e}");
        assert!(matches!(e, BusError::Connect { .. }), "{e:?}");
        assert!(
            e.to_string().contains("check that the bus server runs"),
            "{e}"
        );
        // The library's own error is kept, typed, as the source.
        let source = std::error::Error::source(&e).expect("the cause is kept");
        let typed = match scheme {
            "redis" => source.downcast_ref::<redis::RedisError>().is_some(),
            _ => source.downcast_ref::<async_nats::ConnectError>().is_some(),
        };
        assert!(typed, "{url}: the source is {source:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{url}: took {:?}",
            started.elapsed()
        );
    }
}

/// A subscriber that falls so far behind that the bus drops messages for it is told so:
/// a Resync follows, so it refetches instead of missing the dropped ones silently.
async fn falling_behind_is_reported(bus: Arc<dyn Bus>, messages: usize) {
    let topic = unique_topic();
    let mut rx = bus.subscribe(&topic).await.unwrap();
    for i in 0..messages {
        bus.publish(&topic, Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    let mut received = 0;
    loop {
        match tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("events in time")
            .expect("open")
        {
            BusEvent::Message(_) => received += 1,
            BusEvent::Resync => break,
        }
        assert!(
            received < messages,
            "every message arrived: nothing dropped?"
        );
    }
}

#[tokio::test]
async fn a_nats_subscriber_that_falls_behind_is_told_to_resync() {
    let port = free_port();
    let _server = start_nats(port);
    wait_for_port(port).await;
    let bus = connect(&format!("nats://127.0.0.1:{port}")).await.unwrap();
    // More than the client holds for a subscription (64 Ki) and the bus's own buffer.
    falling_behind_is_reported(bus, 100_000).await;
}
