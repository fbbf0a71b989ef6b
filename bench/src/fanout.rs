//! Fan-out: N writer connections write K records, M subscriber connections each follow S
//! of them. Also the durable-write scenario, which is fan-out with no subscribers and one
//! write in flight per writer.
//!
//! Writer `w` owns the records whose index is `w` modulo N, so its versions never
//! conflict; it sends acknowledged UPDATEs (`version` = last + 1), either as fast as its
//! window of unacknowledged writes allows, or at a fixed total rate (open loop: writes
//! leave on schedule whether or not earlier ones were answered; one that leaves more than
//! 5 ms late, or finds its window full, is counted, so a stalled generator is visible).
//!
//! Against a cluster (several addresses), writer `w` connects to node `w mod n` and
//! subscriber `s` to node `(s * S / K) mod n`: subscribers that follow the same records are
//! `K / S` apart, so each record's subscribers are spread evenly over the nodes, and every
//! write reaches some subscribers on its own node and the rest through the bus.
//!
//! Every update's data starts with its send time; a subscriber reads it back for the
//! write-to-delivery latency. Completeness is counted per subscriber and record: after
//! the writers stop, each subscriber must see the record's last written version, and
//! `missing` = versions expected − distinct versions received. Nothing is sampled.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, watch};
use tokio::time::{MissedTickBehavior, sleep_until};
use tokio_tungstenite::tungstenite::Message as Frame;

use recordsync_deepstream_protocol::{Message, RecordAction, binary};

use crate::client::{self, Result, Ws};
use crate::histogram::Histogram;
use crate::procstat::{self, Watched};
use crate::progress::Progress;

#[derive(Debug, Clone)]
pub struct FanoutParams {
    pub writers: usize,
    pub subscribers: usize,
    pub records: usize,
    /// Records each subscriber follows.
    pub subscriptions: usize,
    /// Total writes per second; `None`: as fast as the window allows.
    pub rate: Option<f64>,
    /// Unacknowledged writes a writer may have outstanding.
    pub window: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// How long, after the writers stop, acks and deliveries may still arrive.
    pub drain: Duration,
    /// Approximate size of each update's data, in bytes.
    pub payload: usize,
    /// Record names are `{prefix}/{index}`.
    pub prefix: String,
}

#[derive(Debug, Clone, Default)]
pub struct FanoutResult {
    /// Length of the measured window, seconds.
    pub seconds: f64,
    /// Writes acknowledged inside the window.
    pub acked: u64,
    /// Every write sent, and those that were refused or never acknowledged.
    pub writes_sent: u64,
    pub write_errors: u64,
    pub unacknowledged: u64,
    /// Writes a throttled writer could not send on time because its window was full.
    pub late_writes: u64,
    /// Throttled writes the generator sent more than 5 ms after they were due.
    pub behind_schedule: u64,
    /// Deliveries received inside the window.
    pub deliveries: u64,
    pub expected: u64,
    pub received: u64,
    pub missing: u64,
    pub duplicates: u64,
    /// Subscriber connections that failed or were closed before the end.
    pub connection_errors: u64,
    pub ack: Histogram,
    pub delivery: Histogram,
    pub server_cpu: f64,
    /// `server_cpu` by group of processes (see [`Watched`]): the server alone, or a
    /// cluster's nodes, bus server and database backends.
    pub cpu_parts: Vec<(&'static str, f64)>,
    pub generator_cpu: f64,
    pub server_rss: u64,
    pub setup_seconds: f64,
}

impl FanoutResult {
    pub fn acked_per_second(&self) -> f64 {
        self.acked as f64 / self.seconds
    }
    pub fn deliveries_per_second(&self) -> f64 {
        self.deliveries as f64 / self.seconds
    }
    pub fn deliveries_per_cpu_second(&self) -> f64 {
        self.deliveries as f64 / self.server_cpu.max(1e-9)
    }
    pub fn acked_per_cpu_second(&self) -> f64 {
        self.acked as f64 / self.server_cpu.max(1e-9)
    }
}

/// A throttled write sent later than this after it was due is counted as behind schedule.
const BEHIND: Duration = Duration::from_millis(5);

/// The phases of a fan-out run, told to every client task through [`Shared::phase`].
const WARMUP: u8 = 0;
pub(crate) const MEASURE: u8 = 1;
pub(crate) const STOP: u8 = 2;

/// What a fan-out run's client tasks share (deepstream's and ShareDB's alike).
pub(crate) struct Shared {
    pub epoch: Instant,
    pub phase: watch::Sender<u8>,
    /// Deliveries inside the window, for the progress line.
    pub window_deliveries: AtomicU64,
    pub window_acks: AtomicU64,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            epoch: Instant::now(),
            phase: watch::channel(WARMUP).0,
            window_deliveries: AtomicU64::new(0),
            window_acks: AtomicU64::new(0),
        })
    }

    pub fn phase(&self) -> u8 {
        *self.phase.borrow()
    }
}

/// Warms up for `p.warmup`, then measures for `p.duration` with a progress line each
/// second (`acked`: what the writers' acknowledgements count, "writes" or "ops"), then
/// tells every client task to stop. Returns the window's time, CPU and memory; the caller
/// adds what its clients counted.
pub(crate) async fn measure(
    p: &FanoutParams,
    server: &Watched,
    shared: &Shared,
    progress: &Progress,
    acked: &str,
    setup_seconds: f64,
) -> FanoutResult {
    tokio::time::sleep(p.warmup).await;
    let cpu0 = server.find().read();
    let gen0 = procstat::self_cpu_seconds();
    let t0 = Instant::now();
    shared.phase.send_replace(MEASURE);
    let end = t0 + p.duration;
    let mut last = (t0, 0u64, 0u64);
    while Instant::now() < end {
        let next = (Instant::now() + Duration::from_secs(1)).min(end);
        sleep_until(next.into()).await;
        let d = shared.window_deliveries.load(Ordering::Relaxed);
        let a = shared.window_acks.load(Ordering::Relaxed);
        let dt = last.0.elapsed().as_secs_f64().max(1e-9);
        progress.tick(&format!(
            "{:>5.1}s  {:>9.0} acked {acked}/s  {:>10.0} deliveries/s",
            t0.elapsed().as_secs_f64(),
            (a - last.2) as f64 / dt,
            (d - last.1) as f64 / dt
        ));
        last = (Instant::now(), d, a);
    }
    // Look the processes up (which may run psql) before the window closes, read them after.
    let found = server.find();
    shared.phase.send_replace(STOP);
    let seconds = t0.elapsed().as_secs_f64();
    let cpu_parts = found.read().since(&cpu0);
    let server_cpu = cpu_parts.iter().map(|(_, c)| c).sum();
    let generator_cpu = procstat::self_cpu_seconds() - gen0;
    let server_rss = server.rss_bytes();
    progress.done_ticking();
    FanoutResult {
        seconds,
        server_cpu,
        cpu_parts,
        generator_cpu,
        server_rss,
        setup_seconds,
        ..Default::default()
    }
}

/// Per record: the version written last, known once the writers have stopped.
#[derive(Clone)]
struct Finals {
    versions: Arc<Vec<i64>>,
    deadline: Instant,
}

fn record_index(name: &str) -> Option<usize> {
    name.rsplit('/').next()?.parse().ok()
}

/// Which of `nodes` addresses subscriber `s` connects to (see the module docs).
pub fn subscriber_node(s: usize, p: &FanoutParams, nodes: usize) -> usize {
    (s * p.subscriptions / p.records.max(1)) % nodes.max(1)
}

/// Runs the scenario against the server at `addr`.
pub async fn run(
    addr: SocketAddr,
    path: &str,
    server: &Watched,
    p: &FanoutParams,
    progress: &Progress,
) -> Result<FanoutResult> {
    run_on(&[addr], path, server, p, progress).await
}

/// Runs the scenario against the cluster whose nodes are `addrs` (see the module docs
/// for who connects where).
pub async fn run_on(
    addrs: &[SocketAddr],
    path: &str,
    server: &Watched,
    p: &FanoutParams,
    progress: &Progress,
) -> Result<FanoutResult> {
    if p.records < p.writers.max(1) || p.subscriptions > p.records {
        return Err("fan-out needs records >= writers and subscriptions <= records".into());
    }
    if addrs.is_empty() {
        return Err("fan-out needs a server address".into());
    }
    let setup_start = Instant::now();
    let shared = Shared::new();
    let names: Vec<String> = (0..p.records)
        .map(|i| format!("{}/{i}", p.prefix))
        .collect();

    // Connect everyone first: subscribers, then writers (who subscribe to their own
    // records to learn the versions to write).
    progress.say(&format!(
        "connecting {} subscribers x {} records and {} writers",
        p.subscribers, p.subscriptions, p.writers
    ));
    let gate = Arc::new(Semaphore::new(64));
    let mut sub_setups = Vec::with_capacity(p.subscribers);
    for s in 0..p.subscribers {
        let mine: Vec<String> = (0..p.subscriptions)
            .map(|j| names[(s * p.subscriptions + j) % p.records].clone())
            .collect();
        let gate = gate.clone();
        let path = path.to_owned();
        let addr = addrs[subscriber_node(s, p, addrs.len())];
        sub_setups.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            client::ready_client(addr, &path, 64 * 1024, &mine).await
        }));
    }
    let mut writer_setups = Vec::with_capacity(p.writers);
    for w in 0..p.writers {
        let mine: Vec<String> = (0..p.records)
            .filter(|r| r % p.writers == w)
            .map(|r| names[r].clone())
            .collect();
        let gate = gate.clone();
        let path = path.to_owned();
        let addr = addrs[w % addrs.len()];
        writer_setups.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            let (ws, versions) = client::ready_client(addr, &path, 16 * 1024, &mine).await?;
            Ok::<_, client::Error>((ws, mine, versions))
        }));
    }
    let mut subs = Vec::with_capacity(p.subscribers);
    for s in sub_setups {
        subs.push(s.await??);
    }
    let mut writers = Vec::with_capacity(p.writers);
    for w in writer_setups {
        writers.push(w.await??);
    }
    let mut initial = vec![0i64; p.records];
    for (_, mine, versions) in &writers {
        for name in mine {
            let i = record_index(name).ok_or("bad record name")?;
            initial[i] = i64::from(*versions.get(name).ok_or("no READ_RESPONSE")?);
        }
    }
    let setup_seconds = setup_start.elapsed().as_secs_f64();

    let (finals_tx, finals_rx) = watch::channel::<Option<Finals>>(None);
    let sub_tasks: Vec<_> = subs
        .into_iter()
        .map(|(ws, versions)| {
            let shared = shared.clone();
            let finals = finals_rx.clone();
            tokio::spawn(subscriber(ws, versions, shared, finals))
        })
        .collect();
    let pad = "x".repeat(p.payload.saturating_sub(24));
    let writer_tasks: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(w, (ws, mine, versions))| {
            let records: Vec<(String, i32)> = mine
                .iter()
                .map(|n| (n.clone(), versions.get(n).copied().unwrap_or(0)))
                .collect();
            let shared = shared.clone();
            let params = p.clone();
            let pad = pad.clone();
            tokio::spawn(writer(ws, w, records, shared, params, pad))
        })
        .collect();

    let mut result = measure(p, server, &shared, progress, "writes", setup_seconds).await;
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
        for (i, v) in w.last_sent {
            finals[i] = i64::from(v);
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

struct Slot {
    start: i64,
    last: i64,
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
    ws: Ws,
    versions: HashMap<String, i32>,
    shared: Arc<Shared>,
    mut finals_rx: watch::Receiver<Option<Finals>>,
) -> SubscriberStats {
    let mut slots: HashMap<usize, Slot> = versions
        .iter()
        .filter_map(|(name, v)| {
            let v = i64::from(*v);
            Some((
                record_index(name)?,
                Slot {
                    start: v,
                    last: v,
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
    let (_sink, mut stream) = ws.split();
    let mut finals: Option<Finals> = None;
    // Records not yet at their final version; known once `finals` is.
    let mut incomplete = usize::MAX;
    let far = Instant::now() + Duration::from_secs(3600);
    loop {
        let deadline = finals.as_ref().map_or(far, |f| f.deadline);
        tokio::select! {
            frame = stream.next() => {
                let bytes = match frame {
                    Some(Ok(Frame::Binary(bytes))) => bytes,
                    Some(Ok(Frame::Close(_))) | Some(Err(_)) | None => {
                        stats.failed = true;
                        break;
                    }
                    Some(Ok(_)) => continue,
                };
                let Ok(Message::Record(m)) = binary::decode(&bytes, usize::MAX) else {
                    continue;
                };
                if m.action != RecordAction::Update as i32 {
                    continue;
                }
                let now = client::micros_since(shared.epoch, Instant::now());
                let (Some(i), Some(v)) = (m.name.as_deref().and_then(record_index), m.version) else {
                    continue;
                };
                let Some(slot) = slots.get_mut(&i) else { continue };
                let v = i64::from(v);
                if v <= slot.last {
                    stats.duplicates += 1;
                    continue;
                }
                let previous = slot.last;
                slot.last = v;
                slot.received += 1;
                if shared.phase() == MEASURE {
                    stats.in_window += 1;
                    shared.window_deliveries.fetch_add(1, Ordering::Relaxed);
                    if let Some(t) = m.data.as_deref().and_then(client::stamp) {
                        stats.latency.record(now.saturating_sub(t));
                    }
                }
                if let Some(f) = &finals
                    && previous < f.versions[i]
                    && v >= f.versions[i]
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
                    incomplete = slots.iter().filter(|(i, s)| s.last < f.versions[**i]).count();
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
            stats.expected += (f.versions[*i] - s.start).max(0) as u64;
            stats.received += s.received;
        }
    }
    stats
}

struct WriterStats {
    sent: u64,
    acked_in_window: u64,
    errors: u64,
    unacknowledged: u64,
    late: u64,
    behind: u64,
    ack: Histogram,
    /// Per record index: the last version this writer sent.
    last_sent: Vec<(usize, i32)>,
}

async fn writer(
    ws: Ws,
    index: usize,
    records: Vec<(String, i32)>,
    shared: Arc<Shared>,
    p: FanoutParams,
    pad: String,
) -> WriterStats {
    let mut stats = WriterStats {
        sent: 0,
        acked_in_window: 0,
        errors: 0,
        unacknowledged: 0,
        late: 0,
        behind: 0,
        ack: Histogram::default(),
        last_sent: Vec::new(),
    };
    let mut versions: Vec<i32> = records.iter().map(|(_, v)| *v).collect();
    if records.is_empty() {
        return stats;
    }
    let (mut sink, mut stream) = ws.split();
    let mut phase_rx = shared.phase.subscribe();
    // correlation id -> send time (µs since the epoch)
    let mut in_flight: HashMap<u64, u64> = HashMap::new();
    let mut next_id: u64 = 0;
    let mut next_record = 0usize;
    let mut drain_deadline: Option<Instant> = None;
    let period = p
        .rate
        .map(|r| Duration::from_secs_f64(p.writers as f64 / r.max(1e-3)));
    let mut ticker = period.map(|period| {
        // Stagger the writers over one period so that they do not fire together.
        let offset = period.mul_f64(index as f64 / p.writers.max(1) as f64);
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
        t
    });
    let mut failed = false;

    loop {
        let stopping = *phase_rx.borrow_and_update() == STOP;
        if stopping && drain_deadline.is_none() {
            drain_deadline = Some(Instant::now() + p.drain);
        }
        if stopping && in_flight.is_empty() {
            break;
        }
        if !stopping && ticker.is_none() && in_flight.len() < p.window {
            // Unthrottled: refill the window, one flush for the lot.
            let mut fed = 0;
            while in_flight.len() < p.window {
                let r = next_record;
                next_record = (next_record + 1) % records.len();
                versions[r] += 1;
                let t = client::micros_since(shared.epoch, Instant::now());
                let frame = client::update(&records[r].0, versions[r], next_id, t, &pad);
                in_flight.insert(next_id, t);
                next_id += 1;
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
                let bytes = match frame {
                    Some(Ok(Frame::Binary(bytes))) => bytes,
                    Some(Ok(_)) => continue,
                    _ => break,
                };
                let Ok(Message::Record(m)) = binary::decode(&bytes, usize::MAX) else { continue };
                let Some(id) = m.correlation_id.as_deref().and_then(|c| c.parse::<u64>().ok()) else { continue };
                let Some(sent) = in_flight.remove(&id) else { continue };
                if m.action == RecordAction::WriteAcknowledgement as i32 && m.is_error != Some(true) {
                    if shared.phase() == MEASURE {
                        stats.acked_in_window += 1;
                        shared.window_acks.fetch_add(1, Ordering::Relaxed);
                        let now = client::micros_since(shared.epoch, Instant::now());
                        stats.ack.record(now.saturating_sub(sent));
                    }
                } else {
                    stats.errors += 1;
                }
            }
            due = async { ticker.as_mut().expect("guarded").tick().await }, if ticker.is_some() && !stopping => {
                if in_flight.len() >= p.window {
                    stats.late += 1;
                    continue;
                }
                let r = next_record;
                next_record = (next_record + 1) % records.len();
                versions[r] += 1;
                // Timed from when it goes out: tokio's timer fires up to a millisecond
                // after `due`, and that lateness is the generator's, not the server's.
                // Writes that leave well behind schedule are counted instead.
                let now = Instant::now();
                if now.saturating_duration_since(due.into_std()) > BEHIND {
                    stats.behind += 1;
                }
                let t = client::micros_since(shared.epoch, now);
                in_flight.insert(next_id, t);
                let frame = client::update(&records[r].0, versions[r], next_id, t, &pad);
                next_id += 1;
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
    stats.last_sent = records
        .iter()
        .zip(&versions)
        .filter_map(|((name, _), v)| Some((record_index(name)?, *v)))
        .collect();
    let _ = sink.close().await;
    stats
}
