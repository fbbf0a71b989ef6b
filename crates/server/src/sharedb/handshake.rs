//! `hs`: the client names the protocol it speaks and the `src` it had before (a
//! reconnect), and is told the protocol, json0 as the default type, and its `src`.
//!
//! The `src` stays the client's across reconnects, so an op it sends again after a
//! reconnect carries the same origin (`src`, `seq`) and is recognised as a resubmission.

use recordsync_sharedb_protocol::{ErrorCode, PROTOCOL_MAJOR, ShareDbError, handshake_reply};

use super::connection::Connection;

pub fn handle(
    conn: &mut Connection,
    id: Option<String>,
    protocol: Option<u64>,
) -> Result<(), ShareDbError> {
    if protocol.is_some_and(|p| p != PROTOCOL_MAJOR) {
        return Err(ShareDbError::new(
            ErrorCode::ERR_PROTOCOL_VERSION_NOT_SUPPORTED,
            format!(
                "Unsupported protocol version: this server speaks ShareDB protocol {PROTOCOL_MAJOR}"
            ),
        ));
    }
    if let Some(id) = id.filter(|id| !id.is_empty()) {
        conn.src = id;
    }
    conn.session.send_text(&handshake_reply(&conn.src));
    Ok(())
}
