//! Live-query update latency over the ShareDB front door (not a test): a 100,000-document
//! collection, 1,000 live queries on 10 connections, changes at a steady rate, and the
//! time from each write to each live query's diff (`{a: "q"}`) reaching its client.
//!
//! cargo test -p recordsync-server --release --test live_query_bench -- --ignored --nocapture
//!
//! Settings (environment): `LQ_STORES` (`memory,embedded,postgres`), `LQ_DOCS` (100000),
//! `LQ_QUERIES` (1000, one per group of `LQ_DOCS / LQ_QUERIES` documents), `LQ_SORTED`
//! (every how many queries one is sorted and windowed, `{group, $sort: {n: -1}, $limit:
//! 10}`, the others being `{group}`; 0: none; default 2), `LQ_CONNECTIONS` (10),
//! `LQ_RATE` (changes per second, 20), `LQ_SECONDS` (15).
//!
//! Each change is an in-process engine write (as a deepstream client's update would be) of
//! one random document: a new `n`, and one time in four a new group. A diff is charged to
//! the last write that touched its query's group before the diff arrived (with 1,000
//! groups and tens of writes per second, two writes to one group rarely overlap).
//! PostgreSQL: the test server (`RECORDSYNC_TEST_POSTGRES`), a schema of its own, with the
//! GIN index on `data` so that starting 1,000 queries takes seconds, dropped after.

#![allow(clippy::unwrap_used, reason = "a measurement fails by panicking")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message as Frame;

use recordsync_core::WriteOp;
use recordsync_engine::{Base, Engine, WriteDone, WriteRequest};
use recordsync_server::{Config, Server, StorageKind};
use recordsync_store::postgres::testing::TestSchema;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Settings {
    docs: u64,
    queries: u64,
    sorted_every: u64,
    connections: u64,
    rate: u64,
    seconds: u64,
}

fn data(group: u64, n: u64) -> Value {
    json!({"group": format!("g{group}"), "n": n, "name": format!("user {n}")})
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

async fn write(engine: &Engine, name: &str, value: Value) -> tokio::sync::oneshot::Receiver<bool> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let request = WriteRequest::new(0, WriteOp::Update { data: value }, Base::Next);
    let done = WriteDone::new(move |r| {
        let _ = tx.send(r.is_ok());
    });
    engine.write(name, request, done).await;
    rx
}

async fn load(engine: &Engine, s: &Settings) -> Vec<(u64, u64)> {
    let started = Instant::now();
    let mut state = Vec::with_capacity(s.docs as usize);
    let mut pending = Vec::new();
    for i in 0..s.docs {
        let (group, n) = (i % s.queries, (i * 7919) % 1000);
        state.push((group, n));
        pending.push(write(engine, &format!("users/u{i:06}"), data(group, n)).await);
        if pending.len() == 2000 {
            for rx in pending.drain(..) {
                assert!(rx.await.unwrap(), "a load write failed");
            }
        }
    }
    for rx in pending {
        assert!(rx.await.unwrap(), "a load write failed");
    }
    println!("  loaded {} documents in {:.1?}", s.docs, started.elapsed());
    state
}

/// When each group was last written to.
type LastWrite = Arc<Mutex<Vec<Option<Instant>>>>;

/// When the last diff arrived, in ms since the run's epoch.
type LastDiff = Arc<std::sync::atomic::AtomicU64>;

/// One client connection's live queries: opens them, then records the latency of every
/// diff until told to stop. Returns (latencies, query messages other than diffs).
async fn client(
    addr: String,
    queries: Vec<(u64, Value)>,
    last_write: LastWrite,
    (epoch, last_diff): (Instant, LastDiff),
    groups: u64,
    started: Arc<tokio::sync::Barrier>,
    stop: Arc<tokio::sync::Notify>,
) -> Vec<Duration> {
    let (ws, _) = connect_async(format!("ws://{addr}/sharedb")).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    let mut recv = async move || -> Value {
        loop {
            match rx.next().await.unwrap().unwrap() {
                Frame::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                _ => continue,
            }
        }
    };
    assert_eq!(recv().await["a"], "init");
    tx.send(Frame::text(
        json!({"a": "hs", "id": null, "protocol": 1, "protocolMinor": 2}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(recv().await["a"], "hs");
    let expected = queries.len();
    for (id, q) in &queries {
        tx.send(Frame::text(
            json!({"a": "qs", "id": id, "c": "users", "q": q}).to_string(),
        ))
        .await
        .unwrap();
    }
    let mut replies = 0;
    while replies < expected {
        let m = recv().await;
        assert!(m.get("error").is_none(), "{m}");
        if m["a"] == "qs" {
            replies += 1;
        }
    }
    started.wait().await;
    let mut latencies = Vec::new();
    loop {
        let m = tokio::select! {
            m = recv() => m,
            () = stop.notified() => return latencies,
        };
        if m["a"] != "q" {
            continue;
        }
        last_diff.store(
            epoch.elapsed().as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let group = m["id"].as_u64().unwrap() % groups;
        if let Some(at) = last_write.lock()[group as usize] {
            latencies.push(at.elapsed());
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn measure(label: &str, config: Config, s: &Settings, after_load: impl AsyncFnOnce()) {
    println!("{label}:");
    // The bench's clients send nothing while they listen: no heartbeat cut-off.
    let config = Config {
        port: 0,
        heartbeat_interval: Duration::from_secs(3600),
        ..config
    };
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr().to_string();
    let engine = server.engine();
    tokio::spawn(server.run(std::future::pending()));
    let mut state = load(&engine, s).await;
    after_load().await;

    let last_write: LastWrite = Arc::new(Mutex::new(vec![None; s.queries as usize]));
    let started = Arc::new(tokio::sync::Barrier::new(s.connections as usize + 1));
    let stop = Arc::new(tokio::sync::Notify::new());
    let epoch = Instant::now();
    let last_diff: LastDiff = Arc::default();
    let opening = Instant::now();
    let mut clients = Vec::new();
    for c in 0..s.connections {
        let queries: Vec<(u64, Value)> = (0..s.queries)
            .filter(|q| q % s.connections == c)
            .map(|q| {
                let sorted = s.sorted_every != 0 && q % s.sorted_every == 1;
                let query = if sorted {
                    json!({"group": format!("g{q}"), "$sort": {"n": -1}, "$limit": 10})
                } else {
                    json!({"group": format!("g{q}")})
                };
                (q, query)
            })
            .collect();
        clients.push(tokio::spawn(client(
            addr.clone(),
            queries,
            last_write.clone(),
            (epoch, last_diff.clone()),
            s.queries,
            started.clone(),
            stop.clone(),
        )));
    }
    started.wait().await;
    println!(
        "  {} live queries started in {:.1?}",
        s.queries,
        opening.elapsed()
    );

    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / s.rate as f64));
    let writes = s.rate * s.seconds;
    let window = Instant::now();
    let mut acks = Vec::new();
    for _ in 0..writes {
        tick.tick().await;
        let i = rng.next() % s.docs;
        let (old_group, _) = state[i as usize];
        let group = if rng.next().is_multiple_of(4) {
            rng.next() % s.queries
        } else {
            old_group
        };
        let n = rng.next() % 1000;
        state[i as usize] = (group, n);
        {
            let now = Instant::now();
            let mut last = last_write.lock();
            last[old_group as usize] = Some(now);
            last[group as usize] = Some(now);
        }
        acks.push(write(&engine, &format!("users/u{i:06}"), data(group, n)).await);
    }
    let elapsed = window.elapsed();
    for rx in acks {
        assert!(rx.await.unwrap(), "a write failed");
    }
    // Let the last diffs arrive: until none came for 3 s (at most 120 s).
    let acked = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let last = last_diff.load(std::sync::atomic::Ordering::Relaxed);
        let quiet = epoch.elapsed().saturating_sub(Duration::from_millis(last));
        if quiet >= Duration::from_secs(3) && acked.elapsed() >= Duration::from_secs(3) {
            break;
        }
        if acked.elapsed() >= Duration::from_secs(120) {
            println!("  diffs still arriving 120 s after the last write: stopped");
            break;
        }
    }
    stop.notify_waiters();
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.unwrap());
    }
    all.sort();
    println!(
        "  {writes} writes in {elapsed:.1?}; {} diffs: p50 {:.2?}  p99 {:.2?}  max {:.2?}",
        all.len(),
        pct(&all, 0.5),
        pct(&all, 0.99),
        all.last().copied().unwrap_or_default(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a test"]
async fn live_query_latency() {
    let s = Settings {
        docs: setting("LQ_DOCS", 100_000),
        queries: setting("LQ_QUERIES", 1000),
        sorted_every: setting("LQ_SORTED", 2),
        connections: setting("LQ_CONNECTIONS", 10),
        rate: setting("LQ_RATE", 20),
        seconds: setting("LQ_SECONDS", 15),
    };
    let stores = std::env::var("LQ_STORES").unwrap_or("memory,embedded,postgres".into());
    println!(
        "{} docs, {} live queries (every {} sorted), {} connections, {} writes/s for {} s",
        s.docs, s.queries, s.sorted_every, s.connections, s.rate, s.seconds
    );
    for store in stores.split(',') {
        match store {
            "memory" => {
                let config = Config {
                    storage: StorageKind::Memory,
                    ..Config::default()
                };
                measure("memory", config, &s, async || {}).await;
            }
            "embedded" => {
                let dir = tempfile::tempdir().unwrap();
                let config = Config {
                    storage: StorageKind::Embedded,
                    data_dir: dir.path().to_owned(),
                    ..Config::default()
                };
                measure("embedded", config, &s, async || {}).await;
            }
            "postgres" => {
                let schema = TestSchema::new("live_query_bench");
                let config = Config {
                    storage: StorageKind::Postgres(schema.url()),
                    ..Config::default()
                };
                let records = format!("{}.records", schema.schema());
                measure("postgres (GIN index on data)", config, &s, async || {
                    let (client, connection) = tokio_postgres::connect(
                        &recordsync_store::postgres::testing::test_url(),
                        tokio_postgres::NoTls,
                    )
                    .await
                    .unwrap();
                    tokio::spawn(connection);
                    client
                        .batch_execute(&format!(
                            "CREATE INDEX ON {records} USING gin (data jsonb_path_ops); \
                             ANALYZE {records}"
                        ))
                        .await
                        .unwrap();
                })
                .await;
            }
            other => panic!("unknown store {other:?}"),
        }
    }
}
