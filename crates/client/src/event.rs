//! Events: deepstream's publish/subscribe. See [`Client::subscribe_event`] and
//! [`Client::emit`].

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::client::Client;

/// The events of one name, from [`Client::subscribe_event`]: a [`Stream`] of each event's
/// data (`None` for an event emitted without data), in the order they arrive.
///
/// Dropping it ends the subscription (the server is told when it was this client's last
/// one for the name). After a reconnection the name is subscribed again; events emitted
/// meanwhile are not delivered (events are not stored). The stream ends when the client
/// is closed, or when the server refuses the subscription.
pub struct EventSubscription {
    client: Client,
    name: String,
    id: u64,
    events: mpsc::UnboundedReceiver<Option<Value>>,
}

impl EventSubscription {
    pub(crate) fn new(
        client: Client,
        name: &str,
        id: u64,
        events: mpsc::UnboundedReceiver<Option<Value>>,
    ) -> EventSubscription {
        EventSubscription {
            client,
            name: name.to_owned(),
            id,
            events,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next event's data (`Some(None)`: an event without data); `None` once the
    /// subscription has ended.
    pub async fn next(&mut self) -> Option<Option<Value>> {
        self.events.recv().await
    }
}

impl Stream for EventSubscription {
    type Item = Option<Value>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

impl Drop for EventSubscription {
    fn drop(&mut self) {
        let (name, id) = (&self.name, self.id);
        self.client
            .shared()
            .with_core(|core| core.unsubscribe_event(name, id));
    }
}
