//! A connection's bounded outbound queue.
//!
//! Everything a connection is sent goes through its outbox, so replies and published
//! updates keep their order. Pushing never blocks: when the queue is full the client is
//! not reading fast enough, and it is cut off instead of growing the server's memory or
//! slowing the writer and the other subscribers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::ws::Message as Frame;
use tokio::sync::{Notify, mpsc};

#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Frame>,
    overflow: Arc<Overflow>,
}

#[derive(Default)]
struct Overflow {
    happened: AtomicBool,
    notify: Notify,
}

/// The receiving side: the frames for the connection's writer, and the overflow signal
/// for whoever closes the connection.
pub struct OutboxReceiver {
    pub frames: mpsc::Receiver<Frame>,
    pub overflow: OverflowSignal,
}

/// Resolves [`OverflowSignal::wait`] once the queue has overflowed.
pub struct OverflowSignal(Arc<Overflow>);

impl Outbox {
    /// A queue of at most `capacity` frames.
    pub fn new(capacity: usize) -> (Outbox, OutboxReceiver) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let overflow = Arc::new(Overflow::default());
        (
            Outbox {
                tx,
                overflow: overflow.clone(),
            },
            OutboxReceiver {
                frames: rx,
                overflow: OverflowSignal(overflow),
            },
        )
    }

    /// Queues a frame, or marks the connection for disconnection if the queue is full.
    pub fn push(&self, frame: Frame) {
        match self.tx.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.overflow.happened.swap(true, Ordering::AcqRel) {
                    self.overflow.notify.notify_one();
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

impl OverflowSignal {
    /// Resolves when the queue overflowed: the connection must be closed.
    pub async fn wait(&self) {
        if self.0.happened.load(Ordering::Acquire) {
            return;
        }
        self.0.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_signals_overflow_once() {
        let (outbox, mut rx) = Outbox::new(2);
        outbox.push(Frame::Binary(vec![1].into()));
        outbox.push(Frame::Binary(vec![2].into()));
        outbox.push(Frame::Binary(vec![3].into()));
        tokio::time::timeout(std::time::Duration::from_secs(1), rx.overflow.wait())
            .await
            .expect("overflow reported");
        assert_eq!(rx.frames.recv().await, Some(Frame::Binary(vec![1].into())));
        assert_eq!(rx.frames.recv().await, Some(Frame::Binary(vec![2].into())));
        assert!(
            rx.frames.try_recv().is_err(),
            "the overflowing frame was dropped"
        );
    }
}
