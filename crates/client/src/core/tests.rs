//! The client core: reference counting, batching, routing, reconnecting.

use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::*;

fn core(unload_delay: Duration) -> Core {
    let mut c = Core::new(unload_delay, MergeStrategy::RemoteWins);
    c.on_open();
    c
}

fn records(out: Vec<Message>) -> Vec<RecordMessage> {
    out.into_iter()
        .map(|m| match m {
            Message::Record(r) => r,
            other => panic!("expected a record message, got {other:?}"),
        })
        .collect()
}

fn action(m: &RecordMessage) -> RecordAction {
    m.record_action().expect("a known action")
}

fn read_response(name: &str, version: i32, data: &str) -> Message {
    RecordMessage {
        version: Some(version),
        data: Some(data.into()),
        ..RecordMessage::named(RecordAction::ReadResponse, name)
    }
    .into()
}

#[test]
fn records_asked_for_together_are_subscribed_in_one_message() {
    let mut c = core(Duration::ZERO);
    c.open_record("a");
    c.open_record("b");
    let out = records(c.take_outbox());
    assert_eq!(out.len(), 1);
    assert_eq!(action(&out[0]), RecordAction::SubscribeCreateAndRead);
    assert_eq!(out[0].names, vec!["a", "b"]);
    assert!(out[0].correlation_id.is_some());
}

#[test]
fn two_handles_share_one_subscription_and_the_last_one_unsubscribes() {
    let mut c = core(Duration::ZERO);
    let first = c.open_record("r");
    let second = c.open_record("r");
    assert_eq!(first.id, second.id);
    assert_eq!(records(c.take_outbox()).len(), 1, "one subscription");
    c.release("r", first.id, Instant::now());
    assert!(c.take_outbox().is_empty(), "a handle is still alive");
    c.release("r", second.id, Instant::now());
    let out = records(c.take_outbox());
    assert_eq!(out.len(), 1);
    assert_eq!(action(&out[0]), RecordAction::Unsubscribe);
    assert_eq!(out[0].names, vec!["r"]);
    // A new handle subscribes again.
    let third = c.open_record("r");
    assert_ne!(third.id, first.id);
    assert_eq!(
        action(&records(c.take_outbox())[0]),
        RecordAction::SubscribeCreateAndRead
    );
}

#[test]
fn the_unload_delay_keeps_a_quickly_reused_record_subscribed() {
    let mut c = core(Duration::from_secs(5));
    let first = c.open_record("r");
    c.take_outbox();
    let t0 = Instant::now();
    c.release("r", first.id, t0);
    assert_eq!(c.next_deadline(), Some(t0 + Duration::from_secs(5)));
    let again = c.open_record("r");
    assert_eq!(again.id, first.id, "the same record, still subscribed");
    assert_eq!(c.next_deadline(), None);
    c.on_timer(t0 + Duration::from_secs(10));
    assert!(c.take_outbox().is_empty(), "never unsubscribed");
    // Released for good: unsubscribed once the delay is over.
    c.release("r", again.id, t0);
    c.on_timer(t0 + Duration::from_secs(1));
    assert!(c.take_outbox().is_empty());
    c.on_timer(t0 + Duration::from_secs(5));
    assert_eq!(
        action(&records(c.take_outbox())[0]),
        RecordAction::Unsubscribe
    );
}

#[test]
fn a_dropped_record_keeps_its_subscription_until_its_writes_are_confirmed() {
    let mut c = core(Duration::ZERO);
    let h = c.open_record("r");
    c.handle(read_response("r", 0, "{}"));
    c.take_outbox();
    c.write(
        "r",
        h.id,
        WriteOp::Patch {
            path: "a".into(),
            data: json!(1),
        },
        None,
    )
    .unwrap();
    let write = records(c.take_outbox()).remove(0);
    c.release("r", h.id, Instant::now());
    assert!(c.take_outbox().is_empty(), "the write is not confirmed yet");
    c.handle(
        RecordMessage {
            correlation_id: write.correlation_id.clone(),
            is_write_ack: Some(true),
            ..RecordMessage::named(RecordAction::WriteAcknowledgement, "r")
        }
        .into(),
    );
    let out = records(c.take_outbox());
    assert_eq!(action(&out[0]), RecordAction::Unsubscribe);
}

#[test]
fn subscribers_get_the_value_once_ready_then_each_change() {
    let mut c = core(Duration::ZERO);
    let h = c.open_record("r");
    let mut all = c.subscribe("r", h.id, None).unwrap();
    let mut x = c
        .subscribe("r", h.id, Some(Path::parse("x").unwrap()))
        .unwrap();
    assert!(
        all.try_recv().is_err(),
        "nothing before the record is loaded"
    );
    c.handle(read_response("r", 1, r#"{"x":1}"#));
    assert_eq!(all.try_recv().unwrap(), json!({"x": 1}));
    assert_eq!(x.try_recv().unwrap(), json!(1));
    c.handle(
        RecordMessage {
            version: Some(2),
            path: Some("y".into()),
            data: Some("2".into()),
            ..RecordMessage::named(RecordAction::Patch, "r")
        }
        .into(),
    );
    assert_eq!(all.try_recv().unwrap(), json!({"x": 1, "y": 2}));
    assert!(x.try_recv().is_err(), "x did not change");
    // Local writes notify at once.
    c.write(
        "r",
        h.id,
        WriteOp::Patch {
            path: "x".into(),
            data: json!(5),
        },
        None,
    )
    .unwrap();
    assert_eq!(x.try_recv().unwrap(), json!(5));
}

#[test]
fn deletion_ends_subscriptions_and_fails_the_handles() {
    let mut c = core(Duration::ZERO);
    let h = c.open_record("r");
    let mut sub = c.subscribe("r", h.id, None).unwrap();
    c.handle(read_response("r", 0, "{}"));
    assert_eq!(sub.try_recv().unwrap(), json!({}));
    c.handle(RecordMessage::named(RecordAction::Deleted, "r").into());
    assert!(matches!(
        sub.try_recv(),
        Err(mpsc::error::TryRecvError::Disconnected)
    ));
    assert_eq!(*h.status.borrow(), Status::Deleted);
    assert!(matches!(
        c.write("r", h.id, WriteOp::Update { data: json!({}) }, None),
        Err(Error::Deleted { .. })
    ));
}

#[test]
fn a_denied_subscription_fails_the_record() {
    let mut c = core(Duration::ZERO);
    let h = c.open_record("secret");
    c.handle(
        RecordMessage {
            original_action: Some(RecordAction::SubscribeCreateAndRead as i32),
            is_error: Some(true),
            ..RecordMessage::named(RecordAction::MessageDenied, "secret")
        }
        .into(),
    );
    assert_eq!(
        *h.status.borrow(),
        Status::Failed(Error::PermissionDenied {
            name: "secret".into(),
            action: "SUBSCRIBECREATEANDREAD".into()
        })
    );
}

#[test]
fn requests_are_answered_by_name_and_resent_after_reconnecting() {
    let mut c = core(Duration::ZERO);
    let (tx1, mut rx1) = oneshot::channel();
    let (tx2, mut rx2) = oneshot::channel();
    c.head("a", tx1);
    c.head("a", tx2);
    assert_eq!(records(c.take_outbox()).len(), 1, "one HEAD for both");
    c.on_lost();
    c.on_open();
    let out = records(c.take_outbox());
    assert_eq!(out.len(), 1);
    assert_eq!(action(&out[0]), RecordAction::Head);
    c.handle(
        RecordMessage {
            version: Some(-1),
            ..RecordMessage::named(RecordAction::HeadResponse, "a")
        }
        .into(),
    );
    assert_eq!(rx1.try_recv().unwrap(), Ok(None));
    assert_eq!(rx2.try_recv().unwrap(), Ok(None));

    let (tx, mut rx) = oneshot::channel();
    c.read("missing", tx);
    c.handle(
        RecordMessage {
            is_error: Some(true),
            original_action: Some(RecordAction::Read as i32),
            ..RecordMessage::named(RecordAction::RecordNotFound, "missing")
        }
        .into(),
    );
    assert_eq!(
        rx.try_recv().unwrap(),
        Err(Error::NotFound {
            name: "missing".into()
        })
    );
}

#[test]
fn set_data_is_acknowledged_by_correlation_id_and_resent_until_then() {
    let mut c = core(Duration::ZERO);
    let (tx, mut rx) = oneshot::channel();
    c.set_data(
        "r",
        WriteOp::Patch {
            path: "a".into(),
            data: json!(1),
        },
        Some(tx),
    )
    .unwrap();
    let sent = records(c.take_outbox()).remove(0);
    assert_eq!(action(&sent), RecordAction::CreateAndPatch);
    assert_eq!(sent.version, Some(-1));
    c.on_lost();
    c.on_open();
    let again = records(c.take_outbox()).remove(0);
    assert_eq!(again, sent);
    // deepstream's write-ack errors carry no name.
    c.handle(
        RecordMessage {
            correlation_id: sent.correlation_id.clone(),
            is_write_ack: Some(true),
            is_error: Some(true),
            ..RecordMessage::new(RecordAction::RecordUpdateError)
        }
        .into(),
    );
    assert!(matches!(rx.try_recv().unwrap(), Err(Error::Server { .. })));
    c.on_lost();
    c.on_open();
    assert!(c.take_outbox().is_empty(), "answered: not sent again");
}

#[test]
fn reconnecting_renews_subscriptions_and_listens() {
    let mut c = core(Duration::ZERO);
    c.open_record("a");
    c.open_record("b");
    let (offers, _offers_rx) = mpsc::unbounded_channel();
    let (ack, _ack_rx) = oneshot::channel();
    c.listen("a/.*", offers, ack);
    c.take_outbox();
    c.on_lost();
    assert!(c.take_outbox().is_empty());
    c.on_open();
    let out = records(c.take_outbox());
    assert_eq!(out.len(), 2);
    assert_eq!(action(&out[0]), RecordAction::SubscribeCreateAndRead);
    let mut names = out[0].names.clone();
    names.sort();
    assert_eq!(names, vec!["a", "b"]);
    assert_eq!(action(&out[1]), RecordAction::Listen);
    assert_eq!(out[1].name.as_deref(), Some("a/.*"));
}

#[test]
fn offers_reach_the_listener_and_stops_reach_the_provider() {
    let mut c = core(Duration::ZERO);
    let (offers, mut offers_rx) = mpsc::unbounded_channel();
    let (ack, mut ack_rx) = oneshot::channel();
    let id = c.listen("p/.*", offers, ack).unwrap();
    c.handle(
        RecordMessage {
            is_ack: Some(true),
            ..RecordMessage::named(RecordAction::Listen, "p/.*")
        }
        .into(),
    );
    assert_eq!(ack_rx.try_recv().unwrap(), Ok(()));
    c.take_outbox();
    let found = |name: &str| -> Message {
        RecordMessage {
            subscription: Some(name.into()),
            ..RecordMessage::named(RecordAction::SubscriptionForPatternFound, "p/.*")
        }
        .into()
    };
    c.handle(found("p/1"));
    assert_eq!(offers_rx.try_recv().unwrap().name, "p/1");
    let (stop, mut stop_rx) = oneshot::channel();
    c.respond("p/.*", id, "p/1", Some(stop));
    let out = records(c.take_outbox());
    assert_eq!(action(&out[0]), RecordAction::ListenAccept);
    assert_eq!(out[0].subscription.as_deref(), Some("p/1"));
    c.handle(
        RecordMessage {
            subscription: Some("p/1".into()),
            ..RecordMessage::named(RecordAction::SubscriptionForPatternRemoved, "p/.*")
        }
        .into(),
    );
    assert_eq!(stop_rx.try_recv().unwrap(), StopReason::Unsubscribed);

    // Nobody takes offers any more: they are rejected.
    drop(offers_rx);
    c.handle(found("p/2"));
    let out = records(c.take_outbox());
    assert_eq!(action(&out[0]), RecordAction::ListenReject);
}

#[test]
fn a_lost_connection_stops_every_provision() {
    let mut c = core(Duration::ZERO);
    let (offers, _rx) = mpsc::unbounded_channel();
    let (ack, _ack) = oneshot::channel();
    let id = c.listen("p/.*", offers, ack).unwrap();
    let (stop, mut stop_rx) = oneshot::channel();
    c.respond("p/.*", id, "p/1", Some(stop));
    c.on_lost();
    assert_eq!(stop_rx.try_recv().unwrap(), StopReason::ConnectionLost);
}

#[test]
fn closing_fails_everything_waiting() {
    let mut c = core(Duration::ZERO);
    let h = c.open_record("r");
    let (tx, mut rx) = oneshot::channel();
    c.read("x", tx);
    c.close(Error::closed());
    assert!(matches!(rx.try_recv().unwrap(), Err(Error::Closed { .. })));
    assert!(matches!(
        *h.status.borrow(),
        Status::Failed(Error::Closed { .. })
    ));
    let late = c.open_record("r");
    assert!(matches!(
        *late.status.borrow(),
        Status::Failed(Error::Closed { .. })
    ));
}

#[test]
fn action_names_are_deepstreams() {
    assert_eq!(action_name(RecordAction::MessageDenied), "MESSAGE_DENIED");
    assert_eq!(action_name(RecordAction::VersionExists), "VERSION_EXISTS");
    assert_eq!(action_name(RecordAction::CreateAndPatch), "CREATEANDPATCH");
}
