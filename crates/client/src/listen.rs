//! Listening: providing records on demand. See [`Client::listen`](crate::Client::listen).

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};

use crate::client::Client;
use crate::core::{Offer, StopReason};

/// The records a [`Client::listen`](crate::Client::listen) pattern is offered: a
/// [`Stream`] of [`ListenMatch`]es, one for each matching record somebody subscribes to
/// (including those subscribed before listening started) that has no provider yet.
///
/// Dropping it stops listening (UNLISTEN). After a reconnection the pattern is listened
/// to again and the server offers the records that still want a provider.
///
/// ```no_run
/// # async fn f(client: recordsync_client::Client) -> Result<(), recordsync_client::Error> {
/// let mut listening = client.listen("^weather/.*").await?;
/// while let Some(offer) = listening.next().await {
///     let name = offer.name().to_owned();
///     let mut provision = offer.accept();
///     let client = client.clone();
///     tokio::spawn(async move {
///         client.set_data(&name, "temperature", 21.5).unwrap();
///         // Stop when nobody wants the record any more.
///         provision.stopped().await;
///     });
/// }
/// # Ok(()) }
/// ```
pub struct Listening {
    client: Client,
    pattern: String,
    id: u64,
    offers: mpsc::UnboundedReceiver<Offer>,
}

impl Listening {
    pub(crate) fn new(
        client: Client,
        pattern: &str,
        id: u64,
        offers: mpsc::UnboundedReceiver<Offer>,
    ) -> Listening {
        Listening {
            client,
            pattern: pattern.to_owned(),
            id,
            offers,
        }
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The next offer; `None` once the client is closed.
    pub async fn next(&mut self) -> Option<ListenMatch> {
        let offer = self.offers.recv().await?;
        Some(self.wrap(offer))
    }

    fn wrap(&self, offer: Offer) -> ListenMatch {
        ListenMatch {
            client: self.client.clone(),
            pattern: self.pattern.clone(),
            listen_id: self.id,
            name: offer.name,
            answered: false,
        }
    }

    /// Stops listening: the same as dropping it.
    pub fn stop(self) {}
}

impl Stream for Listening {
    type Item = ListenMatch;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ListenMatch>> {
        match self.offers.poll_recv(cx) {
            Poll::Ready(Some(offer)) => Poll::Ready(Some(self.wrap(offer))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let (pattern, id) = (&self.pattern, self.id);
        self.client
            .shared()
            .with_core(|core| core.unlisten(pattern, id));
    }
}

/// A record offered to a provider: [accept](ListenMatch::accept) it to provide it, or
/// [reject](ListenMatch::reject) it to let the server ask another provider. Dropping it
/// unanswered rejects it.
pub struct ListenMatch {
    client: Client,
    pattern: String,
    listen_id: u64,
    name: String,
    answered: bool,
}

impl ListenMatch {
    /// The record's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pattern that matched.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Becomes the record's provider; subscribers see `has_provider` turn true. The
    /// returned [`Provision`] says when to stop.
    pub fn accept(mut self) -> Provision {
        self.answered = true;
        let (tx, rx) = oneshot::channel();
        let (pattern, name, id) = (&self.pattern, &self.name, self.listen_id);
        self.client
            .shared()
            .with_core(|core| core.respond(pattern, id, name, Some(tx)));
        Provision {
            name: std::mem::take(&mut self.name),
            stop: rx,
            reason: None,
        }
    }

    /// Declines to provide the record.
    pub fn reject(mut self) {
        self.answered = true;
        self.send_reject();
    }

    fn send_reject(&self) {
        let (pattern, name, id) = (&self.pattern, &self.name, self.listen_id);
        self.client
            .shared()
            .with_core(|core| core.respond(pattern, id, name, None));
    }
}

impl Drop for ListenMatch {
    fn drop(&mut self) {
        if !self.answered {
            self.send_reject();
        }
    }
}

impl std::fmt::Debug for ListenMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenMatch")
            .field("pattern", &self.pattern)
            .field("name", &self.name)
            .finish()
    }
}

/// An accepted record: [`Provision::stopped`] completes when the provider should stop
/// (deepstream's `onStop`).
#[derive(Debug)]
pub struct Provision {
    name: String,
    stop: oneshot::Receiver<StopReason>,
    reason: Option<StopReason>,
}

impl Provision {
    /// The record being provided.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until the provider should stop, and says why.
    pub async fn stopped(&mut self) -> StopReason {
        if let Some(reason) = self.reason {
            return reason;
        }
        let reason = (&mut self.stop).await.unwrap_or(StopReason::Closed);
        self.reason = Some(reason);
        reason
    }

    /// The reason, if the provider should already have stopped.
    pub fn try_stopped(&mut self) -> Option<StopReason> {
        if self.reason.is_none() {
            self.reason = match self.stop.try_recv() {
                Ok(reason) => Some(reason),
                Err(oneshot::error::TryRecvError::Closed) => Some(StopReason::Closed),
                Err(oneshot::error::TryRecvError::Empty) => None,
            };
        }
        self.reason
    }
}
