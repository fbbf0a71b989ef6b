//! Transforming a component against a concurrent one (ot-json0's `transformComponent`),
//! and whole ops through [`super::transform_list`].
//!
//! The rules are ot-json0's, case by case, so that a server and its JavaScript clients
//! transform alike:
//!
//! - Only components whose paths share the other's container are affected
//!   (`commonLengthForOps`); `na` and `t` count one step more, since they act on the value
//!   at their path.
//! - A list insert or delete before a path shifts its index; a move carries it along; a
//!   component on (or below) something the other deletes or replaces is dropped ("ops on
//!   a deleted path become no-ops"), except that our own replace survives as an insert.
//! - Two inserts at one list index, or two `oi` on one key: [`Side::Left`] goes first
//!   (or wins).
//! - Two string edits on one string are transformed as text0 components; two `t` ops of
//!   one subtype by the subtype.
//! - A delete (`ld`, `od`) of something the other changes below it records the changed
//!   value, so the delete still inverts correctly.
//!
//! ot-json0 compares path steps as JavaScript values, and so does this ([`Js`]): two ops
//! that apply to one document only ever compare indexes with indexes, but ops that do not
//! (a key where the other has a list index) are transformed as JavaScript would, with its
//! coercions (`1 <= "k"` is false, `"5"` plus one is 6). Where that gives a list index
//! JSON cannot hold (NaN, from a key that is no number), the transform is refused
//! ([`Json0Error::Mismatched`]).

use super::error::Json0Error;
use super::op::{Action, Component, Op, Side, Step, same_step};
use super::transform_list::{self, Rules};
use super::validate::MAX_INDEX;
use super::{Json0, text0};
use crate::js_number;

impl Json0 {
    /// `op` transformed so that it applies after the concurrent `other`. Of two inserts at
    /// one place, the [`Side::Left`] op's goes first. ot-json0's `transform(op, other, side)`.
    pub fn transform(
        &self,
        op: &[Component],
        other: &[Component],
        side: Side,
    ) -> Result<Op, Json0Error> {
        self.check_subtypes(op)?;
        self.check_subtypes(other)?;
        transform_list::transform(self, op, other, side)
    }

    /// Both ops transformed against each other: `(left after right, right after left)`,
    /// the left op winning ties. ot-json0's `transformX`.
    pub fn transform_x(
        &self,
        left: &[Component],
        right: &[Component],
    ) -> Result<(Op, Op), Json0Error> {
        self.check_subtypes(left)?;
        self.check_subtypes(right)?;
        transform_list::transform_x(self, left.to_vec(), right.to_vec())
    }

    /// Appends `c` transformed against the concurrent component `other` to `dest` (with
    /// [`Json0::append`]): nothing if `other` makes it meaningless, or one or more
    /// components. ot-json0's `transformComponent`.
    pub fn transform_component(
        &self,
        dest: &mut Op,
        c: &Component,
        other: &Component,
        side: Side,
    ) -> Result<(), Json0Error> {
        self.check_subtypes([c, other])?;
        self.transform_checked(dest, c, other, side)
    }

    fn transform_checked(
        &self,
        dest: &mut Op,
        c: &Component,
        other: &Component,
        side: Side,
    ) -> Result<(), Json0Error> {
        let mut c = c.clone();
        let common = common_length(other, &c);
        let common2 = common_length(&c, other);
        let cplength = c.operand_len();
        let other_cplength = other.operand_len();

        // We delete something the other changes below it: delete the changed value, so
        // that inverting the delete puts back what is there.
        if let Some(common2) = common2
            && other_cplength > cplength
            && (c.has_ld() || c.has_od())
            && loose_eq(&at(&c.path, common2), &at(&other.path, common2))
        {
            let below = Component {
                path: other.path.get(cplength..).unwrap_or_default().to_vec(),
                action: other.action.clone(),
            };
            match &mut c.action {
                Action::ListDelete(old)
                | Action::ListReplace { old, .. }
                | Action::ObjectDelete(old)
                | Action::ObjectReplace { old, .. } => *old = self.apply_to(old, &below)?,
                _ => {}
            }
        }

        let Some(common) = common else {
            return self.append_checked(dest, c);
        };
        let common_operand = cplength == other_cplength;

        // Two string edits: transform them as text0 components.
        if c.is_string_op()
            && other.is_string_op()
            && let (Some((base, ours)), Some((_, theirs))) = (c.text_edit()?, other.text_edit()?)
        {
            let edits = text0::transform_component(&ours, &theirs, side)?;
            let base = base.to_vec();
            for edit in edits {
                self.append_checked(dest, Component::from_text_edit(&base, edit))?;
            }
            return Ok(());
        }

        let other_at = at(&other.path, common);
        match &other.action {
            Action::Text(theirs) => {
                if let Action::Text(ours) = &mut c.action {
                    let transformed = text0::transform(ours, theirs, side)?;
                    if !transformed.is_empty() {
                        *ours = transformed;
                        self.append_checked(dest, c)?;
                    }
                    return Ok(());
                }
            }
            Action::Subtype {
                name: their_name,
                op: theirs,
            } => {
                if let Action::Subtype { name, op: ours } = &mut c.action
                    && name == their_name
                {
                    let subtype = self.subtype(name)?;
                    let transformed = subtype.transform(ours, theirs, side).map_err(|source| {
                        Json0Error::Subtype {
                            name: name.clone(),
                            source,
                        }
                    })?;
                    if transformed.as_array().is_none_or(|items| !items.is_empty()) {
                        *ours = transformed;
                        self.append_checked(dest, c)?;
                    }
                    return Ok(());
                }
            }
            Action::NumberAdd(_) | Action::StringInsert(_) | Action::StringDelete(_) => {}
            Action::ListReplace { new: their_li, .. } => {
                if strict_eq(&other_at, &at(&c.path, common)) {
                    if !common_operand {
                        return Ok(());
                    }
                    if c.has_ld() {
                        // Both replace one item: only one survives.
                        match &mut c.action {
                            Action::ListReplace { old, .. } if side == Side::Left => {
                                *old = their_li.clone();
                            }
                            _ => return Ok(()),
                        }
                    }
                }
            }
            Action::ListInsert(_) => {
                let ours = at(&c.path, common);
                if matches!(c.action, Action::ListInsert(_))
                    && common_operand
                    && strict_eq(&ours, &other_at)
                {
                    // Both insert at one index: left goes first.
                    if side == Side::Right {
                        shift(&mut c.path, common, 1.0)?;
                    }
                } else if le(&other_at, &ours) {
                    shift(&mut c.path, common, 1.0)?;
                }
                if let Action::ListMove { to } = &mut c.action
                    && common_operand
                    && le(&other_at, &number(*to))
                {
                    *to = moved(*to, 1)?;
                }
            }
            Action::ListDelete(_) => {
                if let Action::ListMove { to } = &mut c.action
                    && common_operand
                {
                    let from = at(&c.path, common);
                    if strict_eq(&other_at, &from) {
                        // They deleted what we move.
                        return Ok(());
                    }
                    let target = number(*to);
                    if lt(&other_at, &target)
                        || (strict_eq(&other_at, &target) && lt(&from, &target))
                    {
                        *to = moved(*to, -1)?;
                    }
                }
                let ours = at(&c.path, common);
                if lt(&other_at, &ours) {
                    shift(&mut c.path, common, -1.0)?;
                } else if strict_eq(&other_at, &ours) {
                    if other_cplength < cplength {
                        // We are below the deleted item.
                        return Ok(());
                    }
                    if c.has_ld() {
                        match &c.action {
                            // We replace what they delete: we insert instead.
                            Action::ListReplace { new, .. } => {
                                c.action = Action::ListInsert(new.clone());
                            }
                            // Both delete it.
                            _ => return Ok(()),
                        }
                    }
                }
            }
            Action::ListMove { to: their_to } => {
                let their_from = other_at;
                let their_to = number(*their_to);
                let ours = at(&c.path, common);
                if let Action::ListMove { to } = &mut c.action
                    && cplength == other_cplength
                {
                    let (from, target) = (ours, number(*to));
                    if !strict_eq(&their_from, &their_to) {
                        if strict_eq(&from, &their_from) {
                            // Both move one item: left's move wins.
                            if side == Side::Right {
                                return Ok(());
                            }
                            set_step(&mut c.path, common, their_to.to_number())?;
                            if strict_eq(&from, &target) {
                                *to = index_of(their_to.to_number())?;
                            }
                        } else {
                            // They moved something around ours: where is ours now?
                            if gt(&from, &their_from) {
                                shift(&mut c.path, common, -1.0)?;
                            }
                            if gt(&from, &their_to) {
                                shift(&mut c.path, common, 1.0)?;
                            } else if strict_eq(&from, &their_to) && gt(&their_from, &their_to) {
                                shift(&mut c.path, common, 1.0)?;
                                if strict_eq(&from, &target) {
                                    *to = moved(*to, 1)?;
                                }
                            }
                            // And where does it go?
                            if gt(&target, &their_from)
                                || (strict_eq(&target, &their_from) && gt(&target, &from))
                            {
                                *to = moved(*to, -1)?;
                            }
                            if gt(&target, &their_to) {
                                *to = moved(*to, 1)?;
                            } else if strict_eq(&target, &their_to) {
                                let same_direction = (gt(&their_to, &their_from)
                                    && gt(&target, &from))
                                    || (lt(&their_to, &their_from) && lt(&target, &from));
                                if same_direction {
                                    if side == Side::Right {
                                        *to = moved(*to, 1)?;
                                    }
                                } else if gt(&target, &from) {
                                    *to = moved(*to, 1)?;
                                } else if strict_eq(&target, &their_from) {
                                    *to = moved(*to, -1)?;
                                }
                            }
                        }
                    }
                } else if matches!(c.action, Action::ListInsert(_)) && common_operand {
                    if gt(&ours, &their_from) {
                        shift(&mut c.path, common, -1.0)?;
                    }
                    if gt(&ours, &their_to) {
                        shift(&mut c.path, common, 1.0)?;
                    }
                } else if strict_eq(&ours, &their_from) {
                    // We act on the moved item (or below it): follow it.
                    set_step(&mut c.path, common, their_to.to_number())?;
                } else {
                    if gt(&ours, &their_from) {
                        shift(&mut c.path, common, -1.0)?;
                    }
                    if gt(&ours, &their_to)
                        || (strict_eq(&ours, &their_to) && gt(&their_from, &their_to))
                    {
                        shift(&mut c.path, common, 1.0)?;
                    }
                }
            }
            Action::ObjectReplace { new: their_oi, .. } => {
                if strict_eq(&at(&c.path, common), &other_at) {
                    if !(c.oi().is_some() && common_operand) {
                        // What we change is gone.
                        return Ok(());
                    }
                    if side == Side::Right {
                        // Both set the key: left wins.
                        return Ok(());
                    }
                    // We win: replace what they put there.
                    c.action = match c.action {
                        Action::ObjectInsert(new) | Action::ObjectReplace { new, .. } => {
                            Action::ObjectReplace {
                                old: their_oi.clone(),
                                new,
                            }
                        }
                        other => other,
                    };
                }
            }
            Action::ObjectInsert(their_oi) => {
                if c.oi().is_some() && strict_eq(&at(&c.path, common), &other_at) {
                    // Both insert the key: left wins, and deletes what right inserted.
                    if side == Side::Right {
                        return Ok(());
                    }
                    let delete_theirs = Component {
                        path: c.path.clone(),
                        action: Action::ObjectDelete(their_oi.clone()),
                    };
                    self.append_checked(dest, delete_theirs)?;
                }
            }
            Action::ObjectDelete(_) => {
                if loose_eq(&at(&c.path, common), &other_at) {
                    if !common_operand {
                        return Ok(());
                    }
                    match &c.action {
                        // We set the key they delete: we insert it instead.
                        Action::ObjectReplace { new, .. } => {
                            c.action = Action::ObjectInsert(new.clone());
                        }
                        Action::ObjectInsert(_) => {}
                        _ => return Ok(()),
                    }
                }
            }
        }
        self.append_checked(dest, c)
    }
}

impl Rules for Json0 {
    type Component = Component;

    fn transform_component(
        &self,
        dest: &mut Op,
        c: &Component,
        other: &Component,
        side: Side,
    ) -> Result<(), Json0Error> {
        self.transform_checked(dest, c, other, side)
    }

    fn append(&self, op: &mut Op, c: Component) -> Result<(), Json0Error> {
        self.append_checked(op, c)
    }
}

/// ot-json0's `commonLengthForOps(a, b)`: if `b` works inside the container `a` works in,
/// the index of `a`'s step in that container (-1 when `a` is at the root); otherwise none.
fn common_length(a: &Component, b: &Component) -> Option<isize> {
    let alen = a.operand_len();
    let blen = b.operand_len();
    if alen == 0 {
        return Some(-1);
    }
    if blen == 0 {
        return None;
    }
    let (alen, blen) = (alen - 1, blen - 1);
    for i in 0..alen {
        if i >= blen || !same_step(a.path.get(i), b.path.get(i)) {
            return None;
        }
    }
    isize::try_from(alen).ok()
}

/// The step at `i`: none for -1 or past the end (JavaScript's `undefined`).
fn step(path: &[Step], i: isize) -> Option<&Step> {
    usize::try_from(i).ok().and_then(|i| path.get(i))
}

/// A path step or list index as the JavaScript value ot-json0 compares.
#[derive(Debug, Clone)]
enum Js {
    /// Past the end of a path, or ot-json0's index -1.
    Undefined,
    Number(f64),
    String(String),
}

impl Js {
    /// JavaScript's ToNumber.
    fn to_number(&self) -> f64 {
        match self {
            Js::Undefined => f64::NAN,
            Js::Number(x) => *x,
            Js::String(s) => js_number::from_string(s),
        }
    }
}

/// The step at `i` as a JavaScript value.
fn at(path: &[Step], i: isize) -> Js {
    match step(path, i) {
        None => Js::Undefined,
        Some(Step::Index(n)) => number(*n),
        Some(Step::Key(key)) => Js::String(key.clone()),
    }
}

fn number(n: usize) -> Js {
    // Indexes are at most 2^53 - 1: exact as doubles.
    Js::Number(n as f64)
}

/// JavaScript's `===`.
fn strict_eq(a: &Js, b: &Js) -> bool {
    match (a, b) {
        (Js::Undefined, Js::Undefined) => true,
        (Js::Number(x), Js::Number(y)) => x == y,
        (Js::String(x), Js::String(y)) => x == y,
        _ => false,
    }
}

/// JavaScript's `==` (a string meets a number as the number it converts to).
fn loose_eq(a: &Js, b: &Js) -> bool {
    match (a, b) {
        (Js::Undefined, _) | (_, Js::Undefined) => strict_eq(a, b),
        (Js::String(x), Js::String(y)) => x == y,
        _ => a.to_number() == b.to_number(),
    }
}

/// JavaScript's `<`: two strings by UTF-16 code units, anything else as numbers (NaN, as
/// from `undefined`, is never less or more).
fn lt(a: &Js, b: &Js) -> bool {
    match (a, b) {
        (Js::String(x), Js::String(y)) => x.encode_utf16().lt(y.encode_utf16()),
        _ => a.to_number() < b.to_number(),
    }
}

/// JavaScript's `<=`.
fn le(a: &Js, b: &Js) -> bool {
    match (a, b) {
        (Js::String(x), Js::String(y)) => x.encode_utf16().le(y.encode_utf16()),
        _ => a.to_number() <= b.to_number(),
    }
}

fn gt(a: &Js, b: &Js) -> bool {
    lt(b, a)
}

/// A number JavaScript computed for a list index, if it is one.
fn index_of(x: f64) -> Result<usize, Json0Error> {
    // The range check makes the conversion exact.
    if x.fract() == 0.0 && (0.0..=MAX_INDEX as f64).contains(&x) {
        Ok(x as usize)
    } else {
        Err(Json0Error::Mismatched(format!(
            "the list index {}",
            js_number::format(x)
        )))
    }
}

/// `n + delta` for a list index that is a number.
fn moved(n: usize, delta: isize) -> Result<usize, Json0Error> {
    n.checked_add_signed(delta)
        .filter(|m| *m <= MAX_INDEX)
        .ok_or(Json0Error::IndexOutOfRange)
}

/// ot-json0's `c.p[i]++` (`delta` 1) or `c.p[i]--` (-1), with JavaScript's conversion of a
/// key.
fn shift(path: &mut [Step], i: isize, delta: f64) -> Result<(), Json0Error> {
    let x = at(path, i).to_number() + delta;
    set_step(path, i, x)
}

/// ot-json0's `c.p[i] = x`.
fn set_step(path: &mut [Step], i: isize, x: f64) -> Result<(), Json0Error> {
    let index = index_of(x)?;
    let Some(slot) = usize::try_from(i).ok().and_then(|at| path.get_mut(at)) else {
        return Err(Json0Error::Mismatched(
            "a list index set past the end of a path".into(),
        ));
    };
    *slot = Step::Index(index);
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::json0::{op_from_json, op_to_json};

    fn transform(op: Value, other: Value, side: Side) -> Result<Value, Json0Error> {
        let (op, other) = (op_from_json(&op).unwrap(), op_from_json(&other).unwrap());
        Json0::new()
            .transform(&op, &other, side)
            .map(|t| op_to_json(&t))
    }

    #[test]
    fn components_on_other_containers_are_unchanged() {
        for (a, b) in [
            (json!([{"p":["a",0],"li":1}]), json!([{"p":["b",0],"li":2}])),
            (json!([{"p":["a"],"na":1}]), json!([{"p":["b"],"od":2}])),
            (
                json!([{"p":["s",1],"si":"x"}]),
                json!([{"p":["t",0],"sd":"y"}]),
            ),
        ] {
            assert_eq!(transform(a.clone(), b.clone(), Side::Left).unwrap(), a);
            assert_eq!(transform(a.clone(), b, Side::Right).unwrap(), a);
        }
    }

    #[test]
    fn a_key_meets_an_index_as_in_javascript() {
        // li at index 3 bumps the key "5": JavaScript compares 3 <= "5" and adds 1 to "5".
        assert_eq!(
            transform(
                json!([{"p":["5"],"na":1}]),
                json!([{"p":[3],"li":0}]),
                Side::Left
            )
            .unwrap(),
            json!([{"p":[6],"na":1}])
        );
        // od of the key "1" meets the index 1 with `==`: below it, we are dropped.
        assert_eq!(
            transform(
                json!([{"p":[1,"x"],"oi":2}]),
                json!([{"p":["1"],"od":0}]),
                Side::Left
            )
            .unwrap(),
            json!([])
        );
        // A key that is no number becomes NaN in JavaScript: refused.
        let err = transform(
            json!([{"p":["b"],"od":1}]),
            json!([{"p":["a b"],"lm":1}]),
            Side::Right,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the two ops do not apply to the same document: transforming them gives the list index NaN"
        );
    }

    #[test]
    fn a_deleted_value_records_the_changes_below_it_as_json_carries_them() {
        assert_eq!(
            transform(
                json!([{"p":["l"],"od":[]}]),
                json!([{"p":["l",2],"ld":0,"li":5}]),
                Side::Left
            )
            .unwrap(),
            json!([{"p":["l"],"od":[null,null,5]}])
        );
        assert_eq!(
            transform(
                json!([{"p":["s"],"od":"abc"}]),
                json!([{"p":["s",1],"si":"😀"}]),
                Side::Left
            )
            .unwrap(),
            json!([{"p":["s"],"od":"a😀bc"}])
        );
        // An edit that would cut a character in what the delete carries: refused.
        let err = transform(
            json!([{"p":["s"],"od":"a😀"}]),
            json!([{"p":["s",2],"si":"x"}]),
            Side::Left,
        )
        .unwrap_err();
        assert!(matches!(err, Json0Error::HalfCharacter { .. }), "{err}");
    }

    #[test]
    fn string_edits_in_the_two_forms_are_not_transformed_against_each_other() {
        // As in ot-json0: si/sd and t: text0 on one string pass each other unchanged.
        let si = json!([{"p":["s",0],"si":"x"}]);
        let t = json!([{"p":["s"],"t":"text0","o":[{"p":0,"i":"y"}]}]);
        assert_eq!(transform(si.clone(), t.clone(), Side::Right).unwrap(), si);
        assert_eq!(transform(t.clone(), si, Side::Right).unwrap(), t);
    }

    #[test]
    fn two_string_edits_split_and_merge_as_text0() {
        assert_eq!(
            transform(
                json!([{"p":["s",0],"sd":"a😀b"}]),
                json!([{"p":["s",3],"si":"x"}]),
                Side::Left
            )
            .unwrap(),
            json!([{"p":["s",0],"sd":"a😀"},{"p":["s",1],"sd":"b"}])
        );
        // An insert of nothing inside a pair splits nothing.
        assert_eq!(
            transform(
                json!([{"p":["s",0],"sd":"😀"}]),
                json!([{"p":["s",1],"si":""}]),
                Side::Left
            )
            .unwrap(),
            json!([{"p":["s",0],"sd":"😀"}])
        );
        let err = transform(
            json!([{"p":["s",0],"sd":"😀"}]),
            json!([{"p":["s",1],"si":"x"}]),
            Side::Left,
        )
        .unwrap_err();
        assert!(matches!(err, Json0Error::HalfCharacter { .. }), "{err}");
        let err = transform(
            json!([{"p":["s",0],"sd":"ab"}]),
            json!([{"p":["s",1],"sd":"x"}]),
            Side::Left,
        )
        .unwrap_err();
        assert!(matches!(err, Json0Error::DeletesDiffer { .. }), "{err}");
    }

    #[test]
    fn ties_go_to_the_left() {
        let ours = json!([{"p":["l",1],"li":"a"}]);
        let theirs = json!([{"p":["l",1],"li":"b"}]);
        assert_eq!(
            transform(ours.clone(), theirs.clone(), Side::Left).unwrap(),
            ours
        );
        assert_eq!(
            transform(ours, theirs, Side::Right).unwrap(),
            json!([{"p":["l",2],"li":"a"}])
        );
    }

    #[test]
    fn transform_x_gives_both_sides() {
        let left = op_from_json(&json!([{"p":[0],"li":"a"}])).unwrap();
        let right = op_from_json(&json!([{"p":[0],"li":"b"},{"p":[2],"ld":"x"}])).unwrap();
        let (l, r) = Json0::new().transform_x(&left, &right).unwrap();
        assert_eq!(op_to_json(&l), json!([{"p":[0],"li":"a"}]));
        assert_eq!(
            op_to_json(&r),
            json!([{"p":[1],"li":"b"},{"p":[3],"ld":"x"}])
        );
        let mut dest = Vec::new();
        Json0::new()
            .transform_component(&mut dest, &right[1], &left[0], Side::Right)
            .unwrap();
        assert_eq!(op_to_json(&dest), json!([{"p":[3],"ld":"x"}]));
    }

    /// A delete split once per insert, each split inside the last: ot-json0 recurses once
    /// per split. Here the work is a loop, so it fits in a small stack.
    #[test]
    fn a_long_chain_of_splits_does_not_deepen_the_stack() {
        const SPLITS: usize = 1000;
        let result = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(|| {
                let text = "a".repeat(SPLITS + 1);
                let inserts: Vec<Value> = (0..SPLITS)
                    .map(|i| json!({"p":[SPLITS - i], "si":"x"}))
                    .collect();
                let left = op_from_json(&Value::Array(inserts)).unwrap();
                let right = op_from_json(&json!([{"p":[0],"sd": text}])).unwrap();
                let json0 = Json0::new();
                let (l, r) = json0.transform_x(&left, &right).unwrap();
                let doc = Value::String(text);
                let one = json0.apply(&json0.apply(&doc, &left).unwrap(), &r).unwrap();
                let two = json0
                    .apply(&json0.apply(&doc, &right).unwrap(), &l)
                    .unwrap();
                (one, two)
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(result.0, result.1);
        assert_eq!(result.0, Value::String("x".repeat(SPLITS)));
    }
}
