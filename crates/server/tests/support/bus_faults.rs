//! Bus fault scenarios shared by the in-process cluster tests (`crates/server/tests/
//! cluster.rs`) and the black-box ones on real binaries (`crates/cli/tests/`): a private
//! redis-server or nats-server the test can kill and restart, and a load of acknowledged
//! writes whose every version is checked in the store and at every node's subscribers.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use recordsync_deepstream_protocol::{RecordAction, RecordMessage};
use recordsync_store::Store;

use super::{RawClient, json_value, update};

/// Which bus a fault test runs on.
#[derive(Debug, Clone, Copy)]
pub enum BusKind {
    Redis,
    Nats,
}

/// A private redis-server or nats-server on a spare port, killed on drop: a test can kill
/// and restart it without touching the machine's shared services.
pub struct PrivateBus {
    child: Option<Child>,
    pub kind: BusKind,
    pub port: u16,
}

impl PrivateBus {
    /// Starts the server on a free port and waits until it accepts connections.
    pub async fn start(kind: BusKind) -> PrivateBus {
        Self::start_at(kind, free_port()).await
    }

    /// Starts the server on `port` (a restart where the nodes expect it).
    pub async fn start_at(kind: BusKind, port: u16) -> PrivateBus {
        let port_text = port.to_string();
        let mut command = match kind {
            BusKind::Redis => {
                let mut c = Command::new("redis-server");
                c.args([
                    "--port",
                    &port_text,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ]);
                c
            }
            // Core NATS is all the bus uses: no JetStream.
            BusKind::Nats => {
                let mut c = Command::new("nats-server");
                c.args(["-a", "127.0.0.1", "-p", &port_text]);
                c
            }
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {kind:?} server (is it installed?): {e}"));
        let bus = PrivateBus {
            child: Some(child),
            kind,
            port,
        };
        wait_for_port(port).await;
        bus
    }

    /// What `--cluster` takes.
    pub fn url(&self) -> String {
        match self.kind {
            BusKind::Redis => format!("redis://127.0.0.1:{}", self.port),
            BusKind::Nats => format!("nats://127.0.0.1:{}", self.port),
        }
    }

    /// SIGKILL: the bus vanishes with whatever it was carrying.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        *self = Self::start_at(self.kind, self.port).await;
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn wait_for_port(port: u16) {
    for _ in 0..200 {
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

/// One subscriber on every node following every record of `names` (each must be new:
/// version 0), and writer `w` on node `w` subscribed to its own records `names[w]`.
pub async fn subscribers_and_writers(
    addrs: &[String],
    names: &[Vec<String>],
) -> (Vec<RawClient>, Vec<RawClient>) {
    let mut subscribers = Vec::new();
    for addr in addrs {
        let mut c = RawClient::connect(addr).await;
        for name in names.iter().flatten() {
            assert_eq!(c.subscribe(name).await.version, Some(0));
        }
        subscribers.push(c);
    }
    let mut writers = Vec::new();
    for (w, mine) in names.iter().enumerate() {
        let mut c = RawClient::connect(&addrs[w]).await;
        for name in mine {
            c.subscribe(name).await;
        }
        writers.push(c);
    }
    (subscribers, writers)
}

/// Writer `w`'s value for version `v` of a record.
pub fn value_of(w: usize, v: i32) -> serde_json::Value {
    json!({ "w": w, "n": v })
}

/// Whether `value` occurs anywhere inside `json` (a journal entry's op, say).
fn holds(json: &serde_json::Value, value: &serde_json::Value) -> bool {
    json == value
        || match json {
            serde_json::Value::Object(m) => m.values().any(|v| holds(v, value)),
            serde_json::Value::Array(a) => a.iter().any(|v| holds(v, value)),
            _ => false,
        }
}

/// Sends versions `from..=to` of each of `names` as acknowledged UPDATEs, without waiting
/// for the acknowledgements (so writes are in flight in the nodes and on the bus).
pub async fn send_writes(c: &mut RawClient, w: usize, names: &[String], from: i32, to: i32) {
    for v in from..=to {
        for name in names {
            c.send(RecordMessage {
                is_write_ack: Some(true),
                correlation_id: Some(format!("{name}#{v}")),
                ..update(name, v, &value_of(w, v).to_string())
            })
            .await;
        }
    }
}

/// Waits for `n` write acknowledgements, noting per record the highest version
/// acknowledged. Anything but an acknowledgement (or an UPDATE, should the writer's node
/// republish its own record after a refetch) fails the test.
pub async fn collect_acks(c: &mut RawClient, n: usize, acked: &mut HashMap<String, i32>) {
    let mut got = 0;
    while got < n {
        let m = c.recv_record().await;
        if m.action == RecordAction::Update as i32 {
            continue;
        }
        got += 1;
        assert_eq!(
            m.action,
            RecordAction::WriteAcknowledgement as i32,
            "every write is acknowledged: {m:?}"
        );
        let id = m.correlation_id.expect("the ack names its write");
        let (name, v) = id.rsplit_once('#').expect("name#version");
        let v: i32 = v.parse().unwrap();
        let best = acked.entry(name.to_owned()).or_default();
        *best = (*best).max(v);
    }
}

/// Two writers' records under `base`: writer `w` owns `{base}/{w}/0..per_writer`, so
/// writes never conflict and every version's value is known.
pub fn records(base: &str, per_writer: usize) -> Vec<Vec<String>> {
    (0..2)
        .map(|w| (0..per_writer).map(|i| format!("{base}/{w}/{i}")).collect())
        .collect()
}

/// A record written under load: its name, the writer that owns it (whose values it
/// holds, see [`value_of`]) and its final version.
#[derive(Debug, Clone)]
pub struct Written {
    pub name: String,
    pub writer: usize,
    pub last: i32,
}

/// Every record of `names` (writer `w` owns `names[w]`), ending on version `last`.
pub fn all_written(names: &[Vec<String>], last: i32) -> Vec<Written> {
    names
        .iter()
        .enumerate()
        .flat_map(|(writer, mine)| {
            mine.iter().map(move |name| Written {
                name: name.clone(),
                writer,
                last,
            })
        })
        .collect()
}

/// The store holds every acknowledged write: each record's final value, and one journal
/// entry per version carrying that version's value.
pub async fn assert_stored(store: &dyn Store, written: &[Written]) {
    for Written { name, writer, last } in written {
        let stored = store
            .get(name)
            .await
            .unwrap()
            .expect("the record is stored");
        assert_eq!(stored.version, *last as u64, "{name}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&stored.data).unwrap(),
            value_of(*writer, *last)
        );
        let journal = store.journal(name, 1, *last as u64).await.unwrap();
        assert_eq!(
            journal.len(),
            *last as usize,
            "{name}: one entry per version"
        );
        for (entry, v) in journal.iter().zip(1..=*last) {
            assert_eq!(entry.version, v as u64);
            let op: serde_json::Value = serde_json::from_str(&entry.op).unwrap();
            assert!(holds(&op, &value_of(*writer, v)), "{name} v{v}: {op}");
        }
    }
}

/// Every subscriber (one per node, each following every record of `written`) receives
/// updates up to each record's final version. A node that noticed a gap refetches and may
/// skip versions; it may never go back or show a value that is not the version's.
pub async fn assert_subscribers_end_on(subscribers: &mut [RawClient], written: &[Written]) {
    let by_name: HashMap<&str, &Written> = written.iter().map(|w| (w.name.as_str(), w)).collect();
    for (node, c) in subscribers.iter_mut().enumerate() {
        let mut seen: HashMap<&str, i32> = by_name.keys().map(|n| (*n, 0)).collect();
        while seen.iter().any(|(name, v)| *v < by_name[name].last) {
            let m = c.recv_action(RecordAction::Update).await;
            let name = m.name.clone().expect("an update names its record");
            let v = m.version.expect("an update carries its version");
            let record = by_name
                .get(name.as_str())
                .unwrap_or_else(|| panic!("node {node}: an update of {name}, not subscribed"));
            let held = seen.get_mut(name.as_str()).unwrap();
            assert!(v > *held, "node {node}, {name}: v{v} after v{held}");
            assert!(
                v <= record.last,
                "node {node}, {name}: v{v} was never written"
            );
            assert_eq!(
                json_value(&m.data),
                value_of(record.writer, v),
                "node {node}, {name}"
            );
            *held = v;
        }
    }
}

/// A fresh reader on every node is answered each record's final state.
pub async fn assert_every_node_answers(addrs: &[String], written: &[Written]) {
    for addr in addrs {
        let mut fresh = RawClient::connect(addr).await;
        for Written { name, writer, last } in written {
            let read = fresh.subscribe(name).await;
            assert_eq!(
                (read.version, json_value(&read.data)),
                (Some(*last), value_of(*writer, *last)),
                "{addr} answers the final state of {name}"
            );
        }
    }
}

/// Issue 5: "Bus down or restarted mid-load: every node keeps serving its own clients,
/// reconnects, resyncs, and afterwards every subscriber holds the final value."
///
/// `addrs` are three nodes sharing `store` and `bus`, each with a bus connection of its
/// own. Writers on nodes 1 and 2 keep acknowledged writes in flight while the bus is
/// killed. While it is down every write is still acknowledged, the writers' nodes answer
/// each record's newest version, and node 3 serves a client of its own. The bus is
/// restarted with writes in flight again, except to one "quiet" record per writer, whose
/// last write was made while the bus was down: no later announcement reveals a gap there,
/// so only the nodes' resync after the restart (or the writer's node announcing it late)
/// brings it to the others. Afterwards the store holds every acknowledged write, every
/// subscriber on every node has seen each record's versions only move forward, each with
/// its own value, up to the final one, which every node also answers to a fresh reader;
/// and a later write reaches the other nodes through the bus again.
pub async fn bus_restart_mid_load(
    bus: &mut PrivateBus,
    addrs: &[String],
    store: &dyn Store,
    base: &str,
) {
    const RECORDS_PER_WRITER: usize = 4;
    const PHASE: i32 = 40;
    const LAST: i32 = 3 * PHASE;
    assert_eq!(addrs.len(), 3);
    let names = records(base, RECORDS_PER_WRITER);
    // Record 0 of each writer is quiet once the bus is back.
    let (quiet, busy): (Vec<&[String]>, Vec<&[String]>) =
        names.iter().map(|mine| mine.split_at(1)).unzip();
    let mut written = all_written(&names, LAST);
    for w in &mut written {
        if quiet.iter().any(|q| q.contains(&w.name)) {
            w.last = 2 * PHASE;
        }
    }
    let (mut subscribers, mut writers) = subscribers_and_writers(addrs, &names).await;
    let per_phase = RECORDS_PER_WRITER * PHASE as usize;
    let mut acked = HashMap::new();

    // The bus dies with the first writes in flight.
    for (w, c) in writers.iter_mut().enumerate() {
        send_writes(c, w, &names[w], 1, PHASE).await;
    }
    bus.kill();
    // Every node keeps serving its own clients.
    for (w, c) in writers.iter_mut().enumerate() {
        send_writes(c, w, &names[w], PHASE + 1, 2 * PHASE).await;
    }
    for c in writers.iter_mut() {
        collect_acks(c, 2 * per_phase, &mut acked).await;
    }
    assert!(acked.values().all(|v| *v == 2 * PHASE), "{acked:?}");
    for (w, mine) in names.iter().enumerate() {
        let mut local = RawClient::connect(&addrs[w]).await;
        for name in mine {
            assert_eq!(local.head(name).await, 2 * PHASE, "node {w} serves {name}");
        }
    }
    let mut alone = RawClient::connect(&addrs[2]).await;
    let own = format!("{base}/alone");
    alone.subscribe(&own).await;
    alone
        .write(update(&own, 1, r#"{"while":"the bus is down"}"#), Some("o"))
        .await;
    assert_eq!(alone.head(&own).await, 1);

    // The bus comes back while writes are in flight again.
    let busy_per_phase = busy.iter().map(|b| b.len()).sum::<usize>() / 2 * PHASE as usize;
    for (w, c) in writers.iter_mut().enumerate() {
        send_writes(c, w, busy[w], 2 * PHASE + 1, LAST - PHASE / 2).await;
    }
    bus.restart().await;
    for (w, c) in writers.iter_mut().enumerate() {
        send_writes(c, w, busy[w], LAST - PHASE / 2 + 1, LAST).await;
    }
    for c in writers.iter_mut() {
        collect_acks(c, busy_per_phase, &mut acked).await;
    }
    assert_eq!(acked.len(), written.len());
    for w in &written {
        assert_eq!(acked[&w.name], w.last, "{}", w.name);
    }

    assert_stored(store, &written).await;
    assert_subscribers_end_on(&mut subscribers, &written).await;
    assert_every_node_answers(addrs, &written).await;

    // A write made after the restart reaches the other nodes through the bus.
    let name = &busy[0][0];
    writers[0]
        .write(update(name, LAST + 1, r#"{"n":"after"}"#), Some("after"))
        .await;
    for c in &mut subscribers[1..] {
        let m = c.recv_action(RecordAction::Update).await;
        assert_eq!(
            (m.name.as_deref(), m.version, json_value(&m.data)),
            (Some(name.as_str()), Some(LAST + 1), json!({ "n": "after" }))
        );
    }
}
