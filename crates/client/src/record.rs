//! [`Record`]: a reference-counted handle on one live record, and [`Subscription`], a
//! stream of its values.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use recordsync_core::{Path, WriteOp};

use crate::ack::WriteAck;
use crate::client::Client;
use crate::core::{Opened, Status};
use crate::error::Error;
use crate::merge::MergeStrategy;

/// A live record. Made by [`Client::record`]; clones and further `record` calls for the
/// same name share one subscription, which ends (after the unload delay) when the last
/// handle is dropped or [discarded](Record::discard).
///
/// Paths address a part of the value in deepstream's notation, `pets[1].fur.color`; the
/// empty path `""` addresses the whole value. Writes apply locally at once and are sent
/// to the server in order; while the connection is down they are queued and sent after
/// reconnecting.
pub struct Record {
    client: Client,
    name: Arc<str>,
    id: u64,
    status: watch::Receiver<Status>,
    provider: watch::Receiver<bool>,
}

impl Record {
    pub(crate) fn new(client: Client, name: &str, opened: Opened) -> Record {
        Record {
            client,
            name: Arc::from(name),
            id: opened.id,
            status: opened.status,
            provider: opened.provider,
        }
    }

    /// The record's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client this record belongs to.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Waits until the record has its value from the server. Fails if the server refused
    /// the subscription (e.g. [`Error::PermissionDenied`]), or the record was deleted.
    pub async fn when_ready(&self) -> Result<(), Error> {
        let mut status = self.status.clone();
        let status = status
            .wait_for(|s| *s != Status::Loading)
            .await
            .map(|s| s.clone())
            .unwrap_or(Status::Failed(Error::closed()));
        match status {
            Status::Ready => Ok(()),
            Status::Deleted => Err(Error::Deleted {
                name: self.name.to_string(),
            }),
            Status::Failed(e) => Err(e),
            Status::Loading => unreachable!("waited for another status"),
        }
    }

    /// True once the record has its value.
    pub fn is_ready(&self) -> bool {
        *self.status.borrow() == Status::Ready
    }

    /// The value at `path` (`""` for the whole value); `None` if there is nothing there,
    /// or the record is not ready yet.
    pub fn get(&self, path: &str) -> Option<Value> {
        let path = parse_path(path).ok()?;
        self.client
            .shared()
            .core
            .lock()
            .get(&self.name, self.id, path.as_ref())
            .ok()
            .flatten()
    }

    /// The value at `path`, deserialized into `T`.
    pub fn get_as<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, Error> {
        let parsed = parse_path(path)?;
        let value = self
            .client
            .shared()
            .core
            .lock()
            .get(&self.name, self.id, parsed.as_ref())?;
        value
            .map(|v| {
                serde_json::from_value(v).map_err(|e| {
                    Error::json(
                        format!(
                            "the value at {path:?} in record {:?} does not read as {}",
                            self.name,
                            std::any::type_name::<T>()
                        ),
                        e,
                    )
                })
            })
            .transpose()
    }

    /// The version of the local value: the server's version plus this client's writes
    /// not yet confirmed. `None` before the record is ready.
    pub fn version(&self) -> Option<u64> {
        self.client
            .shared()
            .core
            .lock()
            .version(&self.name, self.id)
    }

    /// Sets the value at `path` (`""` replaces the whole value, which must be an object
    /// or an array). Applied locally at once; returns without waiting for the server.
    pub fn set(&self, path: &str, value: impl Serialize) -> Result<(), Error> {
        let (_, change) = path_and_change(path, value)?;
        self.write(change, None)
    }

    /// [`Record::set`], with a future that completes once the server has stored the
    /// write. The write is made (and ordered) when this is called; the future only waits.
    /// Fails with [`Error::Conflict`] if a concurrent write won and the merge strategy
    /// kept it.
    pub fn set_with_ack(&self, path: &str, value: impl Serialize) -> WriteAck {
        let change = path_and_change(path, value).map(|(_, change)| change);
        self.write_with_ack(change, "write to")
    }

    /// Removes the value at `path`.
    pub fn erase(&self, path: &str) -> Result<(), Error> {
        self.write(erase_change(path)?, None)
    }

    /// [`Record::erase`], with a future that completes once the server has stored the write.
    pub fn erase_with_ack(&self, path: &str) -> WriteAck {
        self.write_with_ack(erase_change(path), "erase in")
    }

    fn write_with_ack(&self, change: Result<WriteOp, Error>, what: &str) -> WriteAck {
        let (tx, rx) = oneshot::channel();
        match change.and_then(|change| self.write(change, Some(tx))) {
            Ok(()) => WriteAck::waiting(
                rx,
                format!("{what} {:?}", self.name),
                self.client.request_timeout(),
            ),
            Err(e) => WriteAck::failed(e),
        }
    }

    fn write(
        &self,
        change: WriteOp,
        waiter: Option<oneshot::Sender<Result<(), Error>>>,
    ) -> Result<(), Error> {
        self.client
            .shared()
            .with_core(|core| core.write(&self.name, self.id, change, waiter))
    }

    /// A stream of the value at `path` (`""` for the whole value): first the value when
    /// the record is ready, then the new value after every change to it (missing values
    /// are `null`). The stream keeps the record subscribed, and ends when the record is
    /// deleted or the client closed.
    pub fn subscribe(&self, path: &str) -> Result<Subscription, Error> {
        let path = parse_path(path)?;
        let rx = self
            .client
            .shared()
            .core
            .lock()
            .subscribe(&self.name, self.id, path)?;
        Ok(Subscription {
            rx,
            _record: self.clone(),
        })
    }

    /// Whether a provider (a client [listening](Client::listen) to a pattern that
    /// matches this record) has accepted to provide it.
    pub fn has_provider(&self) -> bool {
        *self.provider.borrow()
    }

    /// A receiver that sees every change of [`Record::has_provider`].
    pub fn watch_provider(&self) -> watch::Receiver<bool> {
        self.provider.clone()
    }

    /// Completes when the record is deleted, by this client or another.
    pub async fn deleted(&self) {
        let mut status = self.status.clone();
        let _ = status.wait_for(|s| *s == Status::Deleted).await;
    }

    /// True once the record was deleted.
    pub fn is_deleted(&self) -> bool {
        *self.status.borrow() == Status::Deleted
    }

    /// Deletes the record on the server, once it is ready. Every handle on it, here and
    /// in other clients, sees [`Record::deleted`] complete.
    pub async fn delete(&self) -> Result<(), Error> {
        self.when_ready().await?;
        self.client.delete(&self.name).await
    }

    /// Sets how this record resolves conflicts (for every handle on it), instead of the
    /// client's [`Options::merge_strategy`](crate::Options::merge_strategy).
    pub fn set_merge_strategy(&self, strategy: MergeStrategy) {
        self.client
            .shared()
            .core
            .lock()
            .set_merge_strategy(&self.name, self.id, strategy);
    }

    /// Drops this handle: the same as `drop(record)`. The subscription ends when the last
    /// handle is gone (after the unload delay) and its writes are confirmed.
    pub fn discard(self) {}
}

impl Clone for Record {
    fn clone(&self) -> Self {
        self.client.shared().core.lock().retain(&self.name, self.id);
        Record {
            client: self.client.clone(),
            name: self.name.clone(),
            id: self.id,
            status: self.status.clone(),
            provider: self.provider.clone(),
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let (name, id) = (&self.name, self.id);
        self.client
            .shared()
            .with_core(|core| core.release(name, id, Instant::now()));
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("name", &self.name)
            .field("ready", &self.is_ready())
            .finish()
    }
}

/// The values of a record, or of one path in it: see [`Record::subscribe`].
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Value>,
    _record: Record,
}

impl Subscription {
    /// The next value; `None` once the record is deleted or the client closed.
    pub async fn next(&mut self) -> Option<Value> {
        self.rx.recv().await
    }
}

impl Stream for Subscription {
    type Item = Value;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Value>> {
        self.rx.poll_recv(cx)
    }
}

/// `""` is the whole value; anything else must be a valid path.
pub(crate) fn parse_path(path: &str) -> Result<Option<Path>, Error> {
    if path.trim().is_empty() {
        return Ok(None);
    }
    Path::parse(path).map(Some).map_err(|e| Error::InvalidPath {
        path: path.to_owned(),
        reason: "it does not parse".into(),
        source: Some(e),
    })
}

/// The write op for setting `value` at `path`.
pub(crate) fn path_and_change(
    path: &str,
    value: impl Serialize,
) -> Result<(Option<Path>, WriteOp), Error> {
    let parsed = parse_path(path)?;
    let data =
        serde_json::to_value(value).map_err(|e| Error::json("it cannot be written as JSON", e))?;
    let change = match &parsed {
        None => {
            if !(data.is_object() || data.is_array()) {
                return Err(Error::InvalidValue {
                    reason: format!(
                        "a whole record must be a JSON object or array, not {data}; give a path to set a single value"
                    ),
                    source: None,
                });
            }
            WriteOp::Update { data }
        }
        Some(_) => WriteOp::Patch {
            path: path.trim().to_owned(),
            data,
        },
    };
    Ok((parsed, change))
}

fn erase_change(path: &str) -> Result<WriteOp, Error> {
    match parse_path(path)? {
        Some(_) => Ok(WriteOp::Erase {
            path: path.trim().to_owned(),
        }),
        None => Err(Error::InvalidPath {
            path: path.to_owned(),
            reason: "erase needs a path; to remove the whole record, delete it".into(),
            source: None,
        }),
    }
}
