//! Composing ops: appending a component to an op, merged with the op's last component
//! where ot-json0 merges them (its `append`), and `compose` as appending a whole op.
//!
//! What merges with the last component, when both have the same path:
//!
//! | last | appended | result |
//! |---|---|---|
//! | `si`/`sd` | `si`/`sd` on the same string | text0's append: adjacent inserts or deletes become one |
//! | `t` | `t` of the same subtype | one `t`, the subtype's compose of the two |
//! | `na` | `na` | one `na`: the sum, as JavaScript adds |
//! | `li` (or `ld`+`li`) | `ld` of the same primitive value | nothing (or the `ld` alone) |
//! | `od` | `oi` | `od`+`oi` |
//! | `oi` (or `od`+`oi`) | `od` (or `od`+`oi`) | the later `oi` (or the first `od` alone, or nothing) |
//! | anything | `lm` to where it is | dropped |
//!
//! Anything else is appended as it is. As in ot-json0, `ld` only cancels a preceding `li`
//! of a value that is `===` in JavaScript: a string, number, boolean or null; an object or
//! list inserted and then deleted stays as two components. Composing ops that follow one
//! another gives an op with the same effect, with two exceptions that come from
//! ot-json0: numbers added in two steps and in one may round differently, and `oi` on a
//! key that is already there, followed by `od`, composes to nothing (the key's old value
//! comes back).

use serde_json::Value;

use super::error::Json0Error;
use super::op::{Action, Component, Op, Step, same_path};
use super::{Json0, text0};
use crate::js_number;

impl Json0 {
    /// `first` then `second` as one op. ot-json0's `compose`.
    pub fn compose(&self, first: &[Component], second: &[Component]) -> Result<Op, Json0Error> {
        self.check_subtypes(first)?;
        self.check_subtypes(second)?;
        let mut op = first.to_vec();
        for c in second {
            self.append_checked(&mut op, c.clone())?;
        }
        Ok(op)
    }

    /// Appends `c` to `op`, merging it into the last component where ot-json0's `append`
    /// does (see the module docs).
    pub fn append(&self, op: &mut Op, c: Component) -> Result<(), Json0Error> {
        self.check_subtypes(std::slice::from_ref(&c))?;
        self.check_subtypes(op.last().map(std::slice::from_ref).unwrap_or_default())?;
        self.append_checked(op, c)
    }

    pub(super) fn append_checked(&self, op: &mut Op, c: Component) -> Result<(), Json0Error> {
        let Some(last) = op.last_mut() else {
            op.push(c);
            return Ok(());
        };

        // Two string edits: merged by text0's append if on the same string.
        if c.is_string_op() && last.is_string_op() {
            if !same_path(c.string_path(), last.string_path()) {
                op.push(c);
                return Ok(());
            }
            let (ours, theirs) = (c.text_edit()?, last.text_edit()?);
            if let (Some((base, ours)), Some((_, theirs))) = (ours, theirs) {
                let mut edits = vec![theirs];
                text0::append(&mut edits, ours)?;
                let mut edits = edits.into_iter();
                if let Some(first) = edits.next() {
                    *last = Component::from_text_edit(base, first);
                }
                for rest in edits {
                    op.push(Component::from_text_edit(base, rest));
                }
                return Ok(());
            }
        }

        if !same_path(&c.path, &last.path) {
            op.push(c);
            return Ok(());
        }
        let merge = match (&last.action, &c.action) {
            (Action::Text(_), Action::Text(_)) => Merge::Compose,
            (Action::Subtype { name: a, .. }, Action::Subtype { name: b, .. }) if a == b => {
                Merge::Compose
            }
            (Action::NumberAdd(_), Action::NumberAdd(_)) => Merge::Add,
            (
                Action::ListInsert(inserted) | Action::ListReplace { new: inserted, .. },
                Action::ListDelete(deleted),
            ) if strict_equal(inserted, deleted) => Merge::UndoListInsert,
            (Action::ObjectDelete(_), Action::ObjectInsert(_)) => Merge::Replace,
            (
                Action::ObjectInsert(_) | Action::ObjectReplace { .. },
                Action::ObjectDelete(_) | Action::ObjectReplace { .. },
            ) => Merge::OverwriteObjectInsert,
            (_, Action::ListMove { to }) if c.path.last() == Some(&Step::Index(*to)) => Merge::Drop,
            _ => Merge::Push,
        };
        match merge {
            Merge::Push => op.push(c),
            Merge::Drop => {}
            Merge::Compose => match (&mut last.action, c.action) {
                (Action::Text(before), Action::Text(after)) => {
                    *before = text0::compose(before, &after)?;
                }
                (Action::Subtype { name, op: before }, Action::Subtype { op: after, .. }) => {
                    let subtype = self.subtype(name)?;
                    *before =
                        subtype
                            .compose(before, &after)
                            .map_err(|source| Json0Error::Subtype {
                                name: name.clone(),
                                source,
                            })?;
                }
                _ => {}
            },
            Merge::Add => {
                if let (Action::NumberAdd(before), Action::NumberAdd(after)) =
                    (&mut last.action, &c.action)
                {
                    let sum = js_number::read(before) + js_number::read(after);
                    *before = js_number::to_json(sum).ok_or_else(|| Json0Error::NotFinite {
                        what: format!("na {before} composed with na {after}"),
                        result: js_number::format(sum),
                    })?;
                }
            }
            Merge::UndoListInsert | Merge::Replace | Merge::OverwriteObjectInsert => {
                // Infallible from here: the placeholder is replaced at once.
                let previous =
                    std::mem::replace(&mut last.action, Action::ObjectDelete(Value::Null));
                match merged(merge, previous, c.action) {
                    Some(action) => last.action = action,
                    None => {
                        op.pop();
                    }
                }
            }
        }
        Ok(())
    }
}

/// How [`Json0::append`] merges a component into the last one.
enum Merge {
    Push,
    Drop,
    /// Two `t` ops of one subtype: composed by it.
    Compose,
    /// Two `na`: added.
    Add,
    /// `li`, then `ld` of the same value.
    UndoListInsert,
    /// `od`, then `oi`: `od`+`oi`.
    Replace,
    /// `oi`, then `od` or `od`+`oi`.
    OverwriteObjectInsert,
}

/// The last component's action once `next` is merged into it as `merge` says; `None`
/// if the two cancel out.
fn merged(merge: Merge, last: Action, next: Action) -> Option<Action> {
    match (merge, last, next) {
        // `li` then its `ld`: nothing; a replace keeps its delete.
        (Merge::UndoListInsert, Action::ListReplace { old, .. }, _) => {
            Some(Action::ListDelete(old))
        }
        (Merge::UndoListInsert, _, _) => None,
        (Merge::Replace, Action::ObjectDelete(old), Action::ObjectInsert(new)) => {
            Some(Action::ObjectReplace { old, new })
        }
        // `oi` then `od`+`oi`: the later value is inserted.
        (
            Merge::OverwriteObjectInsert,
            Action::ObjectInsert(_),
            Action::ObjectReplace { new, .. },
        ) => Some(Action::ObjectInsert(new)),
        (
            Merge::OverwriteObjectInsert,
            Action::ObjectReplace { old, .. },
            Action::ObjectReplace { new, .. },
        ) => Some(Action::ObjectReplace { old, new }),
        // `oi` then `od`: only the first delete is left, or nothing.
        (Merge::OverwriteObjectInsert, Action::ObjectReplace { old, .. }, _) => {
            Some(Action::ObjectDelete(old))
        }
        (Merge::OverwriteObjectInsert, _, _) => None,
        // Not reached: `append_checked` decides `merge` from these very actions.
        (_, last, _) => Some(last),
    }
}

/// JavaScript's `===` on two values ot-json0 compares: equal strings, booleans, nulls and
/// numbers (as the doubles JavaScript reads); objects and lists are never `===`, since
/// ot-json0 compares separate copies.
fn strict_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => js_number::read(a) == js_number::read(b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::json0::{op_from_json, op_to_json};

    fn compose(a: Value, b: Value) -> Result<Value, Json0Error> {
        let (a, b) = (op_from_json(&a).unwrap(), op_from_json(&b).unwrap());
        Json0::new().compose(&a, &b).map(|op| op_to_json(&op))
    }

    #[test]
    fn what_merges_with_the_last_component() {
        let cases = [
            // string edits on one string: text0's append
            (
                json!([{"p":["s",1],"si":"a"}]),
                json!([{"p":["s",2],"si":"😀"}]),
                json!([{"p":["s",1],"si":"a😀"}]),
            ),
            (
                json!([{"p":["s",3],"sd":"c"}]),
                json!([{"p":["s",1],"sd":"ab"}]),
                json!([{"p":["s",1],"sd":"abc"}]),
            ),
            (
                json!([{"p":["s",1],"si":"a"}]),
                json!([{"p":["s",5],"si":"b"}]),
                json!([{"p":["s",1],"si":"a"},{"p":["s",5],"si":"b"}]),
            ),
            (
                json!([{"p":["s",1],"si":"a"}]),
                json!([{"p":["t",2],"si":"b"}]),
                json!([{"p":["s",1],"si":"a"},{"p":["t",2],"si":"b"}]),
            ),
            (
                json!([{"p":["s",1],"si":"a"}]),
                json!([{"p":["s",1],"si":""}]),
                json!([{"p":["s",1],"si":"a"}]),
            ),
            // t: text0 ops on one string: text0's compose
            (
                json!([{"p":["s"],"t":"text0","o":[{"p":0,"i":"a"}]}]),
                json!([{"p":["s"],"t":"text0","o":[{"p":1,"i":"b"},{"p":9,"d":"z"}]}]),
                json!([{"p":["s"],"t":"text0","o":[{"p":0,"i":"ab"},{"p":9,"d":"z"}]}]),
            ),
            // numbers: added as JavaScript adds
            (
                json!([{"p":["n"],"na":0.1}]),
                json!([{"p":["n"],"na":0.2}]),
                json!([{"p":["n"],"na":0.30000000000000004}]),
            ),
            // li then ld of the same primitive: nothing; a replace keeps its delete
            (
                json!([{"p":[0],"li":1}]),
                json!([{"p":[0],"ld":1.0}]),
                json!([]),
            ),
            (
                json!([{"p":[0],"ld":"x","li":null}]),
                json!([{"p":[0],"ld":null}]),
                json!([{"p":[0],"ld":"x"}]),
            ),
            // ... but objects are never === in JavaScript
            (
                json!([{"p":[0],"li":{}}]),
                json!([{"p":[0],"ld":{}}]),
                json!([{"p":[0],"li":{}},{"p":[0],"ld":{}}]),
            ),
            // od then oi: a replace
            (
                json!([{"p":["k"],"od":1}]),
                json!([{"p":["k"],"oi":2}]),
                json!([{"p":["k"],"od":1,"oi":2}]),
            ),
            // oi then od (or od+oi): the later value, the first delete, or nothing
            (
                json!([{"p":["k"],"oi":1}]),
                json!([{"p":["k"],"od":1,"oi":2}]),
                json!([{"p":["k"],"oi":2}]),
            ),
            (
                json!([{"p":["k"],"od":0,"oi":1}]),
                json!([{"p":["k"],"od":1,"oi":2}]),
                json!([{"p":["k"],"od":0,"oi":2}]),
            ),
            (
                json!([{"p":["k"],"od":0,"oi":1}]),
                json!([{"p":["k"],"od":1}]),
                json!([{"p":["k"],"od":0}]),
            ),
            (
                json!([{"p":["k"],"oi":1}]),
                json!([{"p":["k"],"od":1}]),
                json!([]),
            ),
            // a move to where it is, after a component at the same path: dropped
            (
                json!([{"p":[2],"li":0}]),
                json!([{"p":[2],"lm":2}]),
                json!([{"p":[2],"li":0}]),
            ),
            (
                json!([{"p":[1],"li":0}]),
                json!([{"p":[2],"lm":2}]),
                json!([{"p":[1],"li":0},{"p":[2],"lm":2}]),
            ),
            (
                json!([]),
                json!([{"p":[2],"lm":2}]),
                json!([{"p":[2],"lm":2}]),
            ),
            // anything else is appended
            (
                json!([{"p":["k"],"na":1}]),
                json!([{"p":["k"],"od":1}]),
                json!([{"p":["k"],"na":1},{"p":["k"],"od":1}]),
            ),
        ];
        for (a, b, want) in cases {
            assert_eq!(compose(a.clone(), b.clone()).unwrap(), want, "{a} then {b}");
        }
    }

    #[test]
    fn merging_can_fail() {
        let err = compose(
            json!([{"p":[],"na":1.7976931348623157e308}]),
            json!([{"p":[],"na":1.7976931348623157e308}]),
        )
        .unwrap_err();
        assert!(matches!(err, Json0Error::NotFinite { .. }), "{err}");
        let err = compose(
            json!([{"p":["s",0],"si":"😀"}]),
            json!([{"p":["s",1],"si":"x"}]),
        )
        .unwrap_err();
        assert!(matches!(err, Json0Error::HalfCharacter { .. }), "{err}");
        let err = compose(
            json!([{"p":["s","k"],"si":"a"}]),
            json!([{"p":["s",1],"si":"x"}]),
        )
        .unwrap_err();
        assert!(matches!(err, Json0Error::NoOffset { .. }), "{err}");
    }

    #[test]
    fn append_leaves_the_op_as_it_was_on_an_error() {
        let json0 = Json0::new();
        let mut op = op_from_json(&json!([{"p":["s",0],"si":"😀"}])).unwrap();
        let before = op.clone();
        let c = Component::from_json(&json!({"p":["s",1],"si":"x"})).unwrap();
        assert!(json0.append(&mut op, c).is_err());
        assert_eq!(op, before);
    }
}
