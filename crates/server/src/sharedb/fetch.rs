//! `f` and `bf`: a document's snapshot, or, given the version the client has, the ops
//! since (sent as `op` messages before the reply, which then carries no snapshot).

use serde_json::Value;

use recordsync_sharedb_protocol::{
    BulkDocs, BulkReply, DocReply, DocRequest, Reply, ShareDbError, SnapshotData,
};

use super::connection::Connection;
use super::doc::{DocState, bulk_entry, raw_or_error, record_name};
use super::{errors, ops};

/// The document's committed state, if the user may read it.
pub async fn state(conn: &Connection, name: &str) -> Result<DocState, ShareDbError> {
    conn.guard.read(name).await?;
    let state = conn.engine.read_state(name).await.map_err(errors::engine)?;
    Ok(DocState::of(state))
}

pub async fn fetch(conn: &mut Connection, doc: DocRequest) -> Result<(), ShareDbError> {
    let name = record_name(&doc.c, &doc.d);
    let state = state(conn, &name).await?;
    match doc.v {
        None => {
            let data = state
                .data
                .as_deref()
                .map(|text| raw_or_error(text, &name))
                .transpose()?;
            conn.session.send(&Reply::Doc(DocReply {
                a: "f",
                c: &doc.c,
                d: &doc.d,
                data: Some(SnapshotData {
                    v: state.version,
                    data,
                }),
            }));
        }
        Some(from) => {
            let doc_ref = (doc.c.as_str(), doc.d.as_str(), name.as_str());
            ops::send(&conn.engine, &conn.session, doc_ref, from, state.version).await?;
            conn.session.send(&Reply::Doc(DocReply {
                a: "f",
                c: &doc.c,
                d: &doc.d,
                data: None,
            }));
        }
    }
    Ok(())
}

/// `bf`: with ids, each document's snapshot (or its own error) in one reply; with
/// versions, each document's ops since, then the request's `b` echoed.
pub async fn fetch_bulk(
    conn: &mut Connection,
    raw: &Value,
    bulk: recordsync_sharedb_protocol::BulkRequest,
) -> Result<(), ShareDbError> {
    let c = bulk.c.as_str();
    match &bulk.b {
        BulkDocs::Ids(ids) => {
            let mut states = Vec::with_capacity(ids.len());
            for d in ids {
                let name = record_name(c, d);
                states.push((d.as_str(), name.clone(), state(conn, &name).await));
            }
            let mut data = Vec::with_capacity(states.len());
            for (d, name, result) in &states {
                let entry = bulk_entry(result.as_ref(), name);
                data.push((*d, entry));
            }
            conn.session.send(&Reply::Bulk(BulkReply {
                a: "bf",
                c,
                data: Some(data),
                b: None,
            }));
        }
        BulkDocs::Versions(versions) => {
            for (d, from) in versions {
                let name = record_name(c, d);
                let state = state(conn, &name).await?;
                ops::send(
                    &conn.engine,
                    &conn.session,
                    (c, d, &name),
                    *from,
                    state.version,
                )
                .await?;
            }
            conn.session.send(&Reply::Bulk(BulkReply {
                a: "bf",
                c,
                data: None,
                b: raw.get("b"),
            }));
        }
    }
    Ok(())
}
