//! One ShareDB WebSocket connection, as a front door of [`crate::net`]: decoding text
//! frames into requests, the `init` message, and the dispatch of each request to its
//! handler. A failed request is answered as ShareDB answers it: the request echoed with
//! `error: {code, message}`; the connection stays open.
//!
//! Reading, writing, the outbox, the heartbeat check and closing are
//! [`crate::net::connection`]'s. Requests are handled one at a time, in order: an op is
//! answered before the next message is read, so a client that floods ops without reading
//! its answers fills its own outbox and is cut off, and nobody else waits.

use std::sync::Arc;

use recordsync_core::JsonError;
use recordsync_engine::Engine;
use recordsync_sharedb_protocol::{
    DecodeError, ErrorCode, Incoming, Request, ShareDbError, decode, error_reply, init_message,
};

use super::permission::Guard;
use super::presence_state::PresenceState;
use super::query_feed::Feeds;
use super::query_holds::DocHolds;
use super::query_live::{self, LiveQueries};
use super::session::Session;
use super::{fetch, handshake, presence, query, snapshot, submit, subscribe};
use crate::ServerState;
use crate::auth::Identity;
use crate::net::connection::{self, Close, DataFrame, Decoded, Flow, FrontDoor, Settings};
use crate::telemetry::{Protocol, cached_counter};
use crate::websocket::Socket;

/// One ShareDB connection's state.
pub struct Connection {
    pub session: Arc<Session>,
    pub engine: Arc<Engine>,
    pub guard: Guard,
    /// The connection's `src`: made up at open, replaced by the one a reconnecting client
    /// names in its handshake. Ops without a `src` of their own are this one's.
    pub src: String,
    /// Records this connection subscribes to, for itself and for its live queries, to
    /// unsubscribe when the last reason goes and when the connection goes away.
    pub subscriptions: DocHolds,
    /// The live queries running (`qs`).
    pub live: LiveQueries,
    /// The node's collection feeds, which live queries follow.
    pub feeds: Arc<Feeds>,
    /// Presence channels subscribed to, presences shown.
    pub presence: PresenceState,
}

/// Serves one upgraded ShareDB connection, of `user` (see [`super::auth`]), until it
/// ends.
pub fn serve(
    socket: Socket,
    state: Arc<ServerState>,
    user: Arc<Identity>,
) -> impl Future<Output = ()> + Send {
    let id = state.next_session_id();
    let settings = Settings {
        outbound_queue_limit: state.config.outbound_queue_limit,
        heartbeat: state.config.heartbeat_interval,
        pings: true,
        protocol: Protocol::ShareDb,
        span: state.config.connection_spans,
    };
    let open = move |outbox| {
        let session = Arc::new(Session::new(id, outbox));
        // ShareDB's server names a new connection with 32 random hex digits.
        let src = format!("{:032x}", rand::random::<u128>());
        session.send_text(&init_message(&src));
        Connection {
            session,
            engine: state.engine.clone(),
            guard: Guard::new(state.permissions.clone(), user),
            src,
            subscriptions: DocHolds::default(),
            live: LiveQueries::default(),
            feeds: state.query_feeds.clone(),
            presence: PresenceState::new(state.presence.clone()),
        }
    };
    connection::serve(socket, id, settings, open)
}

impl FrontDoor for Connection {
    type Message = Incoming;

    fn decode(&mut self, frame: DataFrame) -> Decoded<Incoming> {
        let text = match frame {
            DataFrame::Text(text) => text,
            DataFrame::Binary(_) => {
                let error = ShareDbError::badly_formed(
                    "ShareDB messages are JSON in text frames; a binary frame is not read",
                );
                self.session.send_text(&error_reply(None, &error));
                return Decoded::Skip;
            }
        };
        match decode(text.as_str()) {
            Ok(incoming) => Decoded::Message(incoming),
            // ShareDB's socket stream fails on text that is not JSON, and the server
            // closes the connection; the client reconnects. (Text nested too deeply is
            // JSON: it is refused with an error reply, as ShareDB refuses a bad op.)
            Err(DecodeError::NotJson(JsonError::Invalid(_))) => {
                Decoded::Close(Close::policy("a message that is not JSON"))
            }
            Err(e) => {
                self.session
                    .send_text(&error_reply(e.raw(), &e.to_sharedb()));
                Decoded::Skip
            }
        }
    }

    async fn handle(&mut self, message: Incoming) -> Flow {
        let Incoming { raw, request } = message;
        messages_in(&request).increment(1);
        let result = match request {
            Request::Handshake { id, protocol, .. } => handshake::handle(self, id, protocol),
            Request::Ping => {
                self.session.send_text(r#"{"a":"pp"}"#);
                Ok(())
            }
            Request::Fetch(doc) => fetch::fetch(self, doc).await,
            Request::BulkFetch(bulk) => fetch::fetch_bulk(self, &raw, bulk).await,
            Request::Subscribe(doc) => subscribe::subscribe(self, doc).await,
            Request::BulkSubscribe(bulk) => subscribe::subscribe_bulk(self, &raw, bulk).await,
            Request::Unsubscribe(doc) => subscribe::unsubscribe(self, doc).await,
            Request::BulkUnsubscribe(bulk) => subscribe::unsubscribe_bulk(self, &raw, bulk).await,
            Request::Op(op) => submit::submit(self, op).await,
            Request::SnapshotFetch { id, c, d, v } => {
                snapshot::at_version(self, id, &c, &d, v).await
            }
            Request::SnapshotFetchByTimestamp { id, c, d, ts } => {
                snapshot::at_time(self, id, &c, &d, ts).await
            }
            Request::Query(q) => query::query(self, q).await,
            Request::QueryUnsubscribe { id } => query::unsubscribe(self, id).await,
            Request::Presence(m) => presence::publish(self, m).await,
            Request::PresenceSubscribe { ch, seq } => presence::subscribe(self, ch, seq).await,
            Request::PresenceUnsubscribe { ch, seq } => presence::unsubscribe(self, ch, seq),
            Request::PresenceRequest { ch } => presence::request(self, ch),
            // A request this front door does not know yet (the protocol crate has more).
            _ => Err(ShareDbError::badly_formed("Invalid or unknown message")),
        };
        if let Err(error) = result {
            self.session.send_text(&error_reply(Some(&raw), &error));
        }
        Flow::Continue
    }

    fn too_large(&mut self, size: usize, limit: usize) {
        let error = ShareDbError::new(
            ErrorCode::ERR_MESSAGE_BADLY_FORMED,
            format!(
                "the message is larger than the limit of {limit} bytes (maxMessageSize; at \
                 least {size} bytes were announced): the connection is closed"
            ),
        );
        self.session.send_text(&error_reply(None, &error));
    }

    async fn close(&mut self) {
        presence::close(self);
        query_live::end_all(self).await;
        for name in self.subscriptions.take_all() {
            let _ = self.engine.unsubscribe(self.session.id, &name).await;
        }
    }
}

/// The `recordsync_messages_in_total` counter of a request's kind.
fn messages_in(request: &Request) -> &'static metrics::Counter {
    macro_rules! kind {
        ($kind:literal) => {
            cached_counter!("recordsync_messages_in_total", "protocol" => "sharedb", "kind" => $kind)
        };
    }
    match request {
        Request::Handshake { .. } => kind!("handshake"),
        Request::Ping => kind!("ping"),
        Request::Fetch(_) | Request::BulkFetch(_) => kind!("fetch"),
        Request::Subscribe(_) | Request::BulkSubscribe(_) => kind!("subscribe"),
        Request::Unsubscribe(_) | Request::BulkUnsubscribe(_) => kind!("unsubscribe"),
        Request::Op(_) => kind!("op"),
        Request::SnapshotFetch { .. } | Request::SnapshotFetchByTimestamp { .. } => {
            kind!("snapshot")
        }
        Request::Query(_) | Request::QueryUnsubscribe { .. } => kind!("query"),
        Request::Presence(_)
        | Request::PresenceSubscribe { .. }
        | Request::PresenceUnsubscribe { .. }
        | Request::PresenceRequest { .. } => kind!("presence"),
        _ => kind!("other"),
    }
}
