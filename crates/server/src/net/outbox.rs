//! A connection's bounded outbound queue.
//!
//! Everything a connection is sent goes through its outbox, so replies and published
//! updates keep their order. Pushing never blocks: when the queue is full the client is
//! not reading fast enough, and it is cut off instead of growing the server's memory or
//! slowing the writer and the other subscribers.
//!
//! The queue is a `VecDeque` behind a short lock. An empty queue holds no allocation (an
//! idle connection costs the `Arc` and nothing else), and the connection takes the whole
//! queue at once ([`OutboxReceiver::poll_take`]), so everything that queued up while it
//! was busy goes out in one write.
//!
//! Wake-ups can be held back for a while ([`deferring_wakes`]): the engine publishes a
//! whole group commit's updates before any connection is woken to write them, so a
//! subscriber of several of the batch's records gets them in one write, not one each.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use parking_lot::Mutex;

/// A complete WebSocket frame, as [`crate::websocket::frame`] builds it.
pub type Frame = Bytes;

/// The sending side; cheap to clone, shared with the engine through the session.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

struct Shared {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Frame>,
    /// The connection's task, when it waits for frames.
    waker: Option<Waker>,
    /// The connection's task, when it cannot take frames (its socket is full) and waits
    /// to hear of an overflow only.
    overflow_waker: Option<Waker>,
    /// The queue was full once: the connection must be closed, and nothing more is queued.
    overflowed: bool,
    /// The receiver is gone: frames are dropped.
    closed: bool,
}

/// The receiving side, owned by the connection's task.
pub struct OutboxReceiver {
    shared: Arc<Shared>,
}

/// What [`OutboxReceiver::poll_take`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// Frames were moved into the caller's buffer, oldest first.
    Frames,
    /// The queue overflowed: the client is not reading, close the connection.
    Overflowed,
}

impl Outbox {
    /// A queue of at most `capacity` frames.
    pub fn new(capacity: usize) -> (Outbox, OutboxReceiver) {
        let shared = Arc::new(Shared {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        });
        (
            Outbox {
                shared: shared.clone(),
            },
            OutboxReceiver { shared },
        )
    }

    /// Queues a frame, or marks the connection for disconnection if the queue is full.
    pub fn push(&self, frame: Frame) {
        let (waker, overflow_waker) = {
            let mut st = self.shared.state.lock();
            if st.closed || st.overflowed {
                return;
            }
            if st.frames.len() >= self.shared.capacity {
                st.overflowed = true;
                // Nothing queued will be written: free it now.
                st.frames = VecDeque::new();
                (st.waker.take(), st.overflow_waker.take())
            } else {
                st.frames.push_back(frame);
                (st.waker.take(), None)
            }
        };
        if let Some(waker) = waker {
            wake_or_defer(waker);
        }
        if let Some(waker) = overflow_waker {
            waker.wake();
        }
    }
}

impl OutboxReceiver {
    /// Moves every queued frame into `into` (which should be empty: the two buffers are
    /// swapped, so `into`'s allocation is reused by the queue), or registers the task to
    /// be woken by the next push.
    pub fn poll_take(&self, cx: &mut Context<'_>, into: &mut VecDeque<Frame>) -> Poll<Taken> {
        let mut st = self.shared.state.lock();
        if st.overflowed {
            return Poll::Ready(Taken::Overflowed);
        }
        if !st.frames.is_empty() {
            if into.is_empty() {
                std::mem::swap(&mut st.frames, into);
            } else {
                into.append(&mut st.frames);
            }
            return Poll::Ready(Taken::Frames);
        }
        match &mut st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// For a task that cannot take frames now (its socket is full): ready once the queue
    /// has overflowed, and until then registers the task to be woken when it does (and
    /// not by every push).
    pub fn poll_overflow(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.shared.state.lock();
        if st.overflowed {
            return Poll::Ready(());
        }
        match &mut st.overflow_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Whether the queue has overflowed.
    pub fn overflowed(&self) -> bool {
        self.shared.state.lock().overflowed
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock();
        st.closed = true;
        st.waker = None;
        st.overflow_waker = None;
        st.frames = VecDeque::new();
    }
}

thread_local! {
    /// Wakers held back by [`deferring_wakes`] on this thread (`None`: wake at once).
    static DEFERRED: RefCell<Option<Vec<Waker>>> = const { RefCell::new(None) };
}

/// Runs `f`, holding back the wake-ups of the connections it pushes frames to until it
/// returns (or panics). Nested calls join the outermost one.
pub fn deferring_wakes<R>(f: impl FnOnce() -> R) -> R {
    struct Release(bool);
    impl Drop for Release {
        fn drop(&mut self) {
            if !self.0 {
                return;
            }
            let wakers = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
            for w in wakers {
                w.wake();
            }
        }
    }
    let outermost = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(Vec::new());
            true
        } else {
            false
        }
    });
    let _release = Release(outermost);
    f()
}

fn wake_or_defer(waker: Waker) {
    let waker = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(list) => {
            list.push(waker);
            None
        }
        None => Some(waker),
    });
    if let Some(w) = waker {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    fn frame(n: u8) -> Frame {
        Bytes::from(vec![n])
    }

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting_waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[tokio::test]
    async fn frames_come_out_in_order_and_all_at_once() {
        let (outbox, rx) = Outbox::new(8);
        for n in 1..=3 {
            outbox.push(frame(n));
        }
        let mut got = VecDeque::new();
        let taken = poll_fn(|cx| rx.poll_take(cx, &mut got)).await;
        assert_eq!(taken, Taken::Frames);
        assert_eq!(Vec::from(got.clone()), vec![frame(1), frame(2), frame(3)]);
        // Frames pushed while the caller still holds some are appended after them.
        outbox.push(frame(4));
        let taken = poll_fn(|cx| rx.poll_take(cx, &mut got)).await;
        assert_eq!(taken, Taken::Frames);
        assert_eq!(got.len(), 4);
        assert_eq!(got.back(), Some(&frame(4)));
    }

    #[test]
    fn an_empty_queue_holds_no_allocation() {
        let (outbox, rx) = Outbox::new(8);
        assert_eq!(outbox.shared.state.lock().frames.capacity(), 0);
        outbox.push(frame(1));
        let (_, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut got = VecDeque::new();
        assert_eq!(rx.poll_take(&mut cx, &mut got), Poll::Ready(Taken::Frames));
        // The caller's empty, unallocated buffer took the queue's place.
        assert_eq!(outbox.shared.state.lock().frames.capacity(), 0);
    }

    #[test]
    fn a_push_wakes_a_waiting_receiver_once() {
        let (outbox, rx) = Outbox::new(8);
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut got = VecDeque::new();
        assert!(rx.poll_take(&mut cx, &mut got).is_pending());
        outbox.push(frame(1));
        outbox.push(frame(2));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(rx.poll_take(&mut cx, &mut got), Poll::Ready(Taken::Frames));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_full_queue_overflows_and_drops_everything() {
        let (outbox, rx) = Outbox::new(2);
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut got = VecDeque::new();
        assert!(rx.poll_take(&mut cx, &mut got).is_pending());
        outbox.push(frame(1));
        outbox.push(frame(2));
        outbox.push(frame(3));
        assert!(rx.overflowed());
        assert_eq!(
            rx.poll_take(&mut cx, &mut got),
            Poll::Ready(Taken::Overflowed)
        );
        assert!(got.is_empty(), "nothing is written to a client cut off");
        // Later pushes are dropped and wake nobody.
        outbox.push(frame(4));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(outbox.shared.state.lock().frames.len(), 0);
    }

    #[test]
    fn a_blocked_receiver_is_woken_by_the_overflow_only() {
        let (outbox, rx) = Outbox::new(2);
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_overflow(&mut cx).is_pending());
        outbox.push(frame(1));
        outbox.push(frame(2));
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            0,
            "pushes that fit wake nobody"
        );
        outbox.push(frame(3));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(rx.poll_overflow(&mut cx).is_ready());
    }

    #[test]
    fn pushes_after_the_receiver_is_gone_are_dropped() {
        let (outbox, rx) = Outbox::new(2);
        drop(rx);
        outbox.push(frame(1));
        assert_eq!(outbox.shared.state.lock().frames.len(), 0);
    }

    #[test]
    fn deferred_wakes_happen_when_the_scope_ends() {
        let (a, rx_a) = Outbox::new(8);
        let (b, rx_b) = Outbox::new(8);
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut got = VecDeque::new();
        assert!(rx_a.poll_take(&mut cx, &mut got).is_pending());
        assert!(rx_b.poll_take(&mut cx, &mut got).is_pending());
        deferring_wakes(|| {
            a.push(frame(1));
            deferring_wakes(|| b.push(frame(2)));
            assert_eq!(count.0.load(Ordering::SeqCst), 0, "held back");
            a.push(frame(3));
        });
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        // Outside a scope, wakes are immediate again.
        assert_eq!(
            rx_a.poll_take(&mut cx, &mut got),
            Poll::Ready(Taken::Frames)
        );
        assert!(rx_a.poll_take(&mut cx, &mut got).is_pending());
        a.push(frame(4));
        assert_eq!(count.0.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn deferred_wakes_happen_even_if_the_scope_panics() {
        let (a, rx_a) = Outbox::new(8);
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut got = VecDeque::new();
        assert!(rx_a.poll_take(&mut cx, &mut got).is_pending());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            deferring_wakes(|| {
                a.push(frame(1));
                panic!("a callback failed");
            })
        }));
        assert!(result.is_err());
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        // And the thread is back to waking at once.
        let _ = rx_a.poll_take(&mut cx, &mut got);
        assert!(rx_a.poll_take(&mut cx, &mut got).is_pending());
        a.push(frame(2));
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
    }
}
