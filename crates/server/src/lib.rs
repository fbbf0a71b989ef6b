//! recordsync's server: the host of the engine ([`recordsync_engine`]) and its protocol
//! front doors: configuration, the network, authentication and permissions.
//!
//! Crate map (the public surface is the `pub use` block below, [`Server`] and
//! [`ServerError`], plus the `auth` and `permission` namespaces):
//! - `config`       — [`Config`]: settings, from defaults, a deepstream-style YAML file and
//!   flags; [`ConfigError`], [`StorageKind`], [`parse_size`], [`parse_keep_ops`].
//! - `http`         — the accept loop, the HTTP router: endpoints, the health check and
//!   the metrics.
//! - `cors`         — [`Cors`]: which browsers' pages may call over HTTP (deepstream's
//!   `allowAllOrigins`, `origins`, `hostUrl`), checked as deepstream checks them.
//! - `telemetry`    — the Prometheus recorder behind the `metrics` facade every crate
//!   records through, the metrics' descriptions, and the connections' counters
//!   (`docs/metrics.md` lists the metrics).
//! - `websocket`    — RFC 6455 on the TCP socket: handshake, parsing, batched writes.
//! - `net`          — what every front door's connections share: the connection loop
//!   (reading, writing, backpressure, close codes, the heartbeat check) behind the
//!   `net::connection::FrontDoor` trait, and each connection's bounded outbox.
//! - [`auth`]       — who a client is: [`auth::AuthConfig::authenticate`] turns
//!   credentials into an [`auth::Identity`], by none, file, http webhook or JWT.
//! - [`permission`] — what a user may do: Valve rules decide neutral requests (an
//!   [`permission::Action`] on a record or an event by an identity) before every access.
//! - `deepstream`   — the deepstream protocol front door (WebSocket, protobuf and JSON):
//!   its handshake and login, its record and event messages, and how they map to engine
//!   calls and permission checks.
//! - `http_api`     — deepstream's HTTP API front door (`POST /api`, `POST /api/auth`):
//!   its requests and refusals, record messages and event emits as engine calls and
//!   permission checks, and the tokens it issues.
//! - `rest`         — the REST API front door (`/v1`, OpenAPI at `/v1/openapi.json`):
//!   records read, written (versioned with `If-Match`), looked up in history and watched
//!   as server-sent events, with the same auth and permission rules.
//! - `console`      — the web console (`/console`): a browser app compiled into the
//!   binary, built on the REST API, `/api/auth` and the metrics.
//! - `sharedb`      — the ShareDB protocol front door (WebSocket, JSON, `/sharedb`):
//!   documents as records, fetch, subscribe, op submit with transform, snapshots at a
//!   version or time, and how they map to engine calls and permission checks.
//!
//! A front door owns its wire: it decodes frames, renders events and refusals, and maps
//! its requests to the engine's calls and to permission [`permission::Action`]s. Nothing
//! outside its module knows its messages.
//!
//! [`Server`] ties them together: [`Server::bind`] opens the store and the listening
//! socket, [`Server::run`] serves until shutdown.

// Public namespaces, each a vocabulary of its own that would be ambiguous at the root:
// `auth` has the identity a front door authenticates and the methods (`auth::file`'s
// `hash_password` for the CLI, say); `permission` the rules' requests (`Action`, `Data`,
// `Request`, `decide`), which embedders and tests check without a server. The rest is
// the host's machinery, reached through `Server`.
pub mod auth;
pub mod permission;

mod config;
mod console;
mod cors;
mod deepstream;
mod http;
mod http_api;
mod net;
mod rest;
mod sharedb;
mod telemetry;
mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;
use tokio::net::{TcpListener, TcpSocket};

use recordsync_bus::{Bus, BusError};
use recordsync_store::embedded::EmbeddedOptions;
use recordsync_store::{
    EmbeddedStore, MemoryStore, PostgresOptions, PostgresStore, Store, StoreError,
};

use recordsync_engine::Engine;
use recordsync_engine::listen::{ClusterTiming, Listening};

pub use config::{Config, ConfigError, StorageKind, parse_keep_ops, parse_size};
pub use cors::Cors;
pub use http_api::HttpApiConfig;
pub use rest::RestConfig;

/// What every connection shares.
pub struct ServerState {
    pub config: Config,
    pub engine: Arc<Engine>,
    /// Renders the metrics for `GET /metrics` (the process's Prometheus recorder).
    pub(crate) metrics: &'static metrics_exporter_prometheus::PrometheusHandle,
    /// The permission rules, which every connection's requests are checked against.
    pub permissions: Arc<permission::Guard>,
    /// ShareDB presence channels: who listens on this node; relayed to the other nodes.
    pub(crate) presence: Arc<sharedb::presence_hub::PresenceHub>,
    /// The tokens the HTTP API's auth endpoint issued.
    pub(crate) tokens: http_api::auth::Tokens,
    /// ShareDB live queries' collection feeds: each change read once for all of them.
    pub(crate) query_feeds: Arc<sharedb::query_feed::Feeds>,
    next_session: AtomicU64,
}

impl ServerState {
    fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }
}

/// Why the server could not start, or stopped.
///
/// The configuration's, the store's and the bus's errors are passed through as they are
/// (their messages say what to check); the others keep the error behind them as the
/// [`source`](std::error::Error::source). New kinds may be added: match with a `_` arm.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The listening socket could not be opened on `addr` (host:port).
    #[error("cannot listen on {addr}: {source}{}", bind_advice(source))]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    /// A task the server depends on failed (the embedded store's opening panicked, say);
    /// `what` says which. The task's error is the source.
    #[error("{what} failed: {source}")]
    Task {
        what: &'static str,
        source: tokio::task::JoinError,
    },
}

/// What to do about a socket that could not be bound, after its error.
fn bind_advice(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another process listens there: stop it, or choose another port with --port)"
        }
        std::io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need privileges: choose another port with --port)"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            " (the host is not an address of this machine: check --host)"
        }
        _ => "",
    }
}

/// Connections the kernel keeps waiting for `accept` (capped by `net.core.somaxconn`).
/// tokio's default, 128, overflows when thousands of clients reconnect at once, and each
/// connection refused that way waits a whole second for its SYN to be retried.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` (host:port) with [`LISTEN_BACKLOG`].
async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        if let Err(e) = socket.bind(a) {
            last = Some(e);
            continue;
        }
        match socket.listen(LISTEN_BACKLOG) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "the host has no address",
        )
    }))
}

/// A bound, ready server.
pub struct Server {
    listener: TcpListener,
    state: Arc<ServerState>,
}

impl Server {
    /// Opens the store (and the cluster bus, if configured) and binds the listening
    /// socket (port 0 picks a free port).
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        config.check()?;
        if config.cluster.is_some() && !matches!(config.storage, StorageKind::Postgres(_)) {
            // Each node's embedded or memory store is its own data set: nodes sharing a bus
            // but not a database would announce writes the others cannot fetch. Checked
            // here, not in `Config::check`: a config file may name the bus while the
            // command line names the storage, and `check` also runs on the file alone.
            return Err(ConfigError::Invalid {
                key: "cluster".into(),
                reason: "the nodes of a cluster share one database: add --storage \
                         postgres://… (or `storage: postgres://…` in the config file)"
                    .into(),
            }
            .into());
        }
        let store: Arc<dyn Store> = match &config.storage {
            StorageKind::Memory => Arc::new(MemoryStore::with_history(config.history)),
            // Connects, then creates or migrates recordsync's schema.
            StorageKind::Postgres(url) => {
                let options = PostgresOptions {
                    history: config.history,
                    ..PostgresOptions::default()
                };
                Arc::new(PostgresStore::connect_with(url, options).await?)
            }
            StorageKind::Embedded => {
                // Opening checks the file after a crash: blocking work, off the runtime.
                let dir = config.data_dir.clone();
                let options = EmbeddedOptions {
                    cache_size: config.storage_cache_size,
                    history: config.history,
                    ..EmbeddedOptions::default()
                };
                let store =
                    tokio::task::spawn_blocking(move || EmbeddedStore::open_with(&dir, options))
                        .await
                        .map_err(|source| ServerError::Task {
                            what: "opening the embedded store",
                            source,
                        })??;
                Arc::new(store)
            }
        };
        let bus = match &config.cluster {
            Some(url) => {
                let bus = recordsync_bus::connect(url).await?;
                let url = recordsync_bus::redact_url(url);
                tracing::info!("joined the cluster through the bus at {url}");
                Some(bus)
            }
            None => None,
        };
        Self::bind_with(config, store, bus).await
    }

    /// Binds a server on a store (and bus) the caller made: several in-process nodes
    /// sharing one store and one bus, in tests.
    pub async fn bind_with(
        config: Config,
        store: Arc<dyn Store>,
        bus: Option<Arc<dyn Bus>>,
    ) -> Result<Server, ServerError> {
        config.check()?;
        // Before the engine exists: the hot paths keep the handles they first look up
        // (`telemetry::cached_counter!`), which must be the installed recorder's.
        let metrics = telemetry::install();
        let addr = format!("{}:{}", config.host, config.port);
        let listener = listen(&addr).await.map_err(|source| ServerError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let listening = Listening::new(
            config.listen_response_timeout,
            config.listen_shuffle_providers,
        );
        let data_set = store.data_set().map(str::to_owned);
        // A commit's updates are all queued before any connection is woken to write them:
        // a subscriber of several of the batch's records gets them in one write.
        let wake_once_per_batch: recordsync_store::CallbackScope =
            Arc::new(|run: &mut dyn FnMut()| net::outbox::deferring_wakes(run));
        let engine = Engine::new(
            store,
            listening,
            config.listen_rematch_interval,
            Some(wake_once_per_batch),
        );
        let presence = sharedb::presence_hub::PresenceHub::new(engine.listening().node());
        if let Some(mut bus) = bus {
            if let Some(data_set) = data_set {
                bus = Arc::new(recordsync_bus::Scoped::new(bus, &data_set));
            }
            let timing = ClusterTiming {
                heartbeat: config.cluster_heartbeat_interval,
            };
            sharedb::presence_bus::join(&presence, bus.clone(), timing.heartbeat).await?;
            engine.join_cluster(bus, timing).await?;
        }
        let permissions = Arc::new(permission::Guard::new(
            config.permission.clone(),
            engine.clone(),
        ));
        let query_feeds = sharedb::query_feed::Feeds::new(engine.clone());
        let state = Arc::new(ServerState {
            config,
            engine,
            permissions,
            metrics,
            presence,
            tokens: http_api::auth::Tokens::default(),
            query_feeds,
            next_session: AtomicU64::new(1),
        });
        Ok(Server { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.state.engine.clone()
    }

    /// Serves until `shutdown` resolves, then lets every pending write commit.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let engine = self.state.engine.clone();
        let app = http::router(self.state);
        http::serve(self.listener, app, shutdown).await;
        engine.flush().await;
        Ok(())
    }
}
