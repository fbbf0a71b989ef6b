//! A document's history read back as ShareDB ops: what `f` and `s` from a version send,
//! and the ops a submitter missed before its acknowledgement.
//!
//! Every journal entry reads as a ShareDB op (`JournalOp::to_replay`): creates and
//! deletes as themselves, json0 ops as they are, deepstream's path writes as the json0 op
//! with the same effect on the value before them, which is rebuilt from the version
//! before the first op sent (the engine's `value_at`) and carried along.

use serde_json::Value;

use recordsync_core::{JournalOp, ReplayOp, json0};
use recordsync_engine::Engine;
use recordsync_sharedb_protocol::{ErrorCode, OpMessage, Reply, SentOpBody, ShareDbError};

use super::errors;
use super::session::Session;

/// Sends the ops of document `(c, d)` (record `name`) from ShareDB version `from` to the
/// document's version `to` (the ops with `from <= v < to`), in order.
pub async fn send(
    engine: &Engine,
    session: &Session,
    (c, d, name): (&str, &str, &str),
    from: u64,
    to: u64,
) -> Result<(), ShareDbError> {
    for text in read(engine, (c, d, name), from, to).await? {
        session.send_text(&text);
    }
    Ok(())
}

/// The op messages [`send`] sends.
pub async fn read(
    engine: &Engine,
    (c, d, name): (&str, &str, &str),
    from: u64,
    to: u64,
) -> Result<Vec<String>, ShareDbError> {
    if from >= to {
        return Ok(Vec::new());
    }
    // An op's `v` is the engine version of its journal entry (see `super::doc`).
    let last = to - 1;
    let mut value: Option<Value> = match from {
        0 => None,
        _ => {
            engine
                .value_at(name, from - 1)
                .await
                .map_err(errors::engine)?
                .data
        }
    };
    let entries = engine
        .journal(name, from, last)
        .await
        .map_err(errors::engine)?;
    if entries.first().map(|e| e.version) != Some(from) {
        return Err(ShareDbError::new(
            ErrorCode::ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND,
            format!("the ops from version {from} of this document are no longer kept"),
        ));
    }
    let mut sent = Vec::with_capacity(entries.len());
    for entry in entries {
        let damaged = |e: &dyn std::fmt::Display| {
            ShareDbError::new(
                ErrorCode::ERR_UNKNOWN_ERROR,
                format!("op {} of this document cannot be read: {e}", entry.version),
            )
        };
        let op = JournalOp::from_journal(&entry.op).map_err(|e| damaged(&e))?;
        let replay = op.to_replay(value.as_ref()).map_err(|e| damaged(&e))?;
        let (created, edit);
        let body = match &replay {
            ReplayOp::Create(data) => {
                created = serde_json::value::to_raw_value(data).map_err(|e| damaged(&e))?;
                SentOpBody::Create(&created)
            }
            ReplayOp::Op(ops) => {
                edit = json0::op_to_json(ops);
                SentOpBody::Edit(&edit)
            }
            ReplayOp::Delete => SentOpBody::Delete,
        };
        sent.push(
            Reply::Op(OpMessage {
                c,
                d,
                v: entry.version,
                src: entry.origin.as_ref().map(|o| o.src.as_str()),
                seq: entry.origin.as_ref().map(|o| o.seq),
                body,
            })
            .to_text(),
        );
        op.apply(&mut value).map_err(|e| damaged(&e))?;
    }
    Ok(sent)
}
