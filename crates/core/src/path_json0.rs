//! deepstream's path writes ([`WriteOp`]) as json0 ops ([`WriteOp::to_json0`]).
//!
//! # Why
//!
//! A record's journal holds each write in the form it was made: a deepstream client's
//! `PATCH pets[1].fur red` stays a path op. A ShareDB client that catches up from some
//! version needs a json0 op for every version, whoever wrote it, so that it can apply
//! them to its copy and transform its own pending ops against them. This module turns a
//! path op, given the value it was applied to, into the json0 op that has exactly the
//! same effect.
//!
//! # What it guarantees
//!
//! For every value `before` and every op `w`:
//!
//! - `json0::apply(before, w.to_json0(before))` is `w.apply` on `before`, to the letter:
//!   the same JSON text, with keys in the same order and numbers as written;
//! - the json0 op carries the old values it removes or replaces (`od`, `ld`), so
//!   `json0::invert` of it undoes it: applied after it, the inverse gives back `before`
//!   as a JSON value (a key it removed and put back goes last, as in JavaScript and
//!   ot-json0, so the order of keys may differ);
//! - every component is well formed (built with [`crate::json0::Component::new`]).
//!
//! `tests::path_ops_as_json0` checks this on random documents and random paths, through
//! arrays, past their ends, through scalars and erasing what is not there.
//!
//! # How deepstream's path semantics become json0
//!
//! The path is followed through the values that are there, as json0 paths must be:
//! an object by key (an index into an object is its decimal key), an array by index (a
//! key into an array only if it is an array index; any other key makes the write do
//! nothing, and so does the json0 op: it is empty). Where the path leaves what exists,
//! the write creates the rest (see [`crate::path`]); that part is built as
//! [`crate::path::set`] builds it and written in one component:
//!
//! | where the path leaves what exists | json0 |
//! |---|---|
//! | the last key is there (`set`) | `od`+`oi` (old and new value) |
//! | the last key is there (`erase`) | `od` (old value) |
//! | a key is missing (`set`, or `erase` with segments after it) | `oi` of what the write creates there |
//! | the last key or index is missing (`erase`) | nothing |
//! | the last index is within the array (`set`) | `ld`+`li` |
//! | the last index is within the array (`erase`) | `ld`+`li` `null` (deepstream leaves a `null` hole); nothing if it is `null` already |
//! | an index past the end | `li` `null` for each padding slot, then `li` of what is created; more than [`MAX_PADDING`] slots: the whole array replaced |
//! | a scalar or `null` on the way (or the last key's parent) | that value replaced (`od`+`oi`, `ld`+`li`, or at the root `p: []`) by the container built there |
//! | a whole-value update | `{"p": [], "od": before, "oi": data}` |
//!
//! A [`WriteOp::PatchMulti`] is its writes one after another, each made against the
//! value the ones before it left.
//!
//! ot-json0 does not take an object with a key named `constructor` for an object (see
//! [`crate::json0`]), so it cannot insert or delete a key in one: such a change is made
//! one level up instead, by replacing that object with the changed one (and so on
//! upwards, up to the root, where a replace is always possible).
//!
//! Paths that do not parse contribute nothing, as [`WriteOp::apply`] ignores them; after
//! [`WriteOp::validate`] there are none.

use serde_json::Value;

use crate::json0::{Action, Component, Op, Step};
use crate::op::WriteOp;
use crate::path::{self, Path, Segment};

/// The most `null`s an index past the end of an array is padded with by one `li` each;
/// beyond that the json0 op replaces the whole array (in one component) instead. It keeps
/// a short write's json0 form short: a path may index up to [`crate::path::MAX_INDEX`]
/// past the end, and a million components would cost every client that transforms
/// against them a million steps per component of its own.
pub const MAX_PADDING: usize = 64;

impl WriteOp {
    /// The json0 op that changes `before` as [`WriteOp::apply`] does (see the module docs
    /// for the guarantees and the mapping).
    pub fn to_json0(&self, before: &Value) -> Op {
        match self {
            WriteOp::Update { data } => vec![replace(&[], before, data.clone(), None)],
            WriteOp::Patch { path, data } => path_write(before, path, Change::Set(data)),
            WriteOp::Erase { path } => path_write(before, path, Change::Erase),
            WriteOp::PatchMulti { patches } => {
                let mut op = Vec::new();
                let mut doc = before.clone();
                for patch in patches {
                    let change = patch.data.as_ref().map_or(Change::Erase, Change::Set);
                    op.extend(path_write(&doc, &patch.path, change));
                    if let Ok(parsed) = Path::parse(&patch.path) {
                        change.apply(&mut doc, parsed.segments());
                    }
                }
                op
            }
        }
    }
}

/// What a path write does at the end of its path.
#[derive(Debug, Clone, Copy)]
enum Change<'a> {
    Set(&'a Value),
    Erase,
}

impl Change<'_> {
    /// The change made to `node` at `segments` below it, with deepstream's semantics.
    fn apply(self, node: &mut Value, segments: &[Segment]) {
        match self {
            Change::Set(data) => path::set_segments(node, segments, data.clone()),
            Change::Erase => path::erase_segments(node, segments),
        }
    }

    /// What the change leaves at `segments` below a slot that was not there: `null` with
    /// the change applied, as [`crate::path`]'s walk creates it.
    fn created(self, segments: &[Segment]) -> Value {
        let mut fresh = Value::Null;
        self.apply(&mut fresh, segments);
        fresh
    }
}

/// The json0 form of one path write on `before`; empty if the path does not parse.
fn path_write(before: &Value, text: &str, change: Change<'_>) -> Op {
    let Ok(parsed) = Path::parse(text) else {
        return Vec::new();
    };
    let segments = parsed.segments();
    // `nodes[k]` is the value at `steps[..k]`: the values the path goes through.
    let mut nodes: Vec<&Value> = vec![before];
    let mut steps: Vec<Step> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let node = *nodes.last().expect("nodes starts with the root");
        let last = i + 1 == segments.len();
        let below = &segments[i + 1..];
        let edit = Edit {
            nodes: &nodes,
            steps: &steps,
            segments,
            change,
        };
        match node {
            Value::Object(map) => {
                let key = path::object_key(segment);
                let action = match (map.get(&key), change) {
                    (Some(child), _) if !last => {
                        steps.push(Step::Key(key));
                        nodes.push(child);
                        continue;
                    }
                    (Some(old), Change::Set(new)) => Action::ObjectReplace {
                        old: old.clone(),
                        new: new.clone(),
                    },
                    (Some(old), Change::Erase) => Action::ObjectDelete(old.clone()),
                    (None, Change::Erase) if last => return Vec::new(),
                    (None, _) => Action::ObjectInsert(change.created(below)),
                };
                return vec![edit.in_object(Step::Key(key), action)];
            }
            Value::Array(items) => {
                // A key that is not an array index names nothing in an array: no change.
                let Some(index) = path::writable_array_index(segment) else {
                    return Vec::new();
                };
                match (items.get(index), change) {
                    (Some(child), _) if !last => {
                        steps.push(Step::Index(index));
                        nodes.push(child);
                    }
                    (Some(Value::Null), Change::Erase) => return Vec::new(),
                    (Some(old), _) => {
                        let new = match change {
                            Change::Set(new) => new.clone(),
                            Change::Erase => Value::Null,
                        };
                        let path = edit.path_to(Step::Index(index));
                        let old = old.clone();
                        return vec![component(path, Action::ListReplace { old, new })];
                    }
                    (None, Change::Erase) if last => return Vec::new(),
                    (None, _) if index - items.len() > MAX_PADDING => {
                        return vec![edit.replace_changed(i)];
                    }
                    (None, _) => {
                        let mut op: Op = (items.len()..index)
                            .map(|at| {
                                component(
                                    edit.path_to(Step::Index(at)),
                                    Action::ListInsert(Value::Null),
                                )
                            })
                            .collect();
                        let fresh = Action::ListInsert(change.created(below));
                        op.push(component(edit.path_to(Step::Index(index)), fresh));
                        return op;
                    }
                }
            }
            // A scalar or null on the way is replaced by the container the path needs.
            _ => return vec![edit.replace_changed(i)],
        }
    }
    // Every segment either returns or descends, and the last one always returns.
    unreachable!("the last segment of a path always makes the component")
}

/// The place a path write has reached, for making its component.
struct Edit<'e, 'v> {
    nodes: &'e [&'v Value],
    steps: &'e [Step],
    segments: &'e [Segment],
    change: Change<'v>,
}

impl Edit<'_, '_> {
    /// The path of `step` in the value reached (the last of `nodes`).
    fn path_to(&self, step: Step) -> Vec<Step> {
        let mut path = self.steps.to_vec();
        path.push(step);
        path
    }

    /// `oi`/`od` at `step` of the object reached, or, if ot-json0 would refuse that
    /// object, the object replaced with its changed self one level up.
    fn in_object(&self, step: Step, action: Action) -> Component {
        let object = *self.nodes.last().expect("nodes starts with the root");
        if takes_key_edits(object) {
            component(self.path_to(step), action)
        } else {
            self.replace_changed(self.steps.len())
        }
    }

    /// Replaces the value at `level` (the value at `steps[..level]`) with what the write
    /// makes of it, where its container takes a replace; else one level further up.
    fn replace_changed(&self, mut level: usize) -> Component {
        while level > 0 && !takes_key_edits(self.nodes[level - 1]) {
            level -= 1;
        }
        let old = self.nodes[level];
        let mut new = old.clone();
        self.change.apply(&mut new, &self.segments[level..]);
        let container = level.checked_sub(1).map(|above| self.nodes[above]);
        replace(&self.steps[..level], old, new, container)
    }
}

/// Whether ot-json0 inserts and deletes keys in `container` (every value but an object
/// with a key named `constructor`, which ot-json0 does not take for an object).
fn takes_key_edits(container: &Value) -> bool {
    !matches!(container, Value::Object(map) if map.contains_key("constructor"))
}

/// Replaces `old` at `path` with `new`: `ld`+`li` in an array, `od`+`oi` in an object or
/// at the root (`container` is `None`).
fn replace(path: &[Step], old: &Value, new: Value, container: Option<&Value>) -> Component {
    let old = old.clone();
    let action = match container {
        Some(Value::Array(_)) => Action::ListReplace { old, new },
        _ => Action::ObjectReplace { old, new },
    };
    component(path.to_vec(), action)
}

/// A component made here: its steps come from a parsed path (keys are never `__proto__`,
/// indices at most [`crate::path::MAX_INDEX`]), so it is well formed.
fn component(path: Vec<Step>, action: Action) -> Component {
    Component::new(path, action).expect("steps of a parsed path make a well-formed component")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::json0::{self, op_from_json, op_to_json};
    use crate::op::PathWrite;

    fn patch(path: &str, data: Value) -> WriteOp {
        WriteOp::Patch {
            path: path.into(),
            data,
        }
    }

    fn erase(path: &str) -> WriteOp {
        WriteOp::Erase { path: path.into() }
    }

    /// `op`'s json0 form on `before` is `expected`, has the path op's effect to the letter,
    /// and its inverse gives `before` back.
    #[track_caller]
    fn check(before: Value, op: WriteOp, expected: Value) {
        let json0_op = op.to_json0(&before);
        assert_eq!(op_to_json(&json0_op), expected, "json0 form of {op:?}");
        let mut want = before.clone();
        op.apply(&mut want);
        let got = json0::apply(&before, &json0_op).unwrap();
        assert_eq!(got.to_string(), want.to_string(), "effect of {op:?}");
        let back = json0::apply(&got, &json0::invert(&json0_op).unwrap()).unwrap();
        assert_eq!(back, before, "the inverse of {op:?}");
    }

    #[test]
    fn a_whole_value_update_replaces_the_root() {
        check(
            json!({"a": 1}),
            WriteOp::Update {
                data: json!({"b": [2]}),
            },
            json!([{"p": [], "od": {"a": 1}, "oi": {"b": [2]}}]),
        );
        check(
            json!(3),
            WriteOp::Update { data: json!([]) },
            json!([{"p": [], "od": 3, "oi": []}]),
        );
    }

    #[test]
    fn setting_a_key() {
        check(
            json!({"a": 1, "b": 2}),
            patch("a", json!(3)),
            json!([{"p": ["a"], "od": 1, "oi": 3}]),
        );
        check(
            json!({"a": 1}),
            patch("b", json!(2)),
            json!([{"p": ["b"], "oi": 2}]),
        );
        check(
            json!({"a": {"x": {"y": 1}}}),
            patch("a.x.y", json!(null)),
            json!([{"p": ["a", "x", "y"], "od": 1, "oi": null}]),
        );
        // An index into an object is its decimal key.
        check(
            json!({"m": {"a": 1}}),
            patch("m[2]", json!(true)),
            json!([{"p": ["m", "2"], "oi": true}]),
        );
    }

    #[test]
    fn what_the_path_creates_is_inserted_in_one_component() {
        check(
            json!({}),
            patch("pets[1].fur.color", json!("red")),
            json!([{"p": ["pets"], "oi": [null, {"fur": {"color": "red"}}]}]),
        );
        check(
            json!({"a": {"x": 1}}),
            patch("a.b.c", json!(1)),
            json!([{"p": ["a", "b"], "oi": {"c": 1}}]),
        );
        check(
            json!({}),
            patch("address.99.street", json!("s")),
            json!([{"p": ["address"], "oi": {"99": {"street": "s"}}}]),
        );
    }

    #[test]
    fn setting_an_array_element() {
        check(
            json!({"l": [1, 2]}),
            patch("l[1]", json!(9)),
            json!([{"p": ["l", 1], "ld": 2, "li": 9}]),
        );
        // A key that is an array index addresses the element.
        check(
            json!({"l": [1, 2]}),
            patch("l.0", json!(9)),
            json!([{"p": ["l", 0], "ld": 1, "li": 9}]),
        );
        check(
            json!({"l": [[1, {"a": 2}]]}),
            patch("l[0][1].a", json!(3)),
            json!([{"p": ["l", 0, 1, "a"], "od": 2, "oi": 3}]),
        );
    }

    #[test]
    fn other_keys_into_an_array_change_nothing() {
        for path in ["l.foo", "l.01", "l.foo.bar", "l.4294967295"] {
            check(json!({"l": [1]}), patch(path, json!(9)), json!([]));
            check(json!({"l": [1]}), erase(path), json!([]));
        }
    }

    #[test]
    fn an_index_past_the_end_pads_with_null_one_insert_each() {
        check(
            json!({"l": [1]}),
            patch("l[3]", json!(4)),
            json!([
                {"p": ["l", 1], "li": null},
                {"p": ["l", 2], "li": null},
                {"p": ["l", 3], "li": 4},
            ]),
        );
        check(
            json!({"l": []}),
            patch("l[1].x", json!(1)),
            json!([{"p": ["l", 0], "li": null}, {"p": ["l", 1], "li": {"x": 1}}]),
        );
        check(
            json!({"l": [1]}),
            patch("l.1", json!(2)),
            json!([{"p": ["l", 1], "li": 2}]),
        );
    }

    #[test]
    fn long_padding_replaces_the_array() {
        let at = 1 + MAX_PADDING;
        let before = json!({"l": [1]});
        let op = patch(&format!("l[{}]", at + 1), json!(2));
        let json0_op = op.to_json0(&before);
        assert_eq!(json0_op.len(), 1);
        let mut after = vec![json!(1)];
        after.resize(at + 1, Value::Null);
        after.push(json!(2));
        check(before, op, json!([{"p": ["l"], "od": [1], "oi": after}]));
        // Up to the limit, one insert per slot.
        let op = patch(&format!("l[{at}]"), json!(2));
        assert_eq!(op.to_json0(&json!({"l": [1]})).len(), MAX_PADDING + 1);
    }

    #[test]
    fn a_scalar_or_null_on_the_way_is_replaced_by_the_container() {
        check(
            json!({"a": 3}),
            patch("a.b", json!(1)),
            json!([{"p": ["a"], "od": 3, "oi": {"b": 1}}]),
        );
        check(
            json!({"l": ["s"]}),
            patch("l[0].b", json!(1)),
            json!([{"p": ["l", 0], "ld": "s", "li": {"b": 1}}]),
        );
        check(
            json!({"a": null}),
            patch("a[1]", json!(1)),
            json!([{"p": ["a"], "od": null, "oi": [null, 1]}]),
        );
        check(
            json!({"a": {"b": false}}),
            patch("a.b.c.d", json!(1)),
            json!([{"p": ["a", "b"], "od": false, "oi": {"c": {"d": 1}}}]),
        );
        // The root too.
        check(
            json!("s"),
            patch("a", json!(1)),
            json!([{"p": [], "od": "s", "oi": {"a": 1}}]),
        );
        check(
            json!(null),
            patch("x[0]", json!(1)),
            json!([{"p": [], "od": null, "oi": {"x": [1]}}]),
        );
    }

    #[test]
    fn erasing() {
        check(
            json!({"a": 1, "b": 2}),
            erase("a"),
            json!([{"p": ["a"], "od": 1}]),
        );
        check(
            json!({"l": [1, 2, 3]}),
            erase("l[1]"),
            json!([{"p": ["l", 1], "ld": 2, "li": null}]),
        );
        check(
            json!({"l": [{"a": 1}]}),
            erase("l.0"),
            json!([{"p": ["l", 0], "ld": {"a": 1}, "li": null}]),
        );
    }

    #[test]
    fn erasing_what_is_not_there() {
        check(json!({"a": 1}), erase("b"), json!([]));
        check(json!({"l": [1]}), erase("l[5]"), json!([]));
        check(json!({"l": [null]}), erase("l[0]"), json!([]));
        // deepstream creates the containers on the way, so the json0 form does too.
        check(
            json!({}),
            erase("a.b.c"),
            json!([{"p": ["a"], "oi": {"b": {}}}]),
        );
        check(
            json!({"a": 3}),
            erase("a.b"),
            json!([{"p": ["a"], "od": 3, "oi": {}}]),
        );
        check(
            json!({"l": []}),
            erase("l[1].x"),
            json!([{"p": ["l", 0], "li": null}, {"p": ["l", 1], "li": {}}]),
        );
        check(json!({}), erase("a[2]"), json!([{"p": ["a"], "oi": []}]));
    }

    #[test]
    fn objects_with_a_constructor_key_are_replaced_one_level_up() {
        // ot-json0 refuses oi and od inside such an object: that is why.
        let tainted = json!({"constructor": 1, "a": 1});
        let oi = op_from_json(&json!([{"p": ["b"], "oi": 2}])).unwrap();
        assert!(json0::apply(&tainted, &oi).is_err());

        check(
            json!({"o": {"constructor": 1, "a": 1}}),
            patch("o.b", json!(2)),
            json!([{
                "p": ["o"],
                "od": {"constructor": 1, "a": 1},
                "oi": {"constructor": 1, "a": 1, "b": 2},
            }]),
        );
        check(
            json!({"o": {"constructor": 1, "a": 1}}),
            erase("o.a"),
            json!([{"p": ["o"], "od": {"constructor": 1, "a": 1}, "oi": {"constructor": 1}}]),
        );
        // At the root, the root is replaced.
        check(
            json!({"constructor": 1}),
            patch("a", json!(1)),
            json!([{"p": [], "od": {"constructor": 1}, "oi": {"constructor": 1, "a": 1}}]),
        );
        // Up as far as needed.
        check(
            json!({"o": {"constructor": 1, "i": {"constructor": 2}}}),
            patch("o.i.x", json!(1)),
            json!([{
                "p": ["o"],
                "od": {"constructor": 1, "i": {"constructor": 2}},
                "oi": {"constructor": 1, "i": {"constructor": 2, "x": 1}},
            }]),
        );
        // A scalar to replace in such an object.
        check(
            json!({"o": {"constructor": 1, "a": 3}}),
            patch("o.a.b", json!(1)),
            json!([{
                "p": ["o"],
                "od": {"constructor": 1, "a": 3},
                "oi": {"constructor": 1, "a": {"b": 1}},
            }]),
        );
        // Below such an object, in a plain one, nothing special.
        check(
            json!({"o": {"constructor": 1, "a": {"x": 1}}}),
            patch("o.a.x", json!(2)),
            json!([{"p": ["o", "a", "x"], "od": 1, "oi": 2}]),
        );
        // Arrays take replaces whatever their elements hold.
        check(
            json!({"l": [{"constructor": 1}]}),
            patch("l[0].a", json!(1)),
            json!([{"p": ["l", 0], "ld": {"constructor": 1}, "li": {"constructor": 1, "a": 1}}]),
        );
    }

    #[test]
    fn patch_multi_is_its_writes_in_order() {
        let op = WriteOp::PatchMulti {
            patches: vec![
                PathWrite {
                    path: "x".into(),
                    data: Some(json!(1)),
                },
                PathWrite {
                    path: "x.y".into(),
                    data: Some(json!(2)),
                },
                PathWrite {
                    path: "a".into(),
                    data: None,
                },
                PathWrite {
                    path: "x.y".into(),
                    data: None,
                },
            ],
        };
        check(
            json!({"a": 1}),
            op,
            json!([
                {"p": ["x"], "oi": 1},
                {"p": ["x"], "od": 1, "oi": {"y": 2}},
                {"p": ["a"], "od": 1},
                {"p": ["x", "y"], "od": 2},
            ]),
        );
    }

    #[test]
    fn paths_that_do_not_parse_change_nothing() {
        check(json!({"a": 1}), patch("a[", json!(1)), json!([]));
        check(json!({"a": 1}), erase(""), json!([]));
    }

    #[test]
    fn numbers_are_carried_as_written() {
        let before: Value = serde_json::from_str(r#"{"n":1.50,"l":[-0,1e+400]}"#).unwrap();
        let data: Value = serde_json::from_str("123456789012345678901234567890").unwrap();
        let op = patch("l[0]", data);
        let json0_op = op.to_json0(&before);
        assert_eq!(
            op_to_json(&json0_op).to_string(),
            r#"[{"p":["l",0],"ld":-0,"li":123456789012345678901234567890}]"#
        );
        let after = json0::apply(&before, &json0_op).unwrap();
        assert_eq!(
            after.to_string(),
            r#"{"n":1.50,"l":[123456789012345678901234567890,1e+400]}"#
        );
    }
}

/// The guarantees of the module docs on random documents and random path writes.
#[cfg(test)]
pub(super) mod props {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use crate::json0::{self, op_from_json, op_to_json};
    use crate::op::{PathWrite, WriteOp};
    use crate::path::{Path, Segment};
    use crate::testing::{document, number};
    use crate::{JournalOp, ReplayOp};

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("generated JSON parses")
    }

    /// Adds a key `constructor` to every object whose first key sorts before `g` (about a
    /// third of them), so that ot-json0's refusal to edit keys in them is met often.
    fn taint(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.values_mut().for_each(taint);
                if map.keys().next().is_some_and(|k| k.as_str() < "g") {
                    map.insert("constructor".into(), json!(1));
                }
            }
            Value::Array(items) => items.iter_mut().for_each(taint),
            _ => {}
        }
    }

    /// Documents to write to: objects, mostly, and now and then a scalar, `null` or an
    /// array at the root (a ShareDB document may be any value).
    fn before() -> impl Strategy<Value = Value> {
        (document(), any::<bool>(), 0u8..12, number()).prop_map(|(doc, tainted, root, n)| {
            let mut value = parse(&doc.to_json());
            if tainted {
                taint(&mut value);
            }
            match root {
                0 => parse(&n),
                1 => Value::Null,
                2 => json!([value, "s"]),
                _ => value,
            }
        })
    }

    /// Data to write: numbers, documents, `null`, empty containers.
    fn data() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => number().prop_map(|n| parse(&n)),
            2 => document().prop_map(|d| parse(&d.to_json())),
            1 => Just(Value::Null),
            1 => Just(json!([])),
            1 => Just(json!({})),
        ]
    }

    /// A path chosen step by step against `doc`: mostly through what is there, but also
    /// to new keys, indices into objects, indices at and past the end of arrays (beyond
    /// the padding limit too), keys into arrays, and through scalars.
    fn path_in(doc: &Value, choices: &[(u8, u8)]) -> String {
        let mut node = Some(doc);
        let mut segments = Vec::new();
        for &(kind, n) in choices {
            let n = usize::from(n);
            let segment = match node {
                Some(Value::Object(map)) if kind < 4 && !map.is_empty() => {
                    let keys: Vec<&String> = map.keys().filter(|k| *k != "constructor").collect();
                    match keys.get(n % keys.len().max(1)) {
                        Some(key) => Segment::Key((*key).clone()),
                        None => Segment::Key("k".into()),
                    }
                }
                Some(Value::Object(_)) => match kind {
                    4 => Segment::Index(n % 4),
                    5 => Segment::Key(["0", "1", "01"][n % 3].into()),
                    _ => Segment::Key(["a", "b", "k"][n % 3].into()),
                },
                Some(Value::Array(items)) => {
                    let len = items.len();
                    match kind {
                        0..=3 if len > 0 => Segment::Index(n % len),
                        4 => Segment::Index(len + n % 3),
                        5 => Segment::Index(len + super::MAX_PADDING - 1 + n % 4),
                        6 => Segment::Key(["foo", "01", "length"][n % 3].into()),
                        _ if n % 2 == 0 => Segment::Key((n % (len + 2)).to_string()),
                        _ => Segment::Index(len + super::MAX_PADDING + 1 + n % 8),
                    }
                }
                _ if kind % 2 == 0 => Segment::Key(["a", "b"][n % 2].into()),
                _ => Segment::Index(n % 3),
            };
            node = node.and_then(|v| match (v, &segment) {
                (Value::Object(map), Segment::Key(k)) => map.get(k),
                (Value::Object(map), Segment::Index(i)) => map.get(&i.to_string()),
                (Value::Array(items), Segment::Index(i)) => items.get(*i),
                (Value::Array(items), Segment::Key(k)) => {
                    k.parse().ok().and_then(|i: usize| items.get(i))
                }
                _ => None,
            });
            segments.push(segment);
        }
        // A path starts with a key; a key that is an index addresses an array root.
        if let Some(Segment::Index(i)) = segments.first() {
            segments[0] = Segment::Key(i.to_string());
        }
        Path::from_segments(segments)
            .expect("generated segments are a valid path")
            .to_string()
    }

    /// One path write (`data: None` erases) with a path chosen against `doc`.
    fn path_write(doc: &Value) -> impl Strategy<Value = PathWrite> + use<> {
        let doc = doc.clone();
        (
            prop::collection::vec((0u8..8, any::<u8>()), 1..5),
            prop::option::weighted(0.7, data()),
        )
            .prop_map(move |(choices, data)| PathWrite {
                path: path_in(&doc, &choices),
                data,
            })
    }

    fn single(write: PathWrite) -> WriteOp {
        match write.data {
            Some(data) => WriteOp::Patch {
                path: write.path,
                data,
            },
            None => WriteOp::Erase { path: write.path },
        }
    }

    /// A document and a write to it: a patch, an erase, a batch of them, or an update.
    pub(super) fn case() -> impl Strategy<Value = (Value, WriteOp)> {
        before().prop_flat_map(|doc| {
            let op = prop_oneof![
                4 => path_write(&doc).prop_map(single),
                2 => prop::collection::vec(path_write(&doc), 1..4).prop_map(|mut patches| {
                    // A batch entry's `"data": null` is an erase, in the journal text as
                    // in a deepstream client's PATCH_MULTI: `Some(null)` is never built.
                    for p in &mut patches {
                        p.data = p.data.take().filter(|d| !d.is_null());
                    }
                    WriteOp::PatchMulti { patches }
                }),
                1 => data().prop_map(|data| WriteOp::Update { data }),
            ];
            (Just(doc), op)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn path_ops_as_json0((before, op) in case()) {
            let mut want = before.clone();
            op.apply(&mut want);
            let json0_op = op.to_json0(&before);

            // Well formed: json0 reads its JSON form back as the same op.
            let text = op_to_json(&json0_op);
            prop_assert_eq!(&op_from_json(&text).expect("json0 reads it"), &json0_op);

            // The same effect, to the letter: key order and numbers included.
            let got = json0::apply(&before, &json0_op);
            prop_assert!(got.is_ok(), "{} on {} refused: {:?}", text, before, got);
            let got = got.expect("checked");
            prop_assert_eq!(got.to_string(), want.to_string(), "{}", text);

            // Invertible: the inverse gives `before` back (as a JSON value: a key removed
            // and put back goes last).
            let inverse = json0::invert(&json0_op).expect("json0 inverts it");
            prop_assert_eq!(&json0::apply(&got, &inverse).expect("the inverse applies"), &before);

            // And so the journal replays it: as a json0 entry too, whose text reads back.
            let journaled = JournalOp::from_journal(&JournalOp::from(op.clone()).to_journal())
                .expect("the journal text reads back");
            prop_assert_eq!(
                journaled.to_replay(Some(&before)).expect("a record is there"),
                ReplayOp::Op(json0_op.clone())
            );
            let entry = JournalOp::Json0 { ops: json0_op };
            let entry_text = entry.to_journal();
            prop_assert_eq!(JournalOp::from_journal(&entry_text).expect("reads back").to_journal(), entry_text);
        }
    }
}

/// The property test above is only as good as its cases: this counts how often they take
/// each way of the module docs' table, so that a generator change that stops reaching one
/// fails here instead of quietly weakening the property.
#[cfg(test)]
mod coverage {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    use serde_json::Value;

    use super::props::case;
    use crate::json0::Action;

    #[test]
    fn the_generated_cases_take_every_way() {
        let mut runner = TestRunner::deterministic();
        let strategy = case();
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        let cases = 2_000;
        for _ in 0..cases {
            let (before, op) = strategy.new_tree(&mut runner).unwrap().current();
            let json0_op = op.to_json0(&before);
            let mut seen = |way| *counts.entry(way).or_default() += 1;
            if json0_op.is_empty() {
                seen("no change");
            }
            for c in &json0_op {
                let tainted = |v: &Value| v.get("constructor").is_some();
                let scalar = |v: &Value| !v.is_object() && !v.is_array();
                match c.action() {
                    Action::ListInsert(Value::Null) => seen("li null (padding or null)"),
                    Action::ListInsert(_) => seen("li"),
                    Action::ObjectInsert(_) => seen("oi"),
                    Action::ObjectDelete(_) => seen("od"),
                    Action::ListReplace { old, new } if scalar(old) && !scalar(new) => {
                        seen("scalar in a list replaced by a container")
                    }
                    Action::ListReplace { .. } => seen("ld+li"),
                    Action::ObjectReplace { .. } if c.path().is_empty() => seen("root replaced"),
                    Action::ObjectReplace { old, new } if tainted(old) => {
                        seen("object with constructor replaced")
                    }
                    Action::ObjectReplace {
                        old: Value::Array(old),
                        new: Value::Array(new),
                    } if new.len() > old.len() + super::MAX_PADDING => {
                        seen("long padding: array replaced")
                    }
                    Action::ObjectReplace { old, new } if scalar(old) && !scalar(new) => {
                        seen("scalar in an object replaced by a container")
                    }
                    Action::ObjectReplace { .. } => seen("od+oi"),
                    other => panic!("a path write made {other:?}"),
                }
            }
        }
        println!("{counts:#?}");
        for way in [
            "no change",
            "li null (padding or null)",
            "li",
            "oi",
            "od",
            "scalar in a list replaced by a container",
            "ld+li",
            "root replaced",
            "object with constructor replaced",
            "long padding: array replaced",
            "scalar in an object replaced by a container",
            "od+oi",
        ] {
            let n = counts.get(way).copied().unwrap_or(0);
            assert!(n >= 20, "{way}: {n} of {cases} cases");
        }
    }
}
