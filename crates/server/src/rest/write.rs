//! `PUT`, `PATCH` and `DELETE` of `/v1/records/{name}`: writes through the engine, as
//! every front door's, so every subscriber on every protocol sees them.
//!
//! - `PUT` replaces the whole value (a JSON object or array, as every record's root is).
//! - `PATCH` writes at paths: `{"path": "a.b", "value": ...}` sets one,
//!   `{"path": "a.b", "erase": true}` removes one, and a list of them is applied in order
//!   as one version. Paths are deepstream's (`a.b[0]`, or `a.b.0`). One path write
//!   reaches deepstream subscribers as deepstream's PATCH, ShareDB subscribers as a json0
//!   op.
//! - `DELETE` deletes the record (its history stays; a later write re-creates it, its
//!   versions continuing).
//!
//! Without `If-Match` a write goes on top of whatever the record holds (and creates a
//! missing record); with it, only onto the version named, and a 412 with the current
//! version otherwise. `If-None-Match: *` writes only a record that does not exist.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use recordsync_core::{PathWrite, WriteOp};
use recordsync_deepstream_protocol::RecordAction;
use recordsync_engine::{Base, EngineVersion, RecordState, WriteDone, WriteFailure, WriteRequest};

use super::body;
use super::conditions::{Conditions, Tags};
use super::errors::RestError;
use super::guard::Guard;
use super::read::json_with_version;
use crate::permission::{Action, Data};

/// `PUT`: the body is the record's new value.
pub async fn put(
    guard: &Guard<'_>,
    name: &str,
    req: Request,
    limit: usize,
) -> Result<Response, RestError> {
    recordsync_core::validate_name(name).map_err(RestError::BadName)?;
    let conditions = Conditions::from_headers(req.headers())?;
    let data = body::read_json(req, limit).await?;
    let op = WriteOp::Update { data };
    write(guard, name, op, conditions, RecordAction::Update).await
}

/// `PATCH`: the body is one path write or a list of them.
pub async fn patch(
    guard: &Guard<'_>,
    name: &str,
    req: Request,
    limit: usize,
) -> Result<Response, RestError> {
    recordsync_core::validate_name(name).map_err(RestError::BadName)?;
    let conditions = Conditions::from_headers(req.headers())?;
    let body = body::read_json(req, limit).await?;
    let op = patch_op(body)?;
    write(guard, name, op, conditions, RecordAction::Patch).await
}

/// The op of a PATCH body.
pub fn patch_op(body: Value) -> Result<WriteOp, RestError> {
    let entries = match body {
        Value::Array(list) => list,
        one @ Value::Object(_) => vec![one],
        _ => {
            return Err(RestError::BadPatch(
                "a PATCH body is {\"path\": \"a.b\", \"value\": ...}, {\"path\": \"a.b\", \
                 \"erase\": true}, or a list of them"
                    .into(),
            ));
        }
    };
    if entries.is_empty() {
        return Err(RestError::BadPatch(
            "the list of path writes is empty: give at least one".into(),
        ));
    }
    let mut writes = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        writes.push(path_write(i, entry)?);
    }
    Ok(match <[PathWrite; 1]>::try_from(writes) {
        Ok(
            [
                PathWrite {
                    path,
                    data: Some(data),
                },
            ],
        ) => WriteOp::Patch { path, data },
        Ok([PathWrite { path, data: None }]) => WriteOp::Erase { path },
        Err(patches) => WriteOp::PatchMulti { patches },
    })
}

fn path_write(index: usize, entry: Value) -> Result<PathWrite, RestError> {
    let bad = |why: &str| RestError::BadPatch(format!("path write {index}: {why}"));
    let Value::Object(mut fields) = entry else {
        return Err(bad("expected an object {\"path\": ..., \"value\": ...}"));
    };
    let path = match fields.remove("path") {
        Some(Value::String(p)) if !p.is_empty() => p,
        Some(_) => return Err(bad("`path` must be a non-empty string, such as \"a.b[0]\"")),
        None => return Err(bad("`path` is missing")),
    };
    let value = fields.remove("value");
    let erase = match fields.remove("erase") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(bad("`erase` must be true or false")),
    };
    if let Some(other) = fields.keys().next() {
        return Err(bad(&format!(
            "unknown field {other:?}: a path write has `path` and `value` (or `erase`)"
        )));
    }
    match (value, erase) {
        (Some(_), true) => Err(bad("give either `value` or `erase: true`, not both")),
        (Some(data), false) => Ok(PathWrite {
            path,
            data: Some(data),
        }),
        (None, true) => Ok(PathWrite { path, data: None }),
        (None, false) => Err(bad(
            "`value` is missing (or `erase: true` to remove the path)",
        )),
    }
}

/// The record's current engine version, and where its next life begins when missing.
async fn current(guard: &Guard<'_>, name: &str) -> Result<(Option<u64>, u64), RestError> {
    match guard
        .state
        .engine
        .read_state(name)
        .await
        .map_err(RestError::engine)?
    {
        RecordState::Exists(s) => Ok((Some(s.version.version), s.version.version + 1)),
        RecordState::Missing { next_create } => Ok((None, next_create)),
    }
}

async fn write(
    guard: &Guard<'_>,
    name: &str,
    op: WriteOp,
    conditions: Conditions,
    wire: RecordAction,
) -> Result<Response, RestError> {
    op.validate().map_err(RestError::InvalidWrite)?;
    let mut base = Base::Next;
    let mut missing = None;
    if !conditions.is_empty() || !guard.is_open() {
        let (version, next_create) = current(guard, name).await?;
        conditions.check_write(version)?;
        missing = Some(version.is_none());
        base = match (&conditions.if_match, &conditions.if_none_match, version) {
            // Onto the version matched (a write in between is a conflict).
            (Some(_), _, Some(v)) => Base::At(v),
            // Onto nothing: if the record was created in between, it is stale.
            (None, Some(Tags::Any), None) => Base::At(next_create),
            _ => Base::Next,
        };
    }
    if missing == Some(true) {
        guard
            .check(Action::Create, RecordAction::Create, name, Data::None)
            .await?;
    }
    let data = match &op {
        WriteOp::Update { data } => Data::Value(data),
        other => Data::Merged(other),
    };
    guard.check(Action::Write, wire, name, data).await?;
    let request = WriteRequest {
        author: guard.author(),
        ..WriteRequest::new(guard.state.next_session_id(), op, base)
    };
    let (done, answer) = answered();
    guard.state.engine.write(name, request, done).await;
    let version = answer.await.map_err(|_| unanswered())?.map_err(refusal)?;
    let mut body = Map::new();
    body.insert("version".into(), version.version.into());
    Ok(json_with_version(
        StatusCode::OK,
        version.version,
        Value::Object(body).to_string(),
    ))
}

/// `DELETE`.
pub async fn delete(
    guard: &Guard<'_>,
    name: &str,
    conditions: Conditions,
) -> Result<Response, RestError> {
    recordsync_core::validate_name(name).map_err(RestError::BadName)?;
    let (version, _) = current(guard, name).await?;
    if conditions.if_match.is_none() && version.is_none() {
        return Err(RestError::NotFound {
            name: name.to_owned(),
        });
    }
    conditions.check_write(version)?;
    guard
        .check(Action::Delete, RecordAction::Delete, name, Data::None)
        .await?;
    let (done, answer) = answered();
    let engine = &guard.state.engine;
    let deleter = guard.state.next_session_id();
    match (&conditions.if_match, version) {
        (Some(_), Some(v)) => {
            engine
                .delete_at(deleter, guard.author(), name, v, done)
                .await
        }
        _ => engine.delete(deleter, guard.author(), name, done).await,
    }
    answer.await.map_err(|_| unanswered())?.map_err(refusal)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

type Answer = Result<EngineVersion, WriteFailure>;

fn answered() -> (WriteDone, oneshot::Receiver<Answer>) {
    let (tx, rx) = oneshot::channel();
    let done = WriteDone::new(move |result| {
        // The request may be gone (its client hung up): nobody to tell.
        let _ = tx.send(result);
    });
    (done, rx)
}

fn unanswered() -> RestError {
    RestError::Internal("the write was not answered".into())
}

/// A refused write or delete, as the client is told it.
fn refusal(failure: WriteFailure) -> RestError {
    match failure {
        WriteFailure::VersionExists { version, .. } => RestError::PreconditionFailed {
            reason: format!(
                "the record was changed meanwhile: it is at version {}",
                version.version
            ),
            current: Some(version.version),
        },
        WriteFailure::InvalidVersion { current, .. } => RestError::PreconditionFailed {
            reason: format!("the record is at version {}", current.version),
            current: Some(current.version),
        },
        WriteFailure::Missing { .. } => RestError::PreconditionFailed {
            reason: "the record does not exist".into(),
            current: None,
        },
        WriteFailure::InvalidOp(e) => RestError::InvalidWrite(e),
        WriteFailure::Refused(e) => RestError::BadPatch(e.to_string()),
        WriteFailure::Rejected(e) => RestError::BadPatch(e.to_string()),
        e @ (WriteFailure::Conflict { .. }
        | WriteFailure::Contended { .. }
        | WriteFailure::LifeEnded { .. }
        | WriteFailure::Exists { .. }) => RestError::Conflict(e),
        WriteFailure::NotStored(e) => RestError::Unavailable(e.to_string()),
        WriteFailure::Engine(e) => RestError::engine(e),
        e => RestError::Internal(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patch_bodies() {
        assert_eq!(
            patch_op(json!({"path": "a.b", "value": 1})).unwrap(),
            WriteOp::Patch {
                path: "a.b".into(),
                data: json!(1)
            }
        );
        assert_eq!(
            patch_op(json!([{"path": "a", "erase": true}])).unwrap(),
            WriteOp::Erase { path: "a".into() }
        );
        assert_eq!(
            patch_op(json!([{"path": "a", "value": null}, {"path": "b", "erase": true}])).unwrap(),
            WriteOp::PatchMulti {
                patches: vec![
                    PathWrite {
                        path: "a".into(),
                        data: Some(json!(null))
                    },
                    PathWrite {
                        path: "b".into(),
                        data: None
                    }
                ]
            }
        );
        for bad in [
            json!(3),
            json!([]),
            json!({"value": 1}),
            json!({"path": "", "value": 1}),
            json!({"path": "a"}),
            json!({"path": "a", "value": 1, "erase": true}),
            json!({"path": "a", "value": 1, "extra": 2}),
            json!([{"path": "a", "value": 1}, 5]),
        ] {
            assert_eq!(
                patch_op(bad.clone()).unwrap_err().code(),
                "bad_patch",
                "{bad}"
            );
        }
    }
}
