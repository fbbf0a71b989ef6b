//! The record state machine, message by message.

use serde_json::json;
use tokio::sync::oneshot;

use super::*;

fn loaded(version: i64, data: Value) -> RecordState {
    let mut r = RecordState::new("r");
    let mut fx = Effects::default();
    r.on_read_response(version, data, &MergeStrategy::RemoteWins, true, &mut fx);
    assert!(fx.send.is_empty());
    assert_eq!(r.phase(), Phase::Ready);
    r
}

fn patch(path: &str, data: Value) -> WriteOp {
    WriteOp::Patch {
        path: path.into(),
        data,
    }
}

fn update(data: Value) -> WriteOp {
    WriteOp::Update { data }
}

fn ack_waiter() -> (AckWaiter, oneshot::Receiver<Result<(), Error>>) {
    oneshot::channel()
}

/// Writes `change` while connected and returns the message it sent.
fn write(r: &mut RecordState, change: WriteOp) -> RecordMessage {
    let mut fx = Effects::default();
    r.write(change, vec![], false, true, &mut fx);
    assert_eq!(fx.send.len(), 1, "one message per write");
    fx.send.pop().unwrap()
}

fn cid(m: &RecordMessage) -> String {
    m.correlation_id
        .clone()
        .expect("writes carry a correlation id")
}

fn outcome(rx: &mut oneshot::Receiver<Result<(), Error>>) -> Option<Result<(), Error>> {
    rx.try_recv().ok()
}

#[test]
fn writes_carry_the_next_version_and_ask_for_an_ack() {
    let mut r = loaded(3, json!({}));
    let m = write(&mut r, patch("a.b", json!(1)));
    assert_eq!(m.record_action(), Some(RecordAction::Patch));
    assert_eq!(m.version, Some(4));
    assert_eq!(m.path.as_deref(), Some("a.b"));
    assert_eq!(m.data.as_deref(), Some("1"));
    assert_eq!(m.is_write_ack, Some(true));
    let m2 = write(&mut r, update(json!({"x": 2})));
    assert_eq!(m2.record_action(), Some(RecordAction::Update));
    assert_eq!(m2.version, Some(5));
    assert_ne!(cid(&m), cid(&m2));
    assert_eq!(r.local(), &json!({"x": 2}));
    assert_eq!(r.version(), Some(5));
    let m3 = write(&mut r, WriteOp::Erase { path: "x".into() });
    assert_eq!(m3.record_action(), Some(RecordAction::Erase));
    assert_eq!(m3.data, None);
}

#[test]
fn writes_that_change_nothing_are_not_sent() {
    let mut r = loaded(1, json!({"a": 1}));
    let (tx, mut rx) = ack_waiter();
    let mut fx = Effects::default();
    r.write(patch("a", json!(1)), vec![tx], false, true, &mut fx);
    assert!(fx.send.is_empty());
    fx.deliver();
    assert_eq!(outcome(&mut rx), Some(Ok(())));
}

#[test]
fn writes_before_the_first_value_go_on_top_of_it() {
    let mut r = RecordState::new("r");
    let mut fx = Effects::default();
    r.write(patch("mine", json!(true)), vec![], false, true, &mut fx);
    assert!(
        fx.send.is_empty(),
        "nothing is sent before the record is loaded"
    );
    r.on_read_response(
        7,
        json!({"theirs": 1}),
        &MergeStrategy::RemoteWins,
        true,
        &mut fx,
    );
    assert_eq!(fx.send.len(), 1);
    assert_eq!(fx.send[0].version, Some(8));
    assert_eq!(r.local(), &json!({"theirs": 1, "mine": true}));
}

#[test]
fn acks_confirm_in_order() {
    let mut r = loaded(0, json!({}));
    let (tx1, mut rx1) = ack_waiter();
    let (tx2, mut rx2) = ack_waiter();
    let mut fx = Effects::default();
    r.write(patch("a", json!(1)), vec![tx1], false, true, &mut fx);
    r.write(patch("b", json!(2)), vec![tx2], false, true, &mut fx);
    let (c1, c2) = (cid(&fx.send[0]), cid(&fx.send[1]));
    let mut fx = Effects::default();
    r.on_ack(&c2, true, &mut fx);
    fx.deliver();
    // The later ack confirms the earlier write too.
    assert_eq!(outcome(&mut rx1), Some(Ok(())));
    assert_eq!(outcome(&mut rx2), Some(Ok(())));
    assert!(!r.has_pending_writes());
    r.on_ack(&c1, true, &mut fx); // late duplicate: ignored
    assert_eq!(r.version(), Some(2));
    // The next write builds on the confirmed version.
    assert_eq!(write(&mut r, patch("c", json!(3))).version, Some(3));
}

#[test]
fn remote_changes_apply_in_order() {
    let mut r = loaded(1, json!({"a": 1}));
    let mut fx = Effects::default();
    r.on_remote_change(2, patch("b", json!(2)), true, &mut fx);
    r.on_remote_change(3, WriteOp::Erase { path: "a".into() }, true, &mut fx);
    assert!(fx.send.is_empty());
    assert_eq!(r.local(), &json!({"b": 2}));
    // A duplicate is ignored.
    r.on_remote_change(3, update(json!({"zzz": 1})), true, &mut fx);
    assert_eq!(r.local(), &json!({"b": 2}));
    assert_eq!(r.version(), Some(3));
}

#[test]
fn a_remote_change_after_our_writes_confirms_them() {
    let mut r = loaded(0, json!({}));
    let (tx, mut rx) = ack_waiter();
    let mut fx = Effects::default();
    r.write(patch("mine", json!(1)), vec![tx], false, true, &mut fx);
    let mut fx = Effects::default();
    r.on_remote_change(2, patch("theirs", json!(2)), true, &mut fx);
    fx.deliver();
    assert!(fx.send.is_empty());
    assert_eq!(outcome(&mut rx), Some(Ok(())));
    assert_eq!(r.local(), &json!({"mine": 1, "theirs": 2}));
    assert_eq!(r.version(), Some(2));
}

#[test]
fn a_gap_reloads_the_record() {
    let mut r = loaded(1, json!({}));
    let mut fx = Effects::default();
    r.on_remote_change(5, patch("x", json!(1)), true, &mut fx);
    assert_eq!(fx.send.len(), 1);
    assert_eq!(fx.send[0].record_action(), Some(RecordAction::Read));
    let mut fx = Effects::default();
    r.on_read_response(
        5,
        json!({"x": 1, "y": 2}),
        &MergeStrategy::RemoteWins,
        true,
        &mut fx,
    );
    assert!(fx.send.is_empty());
    assert_eq!(r.phase(), Phase::Ready);
    assert_eq!(r.local(), &json!({"x": 1, "y": 2}));
    assert_eq!(r.version(), Some(5));
}

/// Both clients wrote version 2: ours is refused. Returns the record after the READ was
/// requested, and our write's acknowledgement.
fn conflicted() -> (RecordState, oneshot::Receiver<Result<(), Error>>) {
    let mut r = loaded(1, json!({"v": "start"}));
    let (tx, rx) = ack_waiter();
    let mut fx = Effects::default();
    r.write(patch("v", json!("local")), vec![tx], false, true, &mut fx);
    let our = cid(&fx.send[0]);
    // The winner's update arrives first (as deepstream sends it), then VERSION_EXISTS.
    let mut fx = Effects::default();
    r.on_remote_change(2, patch("v", json!("remote")), true, &mut fx);
    assert!(fx.send.is_empty(), "no READ while our write is in flight");
    assert_eq!(r.phase(), Phase::Merging { read_sent: false });
    r.on_refused(&our, Refusal::Version, true, &mut fx);
    assert_eq!(fx.send.len(), 1);
    assert_eq!(fx.send[0].record_action(), Some(RecordAction::Read));
    assert_eq!(
        r.local(),
        &json!({"v": "local"}),
        "local value kept while merging"
    );
    (r, rx)
}

#[test]
fn remote_wins_keeps_the_servers_value() {
    let (mut r, mut rx) = conflicted();
    let mut fx = Effects::default();
    r.on_read_response(
        2,
        json!({"v": "remote"}),
        &MergeStrategy::RemoteWins,
        true,
        &mut fx,
    );
    fx.deliver();
    assert!(fx.send.is_empty());
    assert_eq!(r.local(), &json!({"v": "remote"}));
    assert_eq!(r.version(), Some(2));
    assert_eq!(
        outcome(&mut rx),
        Some(Err(Error::Conflict { name: "r".into() }))
    );
}

#[test]
fn local_wins_writes_the_local_value_over() {
    let (mut r, mut rx) = conflicted();
    let mut fx = Effects::default();
    r.on_read_response(
        2,
        json!({"v": "remote"}),
        &MergeStrategy::LocalWins,
        true,
        &mut fx,
    );
    assert_eq!(fx.send.len(), 1);
    let m = &fx.send[0];
    assert_eq!(m.record_action(), Some(RecordAction::Update));
    assert_eq!(m.version, Some(3));
    assert_eq!(m.data.as_deref(), Some(r#"{"v":"local"}"#));
    assert_eq!(r.local(), &json!({"v": "local"}));
    // The merged write carries our acknowledgement.
    let c = cid(m);
    let mut fx = Effects::default();
    r.on_ack(&c, true, &mut fx);
    fx.deliver();
    assert_eq!(outcome(&mut rx), Some(Ok(())));
    assert_eq!(r.version(), Some(3));
}

#[test]
fn a_custom_strategy_merges_both() {
    let (mut r, _rx) = conflicted();
    let strategy = MergeStrategy::custom(|c| {
        assert_eq!(c.name, "r");
        assert_eq!(c.remote_version, 2);
        json!({"v": format!("{}+{}", c.remote["v"].as_str().unwrap(), c.local["v"].as_str().unwrap())})
    });
    let mut fx = Effects::default();
    r.on_read_response(2, json!({"v": "remote"}), &strategy, true, &mut fx);
    assert_eq!(fx.send.len(), 1);
    assert_eq!(fx.send[0].data.as_deref(), Some(r#"{"v":"remote+local"}"#));
    assert_eq!(fx.send[0].version, Some(3));
    assert_eq!(r.local(), &json!({"v": "remote+local"}));
}

#[test]
fn writes_made_while_merging_are_merged_too() {
    let (mut r, _rx) = conflicted();
    let mut fx = Effects::default();
    r.write(patch("extra", json!(1)), vec![], false, true, &mut fx);
    assert!(fx.send.is_empty(), "nothing is sent while merging");
    r.on_read_response(
        2,
        json!({"v": "remote"}),
        &MergeStrategy::LocalWins,
        true,
        &mut fx,
    );
    assert_eq!(fx.send.len(), 1);
    assert_eq!(
        fx.send[0].data.as_deref(),
        Some(r#"{"v":"local","extra":1}"#)
    );
}

#[test]
fn a_refused_write_is_resent_when_nobody_else_wrote() {
    // INVALID_VERSION for a write (e.g. after a fatal refusal of the one before): if the
    // server's value is still the confirmed one, the write simply goes again.
    let mut r = loaded(1, json!({}));
    let (tx1, mut rx1) = ack_waiter();
    let mut fx = Effects::default();
    r.write(patch("denied", json!(1)), vec![tx1], false, true, &mut fx);
    r.write(patch("fine", json!(2)), vec![], false, true, &mut fx);
    let (c1, c2) = (cid(&fx.send[0]), cid(&fx.send[1]));
    let mut fx = Effects::default();
    r.on_refused(
        &c1,
        Refusal::Fatal(Error::PermissionDenied {
            name: "r".into(),
            action: "PATCH".into(),
        }),
        true,
        &mut fx,
    );
    assert!(fx.send.is_empty(), "the second write is still in flight");
    r.on_refused(&c2, Refusal::Version, true, &mut fx);
    assert_eq!(fx.send.len(), 1);
    assert_eq!(fx.send[0].record_action(), Some(RecordAction::Read));
    fx.deliver();
    let mut fx = Effects::default();
    r.on_read_response(1, json!({}), &MergeStrategy::RemoteWins, true, &mut fx);
    assert!(matches!(
        outcome(&mut rx1),
        Some(Err(Error::PermissionDenied { .. }))
    ));
    assert_eq!(fx.send.len(), 1);
    assert_eq!(fx.send[0].version, Some(2));
    assert_eq!(fx.send[0].path.as_deref(), Some("fine"));
    assert_eq!(
        r.local(),
        &json!({"fine": 2}),
        "the denied write is rolled back"
    );
}

#[test]
fn a_stale_read_answer_is_ignored() {
    let mut r = loaded(1, json!({}));
    let mut fx = Effects::default();
    r.write(patch("a", json!(1)), vec![], false, true, &mut fx);
    r.write(patch("b", json!(2)), vec![], false, true, &mut fx);
    let (c1, c2) = (cid(&fx.send[0]), cid(&fx.send[1]));
    let mut fx = Effects::default();
    r.on_remote_change(3, patch("x", json!(0)), true, &mut fx); // conflict on version 3
    r.on_ack(&c1, true, &mut fx); // version 2 accepted
    r.on_refused(&c2, Refusal::Version, true, &mut fx);
    assert_eq!(fx.send.len(), 1, "READ");
    let mut fx = Effects::default();
    // An answer older than the accepted version 2: asked again.
    r.on_read_response(1, json!({}), &MergeStrategy::RemoteWins, true, &mut fx);
    assert_eq!(fx.send.len(), 1);
    assert_eq!(fx.send[0].record_action(), Some(RecordAction::Read));
    let mut fx = Effects::default();
    r.on_read_response(
        3,
        json!({"a": 1, "x": 0}),
        &MergeStrategy::LocalWins,
        true,
        &mut fx,
    );
    assert_eq!(fx.send.len(), 1);
    assert_eq!(fx.send[0].version, Some(4));
    assert_eq!(
        fx.send[0].data.as_deref(),
        Some(r#"{"a":1,"b":2}"#),
        "local wins: our value, which never saw x"
    );
}

#[test]
fn offline_writes_are_sent_after_reconnecting() {
    let mut r = loaded(4, json!({"n": 4}));
    r.on_disconnect();
    assert_eq!(r.phase(), Phase::Resync);
    let (tx, mut rx) = ack_waiter();
    let mut fx = Effects::default();
    r.write(patch("n", json!(5)), vec![tx], false, false, &mut fx);
    assert!(fx.send.is_empty());
    assert_eq!(r.local(), &json!({"n": 5}), "applied locally at once");
    // The renewed subscription finds the record as we left it.
    r.on_read_response(
        4,
        json!({"n": 4}),
        &MergeStrategy::RemoteWins,
        true,
        &mut fx,
    );
    assert_eq!(fx.send.len(), 1);
    assert_eq!(fx.send[0].version, Some(5));
    let c = cid(&fx.send[0]);
    let mut fx = Effects::default();
    r.on_ack(&c, true, &mut fx);
    fx.deliver();
    assert_eq!(outcome(&mut rx), Some(Ok(())));
}

#[test]
fn writes_in_flight_when_the_connection_dropped_are_not_duplicated() {
    let mut r = loaded(0, json!({}));
    let mut fx = Effects::default();
    let (tx1, mut rx1) = ack_waiter();
    r.write(patch("a", json!(1)), vec![tx1], false, true, &mut fx);
    r.write(patch("b", json!(2)), vec![], false, true, &mut fx);
    r.on_disconnect();
    // The server had taken the first write, not the second.
    let mut fx = Effects::default();
    r.on_read_response(
        1,
        json!({"a": 1}),
        &MergeStrategy::RemoteWins,
        true,
        &mut fx,
    );
    fx.deliver();
    assert_eq!(outcome(&mut rx1), Some(Ok(())));
    assert_eq!(fx.send.len(), 1, "only the lost write is sent again");
    assert_eq!(fx.send[0].path.as_deref(), Some("b"));
    assert_eq!(fx.send[0].version, Some(2));
    assert_eq!(r.local(), &json!({"a": 1, "b": 2}));
}

#[test]
fn offline_writes_meet_the_merge_strategy_when_the_record_moved_on() {
    let mut r = loaded(1, json!({"n": 1}));
    r.on_disconnect();
    let (tx, mut rx) = ack_waiter();
    let mut fx = Effects::default();
    r.write(patch("n", json!(2)), vec![tx], false, false, &mut fx);
    r.on_read_response(
        3,
        json!({"n": 30}),
        &MergeStrategy::RemoteWins,
        true,
        &mut fx,
    );
    fx.deliver();
    assert!(fx.send.is_empty());
    assert_eq!(r.local(), &json!({"n": 30}));
    assert_eq!(
        outcome(&mut rx),
        Some(Err(Error::Conflict { name: "r".into() }))
    );
}

#[test]
fn a_server_that_lost_the_record_gets_the_local_value_back_with_local_wins() {
    // An in-memory server restarted: the record is back at {} version 0.
    let mut r = loaded(0, json!({}));
    let mut fx = Effects::default();
    r.write(patch("n", json!(1)), vec![], false, true, &mut fx);
    let c = cid(&fx.send[0]);
    r.on_ack(&c, true, &mut fx);
    r.on_disconnect();
    let mut fx = Effects::default();
    r.write(patch("m", json!(2)), vec![], false, false, &mut fx);
    r.on_read_response(0, json!({}), &MergeStrategy::LocalWins, true, &mut fx);
    assert_eq!(fx.send.len(), 1);
    assert_eq!(fx.send[0].version, Some(1));
    assert_eq!(fx.send[0].data.as_deref(), Some(r#"{"n":1,"m":2}"#));
}

#[test]
fn deletion_fails_pending_writes() {
    let mut r = loaded(0, json!({}));
    let (tx, mut rx) = ack_waiter();
    let mut fx = Effects::default();
    r.write(patch("a", json!(1)), vec![tx], false, true, &mut fx);
    let mut fx = Effects::default();
    r.on_deleted(&mut fx);
    fx.deliver();
    assert_eq!(
        outcome(&mut rx),
        Some(Err(Error::Deleted { name: "r".into() }))
    );
    assert!(!r.has_value());
}

#[test]
fn remote_messages_decode_as_deepstream_sends_them() {
    let named = |action| RecordMessage::named(action, "r");
    let m = RecordMessage {
        path: Some("a.b".into()),
        ..named(RecordAction::Patch)
    };
    assert_eq!(
        remote_change(&m, RecordAction::Patch),
        Ok(WriteOp::Erase { path: "a.b".into() }),
        "an ERASE is fanned out as a PATCH without data"
    );
    let m = RecordMessage {
        data: Some(r#"[{"path":"x","data":1},{"path":"y"}]"#.into()),
        ..named(RecordAction::PatchMulti)
    };
    assert!(matches!(
        remote_change(&m, RecordAction::PatchMulti),
        Ok(WriteOp::PatchMulti { patches }) if patches.len() == 2
    ));
    let m = RecordMessage {
        data: Some("{nope".into()),
        ..named(RecordAction::Update)
    };
    assert!(remote_change(&m, RecordAction::Update).is_err());
}

#[test]
fn set_data_writes_apply_on_top_of_the_winner_instead_of_conflicting() {
    let mut r = loaded(1, json!({"v": "start"}));
    let (tx, mut rx) = ack_waiter();
    let mut fx = Effects::default();
    r.write(
        patch("reviewed", json!(true)),
        vec![tx],
        true,
        true,
        &mut fx,
    );
    let ours = cid(&fx.send[0]);
    let mut fx = Effects::default();
    r.on_remote_change(2, patch("v", json!("remote")), true, &mut fx);
    r.on_refused(&ours, Refusal::Version, true, &mut fx);
    let mut fx = Effects::default();
    r.on_read_response(
        2,
        json!({"v": "remote"}),
        &MergeStrategy::RemoteWins,
        true,
        &mut fx,
    );
    assert_eq!(fx.send.len(), 1, "sent again, on top of the server's value");
    assert_eq!(fx.send[0].version, Some(3));
    assert_eq!(fx.send[0].path.as_deref(), Some("reviewed"));
    assert_eq!(r.local(), &json!({"v": "remote", "reviewed": true}));
    let c = cid(&fx.send[0]);
    let mut fx = Effects::default();
    r.on_ack(&c, true, &mut fx);
    fx.deliver();
    assert_eq!(outcome(&mut rx), Some(Ok(())));
}

#[test]
fn remote_wins_keeps_set_data_writes_and_drops_the_others() {
    let mut r = loaded(1, json!({}));
    let (mine, mut mine_rx) = ack_waiter();
    let (data, mut data_rx) = ack_waiter();
    let mut fx = Effects::default();
    r.write(patch("mine", json!(1)), vec![mine], false, true, &mut fx);
    r.write(patch("data", json!(2)), vec![data], true, true, &mut fx);
    let (c1, c2) = (cid(&fx.send[0]), cid(&fx.send[1]));
    let mut fx = Effects::default();
    r.on_remote_change(2, patch("theirs", json!(0)), true, &mut fx);
    r.on_refused(&c1, Refusal::Version, true, &mut fx);
    r.on_refused(&c2, Refusal::Version, true, &mut fx);
    fx.deliver();
    let mut fx = Effects::default();
    r.on_read_response(
        2,
        json!({"theirs": 0}),
        &MergeStrategy::RemoteWins,
        true,
        &mut fx,
    );
    fx.deliver();
    assert_eq!(
        outcome(&mut mine_rx),
        Some(Err(Error::Conflict { name: "r".into() }))
    );
    assert_eq!(fx.send.len(), 1);
    assert_eq!(fx.send[0].path.as_deref(), Some("data"));
    assert_eq!(fx.send[0].version, Some(3));
    assert_eq!(r.local(), &json!({"theirs": 0, "data": 2}));
    assert_eq!(outcome(&mut data_rx), None, "still waiting for its ack");
}

#[test]
fn a_server_that_keeps_refusing_without_moving_on_fails_the_write() {
    let mut r = loaded(1, json!({}));
    let (tx, mut rx) = ack_waiter();
    let mut fx = Effects::default();
    r.write(patch("a", json!(1)), vec![tx], false, true, &mut fx);
    let mut c = cid(&fx.send[0]);
    for round in 0..=MAX_STALLED_ROUNDS {
        let mut fx = Effects::default();
        r.on_refused(&c, Refusal::Version, true, &mut fx);
        assert_eq!(
            fx.send[0].record_action(),
            Some(RecordAction::Read),
            "round {round}"
        );
        let mut fx = Effects::default();
        r.on_read_response(1, json!({}), &MergeStrategy::RemoteWins, true, &mut fx);
        fx.deliver();
        if round < MAX_STALLED_ROUNDS {
            assert_eq!(fx.send.len(), 1, "sent again in round {round}");
            c = cid(&fx.send[0]);
            assert_eq!(outcome(&mut rx), None);
        } else {
            assert!(fx.send.is_empty(), "given up");
            assert!(matches!(outcome(&mut rx), Some(Err(Error::Server { .. }))));
        }
    }
    assert_eq!(r.local(), &json!({}));
    assert!(!r.has_pending_writes());
    // The next write is tried afresh.
    let mut fx = Effects::default();
    r.write(patch("b", json!(2)), vec![], false, true, &mut fx);
    assert_eq!(fx.send[0].version, Some(2));
}

/// A server holds values nested up to `recordsync_core::json::MAX_DEPTH` levels, past
/// serde_json's own limit of 128: the client reads such changes.
#[test]
fn remote_changes_nested_to_the_servers_limit_are_read() {
    use recordsync_core::json::{MAX_DEPTH, depth};
    let nested = |levels: usize| format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels));
    let update = RecordMessage {
        data: Some(nested(MAX_DEPTH)),
        ..RecordMessage::named(RecordAction::Update, "r")
    };
    match remote_change(&update, RecordAction::Update) {
        Ok(WriteOp::Update { data }) => assert_eq!(depth(&data), MAX_DEPTH),
        other => panic!("{other:?}"),
    }
    let multi = RecordMessage {
        data: Some(format!(
            r#"[{{"path":"x","data":{}}}]"#,
            nested(MAX_DEPTH - 1)
        )),
        ..RecordMessage::named(RecordAction::PatchMulti, "r")
    };
    assert!(matches!(
        remote_change(&multi, RecordAction::PatchMulti),
        Ok(WriteOp::PatchMulti { .. })
    ));
}
