//! The connection task: it owns the WebSocket, logs in, pings, feeds the server's
//! messages to the [`Core`](crate::core::Core), sends what the core queues, and reconnects
//! with backoff when the connection drops.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, interval_at, sleep_until, timeout};
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use recordsync_deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, Message, binary,
};

use crate::core::Core;
use crate::error::{ConnectError, Error};
use crate::options::Options;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Whether the client is connected, as [`Client::connection_state`](crate::Client::connection_state)
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connected and logged in.
    Open,
    /// The connection dropped; this is attempt `attempt` to get it back. Writes are
    /// queued meanwhile and sent once it is back.
    Reconnecting { attempt: u32 },
    /// Closed with [`Client::close`](crate::Client::close).
    Closed,
    /// The client gave up: authentication failed on reconnecting, or the attempts ran out.
    Failed { reason: String },
}

/// What the handles and the connection task share.
pub(crate) struct Shared {
    pub core: Mutex<Core>,
    pub wake: Notify,
    pub options: Options,
    pub url: String,
    pub state: watch::Sender<ConnectionState>,
    pub client_data: Mutex<Option<Value>>,
}

impl Shared {
    /// Runs `f` on the core, then wakes the connection task to send what it queued.
    pub fn with_core<T>(&self, f: impl FnOnce(&mut Core) -> T) -> T {
        let out = f(&mut self.core.lock());
        self.wake.notify_one();
        out
    }
}

/// Connects and logs in: CHALLENGE, ACCEPT, AUTH REQUEST, AUTH_SUCCESSFUL.
pub(crate) async fn open(
    url: &str,
    options: &Options,
) -> Result<(Ws, Option<Value>), ConnectError> {
    let after = options.connect_timeout;
    match timeout(after, handshake(url, &options.auth)).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout {
            url: url.to_owned(),
            after,
        }),
    }
}

async fn handshake(url: &str, auth: &Value) -> Result<(Ws, Option<Value>), ConnectError> {
    let mut url = url.to_owned();
    for _redirect in 0..3 {
        let (mut ws, _) = connect_async(url.as_str())
            .await
            .map_err(|e| ConnectError::from_websocket(&url, e))?;
        let broken = |e: tungstenite::Error| ConnectError::broken(&url, e);
        send(
            &mut ws,
            ConnectionMessage {
                action: ConnectionAction::Challenge as i32,
                url: Some(url.clone()),
                protocol_version: Some("0.1a".into()),
                sdk_version: Some(env!("CARGO_PKG_VERSION").into()),
                sdk_type: Some("rust".into()),
                ..Default::default()
            }
            .into(),
        )
        .await
        .map_err(broken)?;
        let redirect = loop {
            match recv(&mut ws, &url).await? {
                Message::Connection(m) => match ConnectionAction::try_from(m.action) {
                    Ok(ConnectionAction::Accept) => break None,
                    Ok(ConnectionAction::Redirect) => break m.url.clone(),
                    Ok(ConnectionAction::Reject) => {
                        return Err(ConnectError::Rejected {
                            url: url.clone(),
                            reason: reason_text(m.data.as_deref(), "no reason given"),
                        });
                    }
                    Ok(ConnectionAction::Ping) => {
                        send(&mut ws, pong()).await.map_err(broken)?;
                    }
                    _ => {
                        return Err(ConnectError::NotDeepstream {
                            url: url.clone(),
                            reason: format!("unexpected answer to the challenge: {m:?}"),
                            source: None,
                        });
                    }
                },
                other => {
                    return Err(ConnectError::NotDeepstream {
                        url: url.clone(),
                        reason: format!("unexpected answer to the challenge: {other:?}"),
                        source: None,
                    });
                }
            }
        };
        if let Some(target) = redirect {
            tracing::debug!("{url} redirects to {target}");
            let _ = ws.close(None).await;
            url = target;
            continue;
        }
        send(
            &mut ws,
            AuthMessage {
                action: AuthAction::Request as i32,
                data: Some(auth.to_string()),
                ..Default::default()
            }
            .into(),
        )
        .await
        .map_err(broken)?;
        loop {
            match recv(&mut ws, &url).await? {
                Message::Auth(m) => match AuthAction::try_from(m.action) {
                    Ok(AuthAction::AuthSuccessful) => {
                        let data = m
                            .data
                            .as_deref()
                            .and_then(|d| recordsync_core::json::parse(d).ok());
                        return Ok((ws, data));
                    }
                    Ok(AuthAction::TooManyAuthAttempts) => {
                        return Err(ConnectError::AuthFailed {
                            reason: "too many failed attempts".into(),
                        });
                    }
                    _ => {
                        return Err(ConnectError::AuthFailed {
                            reason: reason_text(
                                m.data.as_deref(),
                                "the server refused the credentials",
                            ),
                        });
                    }
                },
                Message::Connection(m) if m.action == ConnectionAction::Ping as i32 => {
                    send(&mut ws, pong()).await.map_err(broken)?;
                }
                Message::Connection(m)
                    if m.action == ConnectionAction::AuthenticationTimeout as i32 =>
                {
                    return Err(ConnectError::AuthFailed {
                        reason: "the server timed out the login".into(),
                    });
                }
                other => {
                    return Err(ConnectError::NotDeepstream {
                        url: url.clone(),
                        reason: format!("unexpected answer to the login: {other:?}"),
                        source: None,
                    });
                }
            }
        }
    }
    Err(ConnectError::Rejected {
        url,
        reason: "too many redirects".into(),
    })
}

fn pong() -> Message {
    ConnectionMessage {
        action: ConnectionAction::Pong as i32,
        ..Default::default()
    }
    .into()
}

/// A reason the server gave as JSON (a string, or an object with `reason`), as text.
fn reason_text(data: Option<&str>, default: &str) -> String {
    let Some(data) = data else {
        return default.to_owned();
    };
    match serde_json::from_str::<Value>(data) {
        Ok(Value::String(s)) => s,
        Ok(Value::Object(o)) => match o.get("reason") {
            Some(Value::String(r)) => r.clone(),
            _ => data.to_owned(),
        },
        _ => data.to_owned(),
    }
}

async fn send(ws: &mut Ws, m: Message) -> Result<(), tungstenite::Error> {
    ws.send(Frame::Binary(binary::encode(&m))).await
}

/// The next message during the handshake.
async fn recv(ws: &mut Ws, url: &str) -> Result<Message, ConnectError> {
    loop {
        let frame = match ws.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Err(ConnectError::broken(url, e)),
            None => {
                return Err(ConnectError::Unreachable {
                    url: url.to_owned(),
                    reason: "the server closed the connection during the handshake".into(),
                    source: None,
                });
            }
        };
        match frame {
            Frame::Binary(bytes) => {
                return binary::decode(&bytes, usize::MAX).map_err(|e| {
                    ConnectError::NotDeepstream {
                        url: url.to_owned(),
                        reason: "it sent a frame that does not decode".into(),
                        source: Some(Arc::new(e)),
                    }
                });
            }
            Frame::Close(close) => {
                // Transient (a server shutting down, say): reconnecting goes on.
                return Err(ConnectError::Unreachable {
                    url: url.to_owned(),
                    reason: close
                        .map(|c| {
                            format!(
                                "the server closed the connection during the handshake ({}: {})",
                                u16::from(c.code),
                                c.reason
                            )
                        })
                        .unwrap_or_else(|| {
                            "the server closed the connection during the handshake".into()
                        }),
                    source: None,
                });
            }
            Frame::Text(_) => {
                return Err(ConnectError::NotDeepstream {
                    url: url.to_owned(),
                    reason: "the server sent text frames (the JSON endpoint?); use the binary endpoint /deepstream".into(),
                    source: None,
                });
            }
            _ => continue,
        }
    }
}

enum End {
    Lost(String),
    Shutdown,
}

/// Runs the connection until shutdown, reconnecting as needed.
pub(crate) async fn run(shared: Arc<Shared>, mut ws: Ws, mut shutdown: watch::Receiver<bool>) {
    loop {
        match serve(&shared, &mut ws, &mut shutdown).await {
            End::Shutdown => {
                shared.core.lock().close(Error::closed());
                shared.state.send_replace(ConnectionState::Closed);
                return;
            }
            End::Lost(reason) => {
                tracing::debug!("connection to {} lost: {reason}; reconnecting", shared.url);
                shared.core.lock().on_lost();
            }
        }
        let reconnect = &shared.options.reconnect;
        let mut attempt = 0u32;
        // The latest attempt's failure, kept as the source of the error that giving up
        // closes the client with.
        let mut last_failure = None;
        ws = loop {
            attempt += 1;
            if reconnect.max_attempts.is_some_and(|max| attempt > max) {
                let reason = format!(
                    "could not reconnect to {} after {} attempts",
                    shared.url,
                    attempt - 1
                );
                give_up(&shared, reason, last_failure);
                return;
            }
            shared
                .state
                .send_replace(ConnectionState::Reconnecting { attempt });
            if wait(&shared, reconnect.delay(attempt), &mut shutdown).await {
                shared.core.lock().close(Error::closed());
                shared.state.send_replace(ConnectionState::Closed);
                return;
            }
            let attempt_result = tokio::select! {
                result = open(&shared.url, &shared.options) => Some(result),
                _ = shutdown.changed() => None,
            };
            match attempt_result {
                None => {
                    shared.core.lock().close(Error::closed());
                    shared.state.send_replace(ConnectionState::Closed);
                    return;
                }
                Some(Ok((ws, data))) => {
                    *shared.client_data.lock() = data;
                    shared.core.lock().on_open();
                    break ws;
                }
                Some(Err(
                    e @ (ConnectError::AuthFailed { .. } | ConnectError::Rejected { .. }),
                )) => {
                    give_up(&shared, "reconnecting failed".into(), Some(e));
                    return;
                }
                Some(Err(e)) => {
                    tracing::debug!("reconnect attempt {attempt} failed: {e}");
                    last_failure = Some(e);
                }
            }
        };
        tracing::debug!("reconnected to {}", shared.url);
        shared.state.send_replace(ConnectionState::Open);
    }
}

/// Stops reconnecting: every pending operation fails with [`Error::Closed`], whose source
/// is `failure`, the attempt that made the client give up (or the last one made).
fn give_up(shared: &Shared, reason: String, failure: Option<ConnectError>) {
    let full_reason = match &failure {
        Some(failure) => format!("{reason}: {failure}"),
        None => reason.clone(),
    };
    tracing::warn!("{full_reason}");
    shared.core.lock().close(Error::Closed {
        reason,
        source: failure.map(Arc::new),
    });
    shared.state.send_replace(ConnectionState::Failed {
        reason: full_reason,
    });
}

/// Waits `delay` while serving the core's timers; true if shutdown was asked for.
async fn wait(shared: &Shared, delay: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    let until = Instant::now() + delay;
    loop {
        let deadline = shared.core.lock().next_deadline();
        let timer = deadline.filter(|d| *d < until).unwrap_or(until);
        tokio::select! {
            _ = shutdown.changed() => return true,
            _ = sleep_until(timer) => {
                shared.core.lock().on_timer(Instant::now());
                if Instant::now() >= until {
                    return false;
                }
            }
            // Handles changed something: the deadlines may have moved.
            _ = shared.wake.notified() => {}
        }
    }
}

/// Serves one open connection until it drops or shutdown is asked for.
async fn serve(shared: &Shared, ws: &mut Ws, shutdown: &mut watch::Receiver<bool>) -> End {
    let heartbeat = shared.options.heartbeat_interval;
    let mut ping = interval_at(Instant::now() + heartbeat, heartbeat);
    let mut last_heard = Instant::now();
    loop {
        let (out, deadline) = {
            let mut core = shared.core.lock();
            (core.take_outbox(), core.next_deadline())
        };
        if !out.is_empty() {
            for m in &out {
                if let Err(e) = ws.feed(Frame::Binary(binary::encode(m))).await {
                    return End::Lost(e.to_string());
                }
            }
            if let Err(e) = ws.flush().await {
                return End::Lost(e.to_string());
            }
        }
        let timer = async {
            match deadline {
                Some(at) => sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.changed() => {
                close_gracefully(shared, ws).await;
                return End::Shutdown;
            }
            frame = ws.next() => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(Frame::Binary(bytes))) => match binary::decode(&bytes, usize::MAX) {
                        Ok(m) => shared.core.lock().handle(m),
                        Err(e) => tracing::warn!("undecodable frame from the server: {e}"),
                    },
                    Some(Ok(Frame::Close(close))) => {
                        return End::Lost(close.map_or_else(
                            || "the server closed the connection".to_owned(),
                            |c| format!("the server closed the connection ({}: {})", u16::from(c.code), c.reason),
                        ));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return End::Lost(e.to_string()),
                    None => return End::Lost("the connection closed".into()),
                }
            }
            _ = shared.wake.notified() => {}
            _ = timer => shared.core.lock().on_timer(Instant::now()),
            _ = ping.tick() => {
                if last_heard.elapsed() > heartbeat * 2 {
                    return End::Lost(format!("nothing heard for {:?}", heartbeat * 2));
                }
                if let Err(e) = send(ws, ConnectionMessage {
                    action: ConnectionAction::Ping as i32,
                    ..Default::default()
                }.into()).await {
                    return End::Lost(e.to_string());
                }
            }
        }
    }
}

/// Sends what is queued, then closes the WebSocket (deepstream's client does the same:
/// a close frame, no CONNECTION CLOSING) and waits briefly for the server's close.
async fn close_gracefully(shared: &Shared, ws: &mut Ws) {
    let out = shared.core.lock().take_outbox();
    for m in out {
        if ws.feed(Frame::Binary(binary::encode(&m))).await.is_err() {
            return;
        }
    }
    if ws.flush().await.is_err() {
        return;
    }
    let _ = ws.close(None).await;
    let _ = timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}
