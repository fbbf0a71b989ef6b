//! ShareDB fetch-query latency (`qf`) over a populated collection, with the generator's
//! ShareDB client, against recordsync and ShareDB 7 alike.
//!
//! Setup: `loaders` connections create `docs` documents `{collection}/{i}` holding
//! `{group: i mod groups, score: (i * 7919) mod docs, name, pad}`, each keeping up to
//! `load_window` creates unacknowledged; the rate is reported ("creates/s while
//! populating"). Then `clients` connections each run one query at a time, closed loop,
//! for the warm-up and the measured window:
//! `{group: g, $sort: {score: -1}, $limit: limit}` with `g` going round the groups, an
//! equality filter matching `docs / groups` documents, sorted, cut to `limit`.
//!
//! Each answer is checked: `min(limit, docs / groups)` results, every one in group `g`,
//! scores descending. One that is not is counted as wrong (and one refused as an error),
//! so a server that answers fast by answering wrongly is seen.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::client::{self, Result, STEP_TIMEOUT};
use crate::histogram::Histogram;
use crate::procstat::{self, Watched};
use crate::progress::Progress;
use crate::sharedb_client::{self as sdb, Client};

#[derive(Debug, Clone)]
pub struct QueryParams {
    pub collection: String,
    pub docs: usize,
    pub groups: usize,
    pub limit: usize,
    /// Connections creating the documents.
    pub loaders: usize,
    /// Unacknowledged creates per loader.
    pub load_window: usize,
    /// Connections querying, one query in flight each.
    pub clients: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Bytes of padding in each document.
    pub pad: usize,
}

#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub seconds: f64,
    pub queries: u64,
    pub errors: u64,
    /// Answers with the wrong documents, count or order.
    pub wrong: u64,
    pub latency: Histogram,
    pub server_cpu: f64,
    pub cpu_parts: Vec<(&'static str, f64)>,
    pub generator_cpu: f64,
    pub server_rss: u64,
    pub populate_seconds: f64,
    pub docs: usize,
}

impl QueryResult {
    pub fn queries_per_second(&self) -> f64 {
        self.queries as f64 / self.seconds.max(1e-9)
    }
}

/// Runs the scenario against the ShareDB endpoint at `ws://addr{path}`.
pub async fn run(
    addr: SocketAddr,
    path: &str,
    server: &Watched,
    p: &QueryParams,
    progress: &Progress,
) -> Result<QueryResult> {
    if p.groups == 0 || p.docs < p.groups || p.loaders == 0 || p.clients == 0 {
        return Err("query needs docs >= groups >= 1, loaders >= 1 and clients >= 1".into());
    }
    progress.say(&format!(
        "creating {} documents over {} connections",
        p.docs, p.loaders
    ));
    let t = Instant::now();
    let loads: Vec<_> = (0..p.loaders)
        .map(|l| {
            let (path, p) = (path.to_owned(), p.clone());
            tokio::spawn(async move { populate(addr, &path, &p, l).await })
        })
        .collect();
    for l in loads {
        l.await??;
    }
    let populate_seconds = t.elapsed().as_secs_f64();
    progress.say(&format!(
        "{:.0} creates/s while populating; querying with {} connection(s)",
        p.docs as f64 / populate_seconds,
        p.clients
    ));

    let (phase_tx, _) = watch::channel(false);
    let phase_tx = Arc::new(phase_tx);
    let stop = Arc::new(watch::channel(false).0);
    let mut tasks = Vec::with_capacity(p.clients);
    for q in 0..p.clients {
        let client = Client::connect(addr, path, 64 * 1024).await?;
        let (p, measuring, stop) = (p.clone(), phase_tx.subscribe(), stop.subscribe());
        tasks.push(tokio::spawn(querier(client, q, p, measuring, stop)));
    }
    tokio::time::sleep(p.warmup).await;
    let cpu0 = server.find().read();
    let gen0 = procstat::self_cpu_seconds();
    let t0 = Instant::now();
    phase_tx.send_replace(true);
    tokio::time::sleep(p.duration).await;
    let found = server.find();
    phase_tx.send_replace(false);
    let seconds = t0.elapsed().as_secs_f64();
    let cpu_parts = found.read().since(&cpu0);
    let generator_cpu = procstat::self_cpu_seconds() - gen0;
    stop.send_replace(true);
    let mut result = QueryResult {
        seconds,
        server_cpu: cpu_parts.iter().map(|(_, c)| c).sum(),
        cpu_parts,
        generator_cpu,
        server_rss: server.rss_bytes(),
        populate_seconds,
        docs: p.docs,
        ..Default::default()
    };
    for t in tasks {
        let s = t.await??;
        result.queries += s.queries;
        result.errors += s.errors;
        result.wrong += s.wrong;
        result.latency.merge(&s.latency);
    }
    Ok(result)
}

/// Document `i`'s value.
pub fn document(i: usize, p: &QueryParams) -> String {
    format!(
        r#"{{"group":{},"score":{},"name":"doc-{i}","pad":"{}"}}"#,
        i % p.groups,
        score(i, p),
        "x".repeat(p.pad)
    )
}

fn score(i: usize, p: &QueryParams) -> usize {
    i.wrapping_mul(7919) % p.docs.max(1)
}

/// The query for group `g`.
pub fn query(g: usize, p: &QueryParams) -> serde_json::Value {
    serde_json::json!({"group": g, "$sort": {"score": -1}, "$limit": p.limit})
}

/// Loader `l` creates the documents `i` with `i mod loaders == l`, `load_window` at a
/// time. Documents that exist already are kept.
async fn populate(addr: SocketAddr, path: &str, p: &QueryParams, l: usize) -> Result<()> {
    let mut client = Client::connect(addr, path, 64 * 1024).await?;
    let mut todo = (l..p.docs).step_by(p.loaders);
    let mut pending: HashMap<u64, usize> = HashMap::new();
    loop {
        while pending.len() < p.load_window.max(1) {
            let Some(i) = todo.next() else { break };
            let seq = client.next_seq();
            let text = sdb::create(
                &p.collection,
                &i.to_string(),
                None,
                &client.src,
                seq,
                &document(i, p),
            );
            client.ws.feed(Frame::text(text)).await?;
            pending.insert(seq, i);
        }
        if pending.is_empty() {
            return Ok(());
        }
        client.ws.flush().await?;
        let text = sdb::recv_text(&mut client.ws).await?;
        let m = sdb::parse(&text)?;
        if m.a.as_deref() != Some("op") {
            continue;
        }
        let Some(i) = m.seq.and_then(|s| pending.remove(&s)) else {
            continue;
        };
        if let Some(e) = m.error
            && e.code.as_str() != "ERR_DOC_ALREADY_CREATED"
        {
            return Err(format!("creating {}/{i}: {e}", p.collection).into());
        }
    }
}

struct QuerierStats {
    queries: u64,
    errors: u64,
    wrong: u64,
    latency: Histogram,
}

/// One result of a `qf` reply: the document's data, of which `group` and `score` are
/// checked.
#[derive(Deserialize)]
struct ResultDoc {
    data: Option<Fields>,
}

#[derive(Deserialize)]
struct Fields {
    group: Option<u64>,
    score: Option<u64>,
}

/// Whether `data` (a `qf` reply's results) is the right answer for group `g`.
fn right_answer(data: Option<&serde_json::value::RawValue>, g: usize, p: &QueryParams) -> bool {
    let Some(Ok(docs)) = data.map(|d| serde_json::from_str::<Vec<ResultDoc>>(d.get())) else {
        return false;
    };
    let members = (0..p.docs).filter(|i| i % p.groups == g).count();
    if docs.len() != p.limit.min(members) {
        return false;
    }
    let mut last = u64::MAX;
    for doc in docs {
        let Some(Fields {
            group: Some(group),
            score: Some(score),
        }) = doc.data
        else {
            return false;
        };
        if group != g as u64 || score > last {
            return false;
        }
        last = score;
    }
    true
}

async fn querier(
    mut client: Client,
    index: usize,
    p: QueryParams,
    measuring: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) -> Result<QuerierStats> {
    let mut stats = QuerierStats {
        queries: 0,
        errors: 0,
        wrong: 0,
        latency: Histogram::default(),
    };
    let epoch = Instant::now();
    let mut id = 0u64;
    let mut g = index % p.groups;
    while !*stop.borrow() {
        id += 1;
        g = (g + 1) % p.groups;
        let text = sdb::fetch_query(id, &p.collection, &query(g, &p));
        let sent = client::micros_since(epoch, Instant::now());
        let counted = *measuring.borrow();
        client.ws.send(Frame::text(text)).await?;
        let reply = loop {
            let frame = tokio::time::timeout(STEP_TIMEOUT, client.ws.next())
                .await
                .map_err(|_| "no query reply in time")?
                .ok_or("connection closed")??;
            let Frame::Text(text) = frame else { continue };
            let m = sdb::parse(text.as_str())?;
            if m.a.as_deref() == Some("qf") && m.id.is_some_and(|i| i.get() == id.to_string()) {
                let ok = m.error.is_none();
                let right = ok && right_answer(m.data, g, &p);
                break (ok, right);
            }
        };
        let took = client::micros_since(epoch, Instant::now()).saturating_sub(sent);
        if counted && *measuring.borrow() {
            match reply {
                (false, _) => stats.errors += 1,
                (true, false) => stats.wrong += 1,
                (true, true) => {
                    stats.queries += 1;
                    stats.latency.record(took);
                }
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> QueryParams {
        QueryParams {
            collection: "q".into(),
            docs: 100,
            groups: 10,
            limit: 3,
            loaders: 1,
            load_window: 1,
            clients: 1,
            warmup: Duration::ZERO,
            duration: Duration::ZERO,
            pad: 2,
        }
    }

    #[test]
    fn answers_are_checked_for_count_group_and_order() {
        let p = params();
        let raw = |s: &str| serde_json::value::RawValue::from_string(s.to_owned()).unwrap();
        let good = raw(
            r#"[{"d":"1","v":1,"data":{"group":1,"score":90}},{"d":"2","v":1,"data":{"group":1,"score":50}},{"d":"3","v":1,"data":{"group":1,"score":50}}]"#,
        );
        assert!(right_answer(Some(&good), 1, &p));
        assert!(!right_answer(Some(&good), 2, &p), "wrong group");
        let unsorted = raw(
            r#"[{"d":"1","data":{"group":1,"score":1}},{"d":"2","data":{"group":1,"score":5}},{"d":"3","data":{"group":1,"score":0}}]"#,
        );
        assert!(!right_answer(Some(&unsorted), 1, &p));
        let short = raw(r#"[{"d":"1","data":{"group":1,"score":1}}]"#);
        assert!(!right_answer(Some(&short), 1, &p));
        assert!(!right_answer(None, 1, &p));
    }

    #[test]
    fn every_group_has_documents_and_scores_spread() {
        let p = params();
        let doc: serde_json::Value = serde_json::from_str(&document(13, &p)).unwrap();
        assert_eq!(doc["group"], 3);
        assert_eq!(doc["score"], (13 * 7919) % 100);
        assert_eq!(query(4, &p)["$limit"], 3);
    }
}
