//! What a request knows of the HTTP connection it came on: a way to cut the connection
//! off, and whether the server is stopping.
//!
//! A streamed response (the REST API's server-sent events) lives as long as its
//! connection, so it needs both. Its client may stop reading: hyper then stops polling
//! the response body (the socket is full), and the stream cannot end itself; its bounded
//! queue overflows, and the connection is cut off from outside ([`HttpConnection::cut_off`]),
//! as a WebSocket client that does not read is (see [`super::connection`]). And at
//! shutdown a stream must end by itself, since the server waits for responses in progress
//! ([`HttpConnection::stopping`]).
//!
//! The accept loop (`crate::http::serve`) puts one into every request's extensions.

use std::sync::Arc;

use tokio::sync::{Notify, watch};

/// The HTTP connection a request came on.
#[derive(Clone)]
pub struct HttpConnection {
    cut: Arc<Notify>,
    stopping: watch::Receiver<bool>,
}

impl HttpConnection {
    /// A connection of a server whose `stopping` turns `true` when it shuts down.
    pub fn new(stopping: watch::Receiver<bool>) -> HttpConnection {
        HttpConnection {
            cut: Arc::new(Notify::new()),
            stopping,
        }
    }

    /// Closes the connection at once, whatever it is doing.
    pub fn cut_off(&self) {
        // A permit is kept if the connection's task is not waiting yet.
        self.cut.notify_one();
    }

    /// Resolves once [`cut_off`](Self::cut_off) was called.
    pub async fn cut(&self) {
        self.cut.notified().await;
    }

    /// Resolves once the server is stopping.
    pub async fn stopping(&self) {
        let mut stopping = self.stopping.clone();
        // An error: the server is gone, which is stopping too.
        let _ = stopping.wait_for(|stop| *stop).await;
    }
}
