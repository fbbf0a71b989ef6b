//! ShareDB fan-out and durable ops, with the generator's own ShareDB client
//! ([`crate::sharedb_client`]): the deepstream fan-out's shape ([`crate::fanout`]) in
//! ShareDB's protocol, against recordsync's `/sharedb` and ShareDB 7 alike.
//!
//! - N writers, M subscribers, K documents `{prefix}/{i}`, S subscriptions per
//!   subscriber; writer `w` owns the documents `i` with `i mod N == w`, subscribes to
//!   them (`bs`), creates those that do not exist, then submits json0 ops with `src`,
//!   `seq` and `v`. Subscribers connect after the creates, so they see only edits.
//! - As the npm client does, a writer has at most one op in flight per document (the
//!   next waits for the acknowledgement), and at most `window` over all its documents.
//!   Unthrottled it keeps its window full; at a fixed rate it sends on schedule, open
//!   loop, and a tick that finds no document free is counted as late.
//! - Each op replaces field `t` with its send time (`[{p:["t"], od, oi}]`); subscribers
//!   read it back for the write-to-delivery latency. Completeness as in the deepstream
//!   fan-out: after the writers stop each subscriber must reach each document's last
//!   version; `missing` = versions expected − versions received.
//! - The durable scenario is this with no subscribers, one document per writer and one
//!   op in flight each.
//!
//! An op's version: the snapshot version it applies to; once applied the document is at
//! `v + 1`, and a subscriber that has version `n` expects the op with `v == n` next.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, watch};
use tokio::time::{MissedTickBehavior, sleep_until};
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::client::{self, Result};
use crate::fanout::{FanoutParams, FanoutResult, MEASURE, STOP, Shared, measure};
use crate::histogram::Histogram;
use crate::procstat::Watched;
use crate::progress::Progress;
use crate::sharedb_client::{self as sdb, Client};

/// A throttled op sent later than this after it was due is counted as behind schedule.
const BEHIND: Duration = Duration::from_millis(5);

/// Per document: the version it has after the last op sent, once the writers stopped.
#[derive(Clone)]
struct Finals {
    versions: Arc<Vec<u64>>,
    deadline: Instant,
}

/// Runs the scenario against the ShareDB endpoint at `ws://addr{path}`; `p.prefix` is the
/// collection. `server` is whose CPU is counted.
pub async fn run(
    addr: SocketAddr,
    path: &str,
    server: &Watched,
    p: &FanoutParams,
    progress: &Progress,
) -> Result<FanoutResult> {
    if p.records < p.writers.max(1) || p.subscriptions > p.records {
        return Err("fan-out needs records >= writers and subscriptions <= records".into());
    }
    let setup_start = Instant::now();
    let shared = Shared::new();
    let collection = p.prefix.clone();

    // Writers first: they create the documents, so that subscribers start from v >= 1.
    progress.say(&format!(
        "connecting {} ShareDB writers, then {} subscribers x {} documents",
        p.writers, p.subscribers, p.subscriptions
    ));
    let gate = Arc::new(Semaphore::new(64));
    let mut writer_setups = Vec::with_capacity(p.writers);
    for w in 0..p.writers {
        let mine: Vec<usize> = (0..p.records).filter(|r| r % p.writers == w).collect();
        let (gate, path, c) = (gate.clone(), path.to_owned(), collection.clone());
        writer_setups.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            let mut client = Client::connect(addr, &path, 16 * 1024).await?;
            let ids: Vec<String> = mine.iter().map(usize::to_string).collect();
            let versions = client.subscribe(&c, &ids).await?;
            let mut docs = Vec::with_capacity(mine.len());
            for (i, id) in mine.iter().zip(&ids) {
                let mut v = *versions.get(id).ok_or("no snapshot in the bs reply")?;
                if v == 0 {
                    client
                        .create_and_wait(&c, id, Some(0), r#"{"t":0}"#)
                        .await?;
                    v = 1;
                }
                docs.push(Doc {
                    index: *i,
                    id: id.clone(),
                    version: v,
                    stamp: 0,
                    busy: false,
                    dead: false,
                });
            }
            Ok::<_, client::Error>((client, docs))
        }));
    }
    let mut writers = Vec::with_capacity(p.writers);
    for w in writer_setups {
        writers.push(w.await??);
    }
    let mut sub_setups = Vec::with_capacity(p.subscribers);
    for s in 0..p.subscribers {
        let mine: Vec<String> = (0..p.subscriptions)
            .map(|j| ((s * p.subscriptions + j) % p.records).to_string())
            .collect();
        let (gate, path, c) = (gate.clone(), path.to_owned(), collection.clone());
        sub_setups.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            let mut client = Client::connect(addr, &path, 64 * 1024).await?;
            let versions = client.subscribe(&c, &mine).await?;
            Ok::<_, client::Error>((client, versions))
        }));
    }
    let mut subs = Vec::with_capacity(p.subscribers);
    for s in sub_setups {
        subs.push(s.await??);
    }
    let mut initial = vec![0u64; p.records];
    for (_, docs) in &writers {
        for d in docs {
            initial[d.index] = d.version;
        }
    }
    let setup_seconds = setup_start.elapsed().as_secs_f64();

    let (finals_tx, finals_rx) = watch::channel::<Option<Finals>>(None);
    let sub_tasks: Vec<_> = subs
        .into_iter()
        .map(|(client, versions)| {
            tokio::spawn(subscriber(
                client,
                versions,
                shared.clone(),
                finals_rx.clone(),
            ))
        })
        .collect();
    let writer_tasks: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(w, (client, docs))| {
            tokio::spawn(writer(
                client,
                w,
                docs,
                collection.clone(),
                shared.clone(),
                p.clone(),
            ))
        })
        .collect();

    let mut result = measure(p, server, &shared, progress, "ops", setup_seconds).await;
    let mut finals = initial;
    for t in writer_tasks {
        let w = t.await?;
        result.acked += w.acked_in_window;
        result.writes_sent += w.sent;
        result.write_errors += w.errors;
        result.unacknowledged += w.unacknowledged;
        result.late_writes += w.late;
        result.behind_schedule += w.behind;
        result.ack.merge(&w.ack);
        for (i, v) in w.finals {
            finals[i] = v;
        }
    }
    finals_tx.send_replace(Some(Finals {
        versions: Arc::new(finals),
        deadline: Instant::now() + p.drain,
    }));
    for t in sub_tasks {
        let s = t.await?;
        result.deliveries += s.in_window;
        result.expected += s.expected;
        result.received += s.received;
        result.duplicates += s.duplicates;
        result.connection_errors += u64::from(s.failed);
        result.delivery.merge(&s.latency);
    }
    result.missing = result.expected.saturating_sub(result.received);
    Ok(result)
}

/// A writer's document.
struct Doc {
    index: usize,
    id: String,
    /// The version the next op applies to.
    version: u64,
    /// The value of `t` now (the last op's `oi`), the next op's `od`.
    stamp: u64,
    /// An op is in flight.
    busy: bool,
    /// An op was refused: the document's version is no longer known, so it is left alone.
    dead: bool,
}

struct WriterStats {
    sent: u64,
    acked_in_window: u64,
    errors: u64,
    unacknowledged: u64,
    late: u64,
    behind: u64,
    ack: Histogram,
    /// Per document index: its version after the last op sent.
    finals: Vec<(usize, u64)>,
}

/// One op in flight: its document (index into the writer's list) and send time (µs).
struct InFlight {
    doc: usize,
    sent: u64,
}

async fn writer(
    client: Client,
    index: usize,
    mut docs: Vec<Doc>,
    c: String,
    shared: Arc<Shared>,
    p: FanoutParams,
) -> WriterStats {
    let mut stats = WriterStats {
        sent: 0,
        acked_in_window: 0,
        errors: 0,
        unacknowledged: 0,
        late: 0,
        behind: 0,
        ack: Histogram::default(),
        finals: Vec::new(),
    };
    if docs.is_empty() {
        return stats;
    }
    let Client {
        ws, src, mut seq, ..
    } = client;
    let (mut sink, mut stream) = ws.split();
    let mut phase_rx = shared.phase.subscribe();
    let mut in_flight: HashMap<u64, InFlight> = HashMap::new();
    let mut next_doc = 0usize;
    let mut drain_deadline: Option<Instant> = None;
    let period = p
        .rate
        .map(|r| Duration::from_secs_f64(p.writers as f64 / r.max(1e-3)));
    let mut ticker = period.map(|period| {
        let offset = period.mul_f64(index as f64 / p.writers.max(1) as f64);
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
        t
    });
    // The next document free for an op, round robin; `None` if every one is busy.
    let pick = |docs: &[Doc], next: &mut usize| -> Option<usize> {
        for _ in 0..docs.len() {
            let i = *next;
            *next = (*next + 1) % docs.len();
            if !docs[i].busy && !docs[i].dead {
                return Some(i);
            }
        }
        None
    };
    let frame_for = |doc: &mut Doc, seq: u64, now: u64| -> Frame {
        let text = sdb::stamp_op(&c, &doc.id, doc.version, &src, seq, doc.stamp, now);
        doc.busy = true;
        doc.stamp = now;
        doc.version += 1;
        Frame::text(text)
    };

    loop {
        let stopping = *phase_rx.borrow_and_update() == STOP;
        if stopping && drain_deadline.is_none() {
            drain_deadline = Some(Instant::now() + p.drain);
        }
        if stopping && in_flight.is_empty() {
            break;
        }
        if !stopping && ticker.is_none() && in_flight.len() < p.window {
            let mut fed = 0;
            let mut failed = false;
            while in_flight.len() < p.window {
                let Some(i) = pick(&docs, &mut next_doc) else {
                    break;
                };
                let t = client::micros_since(shared.epoch, Instant::now());
                let frame = frame_for(&mut docs[i], seq, t);
                in_flight.insert(seq, InFlight { doc: i, sent: t });
                seq += 1;
                stats.sent += 1;
                if sink.feed(frame).await.is_err() {
                    failed = true;
                    break;
                }
                fed += 1;
            }
            if failed || (fed > 0 && sink.flush().await.is_err()) {
                break;
            }
        }
        let deadline = drain_deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Frame::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    _ => break,
                };
                let Ok(m) = sdb::parse(text.as_str()) else { continue };
                if m.a.as_deref() != Some("op") || m.src.as_deref().is_some_and(|s| s != src) {
                    continue;
                }
                let Some(flight) = m.seq.and_then(|s| in_flight.remove(&s)) else { continue };
                let doc = &mut docs[flight.doc];
                doc.busy = false;
                if m.is_ack() {
                    if shared.phase() == MEASURE {
                        stats.acked_in_window += 1;
                        shared.window_acks.fetch_add(1, Ordering::Relaxed);
                        let now = client::micros_since(shared.epoch, Instant::now());
                        stats.ack.record(now.saturating_sub(flight.sent));
                    }
                } else {
                    // Refused, so not applied: its version was never reached.
                    stats.errors += 1;
                    doc.version -= 1;
                    doc.dead = true;
                }
            }
            due = async { ticker.as_mut().expect("guarded").tick().await }, if ticker.is_some() && !stopping => {
                let free = if in_flight.len() < p.window { pick(&docs, &mut next_doc) } else { None };
                let Some(i) = free else {
                    stats.late += 1;
                    continue;
                };
                // Timed from when it leaves (see the deepstream fan-out).
                let now = Instant::now();
                if now.saturating_duration_since(due.into_std()) > BEHIND {
                    stats.behind += 1;
                }
                let t = client::micros_since(shared.epoch, now);
                let frame = frame_for(&mut docs[i], seq, t);
                in_flight.insert(seq, InFlight { doc: i, sent: t });
                seq += 1;
                stats.sent += 1;
                if sink.send(frame).await.is_err() {
                    break;
                }
            }
            changed = phase_rx.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = sleep_until(deadline.into()) => break,
        }
    }
    stats.unacknowledged = in_flight.len() as u64;
    stats.finals = docs.iter().map(|d| (d.index, d.version)).collect();
    let _ = sink.close().await;
    stats
}

struct Slot {
    start: u64,
    /// The version the subscriber's copy is at.
    at: u64,
    received: u64,
}

struct SubscriberStats {
    in_window: u64,
    expected: u64,
    received: u64,
    duplicates: u64,
    failed: bool,
    latency: Histogram,
}

async fn subscriber(
    client: Client,
    versions: HashMap<String, u64>,
    shared: Arc<Shared>,
    mut finals_rx: watch::Receiver<Option<Finals>>,
) -> SubscriberStats {
    let mut slots: HashMap<usize, Slot> = versions
        .iter()
        .filter_map(|(id, v)| {
            Some((
                id.parse().ok()?,
                Slot {
                    start: *v,
                    at: *v,
                    received: 0,
                },
            ))
        })
        .collect();
    let mut stats = SubscriberStats {
        in_window: 0,
        expected: 0,
        received: 0,
        duplicates: 0,
        failed: false,
        latency: Histogram::default(),
    };
    let (_sink, mut stream) = client.ws.split();
    let mut finals: Option<Finals> = None;
    let mut incomplete = usize::MAX;
    let far = Instant::now() + Duration::from_secs(3600);
    loop {
        let deadline = finals.as_ref().map_or(far, |f| f.deadline);
        tokio::select! {
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Frame::Text(text))) => text,
                    Some(Ok(Frame::Close(_))) | Some(Err(_)) | None => {
                        stats.failed = true;
                        break;
                    }
                    Some(Ok(_)) => continue,
                };
                let Ok(m) = sdb::parse(text.as_str()) else { continue };
                if !m.is_remote_edit() {
                    continue;
                }
                let now = client::micros_since(shared.epoch, Instant::now());
                let (Some(i), Some(v)) = (m.d.as_deref().and_then(|d| d.parse::<usize>().ok()), m.v) else {
                    continue;
                };
                let Some(slot) = slots.get_mut(&i) else { continue };
                if v < slot.at {
                    stats.duplicates += 1;
                    continue;
                }
                let before = slot.at;
                slot.at = v + 1;
                slot.received += 1;
                if shared.phase() == MEASURE {
                    stats.in_window += 1;
                    shared.window_deliveries.fetch_add(1, Ordering::Relaxed);
                    if let Some(t) = m.stamp() {
                        stats.latency.record(now.saturating_sub(t));
                    }
                }
                if let Some(f) = &finals
                    && before < f.versions[i]
                    && slot.at >= f.versions[i]
                {
                    incomplete = incomplete.saturating_sub(1);
                }
            }
            changed = finals_rx.changed(), if finals.is_none() => {
                if changed.is_err() {
                    break;
                }
                finals = finals_rx.borrow().clone();
                if let Some(f) = &finals {
                    incomplete = slots.iter().filter(|(i, s)| s.at < f.versions[**i]).count();
                }
            }
            _ = sleep_until(deadline.into()) => break,
        }
        if incomplete == 0 {
            break;
        }
    }
    let finals = finals_rx.borrow().clone();
    if let Some(f) = finals {
        for (i, s) in &slots {
            stats.expected += f.versions[*i].saturating_sub(s.start);
            stats.received += s.received;
        }
    }
    stats
}
