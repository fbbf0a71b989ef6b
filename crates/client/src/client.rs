//! [`Client`]: one logged-in session with a deepstream-protocol server.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::ack::WriteAck;
use crate::connection::{self, ConnectionState, Shared};
use crate::core::{Core, Snapshot};
use crate::error::{ConnectError, Error};
use crate::event::EventSubscription;
use crate::list::List;
use crate::listen::Listening;
use crate::options::{Options, normalize_url};
use crate::record::{Record, path_and_change};

/// A connection to a recordsync or deepstream server. Cheap to clone: clones share the
/// connection, and so do the [`Record`]s, [`List`]s and [`Listening`]s made from them.
///
/// The connection is closed by [`Client::close`], or once every clone and every handle
/// made from it has been dropped.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl Client {
    /// Connects to `url` (e.g. `ws://localhost:6020/deepstream`, or just `localhost:6020`)
    /// with default [`Options`] and logs in with empty credentials.
    ///
    /// Fails if the server cannot be reached or refuses the login; once connected, the
    /// client reconnects by itself whenever the connection drops.
    pub async fn connect(url: &str) -> Result<Client, ConnectError> {
        Client::connect_with(Options::new(url)).await
    }

    /// Connects with the given options.
    pub async fn connect_with(options: Options) -> Result<Client, ConnectError> {
        let url = normalize_url(&options.url)?;
        let (ws, client_data) = connection::open(&url, &options).await?;
        let mut core = Core::new(options.unload_delay, options.merge_strategy.clone());
        core.on_open();
        let (state, _) = watch::channel(ConnectionState::Open);
        let shared = Arc::new(Shared {
            core: parking_lot::Mutex::new(core),
            wake: tokio::sync::Notify::new(),
            options,
            url,
            state,
            client_data: Mutex::new(client_data),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(connection::run(shared.clone(), ws, shutdown_rx));
        Ok(Client {
            inner: Arc::new(Inner {
                shared,
                shutdown,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.shared().options.request_timeout
    }

    /// The server's address, completed (`ws://host:port/deepstream`).
    pub fn url(&self) -> &str {
        &self.shared().url
    }

    /// What the server said about this client when it logged in (deepstream's
    /// `clientData`), if anything.
    pub fn client_data(&self) -> Option<Value> {
        self.shared().client_data.lock().clone()
    }

    /// The connection's state now.
    pub fn connection_state(&self) -> ConnectionState {
        self.shared().state.borrow().clone()
    }

    /// A receiver that sees every change of the connection's state:
    ///
    /// ```no_run
    /// # async fn f(client: recordsync_client::Client) {
    /// use recordsync_client::ConnectionState;
    /// let mut states = client.watch_connection();
    /// // Wait until the connection is back after an outage:
    /// states.wait_for(|s| *s == ConnectionState::Open).await.unwrap();
    /// # }
    /// ```
    pub fn watch_connection(&self) -> watch::Receiver<ConnectionState> {
        self.shared().state.subscribe()
    }

    /// A handle on the record `name`, subscribed on the server and kept current. The
    /// record is created (as `{}`) if it does not exist. Asking for the same record
    /// again shares the subscription; the server is told to stop sending updates once
    /// the last handle is dropped (after the unload delay, see [`Options::unload_delay`]).
    ///
    /// The handle is returned at once; [`Record::when_ready`] waits for the value.
    pub fn record(&self, name: &str) -> Record {
        let opened = self.shared().with_core(|core| core.open_record(name));
        Record::new(self.clone(), name, opened)
    }

    /// A handle on the list `name`: a record whose value is an array of record names.
    pub fn list(&self, name: &str) -> List {
        List::new(self.record(name))
    }

    /// Whether the record exists, without creating or subscribing to it.
    pub async fn has(&self, name: &str) -> Result<bool, Error> {
        Ok(self.head(name).await?.is_some())
    }

    /// The record's version on the server, or `None` if it does not exist.
    pub async fn head(&self, name: &str) -> Result<Option<u64>, Error> {
        let (tx, rx) = oneshot::channel();
        self.shared().with_core(|core| core.head(name, tx));
        self.answer(rx, || format!("head of {name:?}")).await
    }

    /// The record's current value and version, read once without subscribing; fails with
    /// [`Error::NotFound`] if it does not exist.
    pub async fn snapshot(&self, name: &str) -> Result<Snapshot, Error> {
        let (tx, rx) = oneshot::channel();
        self.shared().with_core(|core| core.read(name, tx));
        self.answer(rx, || format!("snapshot of {name:?}")).await
    }

    /// Writes `value` at `path` of the record without subscribing to it (deepstream's
    /// `setData`); `path` `""` replaces the whole value, which must then be an object or
    /// an array. Creates the record if it does not exist. The write always lands after
    /// the writes before it (it takes the next version), so it never conflicts.
    ///
    /// Returns once the write is queued; it is sent when the client is connected.
    pub fn set_data(&self, name: &str, path: &str, value: impl Serialize) -> Result<(), Error> {
        let (_, change) = path_and_change(path, value)?;
        self.shared()
            .with_core(|core| core.set_data(name, change, None))
    }

    /// [`Client::set_data`], with a future that completes once the server has stored the
    /// write. The write is queued when this is called; the future only waits.
    pub fn set_data_with_ack(&self, name: &str, path: &str, value: impl Serialize) -> WriteAck {
        let (tx, rx) = oneshot::channel();
        let queued = path_and_change(path, value).and_then(|(_, change)| {
            self.shared()
                .with_core(|core| core.set_data(name, change, Some(tx)))
        });
        match queued {
            Ok(()) => WriteAck::waiting(rx, format!("write to {name:?}"), self.request_timeout()),
            Err(e) => WriteAck::failed(e),
        }
    }

    /// Deletes the record on the server. Every client holding it sees
    /// [`Record::deleted`] complete.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.shared().with_core(|core| core.delete(name, tx));
        self.answer(rx, || format!("delete of {name:?}")).await
    }

    /// Starts providing records whose names match the regular expression `pattern`: the
    /// server offers each matching record that somebody subscribes to, and this client
    /// accepts or rejects it. See [`Listening`].
    pub async fn listen(&self, pattern: &str) -> Result<Listening, Error> {
        let (offers, offers_rx) = mpsc::unbounded_channel();
        let (tx, rx) = oneshot::channel();
        let id = self
            .shared()
            .with_core(|core| core.listen(pattern, offers, tx));
        let result = self.answer(rx, || format!("listen to {pattern:?}")).await;
        let Some(id) = id else {
            return Err(result.err().unwrap_or_else(Error::closed));
        };
        let listening = Listening::new(self.clone(), pattern, id, offers_rx);
        result.map(|()| listening)
    }

    /// Subscribes to the events named `name`; resolves once the server has acked the
    /// subscription, so that every event emitted after that arrives. See
    /// [`EventSubscription`].
    pub async fn subscribe_event(&self, name: &str) -> Result<EventSubscription, Error> {
        let (events, events_rx) = mpsc::unbounded_channel();
        let (tx, rx) = oneshot::channel();
        let id = self
            .shared()
            .with_core(|core| core.subscribe_event(name, events, tx));
        // Made before waiting, so that a failed wait unsubscribes when it is dropped.
        let subscription = id.map(|id| EventSubscription::new(self.clone(), name, id, events_rx));
        let result = self
            .answer(rx, || format!("subscribe to the events {name:?}"))
            .await;
        match subscription {
            Some(subscription) => result.map(|()| subscription),
            None => Err(result.err().unwrap_or_else(Error::closed)),
        }
    }

    /// Emits the event `name` with `data` to every subscriber of it on the server, but
    /// this client's connection; this client's own [`EventSubscription`]s to `name` get
    /// it at once, as deepstream's clients do. Events are not stored, and are not
    /// queued while the client is offline.
    pub fn emit(&self, name: &str, data: impl Serialize) -> Result<(), Error> {
        let data = serde_json::to_string(&data).map_err(|e| Error::InvalidValue {
            reason: format!("the data of the event {name:?} is not JSON: {e}"),
            source: Some(Arc::new(e)),
        })?;
        self.shared().with_core(|core| core.emit(name, Some(data)))
    }

    /// Closes the connection: sends what is queued, logs out and stops reconnecting.
    /// Operations on this client and its handles fail with [`Error::Closed`] afterwards.
    pub async fn close(&self) {
        let _ = self.inner.shutdown.send(true);
        let task = self.inner.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Waits for a request's answer, bounded by the request timeout.
    pub(crate) async fn answer<T>(
        &self,
        rx: oneshot::Receiver<Result<T, Error>>,
        what: impl FnOnce() -> String,
    ) -> Result<T, Error> {
        let after = self.request_timeout();
        match tokio::time::timeout(after, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::closed()),
            Err(_) => Err(Error::timeout(what(), after)),
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url())
            .field("state", &self.connection_state())
            .finish()
    }
}
