//! json0: the JSON operational-transformation type of ShareDB, as the npm `ot-json0`
//! package (ottypes/json0 1.1.0, `lib/json0.js` and its string subtype `lib/text0.js`)
//! defines it.
//!
//! # Why
//!
//! ShareDB clients edit documents with json0 ops and transform them with `ot-json0`. A
//! server that takes their ops must transform a stale op (one made before ops it has not
//! seen) exactly as the clients do, apply ops exactly as they do, and store every write in
//! a form from which any version can be rebuilt. This module is that: pure functions, no
//! I/O, that behave as `ot-json0` does on every op a client sends, and refuse with a
//! [`Json0Error`] where `ot-json0` throws — and where it would produce something JSON
//! cannot carry (see [Where recordsync refuses what ot-json0 does](#where-recordsync-refuses-what-ot-json0-does)).
//! It never panics, whatever the input.
//!
//! # Ops
//!
//! An op ([`Op`]) is a list of components applied in order, each a path (`p`) and one
//! action ([`Action`]): `na` (add to a number), `si`/`sd` (insert into / delete from a
//! string), `li`/`ld`/`ld`+`li`/`lm` (list insert, delete, replace, move), `oi`/`od`/
//! `od`+`oi` (object insert, delete, replace; at `p: []` the whole document), and `t`+`o`
//! (an op of a subtype: [`text0`] is built in, others implement [`Subtype`] and are
//! registered on a [`Json0`]). Ops are read from and written as their JSON form
//! ([`op_from_json`], [`op_to_json`], and serde), which checks their shape
//! (a [`ShapeError`] says what is wrong).
//!
//! The operations, as on ot-json0's type object:
//!
//! | ot-json0 | here |
//! |---|---|
//! | `apply(snapshot, op)` | [`Json0::apply`] (on a copy: on an error the input is unchanged) |
//! | `transform(op, otherOp, 'left' \| 'right')` | [`Json0::transform`] with [`Side`] |
//! | `transformX(left, right)` | [`Json0::transform_x`] |
//! | `transformComponent(dest, c, otherC, side)` | [`Json0::transform_component`] |
//! | `compose(op1, op2)` | [`Json0::compose`] |
//! | `append(dest, c)` | [`Json0::append`] |
//! | `invert(op)` | [`Json0::invert`] |
//! | `normalize(op)` | [`Json0::normalize`] (a list, one component, `p` left out) |
//! | `registerSubtype(type)` | [`Json0::register`] |
//!
//! The free functions ([`apply`], [`transform`], …) use a [`Json0`] with only text0.
//!
//! # Invariants
//!
//! - Every [`Component`] has fields of the right types and does one thing (else a
//!   [`ShapeError`]).
//!   Its path may have any shape, as in ot-json0 (whose transform rules and tests use
//!   components that could never apply, such as `li` at a key); [`Json0::apply`] refuses
//!   those, as ot-json0's current source does.
//! - Convergence (TP1): for ops `a` and `b` made on one document `s`,
//!   `apply(apply(s, a), transform(b, a, Right)) == apply(apply(s, b), transform(a, b, Left))`
//!   as JSON values (the order of keys may differ, as in ot-json0). It holds for the ops
//!   ot-json0's own test generator makes (`tests/json0_props.rs`); ot-json0 does not
//!   converge, and neither does this, when one op edits a string with `si`/`sd` and the
//!   other the same string with `t: text0` (ot-json0 transforms only like against like),
//!   when `oi` sets a key that is there without `od`, when `lm` moves past the end of a
//!   list, or when two `na` of fractions round differently in the two orders. Measured with ot-json0 itself (`node cases.mjs --tp1 --count 20000`,
//!   below): of 19,559 random pairs of every shape that applied, 196 did not converge; of
//!   100,000 pairs of its generator's shapes (`--plain`), none.
//! - `compose(a, b)` has the effect of `a` then `b` (see [`Json0::compose`]'s module for
//!   the exceptions, which are ot-json0's), and `invert(a)` undoes `a` when `a`'s `ld`
//!   and `od` values are what it deletes.
//!
//! # Numbers
//!
//! Documents keep every number as written (serde_json's `arbitrary_precision`): only the
//! number an `na` changes is computed. It is read as the double JavaScript reads, the
//! addend is added as JavaScript adds doubles, and the sum is written as JavaScript's
//! `Number.prototype.toString` writes it (`crate::js_number`): `0.1` plus `0.2` is
//! `0.30000000000000004`, and `9007199254740993` plus `0` is `9007199254740992`, as a
//! JavaScript client computes. Composing two `na` adds them the same way, and inverting
//! one negates it. A sum beyond the double range is refused ([`Json0Error::NotFinite`];
//! JavaScript would hold `Infinity`, which JSON writes as `null`).
//!
//! # Strings: UTF-16 offsets
//!
//! String offsets and lengths (`si`/`sd` offsets, text0's `p`, and the length of what a
//! delete names) count UTF-16 code units, as JavaScript's strings do: in `"a😀b"` the `b`
//! is at offset 3. A character outside the Basic Multilingual Plane (most emoji) is two
//! code units, and an offset between the two cannot be represented in a Rust string.
//! text0 therefore computes on code units ([`utf16`]), as JavaScript does, so an op may
//! cut a character on the way and put it back together; but an edit whose result keeps
//! half a character — an insert or a delete at such an offset — is refused with
//! [`Json0Error::HalfCharacter`], in apply and wherever transform or compose would make
//! such a text. JavaScript would keep the lone half (and `JSON.stringify` would write it
//! as an escape such as `\ud83d`). Inserting or deleting nothing there changes nothing,
//! as in JavaScript.
//!
//! # Object keys
//!
//! `oi` on a new key puts it last, as JavaScript does for a key that is not an array
//! index; `oi` on a key that is there keeps its place. (JavaScript puts keys that are
//! array indexes, such as `"0"` or `"42"`, before all others in ascending order; recordsync
//! keeps keys in the order they were written or inserted.)
//!
//! # Where recordsync refuses what ot-json0 does
//!
//! The published `ot-json0` 1.1.0 checks less than its current source, whose stricter
//! `apply` checks (and tests) are not yet released; recordsync refuses what the current
//! source refuses: a string key into a list, a number key into an object, `na` that is not
//! a number, `lm` that is not a number, text0 ops on something that is not a string. In
//! addition, recordsync refuses, with an error naming the problem:
//!
//! - components with unknown fields or several actions (ot-json0 picks one, and carries
//!   unknown fields along), and fields of the wrong type;
//! - list indexes and offsets that are not whole numbers from 0 to 2^53 - 1 (JavaScript
//!   counts negative ones from the end, and ignores fractions);
//! - the key `__proto__` (JavaScript's object prototype);
//! - `ld`+`li` past the end of a list, and `lm` from past its end (JavaScript leaves a
//!   hole, or inserts `undefined`);
//! - a path that goes through a string, number or boolean (JavaScript reads characters
//!   and properties such as `length` of them, and silently drops what is written there),
//!   also where transform updates what an `ld` or `od` deletes;
//! - an op that leaves no document (`od` at the root without `oi`: JavaScript returns
//!   `undefined`);
//! - a sum beyond the double range, and half characters (above);
//! - a subtype that is not registered (ot-json0 passes such components through
//!   transform and compose unchanged);
//! - in transform, both sides are computed, as ot-json0's transformX does, and anything
//!   above that turns up on the side ot-json0 then drops is refused too (this happens when
//!   the two ops do not apply to one document, or mix the two forms of string edits);
//! - in transform of two ops that do not apply to one document (one has a key where the
//!   other has a list index), a list index JavaScript computes from a key as NaN
//!   ([`Json0Error::Mismatched`]). Otherwise such ops are transformed as ot-json0 does,
//!   with JavaScript's comparisons of keys and numbers (`3 <= "5"`, `"5" + 1`).
//!
//! As in ot-json0, `li` past the end of a list appends, `ld` past the end changes
//! nothing, `lm` to past the end moves to the end, `si` past the end of a string appends,
//! and `ld`/`od` values are not compared with what they delete. Where transform updates
//! what an `ld` or `od` deletes, it follows ot-json0 to the letter, JavaScript quirks
//! included (a hole becomes `null`, as ot-json0's copy through JSON makes it).
//!
//! # Checked against ot-json0
//!
//! `tests/json0_differential.rs` runs 100,000 seeded cases through ot-json0 1.1.0 (a Node
//! script, `tests/json0-differential/cases.mjs`) and through this module, and compares
//! every answer as text. The script holds ot-json0 to the rules above where they differ
//! (it refuses, at the point it happens, what recordsync refuses), and says so case by
//! case, so the test also counts how often each rule was needed.
//!
//! # Cost
//!
//! Transform takes time proportional to the product of the two ops' lengths, as in
//! ot-json0; callers bound the size of ops they accept. The work is iterative, so a long op
//! does not deepen the stack. This module does not bound how deeply a result nests
//! (`crate::json::MAX_DEPTH` is the caller's to check on what it stores).

// text0 and utf16 stay public: each is a namespace of its own functions (text0's
// `apply`, `transform`, ... on strings; utf16's `len`, `slice`, ... on code units), which
// read best qualified and would collide with json0's own if re-exported here.
pub mod text0;
pub mod utf16;

mod apply;
mod compose;
mod error;
mod invert;
mod json_form;
mod normalize;
mod op;
mod subtype;
mod transform;
mod transform_list;
mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use serde_json::Value;

pub use error::{Json0Error, SubtypeError};
pub use json_form::{op_from_json, op_to_json};
pub use op::{Action, Component, Op, Side, Step};
pub use subtype::Subtype;
pub use validate::{MAX_INDEX, ShapeError};

/// The json0 type with its subtypes: text0, built in, and any registered with
/// [`Json0::register`]. `Json0::default()` has only text0.
#[derive(Debug, Clone, Default)]
pub struct Json0 {
    subtypes: BTreeMap<String, Arc<dyn Subtype>>,
}

impl Json0 {
    pub fn new() -> Json0 {
        Json0::default()
    }

    /// Registers `subtype` under its name (replacing one of the same name), so that `t`
    /// components naming it are applied, transformed, composed and inverted by it.
    /// text0 is built in and cannot be replaced.
    pub fn register(&mut self, subtype: Arc<dyn Subtype>) -> Result<(), Json0Error> {
        if subtype.name() == text0::NAME {
            return Err(Json0Error::BuiltInSubtype);
        }
        self.subtypes.insert(subtype.name().to_owned(), subtype);
        Ok(())
    }

    /// The registered subtype called `name`.
    fn subtype(&self, name: &str) -> Result<&Arc<dyn Subtype>, Json0Error> {
        self.subtypes
            .get(name)
            .ok_or_else(|| Json0Error::UnknownSubtype(name.to_owned()))
    }

    /// Refuses components of subtypes that are not registered, before any work is done.
    fn check_subtypes<'a>(
        &self,
        op: impl IntoIterator<Item = &'a Component>,
    ) -> Result<(), Json0Error> {
        for c in op {
            if let Action::Subtype { name, .. } = &c.action {
                self.subtype(name)?;
            }
        }
        Ok(())
    }
}

/// The json0 type with text0 only, for the free functions.
static DEFAULT: LazyLock<Json0> = LazyLock::new(Json0::default);

/// [`Json0::apply`] with text0 only.
pub fn apply(doc: &Value, op: &[Component]) -> Result<Value, Json0Error> {
    DEFAULT.apply(doc, op)
}

/// [`Json0::transform`] with text0 only.
pub fn transform(op: &[Component], other: &[Component], side: Side) -> Result<Op, Json0Error> {
    DEFAULT.transform(op, other, side)
}

/// [`Json0::compose`] with text0 only.
pub fn compose(first: &[Component], second: &[Component]) -> Result<Op, Json0Error> {
    DEFAULT.compose(first, second)
}

/// [`Json0::invert`] with text0 only.
pub fn invert(op: &[Component]) -> Result<Op, Json0Error> {
    DEFAULT.invert(op)
}

/// [`Json0::normalize`] with text0 only.
pub fn normalize(op: &Value) -> Result<Op, Json0Error> {
    DEFAULT.normalize(op)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A counter subtype: its ops are numbers, added.
    #[derive(Debug)]
    struct Counter;

    impl Subtype for Counter {
        fn name(&self) -> &str {
            "counter"
        }
        fn apply(&self, snapshot: Option<&Value>, op: &Value) -> Result<Value, SubtypeError> {
            let base = snapshot.and_then(Value::as_i64).unwrap_or(0);
            let add = op.as_i64().ok_or("a counter op is a whole number")?;
            Ok(json!(base + add))
        }
        fn transform(&self, op: &Value, _: &Value, _: Side) -> Result<Value, SubtypeError> {
            Ok(if op == &json!(0) {
                json!([])
            } else {
                op.clone()
            })
        }
        fn compose(&self, first: &Value, second: &Value) -> Result<Value, SubtypeError> {
            Ok(json!(
                first.as_i64().unwrap_or(0) + second.as_i64().unwrap_or(0)
            ))
        }
        fn invert(&self, op: &Value) -> Result<Value, SubtypeError> {
            Ok(json!(-op.as_i64().ok_or("a counter op is a whole number")?))
        }
    }

    fn op(value: Value) -> Op {
        op_from_json(&value).unwrap()
    }

    #[test]
    fn a_registered_subtype_takes_its_components() {
        let mut json0 = Json0::new();
        json0.register(Arc::new(Counter)).unwrap();
        let add = op(json!([{"p":["c"],"t":"counter","o":2}]));
        assert_eq!(
            json0.apply(&json!({}), &add).unwrap(),
            json!({"c":2}),
            "on nothing"
        );
        assert_eq!(json0.apply(&json!({"c":5}), &add).unwrap(), json!({"c":7}));
        let composed = json0.compose(&add, &add).unwrap();
        assert_eq!(
            op_to_json(&composed),
            json!([{"p":["c"],"t":"counter","o":4}])
        );
        assert_eq!(
            op_to_json(&json0.invert(&add).unwrap()),
            json!([{"p":["c"],"t":"counter","o":-2}])
        );
        let zero = op(json!([{"p":["c"],"t":"counter","o":0}]));
        assert_eq!(
            json0.transform(&zero, &add, Side::Left).unwrap(),
            vec![],
            "an empty list drops it"
        );
        let err = json0
            .apply(&json!({}), &op(json!([{"p":["c"],"t":"counter","o":"x"}])))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "subtype \"counter\": a counter op is a whole number"
        );
    }

    #[test]
    fn text0_cannot_be_replaced() {
        #[derive(Debug)]
        struct Impostor;
        impl Subtype for Impostor {
            fn name(&self) -> &str {
                "text0"
            }
            fn apply(&self, _: Option<&Value>, _: &Value) -> Result<Value, SubtypeError> {
                Ok(Value::Null)
            }
            fn transform(&self, op: &Value, _: &Value, _: Side) -> Result<Value, SubtypeError> {
                Ok(op.clone())
            }
            fn compose(&self, first: &Value, _: &Value) -> Result<Value, SubtypeError> {
                Ok(first.clone())
            }
            fn invert(&self, op: &Value) -> Result<Value, SubtypeError> {
                Ok(op.clone())
            }
        }
        assert!(matches!(
            Json0::new().register(Arc::new(Impostor)),
            Err(Json0Error::BuiltInSubtype)
        ));
    }

    #[test]
    fn an_unknown_subtype_is_refused_by_every_operation() {
        let json0 = Json0::new();
        let rich = op(json!([{"p":["r"],"t":"rich-text","o":{"ops":[]}}]));
        let plain = op(json!([{"p":["x"],"oi":1}]));
        let unknown = |r: Result<Op, Json0Error>| matches!(r, Err(Json0Error::UnknownSubtype(n)) if n == "rich-text");
        assert!(matches!(
            json0.apply(&json!({}), &rich),
            Err(Json0Error::UnknownSubtype(_))
        ));
        assert!(unknown(json0.transform(&rich, &plain, Side::Left)));
        assert!(unknown(json0.transform(&plain, &rich, Side::Left)));
        assert!(unknown(json0.compose(&plain, &rich)));
        assert!(unknown(json0.invert(&rich)));
        let mut dest = plain.clone();
        assert!(matches!(
            json0.append(&mut dest, rich[0].clone()),
            Err(Json0Error::UnknownSubtype(_))
        ));
        assert!(matches!(
            json0.transform_component(&mut Vec::new(), &plain[0], &rich[0], Side::Left),
            Err(Json0Error::UnknownSubtype(_))
        ));
        assert_eq!(
            json0.invert(&rich).unwrap_err().to_string(),
            "unknown subtype \"rich-text\": only text0 is built in; register others with Json0::register"
        );
    }

    #[test]
    fn the_free_functions_use_text0_only() {
        let o = op(json!([{"p":["s"],"t":"text0","o":[{"p":0,"i":"a"}]}]));
        assert_eq!(apply(&json!({"s":"b"}), &o).unwrap(), json!({"s":"ab"}));
        assert_eq!(
            transform(&o, &o, Side::Right).unwrap(),
            op(json!([{"p":["s"],"t":"text0","o":[{"p":1,"i":"a"}]}]))
        );
        assert_eq!(
            compose(&o, &o).unwrap(),
            op(json!([{"p":["s"],"t":"text0","o":[{"p":0,"i":"aa"}]}]))
        );
        assert_eq!(
            invert(&o).unwrap(),
            op(json!([{"p":["s"],"t":"text0","o":[{"p":0,"d":"a"}]}]))
        );
        assert_eq!(
            normalize(&json!({"t":"text0","o":[]})).unwrap(),
            op(json!([{"p":[],"t":"text0","o":[]}]))
        );
    }
}
