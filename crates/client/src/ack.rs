//! [`WriteAck`]: the acknowledgement of a write, as a future.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Sleep;

use crate::error::Error;

/// Completes when the server has stored a write (`Ok`), or says why it did not. Returned
/// by [`Record::set_with_ack`](crate::Record::set_with_ack) and the other `*_with_ack`
/// methods: the write itself is made, in order, when the method is called; this only
/// waits for its answer, up to the request timeout. Dropping it does not cancel the
/// write.
#[must_use = "the write is made either way; await this to learn whether the server stored it"]
pub struct WriteAck {
    state: State,
}

enum State {
    Failed(Option<Error>),
    Waiting {
        rx: oneshot::Receiver<Result<(), Error>>,
        what: String,
        after: Duration,
        sleep: Option<Pin<Box<Sleep>>>,
    },
}

impl WriteAck {
    pub(crate) fn waiting(
        rx: oneshot::Receiver<Result<(), Error>>,
        what: String,
        after: Duration,
    ) -> WriteAck {
        WriteAck {
            state: State::Waiting {
                rx,
                what,
                after,
                sleep: None,
            },
        }
    }

    pub(crate) fn failed(error: Error) -> WriteAck {
        WriteAck {
            state: State::Failed(Some(error)),
        }
    }
}

impl Future for WriteAck {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Failed(error) => Poll::Ready(Err(error.take().unwrap_or_else(Error::closed))),
            State::Waiting {
                rx,
                what,
                after,
                sleep,
            } => {
                if let Poll::Ready(answer) = Pin::new(rx).poll(cx) {
                    return Poll::Ready(answer.unwrap_or_else(|_| Err(Error::closed())));
                }
                let sleep = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(*after)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(Error::timeout(what.clone(), *after))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl std::fmt::Debug for WriteAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteAck")
    }
}
