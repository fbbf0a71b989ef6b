//! The HTTP surface: WebSocket endpoints and the health check.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use crate::ServerState;
use crate::deepstream::{self, Transport};

pub fn router(state: Arc<ServerState>) -> Router {
    let config = &state.config;
    Router::new()
        .route(&config.binary_path, get(deepstream_binary))
        .route(&config.json_path, get(deepstream_json))
        .route(&config.health_check_path, get(health_check))
        .with_state(state)
}

async fn deepstream_binary(
    ws: WebSocketUpgrade,
    State(state): State<Arc<ServerState>>,
) -> Response {
    upgrade(ws, state, Transport::Binary)
}

async fn deepstream_json(ws: WebSocketUpgrade, State(state): State<Arc<ServerState>>) -> Response {
    upgrade(ws, state, Transport::Json)
}

/// Bytes read from a client's socket at a time. tungstenite's default (128 KiB) is filled
/// with zeros before the first read, so every connection, idle or not, cost 128 KiB of
/// resident memory and the page faults to get it; client messages are small, and a larger
/// one simply takes several reads. 512 bytes holds a typical client message (a subscribe,
/// an update of a small record) and keeps an idle connection small.
const READ_BUFFER: usize = 512;

fn upgrade(ws: WebSocketUpgrade, state: Arc<ServerState>, transport: Transport) -> Response {
    // Frames a little over the message limit still reach the decoder, which answers with
    // a clear MAXIMUM_MESSAGE_SIZE_EXCEEDED; far larger ones are refused by the socket.
    let limit = state.config.max_message_size.saturating_mul(2);
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| deepstream::connection::run(socket, state, transport))
}

/// 200 while the server can store writes; 503 while its storage is failing (a commit
/// failed and none has succeeded since), so that a load balancer or supervisor can act.
async fn health_check(State(state): State<Arc<ServerState>>) -> StatusCode {
    if state.engine.healthy().await {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}
