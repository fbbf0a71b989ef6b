//! One upgraded WebSocket connection on its TCP socket.
//!
//! Reading: tungstenite's `WebSocketContext` parses what the client sends (masking,
//! fragments, size limits, pings, the close handshake) from a non-blocking view of the
//! socket. Writing: the socket keeps a queue of complete frames (see [`super::frame`]) and
//! writes as many as it can in one `sendmsg`. The control frames tungstenite answers with
//! (pong, close) join the same queue, so everything leaves in the order it was queued.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use socket2::SockRef;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tungstenite::protocol::{CloseFrame, Message, Role, WebSocketConfig, WebSocketContext};

/// Frames handed to the kernel in one system call, at most. Deliveries are small (tens to
/// hundreds of bytes), so a full batch is a few KiB: well below a socket's send buffer.
const MAX_SLICES: usize = 128;

/// What was read: a message (data, ping, pong, or the client's close), or the reason the
/// connection cannot be read any more.
pub type Incoming = Result<Message, tungstenite::Error>;

pub struct Socket {
    tcp: TcpStream,
    ctx: WebSocketContext,
    /// Bytes to write, oldest first; the first has `written` bytes sent already.
    out: VecDeque<Bytes>,
    written: usize,
}

/// The socket as tungstenite sees it: reads never wait (`WouldBlock` when nothing is
/// there), and whatever tungstenite writes joins the queue.
struct View<'a> {
    tcp: &'a TcpStream,
    out: &'a mut VecDeque<Bytes>,
}

impl Read for View<'_> {
    /// A read that comes back short has emptied the socket, so it also clears tokio's
    /// readiness: the next read then waits for the socket to become readable instead of
    /// spending a system call on `EAGAIN` (two per connection in the storm benchmark, one
    /// per message a client sends). Clearing is safe: tokio clears only if no readiness
    /// arrived since before this read, so bytes that land meanwhile still wake the task.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        let outcome = self.tcp.try_io(Interest::READABLE, || {
            got = (&*SockRef::from(self.tcp)).read(buf)?;
            if got > 0 && got < buf.len() {
                // Not an error: this is how `try_io` is told to clear readiness.
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(got)
            }
        });
        match outcome {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
            other => other,
        }
    }
}

impl Write for View<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.push_back(Bytes::copy_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket {
    /// A server-side WebSocket on `tcp`, whose first bytes (already read from the socket
    /// by the HTTP layer) are `read_ahead`.
    pub fn new(tcp: TcpStream, read_ahead: Bytes, config: WebSocketConfig) -> Socket {
        let ctx = if read_ahead.is_empty() {
            WebSocketContext::new(Role::Server, Some(config))
        } else {
            WebSocketContext::from_partially_read(read_ahead.to_vec(), Role::Server, Some(config))
        };
        Socket {
            tcp,
            ctx,
            out: VecDeque::new(),
            written: 0,
        }
    }

    /// The next message from the client, or `Pending` (the task is woken when the socket
    /// has more to read). Replies to pings and to the client's close are queued here;
    /// [`Socket::poll_flush`] writes them.
    pub fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Incoming> {
        loop {
            let mut view = View {
                tcp: &self.tcp,
                out: &mut self.out,
            };
            match self.ctx.read(&mut view) {
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Ok(message @ (Message::Ping(_) | Message::Close(_))) => {
                    // tungstenite holds its reply until the next read; queue it now, as
                    // the client may send nothing more. (After a close, this reports the
                    // connection closed: nothing more can be read.)
                    let _ = self.ctx.flush(&mut view);
                    return Poll::Ready(Ok(message));
                }
                other => return Poll::Ready(other),
            }
            if let Err(e) = ready!(self.tcp.poll_read_ready(cx)) {
                return Poll::Ready(Err(e.into()));
            }
        }
    }

    /// The queue of frames to write; push complete frames only.
    pub fn queue(&mut self) -> &mut VecDeque<Bytes> {
        &mut self.out
    }

    /// Whether queued bytes are waiting to be written.
    pub fn has_unwritten(&self) -> bool {
        !self.out.is_empty()
    }

    /// Writes the queue. `Ready(Ok)` once it is empty; `Pending` while the socket is full
    /// (the task is woken when it drains).
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            ready!(self.tcp.poll_write_ready(cx))?;
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (slot, bytes) in slices.iter_mut().zip(&self.out) {
                let from = if count == 0 { self.written } else { 0 };
                *slot = IoSlice::new(&bytes[from..]);
                count += 1;
            }
            // sendmsg rather than writev: the same copy into the socket, without the VFS
            // layer on the way (writev was 58% of the server's CPU in the fan-out
            // benchmark, 5% of it in `vfs_writev` and `fdget_pos` themselves).
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                SockRef::from(&self.tcp).send_vectored(&slices[..count])
            });
            match sent {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.advance(n),
                // Readiness was stale: `poll_write_ready` waits for the next change.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Drops the `n` bytes just written from the front of the queue.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let front = self.out.front_mut().expect("wrote no more than was queued");
            let left = front.len() - self.written;
            if n < left {
                self.written += n;
                return;
            }
            n -= left;
            self.written = 0;
            self.out.pop_front();
        }
    }

    /// Queues a close frame (nothing may be written after it) and stops reading.
    pub fn queue_close(&mut self, frame: Option<CloseFrame>) {
        let mut view = View {
            tcp: &self.tcp,
            out: &mut self.out,
        };
        // Fails only if the connection is already closed, when there is nothing to say.
        let _ = self.ctx.close(&mut view, frame);
    }

    /// Forgets every frame not yet written (for a client that is cut off for not reading).
    pub fn discard_queue(&mut self) {
        if self.written > 0 {
            // Keep the rest of a frame that is half out, or the close frame after it would
            // land in the middle of it.
            let front = self.out.pop_front().map(|mut b| {
                b.advance(self.written);
                b
            });
            self.written = 0;
            self.out.clear();
            self.out.extend(front);
        } else {
            self.out.clear();
        }
    }

    /// Writes the queue, then closes the sending side (the client reads the end of the
    /// stream after the last frame).
    pub async fn finish(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_flush(cx)).await?;
        self.tcp.shutdown().await
    }

    /// Reads and drops whatever the client still sends, until it closes its side or the
    /// connection fails; call it after [`Socket::finish`]. A socket closed with unread
    /// bytes in its receive buffer is reset, and a reset can destroy frames the client
    /// has received but not yet read. Uses a small buffer, whatever the client sends.
    pub async fn drain(&mut self) {
        // On the heap: a buffer inside this future would enlarge every connection's task.
        let mut scratch = vec![0u8; 16 * 1024];
        loop {
            if self.tcp.readable().await.is_err() {
                return;
            }
            match self.tcp.try_read(&mut scratch) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use std::future::poll_fn;
    use tokio::net::TcpListener;
    use tokio_tungstenite::{WebSocketStream, tungstenite::Message as ClientMessage};

    /// A server `Socket` and a tungstenite client on either end of a loopback connection.
    async fn pair() -> (Socket, WebSocketStream<TcpStream>) {
        pair_with(WebSocketConfig::default()).await
    }

    async fn pair_with(config: WebSocketConfig) -> (Socket, WebSocketStream<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let client = WebSocketStream::from_raw_socket(client.unwrap(), Role::Client, None).await;
        let server = Socket::new(server.unwrap().0, Bytes::new(), config);
        (server, client)
    }

    async fn read(socket: &mut Socket) -> Message {
        poll_fn(|cx| socket.poll_read(cx)).await.expect("a message")
    }

    async fn flush(socket: &mut Socket) {
        poll_fn(|cx| socket.poll_flush(cx)).await.expect("written");
    }

    #[tokio::test]
    async fn queued_frames_arrive_whole_and_in_order() {
        let (mut server, mut client) = pair().await;
        for n in 0..1000u32 {
            let kind = if n % 2 == 0 {
                super::super::Kind::Binary
            } else {
                super::super::Kind::Text
            };
            server
                .queue()
                .push_back(super::super::frame(kind, n.to_string().as_bytes()));
        }
        flush(&mut server).await;
        for n in 0..1000u32 {
            let got = client.next().await.unwrap().unwrap();
            let want = if n % 2 == 0 {
                ClientMessage::Binary(n.to_string().into())
            } else {
                ClientMessage::Text(n.to_string().into())
            };
            assert_eq!(got, want);
        }
    }

    #[tokio::test]
    async fn a_queue_larger_than_the_socket_buffer_is_written_in_parts() {
        let (mut server, mut client) = pair().await;
        // 64 frames of 64 KiB: more than the kernel takes at once, so writes are partial
        // and resume where they stopped.
        let payload: Vec<u8> = (0..65_536).map(|i| (i % 253) as u8).collect();
        for _ in 0..64 {
            server
                .queue()
                .push_back(super::super::frame(super::super::Kind::Binary, &payload));
        }
        let reader = tokio::spawn(async move {
            for _ in 0..64 {
                let got = client.next().await.unwrap().unwrap();
                assert_eq!(got.into_data().as_ref(), payload.as_slice());
            }
            client
        });
        flush(&mut server).await;
        assert!(!server.has_unwritten());
        reader.await.unwrap();
    }

    #[tokio::test]
    async fn messages_are_read_and_pings_answered() {
        let (mut server, mut client) = pair().await;
        client
            .send(ClientMessage::Binary(vec![1, 2, 3].into()))
            .await
            .unwrap();
        client
            .send(ClientMessage::Text("later".into()))
            .await
            .unwrap();
        assert_eq!(
            read(&mut server).await,
            Message::Binary(vec![1, 2, 3].into())
        );
        assert_eq!(read(&mut server).await, Message::Text("later".into()));
        // A ping with nothing after it is answered too.
        client.send(ClientMessage::Ping("hi".into())).await.unwrap();
        assert_eq!(read(&mut server).await, Message::Ping("hi".into()));
        flush(&mut server).await;
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            ClientMessage::Pong("hi".into())
        );
    }

    #[tokio::test]
    async fn a_message_split_across_reads_is_put_together() {
        let (mut server, client) = pair().await;
        let mut raw = client.into_inner();
        // A masked binary frame "abcdef", written a byte at a time.
        let mask = [1u8, 2, 3, 4];
        let mut bytes = vec![0x82, 0x80 | 6];
        bytes.extend_from_slice(&mask);
        bytes.extend(b"abcdef".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let writer = tokio::spawn(async move {
            for b in bytes {
                raw.write_all(&[b]).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            raw
        });
        assert_eq!(
            read(&mut server).await,
            Message::Binary(b"abcdef".to_vec().into())
        );
        writer.await.unwrap();
    }

    /// A short read clears the socket's readiness; a full one must not (more may be
    /// waiting, and no new edge would announce it), and bytes that land after a short
    /// read must still wake the reader. A 64-byte read buffer, so that bursts of small
    /// messages give both kinds of read, on two threads with pauses of varying length.
    /// A reader that loses a wakeup hangs here (as one clearing after full reads does).
    /// The narrower race, clearing with readiness sampled after the read instead of
    /// before, is ruled out by how `View::read` uses `try_io`, not by this test.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_arriving_while_readiness_is_cleared_still_wake_the_reader() {
        let (mut server, mut client) =
            pair_with(WebSocketConfig::default().read_buffer_size(64)).await;
        const MESSAGES: u32 = 3000;
        let writer = tokio::spawn(async move {
            for n in 0..MESSAGES {
                client
                    .send(ClientMessage::Binary(n.to_le_bytes().to_vec().into()))
                    .await
                    .unwrap();
                match n % 7 {
                    0 => tokio::task::yield_now().await,
                    3 => tokio::time::sleep(std::time::Duration::from_micros(50)).await,
                    _ => {}
                }
            }
            client
        });
        for n in 0..MESSAGES {
            let got = tokio::time::timeout(std::time::Duration::from_secs(10), read(&mut server))
                .await
                .unwrap_or_else(|_| panic!("message {n} never woke the reader"));
            assert_eq!(got, Message::Binary(n.to_le_bytes().to_vec().into()));
        }
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn bytes_read_ahead_by_the_http_layer_come_first() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut client = client.unwrap();
        // Two masked frames "ab" and "cd"; the first was read by the HTTP layer.
        let frame = |text: &[u8]| {
            let mut bytes = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
            bytes.extend_from_slice(text);
            bytes
        };
        client.write_all(&frame(b"cd")).await.unwrap();
        let mut server = Socket::new(
            server.unwrap().0,
            Bytes::from(frame(b"ab")),
            WebSocketConfig::default(),
        );
        assert_eq!(read(&mut server).await, Message::Text("ab".into()));
        assert_eq!(read(&mut server).await, Message::Text("cd".into()));
    }

    #[tokio::test]
    async fn oversized_messages_are_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut client =
            WebSocketStream::from_raw_socket(client.unwrap(), Role::Client, None).await;
        let config = WebSocketConfig::default()
            .max_message_size(Some(100))
            .max_frame_size(Some(100));
        let mut server = Socket::new(server.unwrap().0, Bytes::new(), config);
        client
            .send(ClientMessage::Binary(vec![0; 101].into()))
            .await
            .unwrap();
        let got = poll_fn(|cx| server.poll_read(cx)).await;
        assert!(
            matches!(got, Err(tungstenite::Error::Capacity(_))),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn close_frames_follow_what_was_queued_and_end_the_stream() {
        let (mut server, mut client) = pair().await;
        server
            .queue()
            .push_back(super::super::frame(super::super::Kind::Binary, b"last"));
        server.queue_close(Some(CloseFrame {
            code: 1008.into(),
            reason: "bye".into(),
        }));
        server.finish().await.unwrap();
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            ClientMessage::Binary(b"last".to_vec().into())
        );
        match client.next().await.unwrap().unwrap() {
            ClientMessage::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 1008);
                assert_eq!(frame.reason.as_str(), "bye");
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_client_close_is_answered() {
        let (mut server, mut client) = pair().await;
        client.close(None).await.unwrap();
        assert!(matches!(read(&mut server).await, Message::Close(_)));
        server.finish().await.unwrap();
        // The client's side of the close handshake completes: it sees our close reply and
        // then the end of the stream.
        let got = client.next().await;
        assert!(
            matches!(got, Some(Ok(ClientMessage::Close(_))) | None),
            "{got:?}"
        );
    }
}
