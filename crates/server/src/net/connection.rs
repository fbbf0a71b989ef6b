//! One WebSocket connection of any front door: reading, writing, the outbox, backpressure,
//! close codes, the idle check.
//!
//! A front door supplies what is its own through [`FrontDoor`]: how a data frame decodes
//! into one of its messages, how a message is handled, what its deadline is (deepstream's
//! login timer) and what it tells a client whose message was too large. Events it encodes
//! itself, into the [`Outbox`] it was given when the connection opened ([`serve`]). The
//! trait is used with static dispatch: nothing here adds a call through a vtable, an
//! allocation or a copy per message or per frame written.
//!
//! One task serves the connection: it reads and handles the client's messages, and it
//! writes the outbox into the socket, everything that has queued up in one flush. A
//! message's handler runs while queued frames keep being written; the next message is
//! read once it is done, so messages are handled in order.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, Sleep, sleep_until};
use tungstenite::error::CapacityError;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::Message as Frame;
use tungstenite::protocol::frame::Utf8Bytes;

use tracing::Instrument;

use super::outbox::{Outbox, OutboxReceiver, Taken};
use crate::telemetry::{OpenConnection, Protocol};
use crate::websocket::{self, Socket};

/// Why the server closes a connection: a WebSocket close code and a reason for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: &'static str,
}

impl Close {
    /// 1000: the conversation is over (the client said goodbye).
    pub const fn normal(reason: &'static str) -> Close {
        Close { code: 1000, reason }
    }

    /// 1008, "policy violation": what a client is told when it is cut off for not
    /// reading, for failing authentication, or for breaking its protocol.
    pub const fn policy(reason: &'static str) -> Close {
        Close { code: 1008, reason }
    }
}

/// The close of a client that does not read its outbox.
const OVERFLOW: Close = Close::policy("outbound queue full: the client is not reading");
/// The close of a client that sent a message over the size limit: 1009, "message too big"
/// (what deepstream closes with too).
const TOO_BIG: Close = Close {
    code: 1009,
    reason: "message larger than maxMessageSize",
};
/// The close of a client that went quiet for two heartbeats.
const NO_HEARTBEAT: Close = Close::policy("no heartbeat");

/// A data frame the client sent, as the WebSocket layer received it (no copy).
#[derive(Debug)]
pub enum DataFrame {
    Text(Utf8Bytes),
    Binary(Bytes),
}

/// What a data frame decodes to.
#[derive(Debug)]
pub enum Decoded<M> {
    /// A message to handle.
    Message(M),
    /// Nothing to handle (the front door has answered, say, a parse error).
    Skip,
    /// The frame breaks the protocol: close the connection.
    Close(Close),
}

/// What the connection does after a message was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close(Close),
}

/// A protocol served over WebSocket connections: one value per connection, holding that
/// connection's state (its session, subscriptions, login...).
///
/// While a message is handled the value is moved into the handler; nothing else is asked
/// of it meanwhile (no frame is read, no deadline checked), so every method has it whole.
pub trait FrontDoor: Send + Sized + 'static {
    /// A client message, decoded.
    type Message: Send + 'static;

    /// Decodes one data frame (within the size limit, which the WebSocket layer has
    /// enforced already).
    fn decode(&mut self, frame: DataFrame) -> Decoded<Self::Message>;

    /// Handles one message. The next one is read once this is done.
    fn handle(&mut self, message: Self::Message) -> impl Future<Output = Flow> + Send;

    /// When the front door wants the connection closed unless something changes first
    /// (deepstream: the login timer). Asked again after every message and timer.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// The deadline has passed: say so to the client, if the protocol says anything, and
    /// give the close. The connection closes.
    fn deadline_passed(&mut self) -> Close {
        Close::policy("deadline passed")
    }

    /// The client sent a message of at least `size` bytes, over the limit of `limit`: tell
    /// it, if the protocol has a way. The connection then closes with 1009.
    fn too_large(&mut self, size: usize, limit: usize);

    /// The connection is closing (whatever the reason): let go of what it holds
    /// elsewhere (subscriptions, listens). What is pushed to the outbox meanwhile is
    /// still written.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// The limits of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Frames the outbox holds at most: a client that lets more queue up is cut off.
    pub outbound_queue_limit: usize,
    /// How often the connection checks that the client is still there: one that has sent
    /// nothing (not even a ping or a pong) for two of these is closed.
    pub heartbeat: Duration,
    /// Whether the server sends a WebSocket ping every `heartbeat`, for clients whose
    /// protocol has no heartbeat of its own (ShareDB's client sends nothing while idle):
    /// their pongs, which browsers and libraries send by themselves, count as heard.
    pub pings: bool,
    /// Which front door: the connection's `protocol` in metrics and logs.
    pub protocol: Protocol,
    /// Whether the connection logs inside a `connection` span (`Config::connection_spans`).
    pub span: bool,
}

/// A message being handled: the front door, moved in, comes back with the flow.
/// Boxed: the future of the deepest message handler is several KiB, and inline it would
/// be part of every connection's task, idle or not.
type Handling<F> = Pin<Box<dyn Future<Output = (F, Flow)> + Send>>;

/// What woke the connection's task.
enum Event<F> {
    Frame(Frame),
    Handled(F, Flow),
    Timer,
    Overflowed,
    /// The client sent a message larger than the limit: at least `size` bytes.
    TooLarge {
        size: usize,
        limit: usize,
    },
    /// The client closed the socket, or it failed.
    Gone,
}

/// Why the connection ended.
#[derive(Clone, Copy)]
enum End {
    /// The client closed it, or the socket failed.
    Left,
    /// The server closes it.
    Close(Close),
    /// The client does not read its outbox.
    Overflowed,
    /// The client sent a message over the limit.
    TooLarge,
}

/// Why writing stopped for good.
enum Ended {
    Overflowed,
    Gone,
}

/// The socket and the outbox that feeds it.
struct Io {
    socket: Socket,
    outbox: OutboxReceiver,
}

impl Io {
    /// Writes whatever the outbox holds, without waiting. `Err`: why the connection ends.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<(), Ended> {
        loop {
            match self.socket.poll_flush(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Err(Ended::Gone),
                // The client is not reading: the frames wait in the socket's queue, later
                // ones in the outbox, until the socket drains or the outbox overflows.
                Poll::Pending => {
                    return match self.outbox.poll_overflow(cx) {
                        Poll::Ready(()) => Err(Ended::Overflowed),
                        Poll::Pending => Ok(()),
                    };
                }
            }
            match self.outbox.poll_take(cx, self.socket.queue()) {
                Poll::Ready(Taken::Frames) => continue,
                Poll::Ready(Taken::Overflowed) => return Err(Ended::Overflowed),
                Poll::Pending => {
                    // Going quiet: an idle connection keeps no frame buffer. Under load
                    // this is one small allocation per write, against a system call.
                    let queue = self.socket.queue();
                    if queue.capacity() > 0 {
                        *queue = Default::default();
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Writes, and waits for the next thing to do.
    fn poll_event<F>(
        &mut self,
        cx: &mut Context<'_>,
        handling: &mut Option<Handling<F>>,
        timer: Pin<&mut Sleep>,
    ) -> Poll<Event<F>> {
        match self.poll_write(cx) {
            Ok(()) => {}
            Err(Ended::Overflowed) => return Poll::Ready(Event::Overflowed),
            Err(Ended::Gone) => return Poll::Ready(Event::Gone),
        }
        if let Some(handler) = handling {
            return match handler.as_mut().poll(cx) {
                Poll::Ready((front, flow)) => {
                    *handling = None;
                    Poll::Ready(Event::Handled(front, flow))
                }
                Poll::Pending => Poll::Pending,
            };
        }
        if timer.poll(cx).is_ready() {
            return Poll::Ready(Event::Timer);
        }
        let read = self.socket.poll_read(cx);
        if self.socket.has_unwritten() {
            // Reading queued a reply to a ping or to the client's close.
            if let Err(ended) = self.poll_write(cx) {
                return Poll::Ready(match ended {
                    Ended::Overflowed => Event::Overflowed,
                    Ended::Gone => Event::Gone,
                });
            }
        }
        match read {
            Poll::Ready(Ok(frame)) => Poll::Ready(Event::Frame(frame)),
            Poll::Ready(Err(tungstenite::Error::Capacity(CapacityError::MessageTooLong {
                size,
                max_size,
            }))) => Poll::Ready(Event::TooLarge {
                size,
                limit: max_size,
            }),
            Poll::Ready(Err(_)) => Poll::Ready(Event::Gone),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes what is queued (including what queues up meanwhile), then `close` (if any),
    /// and closes the socket. With `drain`, what the client still sends is read and
    /// dropped until it closes its side: closing a socket with unread bytes resets the
    /// connection, which can destroy the last frames before the client reads them.
    async fn finish(&mut self, close: Option<CloseFrame>, drain: bool) {
        loop {
            if poll_fn(|cx| self.socket.poll_flush(cx)).await.is_err() {
                return;
            }
            let taken =
                poll_fn(|cx| Poll::Ready(self.outbox.poll_take(cx, self.socket.queue()))).await;
            if taken != Poll::Ready(Taken::Frames) {
                break;
            }
        }
        if let Some(close) = close {
            self.socket.queue_close(Some(close));
        }
        if self.socket.finish().await.is_ok() && drain {
            self.socket.drain().await;
        }
    }
}

/// Serves one upgraded connection until it ends. `open` makes the front door's state for
/// it, given the outbox everything sent to the client goes through; `id` names the
/// connection in logs: with `settings.span`, every event logged while the connection's
/// task runs (its messages' handling included) is inside a `connection` span with `id`
/// and `protocol`.
/// The connection is counted open (`recordsync_connections`) until it ends.
///
/// Not an `async fn` wrapping another: its arguments would stay in the future beside the
/// inner future's copy of them, a second socket in every connection's task.
pub fn serve<F: FrontDoor>(
    socket: Socket,
    id: u64,
    settings: Settings,
    open: impl FnOnce(Outbox) -> F + Send + 'static,
) -> impl Future<Output = ()> + Send {
    let span = if settings.span {
        tracing::info_span!("connection", id, protocol = settings.protocol.label())
    } else {
        tracing::Span::none()
    };
    serve_in_span(socket, id, settings, open).instrument(span)
}

async fn serve_in_span<F: FrontDoor>(
    socket: Socket,
    id: u64,
    settings: Settings,
    open: impl FnOnce(Outbox) -> F,
) {
    // Counted open until this returns, however the connection ends.
    let _open = OpenConnection::new(settings.protocol);
    let (outbox, outbox_rx) = Outbox::new(settings.outbound_queue_limit);
    let pinger = settings.pings.then(|| outbox.clone());
    let mut front = Some(open(outbox));
    let mut io = Io {
        socket,
        outbox: outbox_rx,
    };
    let mut handling: Option<Handling<F>> = None;
    let heartbeat = settings.heartbeat;
    let mut last_heard = Instant::now();
    let mut next_check = last_heard + heartbeat;
    // One timer for the heartbeat check and the front door's deadline, if it has one.
    let due =
        |front: &Option<F>, next_check: Instant| match front.as_ref().and_then(FrontDoor::deadline)
        {
            Some(deadline) => next_check.min(deadline),
            None => next_check,
        };
    let timer = sleep_until(due(&front, next_check));
    tokio::pin!(timer);

    let end = loop {
        let event = poll_fn(|cx| io.poll_event(cx, &mut handling, timer.as_mut())).await;
        match event {
            Event::Frame(frame) => {
                last_heard = Instant::now();
                let frame = match frame {
                    Frame::Binary(bytes) => DataFrame::Binary(bytes),
                    Frame::Text(text) => DataFrame::Text(text),
                    Frame::Close(_) => break End::Left,
                    // Pings are answered by the socket; raw frames are never returned by
                    // a reader.
                    Frame::Ping(_) | Frame::Pong(_) | Frame::Frame(_) => continue,
                };
                let f = front
                    .as_mut()
                    .expect("frames are read between messages only");
                let message = match f.decode(frame) {
                    Decoded::Message(message) => message,
                    Decoded::Skip => continue,
                    Decoded::Close(close) => break End::Close(close),
                };
                let mut f = front.take().expect("it was there a moment ago");
                handling = Some(Box::pin(async move {
                    let flow = f.handle(message).await;
                    (f, flow)
                }));
            }
            Event::Handled(f, flow) => {
                front = Some(f);
                if let Flow::Close(close) = flow {
                    break End::Close(close);
                }
            }
            Event::Timer => {
                let now = Instant::now();
                if let Some(f) = front.as_mut()
                    && f.deadline().is_some_and(|deadline| now >= deadline)
                {
                    break End::Close(f.deadline_passed());
                }
                if now >= next_check {
                    // deepstream closes a connection that missed two heartbeats.
                    if now.duration_since(last_heard) > heartbeat * 2 {
                        break End::Close(NO_HEARTBEAT);
                    }
                    if let Some(outbox) = &pinger {
                        outbox.push(websocket::ping());
                    }
                    next_check = (next_check + heartbeat).max(now);
                }
                timer.as_mut().reset(due(&front, next_check));
            }
            Event::Overflowed => {
                settings.protocol.slow_consumers().increment(1);
                tracing::warn!(
                    session = id,
                    "outbound queue full: disconnecting a client that does not read"
                );
                break End::Overflowed;
            }
            Event::TooLarge { size, limit } => {
                // The rest of the message was never read, so nothing after it can be
                // either: the front door tells the client why, and the connection closes
                // (1009).
                if let Some(f) = front.as_mut() {
                    f.too_large(size, limit);
                }
                break End::TooLarge;
            }
            Event::Gone => break End::Left,
        }
    };

    if let Some(handler) = handling.take() {
        let (f, _) = handler.await;
        front = Some(f);
    }
    // The futures of the connection's end are boxed, as `Handling` is: inline, the largest
    // of them would be part of every connection's task for its whole life.
    if let Some(mut f) = front.take() {
        Box::pin(f.close()).await;
    }
    let (close, drain) = match end {
        End::Left => (None, false),
        End::Close(close) => (Some(close), false),
        End::Overflowed => (Some(OVERFLOW), false),
        // A client cut off mid-message is likely still sending the rest of it.
        End::TooLarge => (Some(TOO_BIG), true),
    };
    let close = close.map(|close| CloseFrame {
        code: close.code.into(),
        reason: close.reason.into(),
    });
    if matches!(end, End::Overflowed) || io.outbox.overflowed() {
        // Nothing more is written to a client that does not read; the close frame is
        // offered, but not waited for.
        io.socket.discard_queue();
        io.socket.queue_close(close);
        let _ = Box::pin(tokio::time::timeout(
            Duration::from_millis(100),
            io.socket.finish(),
        ))
        .await;
        return;
    }
    // Give the client a moment to take what is queued, and say goodbye.
    let _ = Box::pin(tokio::time::timeout(
        Duration::from_secs(5),
        io.finish(close, drain),
    ))
    .await;
}

#[cfg(test)]
mod tests {
    //! The loop with a front door that is not deepstream: an echo protocol over text
    //! frames, which a client drives through a real socket.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures_util::{SinkExt, StreamExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_tungstenite::WebSocketStream;
    use tungstenite::protocol::{Role, WebSocketConfig};

    use super::*;
    use crate::websocket::{Kind, frame};

    /// Echoes each text frame; "bye" closes; a binary frame breaks the protocol.
    struct Echo {
        outbox: Outbox,
        deadline: Option<Instant>,
        closed: Arc<AtomicBool>,
    }

    impl FrontDoor for Echo {
        type Message = String;

        fn decode(&mut self, frame: DataFrame) -> Decoded<String> {
            match frame {
                DataFrame::Text(text) if text.as_str() == "skip" => Decoded::Skip,
                DataFrame::Text(text) => Decoded::Message(text.as_str().to_owned()),
                DataFrame::Binary(_) => Decoded::Close(Close::policy("text only")),
            }
        }

        async fn handle(&mut self, message: String) -> Flow {
            if message == "bye" {
                return Flow::Close(Close::normal("bye"));
            }
            // Handled messages stop the clock, as deepstream's login does.
            self.deadline = None;
            tokio::task::yield_now().await;
            self.outbox.push(frame(Kind::Text, message.as_bytes()));
            Flow::Continue
        }

        fn deadline(&self) -> Option<Instant> {
            self.deadline
        }

        fn deadline_passed(&mut self) -> Close {
            self.outbox.push(frame(Kind::Text, b"too late"));
            Close::policy("too late")
        }

        fn too_large(&mut self, size: usize, limit: usize) {
            let text = format!("{size} > {limit}");
            self.outbox.push(frame(Kind::Text, text.as_bytes()));
        }

        async fn close(&mut self) {
            self.closed.store(true, Ordering::SeqCst);
        }
    }

    const LIMIT: usize = 1024;

    /// A served connection and its client; `deadline` from now, if any.
    async fn connect(
        deadline: Option<Duration>,
        heartbeat: Duration,
    ) -> (WebSocketStream<TcpStream>, Arc<AtomicBool>) {
        connect_pinged(deadline, heartbeat, false).await
    }

    /// [`connect`], the server sending pings every heartbeat when `pings`.
    async fn connect_pinged(
        deadline: Option<Duration>,
        heartbeat: Duration,
        pings: bool,
    ) -> (WebSocketStream<TcpStream>, Arc<AtomicBool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let closed = Arc::new(AtomicBool::new(false));
        let closed_too = closed.clone();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let config = WebSocketConfig::default()
                .max_message_size(Some(LIMIT))
                .max_frame_size(Some(LIMIT));
            let socket = Socket::new(tcp, Bytes::new(), config);
            let settings = Settings {
                outbound_queue_limit: 16,
                heartbeat,
                pings,
                protocol: crate::telemetry::Protocol::ShareDb,
                span: true,
            };
            serve(socket, 1, settings, move |outbox| Echo {
                outbox,
                deadline: deadline.map(|d| Instant::now() + d),
                closed: closed_too,
            })
            .await;
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let client = WebSocketStream::from_raw_socket(tcp, Role::Client, None).await;
        (client, closed)
    }

    async fn next(client: &mut WebSocketStream<TcpStream>) -> Frame {
        tokio::time::timeout(Duration::from_secs(5), client.next())
            .await
            .expect("the server answers")
            .expect("the connection is open")
            .expect("a frame")
    }

    async fn close_code(client: &mut WebSocketStream<TcpStream>) -> (u16, String) {
        loop {
            match next(client).await {
                Frame::Close(Some(close)) => {
                    return (close.code.into(), close.reason.as_str().to_owned());
                }
                Frame::Close(None) => panic!("a close without a code"),
                _ => {}
            }
        }
    }

    const HEARTBEAT: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn messages_are_handled_in_order_and_answered_through_the_outbox() {
        let (mut client, closed) = connect(None, HEARTBEAT).await;
        for text in ["one", "skip", "two", "three"] {
            client.send(Frame::text(text)).await.unwrap();
        }
        for text in ["one", "two", "three"] {
            assert_eq!(next(&mut client).await, Frame::text(text));
        }
        client.send(Frame::text("bye")).await.unwrap();
        assert_eq!(close_code(&mut client).await, (1000, "bye".to_owned()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(closed.load(Ordering::SeqCst), "the front door let go");
    }

    #[tokio::test]
    async fn a_frame_the_front_door_refuses_closes_with_its_code() {
        let (mut client, closed) = connect(None, HEARTBEAT).await;
        client.send(Frame::binary(vec![1, 2, 3])).await.unwrap();
        assert_eq!(
            close_code(&mut client).await,
            (1008, "text only".to_owned())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(closed.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn the_front_doors_deadline_closes_unless_it_is_lifted() {
        let (mut client, _) = connect(Some(Duration::from_millis(100)), HEARTBEAT).await;
        assert_eq!(next(&mut client).await, Frame::text("too late"));
        assert_eq!(close_code(&mut client).await, (1008, "too late".to_owned()));

        let (mut client, _) = connect(Some(Duration::from_millis(300)), HEARTBEAT).await;
        client.send(Frame::text("in time")).await.unwrap();
        assert_eq!(next(&mut client).await, Frame::text("in time"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        client.send(Frame::text("still here")).await.unwrap();
        assert_eq!(next(&mut client).await, Frame::text("still here"));
    }

    #[tokio::test]
    async fn a_message_over_the_limit_is_told_and_closed_with_1009() {
        let (mut client, _) = connect(None, HEARTBEAT).await;
        client
            .send(Frame::text("x".repeat(LIMIT + 1)))
            .await
            .unwrap();
        let told = next(&mut client).await;
        assert_eq!(told, Frame::text(format!("{} > {LIMIT}", LIMIT + 1)));
        assert_eq!(close_code(&mut client).await.0, 1009);
    }

    #[tokio::test]
    async fn a_silent_client_is_closed_after_two_heartbeats() {
        let heartbeat = Duration::from_millis(100);
        let (mut client, closed) = connect(None, heartbeat).await;
        let started = std::time::Instant::now();
        assert_eq!(
            close_code(&mut client).await,
            (1008, "no heartbeat".to_owned())
        );
        assert!(started.elapsed() >= heartbeat * 2);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(closed.load(Ordering::SeqCst));
    }

    /// A client that sends nothing of its own but answers pings (as browsers and `ws` do,
    /// and tokio-tungstenite while it reads) stays connected when the server pings.
    #[tokio::test]
    async fn a_client_answering_pings_is_kept() {
        let heartbeat = Duration::from_millis(100);
        let (mut client, closed) = connect_pinged(None, heartbeat, true).await;
        let until = tokio::time::Instant::now() + heartbeat * 8;
        let mut pings = 0;
        while let Ok(frame) = tokio::time::timeout_at(until, client.next()).await {
            match frame.expect("the connection is open").expect("a frame") {
                Frame::Ping(_) => pings += 1,
                other => panic!("only pings while the client is silent, got {other:?}"),
            }
        }
        assert!(pings >= 4, "a ping every heartbeat ({pings})");
        assert!(!closed.load(Ordering::SeqCst), "the connection stays open");
    }
}
