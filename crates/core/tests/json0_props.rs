//! Property tests for `recordsync_core::json0`: convergence (TP1), compose, invert and
//! normalize over random documents and random ops.
//!
//! Ops are made as ot-json0's own test generator makes them (`test/json0-generator.coffee`):
//! each component is made on the document the op so far leaves, so every op applies, and
//! two ops made on one document are a concurrent pair. Like that generator, ops set only
//! keys that are not there (`oi`), replace with `od`+`oi`, move within the list, add whole
//! numbers, and edit the strings of a pair in one form (all `si`/`sd`, or all
//! `t: text0`): outside these, ot-json0 itself does not converge (see the module docs).
//! Strings hold characters outside the BMP, and offsets fall between characters.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use recordsync_core::json0::{self, Component, Op, Side, op_from_json, op_to_json};
use serde_json::{Map, Value, json};

const KEYS: &[&str] = &["a", "b", "c", "k", "x", "😀", "émoji"];
const WORDS: &[&str] = &["", "a", "hi", "é", "😀", "a😀b", "𝄞𝄞", "👩‍👩‍👧"];

// ---- documents ----

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => (-20i64..50).prop_map(Value::from),
        3 => prop::sample::select(WORDS).prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

/// Mostly an object, as records are; sometimes another root, which json0 allows.
fn document() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => prop::collection::vec((prop::sample::select(KEYS), value()), 1..5).prop_map(|e| {
            Value::Object(e.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        }),
        1 => prop::sample::select(WORDS).prop_map(Value::from),
        1 => prop::collection::vec(value(), 0..4).prop_map(Value::Array),
    ]
}

// ---- ops ----

/// The random choices an op is made from (shrinks with proptest).
fn choices() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(any::<u32>(), 48)
}

struct Chooser<'a> {
    choices: &'a [u32],
    next: usize,
}

impl Chooser<'_> {
    fn below(&mut self, n: usize) -> usize {
        let c = self.choices.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        if n == 0 { 0 } else { c as usize % n }
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum TextForm {
    /// `si` / `sd`
    Plain,
    /// `t: text0`
    Subtype,
}

fn at<'a>(doc: &'a Value, path: &[Value]) -> &'a Value {
    path.iter().fold(doc, |here, step| match step {
        Value::String(k) => &here[k.as_str()],
        step => &here[step.as_u64().unwrap() as usize],
    })
}

/// UTF-16 offsets in `s` that fall between characters.
fn boundaries(s: &str) -> Vec<usize> {
    let mut out = vec![0];
    let mut at = 0;
    for ch in s.chars() {
        at += ch.len_utf16();
        out.push(at);
    }
    out
}

fn small_value(r: &mut Chooser) -> Value {
    match r.below(5) {
        0 => Value::Null,
        1 => Value::from(r.pick(WORDS)),
        2 => Value::from(r.below(50) as i64 - 10),
        3 => json!({"n": r.below(9), "s": r.pick(WORDS)}),
        _ => json!([r.pick(WORDS), r.below(9)]),
    }
}

/// One component that applies to `doc`, as JSON.
fn component(doc: &Value, r: &mut Chooser, form: TextForm) -> Option<Value> {
    let mut path: Vec<Value> = Vec::new();
    let mut here = doc;
    while r.chance(60) {
        match here {
            Value::Array(items) if !items.is_empty() => {
                let i = r.below(items.len());
                path.push(json!(i));
                here = &items[i];
            }
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth(r.below(map.len())).unwrap().clone();
                here = &map[&key];
                path.push(Value::String(key));
            }
            _ => break,
        }
    }
    let operand = here;
    let parent = path.split_last().map(|(_, above)| at(doc, above));
    let append = |path: &[Value], step: Value| {
        let mut p = path.to_vec();
        p.push(step);
        Value::Array(p)
    };
    let p = Value::Array(path.clone());

    if let Some(Value::Array(list)) = parent
        && r.chance(35)
    {
        return Some(json!({"p": p, "lm": r.below(list.len())}));
    }
    if r.chance(25) || matches!(operand, Value::Null | Value::Bool(_)) {
        let new = small_value(r);
        return Some(match parent {
            Some(Value::Array(_)) => json!({"p": p, "ld": operand, "li": new}),
            _ => json!({"p": p, "od": operand, "oi": new}),
        });
    }
    Some(match operand {
        Value::String(s) => {
            let offsets = boundaries(s);
            let insert = r.chance(50) || s.is_empty();
            let (at, edit) = if insert {
                let at = r.pick(&offsets);
                let word = r.pick(WORDS);
                (
                    at,
                    json!({"p": at, "i": if word.is_empty() { "z" } else { word }}),
                )
            } else {
                let from = r.below(offsets.len() - 1);
                let to = (from + 1 + r.below(2)).min(offsets.len() - 1);
                let units: Vec<u16> = s.encode_utf16().collect();
                let deleted = String::from_utf16(&units[offsets[from]..offsets[to]]).unwrap();
                (offsets[from], json!({"p": offsets[from], "d": deleted}))
            };
            match form {
                TextForm::Subtype => json!({"p": p, "t": "text0", "o": [edit]}),
                TextForm::Plain if insert => {
                    json!({"p": append(&path, json!(at)), "si": edit["i"]})
                }
                TextForm::Plain => json!({"p": append(&path, json!(at)), "sd": edit["d"]}),
            }
        }
        Value::Number(_) => json!({"p": p, "na": r.below(10) as i64 - 3}),
        Value::Array(items) => {
            if r.chance(50) || items.is_empty() {
                json!({"p": append(&path, json!(r.below(items.len() + 1))), "li": small_value(r)})
            } else {
                let i = r.below(items.len());
                json!({"p": append(&path, json!(i)), "ld": items[i]})
            }
        }
        Value::Object(map) => {
            let missing: Vec<&str> = KEYS
                .iter()
                .copied()
                .filter(|k| !map.contains_key(*k))
                .collect();
            if (r.chance(50) || map.is_empty()) && !missing.is_empty() {
                json!({"p": append(&path, json!(r.pick(&missing))), "oi": small_value(r)})
            } else if !map.is_empty() {
                let key = map.keys().nth(r.below(map.len())).unwrap();
                json!({"p": append(&path, json!(key)), "od": map[key]})
            } else {
                return None;
            }
        }
        Value::Null | Value::Bool(_) => return None,
    })
}

/// An op of up to four components made on `doc`, and the document after it.
fn make_op(doc: &Value, choices: &[u32], form: TextForm) -> (Op, Value) {
    let mut r = Chooser { choices, next: 0 };
    let mut current = doc.clone();
    let mut op = Vec::new();
    for _ in 0..r.below(5) {
        let Some(c) = component(&current, &mut r, form) else {
            continue;
        };
        let c = Component::from_json(&c).unwrap();
        let next = json0::apply(&current, std::slice::from_ref(&c)).unwrap();
        current = next;
        op.push(c);
    }
    (op, current)
}

fn form(subtype: bool) -> TextForm {
    if subtype {
        TextForm::Subtype
    } else {
        TextForm::Plain
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// TP1: both orders of a concurrent pair, each transformed against the other, end in
    /// one document. (As JSON values: the order of keys may differ, as in ot-json0.)
    #[test]
    fn concurrent_ops_converge(doc in document(), a in choices(), b in choices(), subtype: bool) {
        let (a, after_a) = make_op(&doc, &a, form(subtype));
        let (b, after_b) = make_op(&doc, &b, form(subtype));
        let a_ = json0::transform(&a, &b, Side::Left).unwrap();
        let b_ = json0::transform(&b, &a, Side::Right).unwrap();
        let one = json0::apply(&after_a, &b_).unwrap();
        let two = json0::apply(&after_b, &a_).unwrap();
        prop_assert_eq!(one, two, "a: {}\nb: {}", op_to_json(&a), op_to_json(&b));
    }

    /// Composing `a` and then `c` has the effect of applying them one after the other.
    #[test]
    fn compose_has_the_effect_of_both(doc in document(), a in choices(), c in choices(), subtype: bool) {
        let (a, after_a) = make_op(&doc, &a, form(subtype));
        let (c, after_c) = make_op(&after_a, &c, form(subtype));
        let composed = json0::compose(&a, &c).unwrap();
        prop_assert_eq!(json0::apply(&doc, &composed).unwrap(), after_c);
    }

    /// The inverse of an op undoes it.
    #[test]
    fn invert_undoes(doc in document(), a in choices(), subtype: bool) {
        let (a, after_a) = make_op(&doc, &a, form(subtype));
        let inverse = json0::invert(&a).unwrap();
        prop_assert_eq!(json0::apply(&after_a, &inverse).unwrap(), doc);
    }

    /// Normalizing keeps an op's effect, and normalizing again changes nothing — except
    /// that, as in ot-json0, a merge that changes the last component can make it merge
    /// with the one before on a second pass (`normalize_is_not_always_idempotent` below);
    /// then the op only gets shorter, and a few passes reach a fixed point.
    #[test]
    fn normalize_keeps_the_effect_and_reaches_a_fixed_point(doc in document(), a in choices(), subtype: bool) {
        let (a, after_a) = make_op(&doc, &a, form(subtype));
        let mut normal = json0::normalize(&op_to_json(&a)).unwrap();
        prop_assert_eq!(json0::apply(&doc, &normal).unwrap(), after_a.clone());
        for _ in 0..=a.len() {
            let again = json0::normalize(&op_to_json(&normal)).unwrap();
            if again == normal {
                return Ok(());
            }
            prop_assert!(again.len() < normal.len(), "{} became {}", op_to_json(&normal), op_to_json(&again));
            prop_assert_eq!(json0::apply(&doc, &again).unwrap(), after_a.clone());
            normal = again;
        }
        prop_assert!(false, "no fixed point for {}", op_to_json(&a));
    }

    /// An op read from its JSON form and written again is the same text.
    #[test]
    fn the_json_form_reads_back(doc in document(), a in choices(), subtype: bool) {
        let (a, _) = make_op(&doc, &a, form(subtype));
        let text = op_to_json(&a).to_string();
        let back = op_from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        prop_assert_eq!(op_to_json(&back).to_string(), text);
    }
}

#[test]
fn the_generator_makes_every_kind_of_component() {
    let mut seen = Map::new();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..500 {
        let doc = document().new_tree(&mut runner).unwrap().current();
        let choices = choices().new_tree(&mut runner).unwrap().current();
        for subtype in [false, true] {
            let (op, _) = make_op(&doc, &choices, form(subtype));
            for c in op_to_json(&op).as_array().unwrap() {
                let fields: Vec<&str> = c
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .filter(|k| *k != "p")
                    .collect();
                seen.insert(fields.join("+"), Value::Bool(true));
            }
        }
    }
    for kind in [
        "na", "si", "sd", "t+o", "li", "ld", "ld+li", "lm", "oi", "od", "od+oi",
    ] {
        assert!(
            seen.contains_key(kind),
            "no {kind} among {:?}",
            seen.keys().collect::<Vec<_>>()
        );
    }
}

/// ot-json0 1.1.0 gives the same: `normalize(a)` is `[li null, ld null]`, and normalizing
/// that again gives `[]` (checked with node).
#[test]
fn normalize_is_not_always_idempotent() {
    let a = json!([{"p":[0],"li":null},{"p":[0],"ld":null,"li":""},{"p":[0],"ld":""}]);
    let once = op_to_json(&json0::normalize(&a).unwrap());
    assert_eq!(once, json!([{"p":[0],"li":null},{"p":[0],"ld":null}]));
    assert_eq!(op_to_json(&json0::normalize(&once).unwrap()), json!([]));
}
