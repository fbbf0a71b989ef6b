//! Which of a record's messages wins: the newer `messageTimestamp`, and on equal
//! timestamps the larger message id (its 32 digest bytes compared in order), as DWN
//! decides.
//!
//! Invariant: the decision is a total order on (timestamp, message id) and depends on
//! nothing else (not arrival order, not the node, not the clock), so every node that has
//! seen the same messages has the same winner. Equal precedences are the same message.

use crate::content_id::MessageId;
use crate::timestamp::Timestamp;

/// A message's place among its record's messages. `Ord` is the decision: the greater
/// wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Precedence {
    /// Compared first.
    pub message_timestamp: Timestamp,
    /// Breaks ties.
    pub message_id: MessageId,
}

/// How an arriving message relates to the record's current winner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The record has no message yet, or this one wins: it becomes the head.
    Newer,
    /// This is the current head itself (a replay): nothing changes.
    AlreadyPresent,
    /// The current head wins: this one is superseded.
    Superseded,
}

impl Precedence {
    /// How `self`, arriving, relates to `current`, the record's head (if any).
    pub fn arrive(self, current: Option<Precedence>) -> Arrival {
        match current {
            None => Arrival::Newer,
            Some(current) if self == current => Arrival::AlreadyPresent,
            Some(current) if self > current => Arrival::Newer,
            Some(_) => Arrival::Superseded,
        }
    }
}

/// The winner among `messages`, or `None` when there are none.
pub fn newest<I: IntoIterator<Item = Precedence>>(messages: I) -> Option<Precedence> {
    messages.into_iter().max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn precedence() -> impl Strategy<Value = Precedence> {
        // Few distinct timestamps and ids, so that ties happen often.
        (0i64..4, 0u8..4).prop_map(|(t, id)| Precedence {
            message_timestamp: Timestamp::from_micros(t).unwrap(),
            message_id: MessageId::from_digest([id; 32]),
        })
    }

    #[test]
    fn timestamps_first_then_ids() {
        let p = |t, id| Precedence {
            message_timestamp: Timestamp::from_micros(t).unwrap(),
            message_id: MessageId::from_digest([id; 32]),
        };
        assert!(p(2, 0) > p(1, 9));
        assert!(p(1, 9) > p(1, 8));
        assert_eq!(p(1, 1).arrive(None), Arrival::Newer);
        assert_eq!(p(1, 1).arrive(Some(p(1, 1))), Arrival::AlreadyPresent);
        assert_eq!(p(1, 2).arrive(Some(p(1, 1))), Arrival::Newer);
        assert_eq!(p(0, 9).arrive(Some(p(1, 1))), Arrival::Superseded);
        assert_eq!(newest([]), None);
    }

    proptest! {
        /// Every order of arrival ends with the same head, whichever node applies them.
        #[test]
        fn every_arrival_order_gives_the_same_head(
            (messages, shuffled) in prop::collection::vec(precedence(), 1..12)
                .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        ) {
            let apply = |order: &[Precedence]| {
                let mut head = None;
                for &m in order {
                    if m.arrive(head) == Arrival::Newer {
                        head = Some(m);
                    }
                }
                head
            };
            let mut reversed = messages.clone();
            reversed.reverse();
            let head = apply(&messages);
            prop_assert_eq!(head, apply(&shuffled));
            prop_assert_eq!(head, apply(&reversed));
            prop_assert_eq!(head, newest(messages.iter().copied()));
        }

        /// The decision is antisymmetric: of two different messages exactly one wins.
        #[test]
        fn of_two_different_messages_exactly_one_wins(a in precedence(), b in precedence()) {
            let (ab, ba) = (a.arrive(Some(b)), b.arrive(Some(a)));
            if a == b {
                prop_assert_eq!(ab, Arrival::AlreadyPresent);
                prop_assert_eq!(ba, Arrival::AlreadyPresent);
            } else {
                prop_assert!((ab == Arrival::Newer) != (ba == Arrival::Newer));
                prop_assert!(ab != Arrival::AlreadyPresent && ba != Arrival::AlreadyPresent);
            }
        }
    }
}
