//! The HTTP surface: the listener's accept loop, the WebSocket endpoints, the health
//! check, the metrics, the web console (see [`crate::console`]), the REST API (everything
//! under `/v1`: see [`crate::rest`]), and deepstream's
//! HTTP API (the fallback: see [`crate::http_api`]).
//!
//! Connections are served by hyper's HTTP/1 server (with upgrades) on the `TcpStream`
//! itself, not by `axum::serve`: that way a WebSocket upgrade gives the socket back as it
//! is (see [`crate::websocket`]), with nothing between the connection and the kernel.
//! HTTP/2 is not offered; deepstream clients, load balancers' health checks and the HTTP
//! endpoints all speak HTTP/1.1.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tungstenite::protocol::WebSocketConfig;

use crate::ServerState;
use crate::deepstream::{self, Transport};
use crate::net::http_connection::HttpConnection;
use crate::sharedb;
use crate::websocket::{Socket, handshake};

pub fn router(state: Arc<ServerState>) -> Router {
    let config = &state.config;
    let mut router = Router::new()
        .route(&config.binary_path, get(deepstream_binary))
        .route(&config.json_path, get(deepstream_json))
        .route(&config.health_check_path, get(health_check));
    if let Some(path) = &config.sharedb_path {
        router = router.route(path, get(sharedb));
    }
    if let Some(path) = &config.metrics_path {
        router = router.route(path, get(metrics));
    }
    if let Some(path) = &config.console_path {
        router = router
            .route(path, get(crate::console::redirect))
            .route(&format!("{path}/"), get(crate::console::index))
            .route(&format!("{path}/{{file}}"), get(crate::console::file));
    }
    if config.rest.is_some() {
        // Everything under /v1 is the REST API's, unknown paths included (a JSON 404).
        router = router
            .route("/v1", any(crate::rest::serve))
            .route("/v1/{*rest}", any(crate::rest::serve));
    }
    if config.http_api.is_some() {
        // deepstream matches the API's paths as prefixes, so it takes what no route takes.
        router = router.fallback(crate::http_api::serve);
    }
    router.with_state(state)
}

/// Accepts connections on `listener` and serves `app` on them until `shutdown` resolves;
/// then stops accepting, lets requests in progress finish, and returns. Upgraded
/// WebSocket connections are not waited for: they end with the runtime.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Connections hold a receiver each; the loop waits for the last one to go.
    let (stop, stopping) = watch::channel(false);
    let (open_tx, open_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // An update is sent the moment it is committed. With Nagle's algorithm a small
        // frame waits while an earlier one is unacknowledged, and a client's delayed ACK
        // makes that wait up to 40 ms.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let control = HttpConnection::new(stopping.clone());
        let service = {
            let control = control.clone();
            let app = app.clone();
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(control.clone());
                let mut app = app.clone();
                // A Router is always ready: no poll_ready needed.
                tower_service::Service::call(&mut app, req)
            })
        };
        let mut stopping = stopping.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            // A client that never finishes its request headers is dropped after 30 s.
            builder.timer(TokioTimer::new());
            let connection = builder
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "HTTP connection ended");
                    }
                }
                // A streamed response whose client stopped reading (see HttpConnection).
                () = control.cut() => {}
                // The only change ever made is to `true`.
                Ok(()) = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        () = control.cut() => {}
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(open_rx);
    open_tx.closed().await;
}

/// Errors of one connection (it was reset before we took it) are skipped. Others, such as
/// running out of file descriptors, are logged, and the loop pauses for a second, as hyper
/// and axum do: retrying at once would spin while nothing can be accepted.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn deepstream_binary(State(state): State<Arc<ServerState>>, req: Request) -> Response {
    upgrade(req, state, Transport::Binary)
}

async fn deepstream_json(State(state): State<Arc<ServerState>>, req: Request) -> Response {
    upgrade(req, state, Transport::Json)
}

/// A ShareDB upgrade is authenticated before it is accepted (see `sharedb/auth.rs`): a
/// refused one is answered 401 with what to send, and no WebSocket opens.
async fn sharedb(State(state): State<Arc<ServerState>>, req: Request) -> Response {
    match sharedb::auth::user(&state, req.headers(), req.uri().query()).await {
        Ok(user) => upgrade(req, state, Door::ShareDb(user)),
        Err(message) => (
            StatusCode::UNAUTHORIZED,
            [(
                axum::http::header::WWW_AUTHENTICATE,
                "Bearer, Basic realm=\"recordsync\"",
            )],
            message,
        )
            .into_response(),
    }
}

/// Which front door an upgraded connection is served by.
enum Door {
    Deepstream(Transport),
    /// With the user the upgrade request was authenticated as.
    ShareDb(Arc<crate::auth::Identity>),
}

impl From<Transport> for Door {
    fn from(transport: Transport) -> Door {
        Door::Deepstream(transport)
    }
}

/// Bytes read from a client's socket at a time. tungstenite's default (128 KiB) is filled
/// with zeros before the first read, so every connection, idle or not, cost 128 KiB of
/// resident memory and the page faults to get it; client messages are small, and a larger
/// one simply takes several reads. 512 bytes holds a typical client message (a subscribe,
/// an update of a small record) and keeps an idle connection small.
const READ_BUFFER: usize = 512;

fn upgrade(req: Request, state: Arc<ServerState>, door: impl Into<Door>) -> Response {
    let door = door.into();
    let (response, pending) = match handshake::accept(req) {
        Ok(accepted) => accepted,
        Err(refused) => return refused.into_response(),
    };
    tokio::spawn(async move {
        let (tcp, read_ahead) = match pending.socket().await {
            Ok(socket) => socket,
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                return;
            }
        };
        // A message over the limit is refused from its frame header (or, fragmented, from
        // the fragments' sizes) before the rest is read: a connection holds at most the
        // fragments so far (up to the limit) and the next fragment (whose header promised
        // no more than the limit). The connection then answers
        // MAXIMUM_MESSAGE_SIZE_EXCEEDED and closes.
        let limit = state.config.max_message_size;
        let config = WebSocketConfig::default()
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit))
            .read_buffer_size(READ_BUFFER);
        let socket = Socket::new(tcp, read_ahead, config);
        match door {
            Door::Deepstream(transport) => {
                deepstream::connection::serve(socket, state, transport).await;
            }
            Door::ShareDb(user) => sharedb::connection::serve(socket, state, user).await,
        }
    });
    response
}

/// 200 while the server can store writes; 503 while its storage is failing (a commit
/// failed and none has succeeded since), so that a load balancer or supervisor can act.
/// Checked for its origin first, as deepstream checks its health check ([`crate::cors`]).
async fn health_check(
    State(state): State<Arc<ServerState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let cors = match state.config.cors.check(&headers) {
        Ok(cors) => cors,
        Err(refusal) => return crate::http_api::refused(&refusal),
    };
    let status = if state.engine.healthy().await {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, cors).into_response()
}

/// The metrics in Prometheus's text format (version 0.0.4), for a Prometheus scrape.
async fn metrics(State(state): State<Arc<ServerState>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
