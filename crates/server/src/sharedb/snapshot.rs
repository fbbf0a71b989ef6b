//! `nf` and `nt`: a document as it was at a version, or at a time, read from its history
//! (the engine's `value_at`, `value_at_time`), which runs across deletes and re-creates.
//!
//! The reply is `{a, id, v, type, data, m: null}`: `type` json0's URI, or null where the
//! document did not exist then (never created yet, or deleted). A version beyond the
//! document's is ShareDB's `ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT`; a time before
//! the first version kept is the document before its create (version 0, type null).

use recordsync_engine::EngineError;
use recordsync_sharedb_protocol::{ErrorCode, Reply, ShareDbError, SnapshotReply};

use super::connection::Connection;
use super::doc::{raw_or_error, record_name};
use super::{errors, fetch};

pub async fn at_version(
    conn: &mut Connection,
    id: u64,
    c: &str,
    d: &str,
    v: Option<u64>,
) -> Result<(), ShareDbError> {
    let name = record_name(c, d);
    let current = fetch::state(conn, &name).await?;
    let v = v.unwrap_or(current.version);
    if v > current.version {
        return Err(ShareDbError::new(
            ErrorCode::ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT,
            "Requested version exceeds latest snapshot version",
        ));
    }
    if v == current.version {
        return reply(conn, "nf", id, v, current.data.as_deref(), &name);
    }
    if v == 0 {
        return reply(conn, "nf", id, 0, None, &name);
    }
    // ShareDB version `v` is the document after the engine's entry `v - 1`.
    let past = conn
        .engine
        .value_at(&name, v - 1)
        .await
        .map_err(errors::engine)?;
    let text = past.data.map(|value| value.to_string());
    reply(conn, "nf", id, v, text.as_deref(), &name)
}

pub async fn at_time(
    conn: &mut Connection,
    id: u64,
    c: &str,
    d: &str,
    ts: Option<u64>,
) -> Result<(), ShareDbError> {
    let name = record_name(c, d);
    let current = fetch::state(conn, &name).await?;
    let Some(ts) = ts else {
        return reply(
            conn,
            "nt",
            id,
            current.version,
            current.data.as_deref(),
            &name,
        );
    };
    match conn.engine.value_at_time(&name, ts).await {
        Ok(past) => {
            let text = past.data.map(|value| value.to_string());
            reply(conn, "nt", id, past.version + 1, text.as_deref(), &name)
        }
        // Nothing kept is as old as `ts`: the document had not been created.
        Err(EngineError::NotInHistoryAtTime { .. }) => reply(conn, "nt", id, 0, None, &name),
        Err(e) => Err(errors::engine(e)),
    }
}

fn reply(
    conn: &Connection,
    a: &'static str,
    id: u64,
    v: u64,
    data: Option<&str>,
    name: &str,
) -> Result<(), ShareDbError> {
    let data = data.map(|text| raw_or_error(text, name)).transpose()?;
    conn.session
        .send(&Reply::Snapshot(SnapshotReply { a, id, v, data }));
    Ok(())
}
