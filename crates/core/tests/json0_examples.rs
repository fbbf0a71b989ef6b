//! The json0 project's published example cases (ottypes/json0 `test/json0.coffee` and
//! `test/text0.coffee`), rewritten as data for `recordsync_core::json0`.
//!
//! Each case is one `assert` of the original, in its order, grouped as the original groups
//! them. Where the original expects a throw, json0 must return an error. Left out: `create`
//! (recordsync has no use for it) and the random "fuzzer" runs, which
//! `tests/json0_props.rs` and `tests/json0_differential.rs` stand for.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::sync::Arc;

use recordsync_core::json0::text0::{self, TextComponent};
use recordsync_core::json0::{
    self, Json0, Op, Side, Subtype, SubtypeError, op_from_json, op_to_json,
};
use serde_json::{Value, json};

use Side::{Left, Right};

fn op(value: Value) -> Op {
    op_from_json(&value).unwrap_or_else(|e| panic!("{value}: {e}"))
}

/// An op in its canonical JSON form, for comparing.
fn canonical(value: Value) -> String {
    op_to_json(&op(value)).to_string()
}

fn assert_apply(doc: Value, ops: Value, want: Value) {
    let got = json0::apply(&doc, &op(ops.clone())).unwrap_or_else(|e| panic!("{doc} {ops}: {e}"));
    assert_eq!(got.to_string(), want.to_string(), "apply {ops} to {doc}");
}

/// The original's `assert.throws -> type.apply doc, op`: reading or applying fails.
fn assert_apply_refused(doc: Value, ops: Value) {
    let result = op_from_json(&ops)
        .map_err(json0::Json0Error::from)
        .and_then(|o| json0::apply(&doc, &o));
    assert!(result.is_err(), "apply {ops} to {doc} gave {result:?}");
}

fn assert_transform(ops: Value, other: Value, side: Side, want: Value) {
    let got = json0::transform(&op(ops.clone()), &op(other.clone()), side)
        .unwrap_or_else(|e| panic!("{ops} {other}: {e}"));
    assert_eq!(
        op_to_json(&got).to_string(),
        canonical(want),
        "transform {ops} by {other} ({side:?})"
    );
}

fn assert_compose(a: Value, b: Value, want: Value) {
    let got = json0::compose(&op(a.clone()), &op(b.clone())).unwrap();
    assert_eq!(
        op_to_json(&got).to_string(),
        canonical(want),
        "compose {a} {b}"
    );
}

// ---- json0: sanity ----

#[test]
fn sanity_compose() {
    assert_compose(
        json!([{"p":["foo"],"od":1}]),
        json!([{"p":["foo"],"oi":2}]),
        json!([{"p":["foo"],"od":1,"oi":2}]),
    );
    assert_compose(
        json!([{"p":["foo"],"od":1}]),
        json!([{"p":["bar"],"oi":2}]),
        json!([{"p":["foo"],"od":1},{"p":["bar"],"oi":2}]),
    );
    // merges od+oi, od+oi -> od+oi
    assert_compose(
        json!([{"p":["foo"],"od":1,"oi":3}]),
        json!([{"p":["foo"],"od":3,"oi":2}]),
        json!([{"p":["foo"],"od":1,"oi":2}]),
    );
}

#[test]
fn sanity_transform_returns_sane_values() {
    for (a, b) in [
        (json!([]), json!([])),
        (json!([{"p":["foo"],"oi":1}]), json!([])),
        (json!([{"p":["foo"],"oi":1}]), json!([{"p":["bar"],"oi":2}])),
    ] {
        assert_transform(a.clone(), b.clone(), Left, a.clone());
        assert_transform(a.clone(), b, Right, a);
    }
}

// ---- json0: number ----

#[test]
fn number_adds() {
    assert_apply(json!(1), json!([{"p":[],"na":2}]), json!(3));
    assert_apply(json!([1]), json!([{"p":[0],"na":2}]), json!([3]));
}

#[test]
fn number_compresses_two_adds_in_compose() {
    assert_compose(
        json!([{"p":["a","b"],"na":1}]),
        json!([{"p":["a","b"],"na":2}]),
        json!([{"p":["a","b"],"na":3}]),
    );
    assert_compose(
        json!([{"p":["a"],"na":1}]),
        json!([{"p":["b"],"na":2}]),
        json!([{"p":["a"],"na":1},{"p":["b"],"na":2}]),
    );
}

#[test]
fn number_does_not_overwrite_values_when_it_merges_na_in_append() {
    let (right_has, left_has) = (json!(21), json!(3));
    let right_op =
        op(json!([{"p":[],"od":0,"oi":15},{"p":[],"na":4},{"p":[],"na":1},{"p":[],"na":1}]));
    let left_op = op(json!([{"p":[],"na":4},{"p":[],"na":-1}]));
    // The original's transformX(type, rightOp, leftOp): [right', left'].
    let right_ = json0::transform(&right_op, &left_op, Left).unwrap();
    let left_ = json0::transform(&left_op, &right_op, Right).unwrap();
    let s_c = json0::apply(&right_has, &left_).unwrap();
    let c_s = json0::apply(&left_has, &right_).unwrap();
    assert_eq!(s_c, c_s);
}

#[test]
fn number_throws_on_wrong_types() {
    assert_apply_refused(json!(1), json!([{"p":[],"na":"a"}]));
    assert_apply_refused(json!("a"), json!([{"p":[],"na":1}]));
}

// ---- json0: string (si/sd) ----

#[test]
fn string_apply() {
    assert_apply(json!("a"), json!([{"p":[1],"si":"bc"}]), json!("abc"));
    assert_apply(json!("abc"), json!([{"p":[0],"sd":"a"}]), json!("bc"));
    assert_apply(
        json!({"x":"a"}),
        json!([{"p":["x",1],"si":"bc"}]),
        json!({"x":"abc"}),
    );
    // throws when the target is not a string, or the inserted content is not a string
    assert_apply_refused(json!([1]), json!([{"p":[0],"si":"a"}]));
    assert_apply_refused(json!("a"), json!([{"p":[0],"si":1}]));
}

#[test]
fn string_transform() {
    // splits deletes
    assert_transform(
        json!([{"p":[0],"sd":"ab"}]),
        json!([{"p":[1],"si":"x"}]),
        Left,
        json!([{"p":[0],"sd":"a"},{"p":[1],"sd":"b"}]),
    );
    // cancels out other deletes
    assert_transform(
        json!([{"p":["k",5],"sd":"a"}]),
        json!([{"p":["k",5],"sd":"a"}]),
        Left,
        json!([]),
    );
    // does not throw errors with blank inserts
    assert_transform(
        json!([{"p":["k",5],"si":""}]),
        json!([{"p":["k",3],"si":"a"}]),
        Left,
        json!([]),
    );
}

// ---- json0: string subtype (t: text0) ----

#[test]
fn string_subtype_apply() {
    assert_apply(
        json!("a"),
        json!([{"p":[],"t":"text0","o":[{"p":1,"i":"bc"}]}]),
        json!("abc"),
    );
    assert_apply(
        json!("abc"),
        json!([{"p":[],"t":"text0","o":[{"p":0,"d":"a"}]}]),
        json!("bc"),
    );
    assert_apply(
        json!({"x":"a"}),
        json!([{"p":["x"],"t":"text0","o":[{"p":1,"i":"bc"}]}]),
        json!({"x":"abc"}),
    );
}

#[test]
fn string_subtype_transform() {
    assert_transform(
        json!([{"p":[],"t":"text0","o":[{"p":0,"d":"ab"}]}]),
        json!([{"p":[],"t":"text0","o":[{"p":1,"i":"x"}]}]),
        Left,
        json!([{"p":[],"t":"text0","o":[{"p":0,"d":"a"},{"p":1,"d":"b"}]}]),
    );
    assert_transform(
        json!([{"p":["k"],"t":"text0","o":[{"p":5,"d":"a"}]}]),
        json!([{"p":["k"],"t":"text0","o":[{"p":5,"d":"a"}]}]),
        Left,
        json!([]),
    );
    assert_transform(
        json!([{"p":["k"],"t":"text0","o":[{"p":5,"i":""}]}]),
        json!([{"p":["k"],"t":"text0","o":[{"p":3,"i":"a"}]}]),
        Left,
        json!([]),
    );
}

/// The original registers a subtype `mock` whose transform returns `{mock: true}`.
#[derive(Debug)]
struct Mock;

impl Subtype for Mock {
    fn name(&self) -> &str {
        "mock"
    }
    fn apply(&self, _: Option<&Value>, _: &Value) -> Result<Value, SubtypeError> {
        Err("mock does not apply".into())
    }
    fn transform(&self, _: &Value, _: &Value, _: Side) -> Result<Value, SubtypeError> {
        Ok(json!({"mock": true}))
    }
    fn compose(&self, _: &Value, _: &Value) -> Result<Value, SubtypeError> {
        Err("mock does not compose".into())
    }
    fn invert(&self, _: &Value) -> Result<Value, SubtypeError> {
        Err("mock does not invert".into())
    }
}

#[test]
fn subtype_with_non_array_operation_transforms() {
    let mut json0 = Json0::new();
    json0.register(Arc::new(Mock)).unwrap();
    let a = op(json!([{"p":[],"t":"mock","o":"foo"}]));
    let b = op(json!([{"p":[],"t":"mock","o":"bar"}]));
    let got = json0.transform(&a, &b, Left).unwrap();
    assert_eq!(
        op_to_json(&got).to_string(),
        canonical(json!([{"p":[],"t":"mock","o":{"mock":true}}]))
    );
}

// ---- json0: list ----

#[test]
fn list_apply() {
    // inserts
    assert_apply(
        json!(["b", "c"]),
        json!([{"p":[0],"li":"a"}]),
        json!(["a", "b", "c"]),
    );
    assert_apply(
        json!(["a", "c"]),
        json!([{"p":[1],"li":"b"}]),
        json!(["a", "b", "c"]),
    );
    assert_apply(
        json!(["a", "b"]),
        json!([{"p":[2],"li":"c"}]),
        json!(["a", "b", "c"]),
    );
    // deletes
    assert_apply(
        json!(["a", "b", "c"]),
        json!([{"p":[0],"ld":"a"}]),
        json!(["b", "c"]),
    );
    assert_apply(
        json!(["a", "b", "c"]),
        json!([{"p":[1],"ld":"b"}]),
        json!(["a", "c"]),
    );
    assert_apply(
        json!(["a", "b", "c"]),
        json!([{"p":[2],"ld":"c"}]),
        json!(["a", "b"]),
    );
    // replaces
    assert_apply(
        json!(["a", "x", "b"]),
        json!([{"p":[1],"ld":"x","li":"y"}]),
        json!(["a", "y", "b"]),
    );
    // moves
    assert_apply(
        json!(["b", "a", "c"]),
        json!([{"p":[1],"lm":0}]),
        json!(["a", "b", "c"]),
    );
    assert_apply(
        json!(["b", "a", "c"]),
        json!([{"p":[0],"lm":1}]),
        json!(["a", "b", "c"]),
    );
}

#[test]
fn list_apply_throws_on_string_keys() {
    let abc = json!(["a", "b", "c"]);
    assert_apply_refused(abc.clone(), json!([{"p":["0"],"li":"x","ld":"a"}]));
    assert_apply_refused(abc.clone(), json!([{"p":["0"],"li":"x"}]));
    assert_apply_refused(abc.clone(), json!([{"p":["0"],"ld":"a"}]));
    assert_apply_refused(abc.clone(), json!([{"p":["0"],"lm":0}]));
    assert_apply_refused(abc, json!([{"p":[1],"lm":"0"}]));
    assert_apply_refused(
        json!({"arr":[{"x":"a"}]}),
        json!([{"p":["arr","0","x"],"od":"a"}]),
    );
}

#[test]
fn list_transform_bumps_paths_when_list_elements_are_inserted_or_removed() {
    let cases = [
        (
            json!([{"p":[1,200],"si":"hi"}]),
            json!([{"p":[0],"li":"x"}]),
            Left,
            json!([{"p":[2,200],"si":"hi"}]),
        ),
        (
            json!([{"p":[0,201],"si":"hi"}]),
            json!([{"p":[0],"li":"x"}]),
            Right,
            json!([{"p":[1,201],"si":"hi"}]),
        ),
        (
            json!([{"p":[0,202],"si":"hi"}]),
            json!([{"p":[1],"li":"x"}]),
            Left,
            json!([{"p":[0,202],"si":"hi"}]),
        ),
        (
            json!([{"p":[1],"t":"text0","o":[{"p":200,"i":"hi"}]}]),
            json!([{"p":[0],"li":"x"}]),
            Left,
            json!([{"p":[2],"t":"text0","o":[{"p":200,"i":"hi"}]}]),
        ),
        (
            json!([{"p":[0],"t":"text0","o":[{"p":201,"i":"hi"}]}]),
            json!([{"p":[0],"li":"x"}]),
            Right,
            json!([{"p":[1],"t":"text0","o":[{"p":201,"i":"hi"}]}]),
        ),
        (
            json!([{"p":[0],"t":"text0","o":[{"p":202,"i":"hi"}]}]),
            json!([{"p":[1],"li":"x"}]),
            Left,
            json!([{"p":[0],"t":"text0","o":[{"p":202,"i":"hi"}]}]),
        ),
        (
            json!([{"p":[1,203],"si":"hi"}]),
            json!([{"p":[0],"ld":"x"}]),
            Left,
            json!([{"p":[0,203],"si":"hi"}]),
        ),
        (
            json!([{"p":[0,204],"si":"hi"}]),
            json!([{"p":[1],"ld":"x"}]),
            Left,
            json!([{"p":[0,204],"si":"hi"}]),
        ),
        (
            json!([{"p":["x",3],"si":"hi"}]),
            json!([{"p":["x",0,"x"],"li":0}]),
            Left,
            json!([{"p":["x",3],"si":"hi"}]),
        ),
        (
            json!([{"p":["x",3,"x"],"si":"hi"}]),
            json!([{"p":["x",5],"li":0}]),
            Left,
            json!([{"p":["x",3,"x"],"si":"hi"}]),
        ),
        (
            json!([{"p":["x",3,"x"],"si":"hi"}]),
            json!([{"p":["x",0],"li":0}]),
            Left,
            json!([{"p":["x",4,"x"],"si":"hi"}]),
        ),
        (
            json!([{"p":[1],"t":"text0","o":[{"p":203,"i":"hi"}]}]),
            json!([{"p":[0],"ld":"x"}]),
            Left,
            json!([{"p":[0],"t":"text0","o":[{"p":203,"i":"hi"}]}]),
        ),
        (
            json!([{"p":[0],"t":"text0","o":[{"p":204,"i":"hi"}]}]),
            json!([{"p":[1],"ld":"x"}]),
            Left,
            json!([{"p":[0],"t":"text0","o":[{"p":204,"i":"hi"}]}]),
        ),
        (
            json!([{"p":["x"],"t":"text0","o":[{"p":3,"i":"hi"}]}]),
            json!([{"p":["x",0,"x"],"li":0}]),
            Left,
            json!([{"p":["x"],"t":"text0","o":[{"p":3,"i":"hi"}]}]),
        ),
        (
            json!([{"p":[0],"ld":2}]),
            json!([{"p":[0],"li":1}]),
            Left,
            json!([{"p":[1],"ld":2}]),
        ),
        (
            json!([{"p":[0],"ld":2}]),
            json!([{"p":[0],"li":1}]),
            Right,
            json!([{"p":[1],"ld":2}]),
        ),
    ];
    for (a, b, side, want) in cases {
        assert_transform(a, b, side, want);
    }
}

#[test]
fn list_transform_converts_ops_on_deleted_or_replaced_elements_to_noops() {
    let cases = [
        // deleted
        (
            json!([{"p":[1,0],"si":"hi"}]),
            json!([{"p":[1],"ld":"x"}]),
            json!([]),
        ),
        (
            json!([{"p":[1],"t":"text0","o":[{"p":0,"i":"hi"}]}]),
            json!([{"p":[1],"ld":"x"}]),
            json!([]),
        ),
        (
            json!([{"p":[0],"li":"x"}]),
            json!([{"p":[0],"ld":"y"}]),
            json!([{"p":[0],"li":"x"}]),
        ),
        (
            json!([{"p":[0],"na":-3}]),
            json!([{"p":[0],"ld":48}]),
            json!([]),
        ),
        // replaced
        (
            json!([{"p":[1,0],"si":"hi"}]),
            json!([{"p":[1],"ld":"x","li":"y"}]),
            json!([]),
        ),
        (
            json!([{"p":[1],"t":"text0","o":[{"p":0,"i":"hi"}]}]),
            json!([{"p":[1],"ld":"x","li":"y"}]),
            json!([]),
        ),
        (
            json!([{"p":[0],"li":"hi"}]),
            json!([{"p":[0],"ld":"x","li":"y"}]),
            json!([{"p":[0],"li":"hi"}]),
        ),
    ];
    for (a, b, want) in cases {
        assert_transform(a, b, Left, want);
    }
}

#[test]
fn list_transform_changes_deleted_data_to_reflect_edits() {
    assert_transform(
        json!([{"p":[1],"ld":"a"}]),
        json!([{"p":[1,1],"si":"bc"}]),
        Left,
        json!([{"p":[1],"ld":"abc"}]),
    );
    assert_transform(
        json!([{"p":[1],"ld":"a"}]),
        json!([{"p":[1],"t":"text0","o":[{"p":1,"i":"bc"}]}]),
        Left,
        json!([{"p":[1],"ld":"abc"}]),
    );
}

#[test]
fn list_transform_puts_the_left_op_first_if_two_inserts_are_simultaneous() {
    assert_transform(
        json!([{"p":[1],"li":"a"}]),
        json!([{"p":[1],"li":"b"}]),
        Left,
        json!([{"p":[1],"li":"a"}]),
    );
    assert_transform(
        json!([{"p":[1],"li":"b"}]),
        json!([{"p":[1],"li":"a"}]),
        Right,
        json!([{"p":[2],"li":"b"}]),
    );
}

#[test]
fn list_transform_converts_an_attempt_to_re_delete_a_list_element_into_a_noop() {
    assert_transform(
        json!([{"p":[1],"ld":"x"}]),
        json!([{"p":[1],"ld":"x"}]),
        Left,
        json!([]),
    );
    assert_transform(
        json!([{"p":[1],"ld":"x"}]),
        json!([{"p":[1],"ld":"x"}]),
        Right,
        json!([]),
    );
}

#[test]
fn list_compose() {
    // composes insert then delete into a no-op
    assert_compose(
        json!([{"p":[1],"li":"abc"}]),
        json!([{"p":[1],"ld":"abc"}]),
        json!([]),
    );
    assert_transform(
        json!([{"p":[0],"ld":null,"li":"x"}]),
        json!([{"p":[0],"li":"The"}]),
        Right,
        json!([{"p":[1],"ld":null,"li":"x"}]),
    );
    // doesn't change the original object
    let a = op(json!([{"p":[0],"ld":"abc","li":null}]));
    let composed = json0::compose(&a, &op(json!([{"p":[0],"ld":null}]))).unwrap();
    assert_eq!(
        op_to_json(&composed).to_string(),
        canonical(json!([{"p":[0],"ld":"abc"}]))
    );
    assert_eq!(
        op_to_json(&a).to_string(),
        canonical(json!([{"p":[0],"ld":"abc","li":null}]))
    );
    // composes together adjacent string ops
    assert_compose(
        json!([{"p":[100],"si":"h"}]),
        json!([{"p":[101],"si":"i"}]),
        json!([{"p":[100],"si":"hi"}]),
    );
    assert_compose(
        json!([{"p":[],"t":"text0","o":[{"p":100,"i":"h"}]}]),
        json!([{"p":[],"t":"text0","o":[{"p":101,"i":"i"}]}]),
        json!([{"p":[],"t":"text0","o":[{"p":100,"i":"hi"}]}]),
    );
}

#[test]
fn list_moves_ops_on_a_moved_element_with_the_element() {
    let cases = [
        (
            json!([{"p":[4],"ld":"x"}]),
            json!([{"p":[4],"lm":10}]),
            json!([{"p":[10],"ld":"x"}]),
        ),
        (
            json!([{"p":[4,1],"si":"a"}]),
            json!([{"p":[4],"lm":10}]),
            json!([{"p":[10,1],"si":"a"}]),
        ),
        (
            json!([{"p":[4],"t":"text0","o":[{"p":1,"i":"a"}]}]),
            json!([{"p":[4],"lm":10}]),
            json!([{"p":[10],"t":"text0","o":[{"p":1,"i":"a"}]}]),
        ),
        (
            json!([{"p":[4,1],"li":"a"}]),
            json!([{"p":[4],"lm":10}]),
            json!([{"p":[10,1],"li":"a"}]),
        ),
        (
            json!([{"p":[4,1],"ld":"b","li":"a"}]),
            json!([{"p":[4],"lm":10}]),
            json!([{"p":[10,1],"ld":"b","li":"a"}]),
        ),
        (
            json!([{"p":[0],"li":null}]),
            json!([{"p":[0],"lm":1}]),
            json!([{"p":[0],"li":null}]),
        ),
        (
            json!([{"p":[5],"li":"x"}]),
            json!([{"p":[5],"lm":1}]),
            json!([{"p":[6],"li":"x"}]),
        ),
        (
            json!([{"p":[5],"ld":6}]),
            json!([{"p":[5],"lm":1}]),
            json!([{"p":[1],"ld":6}]),
        ),
        (
            json!([{"p":[0],"li":[]}]),
            json!([{"p":[1],"lm":0}]),
            json!([{"p":[0],"li":[]}]),
        ),
        (
            json!([{"p":[2],"li":"x"}]),
            json!([{"p":[0],"lm":1}]),
            json!([{"p":[2],"li":"x"}]),
        ),
    ];
    for (a, b, want) in cases {
        assert_transform(a, b, Left, want);
    }
}

#[test]
fn list_moves_target_index_on_ld_li() {
    let cases = [
        (
            json!([{"p":[0],"lm":2}]),
            json!([{"p":[1],"ld":"x"}]),
            json!([{"p":[0],"lm":1}]),
        ),
        (
            json!([{"p":[2],"lm":4}]),
            json!([{"p":[1],"ld":"x"}]),
            json!([{"p":[1],"lm":3}]),
        ),
        (
            json!([{"p":[0],"lm":2}]),
            json!([{"p":[1],"li":"x"}]),
            json!([{"p":[0],"lm":3}]),
        ),
        (
            json!([{"p":[2],"lm":4}]),
            json!([{"p":[1],"li":"x"}]),
            json!([{"p":[3],"lm":5}]),
        ),
        (
            json!([{"p":[0],"lm":0}]),
            json!([{"p":[0],"li":28}]),
            json!([{"p":[1],"lm":1}]),
        ),
    ];
    for (a, b, want) in cases {
        assert_transform(a, b, Left, want);
    }
}

#[test]
fn list_tiebreaks_lm_vs_ld_li() {
    assert_transform(
        json!([{"p":[0],"lm":2}]),
        json!([{"p":[0],"ld":"x"}]),
        Left,
        json!([]),
    );
    assert_transform(
        json!([{"p":[0],"lm":2}]),
        json!([{"p":[0],"ld":"x"}]),
        Right,
        json!([]),
    );
    assert_transform(
        json!([{"p":[0],"lm":2}]),
        json!([{"p":[0],"li":"x"}]),
        Left,
        json!([{"p":[1],"lm":3}]),
    );
    assert_transform(
        json!([{"p":[0],"lm":2}]),
        json!([{"p":[0],"li":"x"}]),
        Right,
        json!([{"p":[1],"lm":3}]),
    );
}

#[test]
fn list_replacement_vs_deletion_insertion_replacement() {
    assert_transform(
        json!([{"p":[0],"ld":"x","li":"y"}]),
        json!([{"p":[0],"ld":"x"}]),
        Right,
        json!([{"p":[0],"li":"y"}]),
    );
    assert_transform(
        json!([{"p":[0],"ld":{},"li":"brillig"}]),
        json!([{"p":[0],"li":36}]),
        Left,
        json!([{"p":[1],"ld":{},"li":"brillig"}]),
    );
    assert_transform(
        json!([{"p":[0],"ld":null,"li":[]}]),
        json!([{"p":[0],"ld":null,"li":0}]),
        Right,
        json!([]),
    );
    assert_transform(
        json!([{"p":[0],"ld":null,"li":0}]),
        json!([{"p":[0],"ld":null,"li":[]}]),
        Left,
        json!([{"p":[0],"ld":[],"li":0}]),
    );
    // composes replace with delete of replaced element results in insert
    assert_compose(
        json!([{"p":[2],"ld":[],"li":null}]),
        json!([{"p":[2],"ld":null}]),
        json!([{"p":[2],"ld":[]}]),
    );
}

#[test]
fn list_lm_vs_lm() {
    let cases = [
        ([0, 2], [2, 1], Left, [0, 2]),
        ([3, 3], [5, 0], Left, [4, 4]),
        ([2, 0], [1, 0], Left, [2, 0]),
        ([2, 0], [1, 0], Right, [2, 1]),
        ([2, 0], [5, 0], Right, [3, 1]),
        ([2, 0], [5, 0], Left, [3, 0]),
        ([2, 5], [2, 0], Left, [0, 5]),
        ([2, 5], [2, 0], Left, [0, 5]),
        ([1, 0], [0, 5], Right, [0, 0]),
        ([1, 0], [0, 1], Right, [0, 0]),
        ([0, 1], [1, 0], Left, [1, 1]),
        ([0, 1], [5, 0], Right, [1, 2]),
        ([2, 1], [5, 0], Right, [3, 2]),
        ([3, 1], [1, 3], Left, [2, 1]),
        ([1, 3], [3, 1], Left, [2, 3]),
        ([2, 6], [0, 1], Left, [2, 6]),
        ([2, 6], [0, 1], Right, [2, 6]),
        ([2, 6], [1, 0], Left, [2, 6]),
        ([2, 6], [1, 0], Right, [2, 6]),
        ([0, 1], [2, 1], Left, [0, 2]),
        ([2, 1], [0, 1], Right, [2, 0]),
        ([0, 0], [1, 0], Left, [1, 1]),
        ([0, 1], [1, 3], Left, [0, 0]),
        ([2, 1], [3, 2], Left, [3, 1]),
        ([3, 2], [2, 1], Left, [3, 3]),
    ];
    let lm = |[from, to]: [usize; 2]| json!([{"p":[from],"lm":to}]);
    for (a, b, side, want) in cases {
        assert_transform(lm(a), lm(b), side, lm(want));
    }
}

#[test]
fn list_changes_indices_correctly_around_a_move() {
    let cases = [
        (
            json!([{"p":[0,0],"li":{}}]),
            json!([{"p":[1],"lm":0}]),
            Left,
            json!([{"p":[1,0],"li":{}}]),
        ),
        (
            json!([{"p":[1],"lm":0}]),
            json!([{"p":[0],"ld":{}}]),
            Left,
            json!([{"p":[0],"lm":0}]),
        ),
        (
            json!([{"p":[0],"lm":1}]),
            json!([{"p":[1],"ld":{}}]),
            Left,
            json!([{"p":[0],"lm":0}]),
        ),
        (
            json!([{"p":[6],"lm":0}]),
            json!([{"p":[2],"ld":{}}]),
            Left,
            json!([{"p":[5],"lm":0}]),
        ),
        (
            json!([{"p":[1],"lm":0}]),
            json!([{"p":[2],"ld":{}}]),
            Left,
            json!([{"p":[1],"lm":0}]),
        ),
        (
            json!([{"p":[2],"lm":1}]),
            json!([{"p":[1],"ld":3}]),
            Right,
            json!([{"p":[1],"lm":1}]),
        ),
        (
            json!([{"p":[2],"ld":{}}]),
            json!([{"p":[1],"lm":2}]),
            Right,
            json!([{"p":[1],"ld":{}}]),
        ),
        (
            json!([{"p":[1],"ld":{}}]),
            json!([{"p":[2],"lm":1}]),
            Left,
            json!([{"p":[2],"ld":{}}]),
        ),
        (
            json!([{"p":[1],"ld":{}}]),
            json!([{"p":[0],"lm":1}]),
            Right,
            json!([{"p":[0],"ld":{}}]),
        ),
        (
            json!([{"p":[1],"ld":1,"li":2}]),
            json!([{"p":[1],"lm":0}]),
            Left,
            json!([{"p":[0],"ld":1,"li":2}]),
        ),
        (
            json!([{"p":[1],"ld":2,"li":3}]),
            json!([{"p":[0],"lm":1}]),
            Left,
            json!([{"p":[0],"ld":2,"li":3}]),
        ),
        (
            json!([{"p":[0],"ld":3,"li":4}]),
            json!([{"p":[1],"lm":0}]),
            Left,
            json!([{"p":[1],"ld":3,"li":4}]),
        ),
    ];
    for (a, b, side, want) in cases {
        assert_transform(a, b, side, want);
    }
}

#[test]
fn list_li_vs_lm() {
    let li = |p: usize| json!([{"p":[p],"li":[]}]);
    let lm = |f: usize, t: usize| json!([{"p":[f],"lm":t}]);
    let li_cases = [
        (0, (1, 3), 0),
        (1, (1, 3), 1),
        (2, (1, 3), 1),
        (3, (1, 3), 2),
        (4, (1, 3), 4),
        (0, (1, 2), 0),
        (1, (1, 2), 1),
        (2, (1, 2), 1),
        (3, (1, 2), 3),
        (0, (3, 1), 0),
        (1, (3, 1), 1),
        (2, (3, 1), 3),
        (3, (3, 1), 4),
        (4, (3, 1), 4),
        (0, (2, 1), 0),
        (1, (2, 1), 1),
        (2, (2, 1), 3),
        (3, (2, 1), 3),
    ];
    for (p, (f, t), want) in li_cases {
        assert_transform(li(p), lm(f, t), Left, li(want));
    }
    let lm_cases = [
        ((1, 3), 0, (2, 4)),
        ((1, 3), 1, (2, 4)),
        ((1, 3), 2, (1, 4)),
        ((1, 3), 3, (1, 4)),
        ((1, 3), 4, (1, 3)),
        ((3, 1), 0, (4, 2)),
        ((3, 1), 1, (4, 2)),
        ((3, 1), 2, (4, 1)),
        ((3, 1), 3, (4, 1)),
        ((3, 1), 4, (3, 1)),
    ];
    for ((f, t), p, (wf, wt)) in lm_cases {
        assert_transform(lm(f, t), li(p), Right, lm(wf, wt));
    }
}

// ---- json0: object ----

#[test]
fn object_passes_sanity_checks() {
    assert_apply(
        json!({"x":"a"}),
        json!([{"p":["y"],"oi":"b"}]),
        json!({"x":"a","y":"b"}),
    );
    assert_apply(json!({"x":"a"}), json!([{"p":["x"],"od":"a"}]), json!({}));
    assert_apply(
        json!({"x":"a"}),
        json!([{"p":["x"],"od":"a","oi":"b"}]),
        json!({"x":"b"}),
    );
}

#[test]
fn object_ops_on_deleted_or_replaced_elements_become_noops() {
    let cases = [
        (
            json!([{"p":[1,0],"si":"hi"}]),
            json!([{"p":[1],"od":"x"}]),
            Left,
        ),
        (
            json!([{"p":[1],"t":"text0","o":[{"p":0,"i":"hi"}]}]),
            json!([{"p":[1],"od":"x"}]),
            Left,
        ),
        (
            json!([{"p":[9],"si":"bite "}]),
            json!([{"p":[],"od":"agimble s","oi":null}]),
            Right,
        ),
        (
            json!([{"p":[],"t":"text0","o":[{"p":9,"i":"bite "}]}]),
            json!([{"p":[],"od":"agimble s","oi":null}]),
            Right,
        ),
        (
            json!([{"p":[1,0],"si":"hi"}]),
            json!([{"p":[1],"od":"x","oi":"y"}]),
            Left,
        ),
        (
            json!([{"p":[1],"t":"text0","o":[{"p":0,"i":"hi"}]}]),
            json!([{"p":[1],"od":"x","oi":"y"}]),
            Left,
        ),
    ];
    for (a, b, side) in cases {
        assert_transform(a, b, side, json!([]));
    }
}

#[test]
fn object_deleted_data_is_changed_to_reflect_edits() {
    let cases = [
        (
            json!([{"p":[1],"od":"a"}]),
            json!([{"p":[1,1],"si":"bc"}]),
            Left,
            json!([{"p":[1],"od":"abc"}]),
        ),
        (
            json!([{"p":[1],"od":"a"}]),
            json!([{"p":[1],"t":"text0","o":[{"p":1,"i":"bc"}]}]),
            Left,
            json!([{"p":[1],"od":"abc"}]),
        ),
        (
            json!([{"p":[],"od":22,"oi":[]}]),
            json!([{"p":[],"na":3}]),
            Left,
            json!([{"p":[],"od":25,"oi":[]}]),
        ),
        (
            json!([{"p":[],"od":{"toves":0},"oi":4}]),
            json!([{"p":["toves"],"od":0,"oi":""}]),
            Left,
            json!([{"p":[],"od":{"toves":""},"oi":4}]),
        ),
        (
            json!([{"p":[],"od":"thou and ","oi":[]}]),
            json!([{"p":[7],"sd":"d "}]),
            Left,
            json!([{"p":[],"od":"thou an","oi":[]}]),
        ),
        (
            json!([{"p":[],"od":"thou and ","oi":[]}]),
            json!([{"p":[],"t":"text0","o":[{"p":7,"d":"d "}]}]),
            Left,
            json!([{"p":[],"od":"thou an","oi":[]}]),
        ),
        (
            json!([{"p":["bird"],"na":2}]),
            json!([{"p":[],"od":{"bird":38},"oi":20}]),
            Right,
            json!([]),
        ),
        (
            json!([{"p":[],"od":{"bird":38},"oi":20}]),
            json!([{"p":["bird"],"na":2}]),
            Left,
            json!([{"p":[],"od":{"bird":40},"oi":20}]),
        ),
        (
            json!([{"p":["He"],"od":[]}]),
            json!([{"p":["The"],"na":-3}]),
            Right,
            json!([{"p":["He"],"od":[]}]),
        ),
        (
            json!([{"p":["He"],"oi":{}}]),
            json!([{"p":[],"od":{},"oi":"the"}]),
            Left,
            json!([]),
        ),
    ];
    for (a, b, side, want) in cases {
        assert_transform(a, b, side, want);
    }
}

#[test]
fn object_if_two_inserts_are_simultaneous_the_left_insert_wins() {
    assert_transform(
        json!([{"p":[1],"oi":"a"}]),
        json!([{"p":[1],"oi":"b"}]),
        Left,
        json!([{"p":[1],"oi":"a","od":"b"}]),
    );
    assert_transform(
        json!([{"p":[1],"oi":"b"}]),
        json!([{"p":[1],"oi":"a"}]),
        Right,
        json!([]),
    );
}

#[test]
fn object_parallel_ops_on_different_keys_miss_each_other() {
    let cases = [
        (
            json!([{"p":["a"],"oi":"x"}]),
            json!([{"p":["b"],"oi":"z"}]),
            Left,
        ),
        (
            json!([{"p":["a"],"oi":"x"}]),
            json!([{"p":["b"],"od":"z"}]),
            Left,
        ),
        (
            json!([{"p":["in","he"],"oi":{}}]),
            json!([{"p":["and"],"od":{}}]),
            Right,
        ),
        (
            json!([{"p":["x",0],"si":"his "}]),
            json!([{"p":["y"],"od":0,"oi":1}]),
            Right,
        ),
        (
            json!([{"p":["x"],"t":"text0","o":[{"p":0,"i":"his "}]}]),
            json!([{"p":["y"],"od":0,"oi":1}]),
            Right,
        ),
    ];
    for (a, b, side) in cases {
        assert_transform(a.clone(), b, side, a);
    }
}

#[test]
fn object_replacement_vs_deletion_and_replacement() {
    assert_transform(
        json!([{"p":[],"od":[""],"oi":{}}]),
        json!([{"p":[],"od":[""]}]),
        Right,
        json!([{"p":[],"oi":{}}]),
    );
    let ours = json!([{"p":[],"od":[""]},{"p":[],"oi":{}}]);
    let theirs = json!([{"p":[],"od":[""]},{"p":[],"oi":null}]);
    assert_transform(ours.clone(), theirs.clone(), Right, json!([]));
    assert_transform(ours, theirs, Left, json!([{"p":[],"od":null,"oi":{}}]));
    assert_transform(
        json!([{"p":[],"od":[""],"oi":{}}]),
        json!([{"p":[],"od":[""],"oi":null}]),
        Right,
        json!([]),
    );
    assert_transform(
        json!([{"p":[],"od":[""],"oi":{}}]),
        json!([{"p":[],"od":[""],"oi":null}]),
        Left,
        json!([{"p":[],"od":null,"oi":{}}]),
    );

    // test diamond property
    let right_ops = op(json!([{"p":[],"od":null,"oi":{}}]));
    let left_ops = op(json!([{"p":[],"od":null,"oi":""}]));
    let right_has = json0::apply(&Value::Null, &right_ops).unwrap();
    let left_has = json0::apply(&Value::Null, &left_ops).unwrap();
    let left_ = json0::transform(&left_ops, &right_ops, Left).unwrap();
    let right_ = json0::transform(&right_ops, &left_ops, Right).unwrap();
    assert_eq!(left_has, json0::apply(&right_has, &left_).unwrap());
    assert_eq!(left_has, json0::apply(&left_has, &right_).unwrap());
}

#[test]
fn object_an_attempt_to_re_delete_a_key_becomes_a_noop() {
    assert_transform(
        json!([{"p":["k"],"od":"x"}]),
        json!([{"p":["k"],"od":"x"}]),
        Left,
        json!([]),
    );
    assert_transform(
        json!([{"p":["k"],"od":"x"}]),
        json!([{"p":["k"],"od":"x"}]),
        Right,
        json!([]),
    );
}

#[test]
fn object_throws_on_number_keys() {
    assert_apply_refused(json!({"1":"a"}), json!([{"p":[2],"oi":"a"}]));
    assert_apply_refused(json!({"1":"a"}), json!([{"p":[1],"od":"a"}]));
    assert_apply_refused(json!({"1":{"x":"a"}}), json!([{"p":[1,"x"],"od":"a"}]));
}

// ---- text0 ----

fn text(value: Value) -> Vec<TextComponent> {
    text0::from_json(&value).unwrap_or_else(|e| panic!("{value}: {e}"))
}

#[test]
fn text0_compose_is_sane() {
    let cases = [
        (json!([]), json!([]), json!([])),
        (
            json!([{"i":"x","p":0}]),
            json!([]),
            json!([{"i":"x","p":0}]),
        ),
        (
            json!([]),
            json!([{"i":"x","p":0}]),
            json!([{"i":"x","p":0}]),
        ),
        (
            json!([{"i":"y","p":100}]),
            json!([{"i":"x","p":0}]),
            json!([{"i":"y","p":100},{"i":"x","p":0}]),
        ),
    ];
    for (a, b, want) in cases {
        assert_eq!(text0::compose(&text(a), &text(b)).unwrap(), text(want));
    }
}

#[test]
fn text0_transform_is_sane() {
    let y_x = json!([{"i":"y","p":100},{"i":"x","p":0}]);
    assert_eq!(text0::transform(&[], &[], Left).unwrap(), vec![]);
    assert_eq!(text0::transform(&[], &[], Right).unwrap(), vec![]);
    assert_eq!(
        text0::transform(&text(y_x.clone()), &[], Left).unwrap(),
        text(y_x.clone())
    );
    assert_eq!(text0::transform(&[], &text(y_x), Right).unwrap(), vec![]);
}

#[test]
fn text0_transform_x_inserts_and_deletes() {
    let cases = [
        // inserts
        (
            json!([{"i":"x","p":9}]),
            json!([{"i":"a","p":1}]),
            json!([{"i":"x","p":10}]),
            json!([{"i":"a","p":1}]),
        ),
        (
            json!([{"i":"x","p":10}]),
            json!([{"i":"a","p":10}]),
            json!([{"i":"x","p":10}]),
            json!([{"i":"a","p":11}]),
        ),
        (
            json!([{"i":"x","p":11}]),
            json!([{"d":"a","p":9}]),
            json!([{"i":"x","p":10}]),
            json!([{"d":"a","p":9}]),
        ),
        (
            json!([{"i":"x","p":11}]),
            json!([{"d":"a","p":10}]),
            json!([{"i":"x","p":10}]),
            json!([{"d":"a","p":10}]),
        ),
        (
            json!([{"i":"x","p":11}]),
            json!([{"d":"a","p":11}]),
            json!([{"i":"x","p":11}]),
            json!([{"d":"a","p":12}]),
        ),
        // deletes
        (
            json!([{"d":"abc","p":10}]),
            json!([{"d":"xy","p":4}]),
            json!([{"d":"abc","p":8}]),
            json!([{"d":"xy","p":4}]),
        ),
        (
            json!([{"d":"abc","p":10}]),
            json!([{"d":"b","p":11}]),
            json!([{"d":"ac","p":10}]),
            json!([]),
        ),
        (
            json!([{"d":"b","p":11}]),
            json!([{"d":"abc","p":10}]),
            json!([]),
            json!([{"d":"ac","p":10}]),
        ),
        (
            json!([{"d":"abc","p":10}]),
            json!([{"d":"bc","p":11}]),
            json!([{"d":"a","p":10}]),
            json!([]),
        ),
        (
            json!([{"d":"abc","p":10}]),
            json!([{"d":"ab","p":10}]),
            json!([{"d":"c","p":10}]),
            json!([]),
        ),
        (
            json!([{"d":"abc","p":10}]),
            json!([{"d":"bcd","p":11}]),
            json!([{"d":"a","p":10}]),
            json!([{"d":"d","p":10}]),
        ),
        (
            json!([{"d":"bcd","p":11}]),
            json!([{"d":"abc","p":10}]),
            json!([{"d":"d","p":10}]),
            json!([{"d":"a","p":10}]),
        ),
        (
            json!([{"d":"abc","p":10}]),
            json!([{"d":"xy","p":13}]),
            json!([{"d":"abc","p":10}]),
            json!([{"d":"xy","p":10}]),
        ),
    ];
    for (left, right, want_left, want_right) in cases {
        let (l, r) = text0::transform_x(&text(left.clone()), &text(right.clone())).unwrap();
        assert_eq!(
            (l, r),
            (text(want_left), text(want_right)),
            "{left} {right}"
        );
    }
    let single = [
        (json!([{"i":"x","p":10}]), json!([{"d":"a","p":11}]), Left),
        (json!([{"i":"x","p":10}]), json!([{"d":"a","p":10}]), Left),
        (json!([{"i":"x","p":10}]), json!([{"d":"a","p":10}]), Right),
    ];
    for (a, b, side) in single {
        assert_eq!(
            text0::transform(&text(a), &text(b), side).unwrap(),
            text(json!([{"i":"x","p":10}]))
        );
    }
}

#[test]
fn text0_transform_cursor() {
    let asdf_insert = text(json!([{"i":"asdf","p":100}]));
    let asdf_delete = text(json!([{"d":"asdf","p":100}]));
    let cases = [
        // is sane
        (0, vec![], Right, 0),
        (0, vec![], Left, 0),
        (100, vec![], Left, 100),
        // works vs insert
        (0, asdf_insert.clone(), Right, 0),
        (0, asdf_insert.clone(), Left, 0),
        (200, asdf_insert.clone(), Right, 204),
        (200, asdf_insert.clone(), Left, 204),
        (100, asdf_insert.clone(), Right, 104),
        (100, asdf_insert, Left, 100),
        // works vs delete (the original's side left out is 'left')
        (0, asdf_delete.clone(), Right, 0),
        (0, asdf_delete.clone(), Left, 0),
        (200, asdf_delete.clone(), Left, 196),
        (100, asdf_delete.clone(), Left, 100),
        (102, asdf_delete.clone(), Left, 100),
        (104, asdf_delete.clone(), Left, 100),
        (105, asdf_delete, Left, 101),
    ];
    for (position, op, side, want) in cases {
        assert_eq!(
            text0::transform_cursor(position, &op, side),
            want,
            "{position} {op:?} {side:?}"
        );
    }
}

#[test]
fn text0_normalize() {
    let unchanged = [
        json!([]),
        json!([{"i":"asdf","p":100}]),
        json!([{"i":"asdf","p":100},{"d":"fdsa","p":123}]),
        // doesn't compress separate inserts or deletes
        json!([{"i":"abc","p":10},{"i":"xyz","p":9}]),
        json!([{"i":"abc","p":10},{"i":"xyz","p":14}]),
        json!([{"d":"abc","p":10},{"d":"xyz","p":6}]),
        json!([{"d":"abc","p":10},{"d":"xyz","p":11}]),
    ];
    for op in unchanged {
        assert_eq!(text0::normalize(&op).unwrap(), text(op.clone()), "{op}");
    }
    let cases = [
        // adds missing p:0
        (json!([{"i":"abc"}]), json!([{"i":"abc","p":0}])),
        (json!([{"d":"abc"}]), json!([{"d":"abc","p":0}])),
        (
            json!([{"i":"abc"},{"d":"abc"}]),
            json!([{"i":"abc","p":0},{"d":"abc","p":0}]),
        ),
        // converts op to an array
        (json!({"i":"abc","p":0}), json!([{"i":"abc","p":0}])),
        (json!({"d":"abc","p":0}), json!([{"d":"abc","p":0}])),
        // works with a really simple op
        (json!({"i":"abc"}), json!([{"i":"abc","p":0}])),
        // compress inserts
        (
            json!([{"i":"abc","p":10},{"i":"xyz","p":10}]),
            json!([{"i":"xyzabc","p":10}]),
        ),
        (
            json!([{"i":"abc","p":10},{"i":"xyz","p":11}]),
            json!([{"i":"axyzbc","p":10}]),
        ),
        (
            json!([{"i":"abc","p":10},{"i":"xyz","p":13}]),
            json!([{"i":"abcxyz","p":10}]),
        ),
        // compress deletes
        (
            json!([{"d":"abc","p":10},{"d":"xy","p":8}]),
            json!([{"d":"xyabc","p":8}]),
        ),
        (
            json!([{"d":"abc","p":10},{"d":"xy","p":9}]),
            json!([{"d":"xabcy","p":9}]),
        ),
        (
            json!([{"d":"abc","p":10},{"d":"xy","p":10}]),
            json!([{"d":"abcxy","p":10}]),
        ),
    ];
    for (op, want) in cases {
        assert_eq!(text0::normalize(&op).unwrap(), text(want), "{op}");
    }
}
