//! Metrics: the process's Prometheus recorder, the metrics' descriptions, the
//! `GET /metrics` endpoint, and the handles the connections count with.
//!
//! Every crate records through the `metrics` facade (`metrics::counter!` and friends);
//! this module installs `metrics-exporter-prometheus`'s recorder behind it, once per
//! process, and renders it in Prometheus's text format. The metrics and their labels are
//! listed in `docs/metrics.md`.
//!
//! The recorder is process-wide (the facade has one global recorder): several servers in
//! one process (tests, in-process clusters) report into the same series.
//!
//! Hot paths (a message read, a frame queued, a write answered) count through handles
//! looked up once and kept in a `static` ([`cached_counter!`]): an atomic add, with no
//! allocation and no hashing of the metric's key per message.

use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// A counter handle for a metric name and labels that are all literals, looked up in the
/// recorder the first time this call site runs and kept for the life of the process.
///
/// Invariant: the first use comes after [`install`] (a server installs the recorder in
/// [`crate::Server::bind_with`], before it serves anything); one from before would keep a
/// handle that counts into nothing.
macro_rules! cached_counter {
    ($name:literal $(, $k:literal => $v:literal)* $(,)?) => {{
        static HANDLE: ::std::sync::OnceLock<::metrics::Counter> = ::std::sync::OnceLock::new();
        HANDLE.get_or_init(|| ::metrics::counter!($name $(, $k => $v)*))
    }};
}
pub(crate) use cached_counter;

/// Upper bounds (seconds) of the latency histograms' buckets: from a fast in-memory
/// commit (100 µs) to a struggling disk or database (10 s).
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Upper bounds of the commit batch size histogram's buckets (writes per commit).
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// Installs the Prometheus recorder as the process's recorder, once, and returns the
/// handle that renders it. If another recorder was installed first (an embedder's own),
/// that one keeps the metrics, and the handle returned renders an empty page: it is
/// logged once.
pub fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("recordsync_commit_batch_size".into()),
                    BATCH_BUCKETS,
                )
            })
            .expect("the bucket lists are constants, and not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics serves an empty page");
        }
        describe();
        handle
    })
}

/// The metrics' help texts (`# HELP` lines), registered with the recorder once.
fn describe() {
    describe_gauge!(
        "recordsync_connections",
        "Open client connections, by protocol"
    );
    describe_counter!(
        "recordsync_connections_opened_total",
        "Client connections opened, by protocol"
    );
    describe_counter!(
        "recordsync_messages_in_total",
        "Messages received from clients, by protocol and kind"
    );
    describe_counter!(
        "recordsync_messages_out_total",
        "Messages queued for clients, by protocol and kind"
    );
    describe_counter!(
        "recordsync_slow_consumers_total",
        "Connections cut off because their client did not read its outbound queue"
    );
    describe_counter!(
        "recordsync_writes_total",
        "Writes and deletes answered, accepted or refused"
    );
    describe_histogram!(
        "recordsync_write_ack_seconds",
        Unit::Seconds,
        "Time from a write's arrival to its answer (commit included)"
    );
    describe_histogram!(
        "recordsync_commit_batch_size",
        Unit::Count,
        "Writes committed together in one store commit"
    );
    describe_histogram!(
        "recordsync_commit_seconds",
        Unit::Seconds,
        "Duration of one store commit, its sync to disk or database included"
    );
    describe_counter!(
        "recordsync_store_errors_total",
        "Store operations that failed, by operation"
    );
    describe_counter!(
        "recordsync_permission_denied_total",
        "Requests the permission rules refused (or whose rule failed), by the rule's action"
    );
    describe_counter!(
        "recordsync_bus_reconnects_total",
        "Times the cluster bus connection was lost and re-established, by bus"
    );
    describe_counter!(
        "recordsync_bus_resyncs_total",
        "Times this node refetched every cached record after missing bus messages"
    );
    describe_gauge!(
        "recordsync_listen_providers",
        "Connections of this node that listen to at least one pattern, by topic"
    );
    describe_counter!(
        "recordsync_events_dropped_total",
        "Events not sent to the other nodes because the bus could not keep up"
    );
    describe_counter!(
        "recordsync_history_reads_total",
        "History reads: journal ranges, values at a version, values at a time"
    );
    describe_counter!(
        "recordsync_query_reads_total",
        "Queries answered from the store"
    );
}

/// The front door a connection is served by: the `protocol` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    DeepstreamBinary,
    DeepstreamJson,
    ShareDb,
    /// The REST API's server-sent event streams (one per watched record).
    Sse,
}

impl Protocol {
    /// The connection gauge of this protocol, and the counter of connections opened.
    fn connections(self) -> (&'static metrics::Gauge, &'static metrics::Counter) {
        macro_rules! cached_gauge {
            ($protocol:literal) => {{
                static HANDLE: OnceLock<metrics::Gauge> = OnceLock::new();
                HANDLE.get_or_init(|| {
                    metrics::gauge!("recordsync_connections", "protocol" => $protocol)
                })
            }};
        }
        match self {
            Protocol::DeepstreamBinary => (
                cached_gauge!("deepstream-binary"),
                cached_counter!("recordsync_connections_opened_total", "protocol" => "deepstream-binary"),
            ),
            Protocol::DeepstreamJson => (
                cached_gauge!("deepstream-json"),
                cached_counter!("recordsync_connections_opened_total", "protocol" => "deepstream-json"),
            ),
            Protocol::ShareDb => (
                cached_gauge!("sharedb"),
                cached_counter!("recordsync_connections_opened_total", "protocol" => "sharedb"),
            ),
            Protocol::Sse => (
                cached_gauge!("sse"),
                cached_counter!("recordsync_connections_opened_total", "protocol" => "sse"),
            ),
        }
    }

    /// The counter of this protocol's connections cut off for not reading.
    pub fn slow_consumers(self) -> &'static metrics::Counter {
        match self {
            Protocol::DeepstreamBinary => {
                cached_counter!("recordsync_slow_consumers_total", "protocol" => "deepstream-binary")
            }
            Protocol::DeepstreamJson => {
                cached_counter!("recordsync_slow_consumers_total", "protocol" => "deepstream-json")
            }
            Protocol::ShareDb => {
                cached_counter!("recordsync_slow_consumers_total", "protocol" => "sharedb")
            }
            Protocol::Sse => {
                cached_counter!("recordsync_slow_consumers_total", "protocol" => "sse")
            }
        }
    }

    /// The `protocol` label's value, for logs.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::DeepstreamBinary => "deepstream-binary",
            Protocol::DeepstreamJson => "deepstream-json",
            Protocol::ShareDb => "sharedb",
            Protocol::Sse => "sse",
        }
    }
}

/// Counts an open connection of `protocol` while it lives: the gauge goes up when it is
/// made and down when it is dropped, however the connection's task ends.
pub struct OpenConnection(&'static metrics::Gauge);

impl OpenConnection {
    pub fn new(protocol: Protocol) -> OpenConnection {
        let (gauge, opened) = protocol.connections();
        opened.increment(1);
        gauge.increment(1.0);
        OpenConnection(gauge)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
