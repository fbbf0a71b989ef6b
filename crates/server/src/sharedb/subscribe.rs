//! `s`, `bs`, `u`, `bu`: following documents.
//!
//! A subscription is registered with the engine whether the document exists or not, and
//! outlives its deletes (ShareDB clients follow a document through delete and
//! re-create). Its reply is queued under the record's lock, so every op committed after
//! the snapshot it carries follows it, and none before. A subscription from a version
//! sends the ops since from the journal first, holding the live ones meanwhile (see
//! [`super::session`]); so does a bulk subscription, whose one reply carries every
//! snapshot.

use std::sync::Arc;

use serde_json::Value;

use recordsync_engine::Subscriber;
use recordsync_sharedb_protocol::{
    BulkDocs, BulkReply, BulkRequest, DocReply, DocRequest, Reply, ShareDbError, SnapshotData,
};

use super::connection::Connection;
use super::doc::{DocState, bulk_entry, raw_or_error, record_name};
use super::{errors, ops};

pub async fn subscribe(conn: &mut Connection, doc: DocRequest) -> Result<(), ShareDbError> {
    let name = record_name(&doc.c, &doc.d);
    conn.guard.read(&name).await?;
    match doc.v {
        None => {
            let session = conn.session.clone();
            let subscriber: Arc<dyn Subscriber> = session.clone();
            let mut failed = None;
            let (c, d) = (doc.c.as_str(), doc.d.as_str());
            let shared = conn
                .engine
                .subscribe_state(subscriber, &name, |state| {
                    let state = DocState::of(state);
                    match state
                        .data
                        .as_deref()
                        .map(|t| raw_or_error(t, &name))
                        .transpose()
                    {
                        Ok(data) => session.send(&Reply::Doc(DocReply {
                            a: "s",
                            c,
                            d,
                            data: Some(SnapshotData {
                                v: state.version,
                                data,
                            }),
                        })),
                        Err(e) => failed = Some(e),
                    }
                })
                .await
                .map_err(errors::engine)?;
            if let Some(error) = failed {
                let _ = conn.engine.unsubscribe(conn.session.id, &name).await;
                return Err(error);
            }
            conn.subscriptions.insert(shared);
        }
        Some(from) => {
            conn.session.catch_up(&name);
            let caught_up = subscribe_from(conn, &doc.c, &doc.d, &name, from).await;
            conn.session.caught_up(&name, caught_up.is_ok());
            caught_up?;
            conn.session.send(&Reply::Doc(DocReply {
                a: "s",
                c: &doc.c,
                d: &doc.d,
                data: None,
            }));
        }
    }
    Ok(())
}

/// Subscribes to `name` and sends the ops since ShareDB version `from`, while the
/// session holds the document's live events. Unsubscribes again if the ops cannot be
/// read.
async fn subscribe_from(
    conn: &mut Connection,
    c: &str,
    d: &str,
    name: &str,
    from: u64,
) -> Result<(), ShareDbError> {
    let subscriber: Arc<dyn Subscriber> = conn.session.clone();
    let mut version = 0;
    let shared = conn
        .engine
        .subscribe_state(subscriber, name, |state| {
            version = DocState::of(state).version;
        })
        .await
        .map_err(errors::engine)?;
    if let Err(e) = ops::send(&conn.engine, &conn.session, (c, d, name), from, version).await {
        let _ = conn.engine.unsubscribe(conn.session.id, name).await;
        return Err(e);
    }
    conn.subscriptions.insert(shared);
    Ok(())
}

/// `bs`: with ids, every document's snapshot in one reply (a document that cannot be
/// read has its error there instead); with versions, every document's ops since, then
/// the request's `b` echoed.
pub async fn subscribe_bulk(
    conn: &mut Connection,
    raw: &Value,
    bulk: BulkRequest,
) -> Result<(), ShareDbError> {
    let c = bulk.c.as_str();
    let ids: Vec<&str> = match &bulk.b {
        BulkDocs::Ids(ids) => ids.iter().map(String::as_str).collect(),
        BulkDocs::Versions(versions) => versions.iter().map(|(d, _)| d.as_str()).collect(),
    };
    let names: Vec<String> = ids.iter().map(|d| record_name(c, d)).collect();
    for name in &names {
        conn.session.catch_up(name);
    }
    let mut results = Vec::with_capacity(ids.len());
    match &bulk.b {
        BulkDocs::Ids(_) => {
            for (d, name) in ids.iter().zip(&names) {
                results.push(
                    subscribe_snapshot(conn, name)
                        .await
                        .map(|state| (*d, state)),
                );
            }
            let mut data = Vec::with_capacity(results.len());
            for (i, result) in results.iter().enumerate() {
                let entry = bulk_entry(result.as_ref().map(|(_, state)| state), &names[i]);
                data.push((ids[i], entry));
            }
            conn.session.send(&Reply::Bulk(BulkReply {
                a: "bs",
                c,
                data: Some(data),
                b: None,
            }));
            for (name, result) in names.iter().zip(&results) {
                conn.session.caught_up(name, result.is_ok());
            }
        }
        BulkDocs::Versions(versions) => {
            let mut failed = None;
            for ((d, from), name) in versions.iter().zip(&names) {
                let result = match conn.guard.read(name).await {
                    Ok(()) => subscribe_from(conn, c, d, name, *from).await,
                    Err(e) => Err(e),
                };
                conn.session.caught_up(name, result.is_ok());
                if let Err(e) = result {
                    failed.get_or_insert(e);
                }
            }
            if let Some(error) = failed {
                return Err(error);
            }
            conn.session.send(&Reply::Bulk(BulkReply {
                a: "bs",
                c,
                data: None,
                b: raw.get("b"),
            }));
        }
    }
    Ok(())
}

/// Subscribes to `name` and returns the state the subscription starts from.
async fn subscribe_snapshot(conn: &mut Connection, name: &str) -> Result<DocState, ShareDbError> {
    conn.guard.read(name).await?;
    let subscriber: Arc<dyn Subscriber> = conn.session.clone();
    let mut state = None;
    let shared = conn
        .engine
        .subscribe_state(subscriber, name, |s| state = Some(DocState::of(s)))
        .await
        .map_err(errors::engine)?;
    conn.subscriptions.insert(shared);
    Ok(state.expect("subscribe_state runs its initial callback before it returns"))
}

pub async fn unsubscribe(conn: &mut Connection, doc: DocRequest) -> Result<(), ShareDbError> {
    let name = record_name(&doc.c, &doc.d);
    // A live query may still show it: then the connection stays subscribed.
    if conn.subscriptions.remove(&name) {
        let _ = conn.engine.unsubscribe(conn.session.id, &name).await;
    }
    conn.session.send(&Reply::Doc(DocReply {
        a: "u",
        c: &doc.c,
        d: &doc.d,
        data: None,
    }));
    Ok(())
}

pub async fn unsubscribe_bulk(
    conn: &mut Connection,
    raw: &Value,
    bulk: BulkRequest,
) -> Result<(), ShareDbError> {
    let ids: Vec<&str> = match &bulk.b {
        BulkDocs::Ids(ids) => ids.iter().map(String::as_str).collect(),
        BulkDocs::Versions(versions) => versions.iter().map(|(d, _)| d.as_str()).collect(),
    };
    for d in ids {
        let name = record_name(&bulk.c, d);
        if conn.subscriptions.remove(&name) {
            let _ = conn.engine.unsubscribe(conn.session.id, &name).await;
        }
    }
    conn.session.send(&Reply::Bulk(BulkReply {
        a: "bu",
        c: &bulk.c,
        data: None,
        b: raw.get("b"),
    }));
    Ok(())
}
