//! Applying an op to a document (ot-json0's `apply`).
//!
//! The op is applied to a copy, component after component; on any error the caller's
//! document is untouched (ot-json0 changes the document it is given as it goes, and
//! leaves it half-changed when it throws).
//!
//! Each component's path is walked from the root through objects (by key) and lists (by
//! index) to the container of the last step; every step before the last must find a
//! value. What happens there, as in ot-json0:
//!
//! | component | at the last step |
//! |---|---|
//! | `na` | the number there plus `na`, as JavaScript adds doubles, written as JavaScript writes the sum; a sum beyond the double range is refused |
//! | `si`, `sd`, `t: text0` | the string there, edited ([`super::text0`]) |
//! | `li` | inserted before the index; past the end: appended |
//! | `ld` | the item removed; past the end: nothing happens |
//! | `ld`+`li` | the item replaced; at the end: appended; past it: refused (JavaScript leaves a hole) |
//! | `lm` | the item moved to `lm` (past the end: to the end); from past the end: refused (JavaScript inserts `undefined`) |
//! | `oi`, `od`+`oi` | the key set: a new key goes last, a key that is there keeps its place; at the root (`p: []`) the whole document is replaced |
//! | `od` | the key removed (if there); at the root the document is removed, which only a later `oi` at the root may follow |
//!
//! `ld` and `od` do not check that their value is what they remove (ot-json0 does not
//! either); the value only matters to [`super::Json0::invert`].
//!
//! Within transform ([`Json0::apply_to`]) holes become `null`, as ot-json0's copy through
//! JSON makes them.
//!
//! An object that has a key named `constructor` is not an object to ot-json0 (it tests
//! `obj.constructor === Object`), so `oi` and `od` inside one are refused, as ot-json0
//! refuses them.

use serde_json::{Map, Value};

use super::error::Json0Error;
use super::json_form::{kind, path_text};
use super::op::{Action, Component, Step};
use super::{Json0, text0};
use crate::js_number;

impl Json0 {
    /// `doc` after `op`. `doc` itself is not changed; on an error nothing is returned.
    pub fn apply(&self, doc: &Value, op: &[Component]) -> Result<Value, Json0Error> {
        self.check_subtypes(op)?;
        let mut root = Some(doc.clone());
        for c in op {
            self.apply_component(&mut root, c, Holes::Refuse)?;
        }
        root.ok_or(Json0Error::DocumentDeleted)
    }

    /// Applies one component to the document in `root` (`None`: removed by an earlier
    /// `od` at the root). Subtypes are checked by the caller.
    fn apply_component(
        &self,
        root: &mut Option<Value>,
        c: &Component,
        holes: Holes,
    ) -> Result<(), Json0Error> {
        if let Some((base, edit)) = c.text_edit()? {
            let action = match c.action {
                Action::StringInsert(_) => "si",
                _ => "sd",
            };
            return edit_text(locate(root, base)?, base, action, &[edit]);
        }
        let place = locate(root, &c.path)?;
        match &c.action {
            Action::NumberAdd(add) => {
                let Some(Value::Number(n)) = place.get() else {
                    return Err(Json0Error::NotANumber {
                        path: path_text(&c.path),
                        found: describe(place.get()),
                    });
                };
                let sum = js_number::read(n) + js_number::read(add);
                let value = match (js_number::to_json(sum), holes) {
                    (Some(number), _) => Value::Number(number),
                    (None, Holes::Null) => Value::Null,
                    (None, Holes::Refuse) => {
                        return Err(Json0Error::NotFinite {
                            what: format!("{n} + {add} at {}", path_text(&c.path)),
                            result: js_number::format(sum),
                        });
                    }
                };
                place.set(value, &c.path, holes)
            }
            Action::Text(op) => edit_text(place, &c.path, "t: text0", op),
            Action::Subtype { name, op } => {
                let subtype = self.subtype(name)?;
                let value =
                    subtype
                        .apply(place.get(), op)
                        .map_err(|source| Json0Error::Subtype {
                            name: name.clone(),
                            source,
                        })?;
                place.set(value, &c.path, holes)
            }
            Action::ListInsert(value) => {
                let (items, index) = place.list("li", &c.path)?;
                items.insert(index.min(items.len()), value.clone());
                Ok(())
            }
            Action::ListDelete(_) => {
                let (items, index) = place.list("ld", &c.path)?;
                if index < items.len() {
                    items.remove(index);
                }
                Ok(())
            }
            Action::ListReplace { new, .. } => {
                let (items, index) = place.list("ld", &c.path)?;
                set_item(items, index, new.clone(), "ld+li", &c.path, holes)
            }
            Action::ListMove { to } => {
                let (items, from) = place.list("lm", &c.path)?;
                if *to != from {
                    let item = if from < items.len() {
                        items.remove(from)
                    } else if holes == Holes::Null {
                        // JavaScript moves `undefined` there.
                        Value::Null
                    } else {
                        return Err(Json0Error::PastEnd {
                            action: "lm",
                            path: path_text(&c.path),
                            index: from,
                            len: items.len(),
                        });
                    };
                    items.insert((*to).min(items.len()), item);
                }
                Ok(())
            }
            Action::ObjectInsert(value) | Action::ObjectReplace { new: value, .. } => {
                let action = if c.has_od() { "od+oi" } else { "oi" };
                match place.object(action, &c.path)? {
                    Slot::Root(root) => *root = Some(value.clone()),
                    Slot::Key(map, key) => {
                        // An existing key keeps its place (IndexMap's insert); a new one goes last.
                        map.insert(key.to_owned(), value.clone());
                    }
                }
                Ok(())
            }
            Action::StringInsert(_) | Action::StringDelete(_) => {
                // Taken above: `text_edit` gives every si/sd its offset, or an error.
                Err(Json0Error::NoOffset {
                    field: "si",
                    path: path_text(&c.path),
                })
            }
            Action::ObjectDelete(_) => {
                match place.object("od", &c.path)? {
                    Slot::Root(root) => *root = None,
                    Slot::Key(map, key) => {
                        // Not `remove`: with `preserve_order` it moves the last key into the gap.
                        map.shift_remove(key);
                    }
                }
                Ok(())
            }
        }
    }

    /// `value` after one component, as ot-json0's transform computes it when it updates
    /// what an `ld` or `od` deletes by the other op's change below it: ot-json0 then copies
    /// the component through JSON, which writes a hole in a list, `undefined` and a number
    /// beyond the double range as `null`, so that is what they become here.
    pub(super) fn apply_to(&self, value: &Value, c: &Component) -> Result<Value, Json0Error> {
        let mut root = Some(value.clone());
        self.apply_component(&mut root, c, Holes::Null)?;
        root.ok_or(Json0Error::DocumentDeleted)
    }
}

/// What becomes of a list item or number JavaScript would hold but JSON cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holes {
    /// Refuse the component ([`Json0::apply`]).
    Refuse,
    /// Write `null`, as JSON does ([`Json0::apply_to`]).
    Null,
}

/// Where a component's last step points: the root itself, or a step in a container.
enum Place<'a> {
    Root(&'a mut Option<Value>),
    In {
        container: &'a mut Value,
        step: &'a Step,
    },
}

/// A place for `oi`/`od`.
enum Slot<'a> {
    Root(&'a mut Option<Value>),
    Key(&'a mut Map<String, Value>, &'a str),
}

/// Walks `path` to the container of its last step.
fn locate<'a>(root: &'a mut Option<Value>, path: &'a [Step]) -> Result<Place<'a>, Json0Error> {
    let Some((last, leading)) = path.split_last() else {
        return Ok(Place::Root(root));
    };
    let Some(mut here) = root.as_mut() else {
        return Err(Json0Error::Missing {
            path: path_text(&[]),
        });
    };
    for (depth, step) in leading.iter().enumerate() {
        let above = &path[..depth];
        check_step(here, step, above)?;
        let next = match (here, step) {
            (Value::Array(items), Step::Index(i)) => items.get_mut(*i),
            (Value::Object(map), Step::Key(k)) => map.get_mut(k.as_str()),
            (other, _) => {
                return Err(Json0Error::Blocked {
                    path: path_text(above),
                    found: kind(other),
                });
            }
        };
        here = next.ok_or_else(|| Json0Error::Missing {
            path: path_text(&path[..=depth]),
        })?;
    }
    check_step(here, last, leading)?;
    Ok(Place::In {
        container: here,
        step: last,
    })
}

/// ot-json0's check of each step against the value it is taken in: a list takes an index,
/// an object a key.
fn check_step(container: &Value, step: &Step, at: &[Step]) -> Result<(), Json0Error> {
    match (container, step) {
        (Value::Array(_), Step::Key(key)) => Err(Json0Error::KeyIntoList {
            path: path_text(at),
            key: key.clone(),
        }),
        (Value::Object(_), Step::Index(index)) => Err(Json0Error::IndexIntoObject {
            path: path_text(at),
            index: *index,
        }),
        _ => Ok(()),
    }
}

impl<'a> Place<'a> {
    /// The value at the place, if there is one.
    fn get(&self) -> Option<&Value> {
        match self {
            Place::Root(root) => root.as_ref(),
            Place::In { container, step } => match (&**container, step) {
                (Value::Array(items), Step::Index(i)) => items.get(*i),
                (Value::Object(map), Step::Key(k)) => map.get(k.as_str()),
                _ => None,
            },
        }
    }

    /// Puts `value` at the place (ot-json0's `elem[key] = value`).
    fn set(self, value: Value, path: &[Step], holes: Holes) -> Result<(), Json0Error> {
        match self {
            Place::Root(root) => *root = Some(value),
            Place::In { container, step } => match (container, step) {
                (Value::Array(items), Step::Index(i)) => {
                    return set_item(items, *i, value, "t", path, holes);
                }
                (Value::Object(map), Step::Key(k)) => {
                    map.insert(k.clone(), value);
                }
                (other, _) => {
                    return Err(Json0Error::Blocked {
                        path: path_text(&path[..path.len().saturating_sub(1)]),
                        found: kind(other),
                    });
                }
            },
        }
        Ok(())
    }

    /// The list and index for `li`/`ld`/`lm`.
    fn list(
        self,
        action: &'static str,
        path: &[Step],
    ) -> Result<(&'a mut Vec<Value>, usize), Json0Error> {
        let found = match self {
            Place::In {
                container: Value::Array(items),
                step: Step::Index(i),
            } => return Ok((items, *i)),
            Place::In { container, .. } => kind(container),
            Place::Root(_) => "the document's container (the path is empty)",
        };
        Err(Json0Error::NotAList {
            action,
            path: path_text(&path[..path.len().saturating_sub(1)]),
            found,
        })
    }

    /// The object and key (or the root) for `oi`/`od`.
    fn object(self, action: &'static str, path: &[Step]) -> Result<Slot<'a>, Json0Error> {
        const CONSTRUCTOR: &str =
            "an object with a key named \"constructor\" (ot-json0 does not take it for an object)";
        let found = match self {
            Place::Root(root) => return Ok(Slot::Root(root)),
            Place::In {
                container: Value::Object(map),
                step,
            } => match step {
                Step::Key(key) if !map.contains_key("constructor") => {
                    return Ok(Slot::Key(map, key));
                }
                Step::Key(_) => CONSTRUCTOR,
                // `locate` refuses an index into an object before this.
                Step::Index(_) => "an object, which takes a key",
            },
            Place::In { container, .. } => kind(container),
        };
        Err(Json0Error::NotAnObject {
            action,
            path: path_text(&path[..path.len().saturating_sub(1)]),
            found,
        })
    }
}

/// `items[index] = value` as JavaScript does it: replaces, or appends at the end; past
/// the end JavaScript leaves holes, which are refused or written as `null` (at most
/// [`crate::path::MAX_INDEX`] of them, which bounds the memory a component can ask for).
fn set_item(
    items: &mut Vec<Value>,
    index: usize,
    value: Value,
    action: &'static str,
    path: &[Step],
    holes: Holes,
) -> Result<(), Json0Error> {
    if let Some(item) = items.get_mut(index) {
        *item = value;
    } else if index == items.len()
        || (holes == Holes::Null && index - items.len() <= crate::path::MAX_INDEX)
    {
        items.resize(index, Value::Null);
        items.push(value);
    } else {
        return Err(Json0Error::PastEnd {
            action,
            path: path_text(path),
            index,
            len: items.len(),
        });
    }
    Ok(())
}

/// Applies a text0 op to the string at `place`.
fn edit_text(
    place: Place<'_>,
    path: &[Step],
    action: &'static str,
    op: &[text0::TextComponent],
) -> Result<(), Json0Error> {
    let Some(Value::String(s)) = place.get() else {
        return Err(Json0Error::NotAString {
            action,
            path: path_text(path),
            found: describe(place.get()),
        });
    };
    let edited = text0::apply(s, op)?;
    place.set(Value::String(edited), path, Holes::Refuse)
}

/// What is at a place, for messages.
fn describe(value: Option<&Value>) -> &'static str {
    match value {
        None => "nothing",
        Some(v) => kind(v),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::json0::op_from_json;

    fn run(doc: Value, op: Value) -> Result<Value, Json0Error> {
        Json0::new().apply(&doc, &op_from_json(&op).unwrap())
    }

    /// Applies and returns the result as JSON text (numbers as written, keys in order).
    fn text(doc: &str, op: Value) -> String {
        let doc: Value = serde_json::from_str(doc).unwrap();
        run(doc, op).unwrap().to_string()
    }

    #[test]
    fn na_adds_as_javascript_and_writes_the_sum_as_javascript() {
        assert_eq!(
            text(r#"{"n":0.1}"#, json!([{"p":["n"],"na":0.2}])),
            r#"{"n":0.30000000000000004}"#
        );
        assert_eq!(
            text(r#"{"n":9007199254740993}"#, json!([{"p":["n"],"na":0}])),
            r#"{"n":9007199254740992}"#
        );
        assert_eq!(
            text(r#"{"n":1.50,"m":1.50}"#, json!([{"p":["n"],"na":1}])),
            r#"{"n":2.5,"m":1.50}"#,
            "only the added number is rewritten"
        );
        assert_eq!(
            text("[1e20]", json!([{"p":[0],"na":1e20}])),
            "[200000000000000000000]"
        );
        assert_eq!(text("[1e20]", json!([{"p":[0],"na":1e21}])), "[1.1e+21]");
        assert_eq!(text("-0.5", json!([{"p":[],"na":0.5}])), "0");
        let err = run(
            json!([1.7976931348623157e308]),
            json!([{"p":[0],"na":1.7976931348623157e308}]),
        )
        .unwrap_err();
        assert!(matches!(err, Json0Error::NotFinite { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "1.7976931348623157e+308 + 1.7976931348623157e+308 at [0] is Infinity in JavaScript, which JSON cannot hold"
        );
        let big: Value = serde_json::from_str("[1e400]").unwrap();
        assert!(matches!(
            run(big, json!([{"p":[0],"na":1}])),
            Err(Json0Error::NotFinite { .. })
        ));
    }

    #[test]
    fn na_needs_a_number() {
        for (doc, path) in [
            (json!({"s":"1"}), json!(["s"])),
            (json!({}), json!(["n"])),
            (json!([null]), json!([0])),
            (json!([1]), json!([3])),
        ] {
            let err = run(doc.clone(), json!([{"p": path, "na": 1}])).unwrap_err();
            assert!(matches!(err, Json0Error::NotANumber { .. }), "{doc}: {err}");
        }
        assert_eq!(
            run(json!({"s":"1"}), json!([{"p":["s"],"na":1}]))
                .unwrap_err()
                .to_string(),
            "na needs a number at [\"s\"], but there is a string"
        );
    }

    #[test]
    fn string_edits_count_utf16_code_units() {
        assert_eq!(
            text(r#"{"s":"a😀b"}"#, json!([{"p":["s",3],"si":"€"}])),
            r#"{"s":"a😀€b"}"#
        );
        assert_eq!(
            text(r#"{"s":"a😀b"}"#, json!([{"p":["s",1],"sd":"😀"}])),
            r#"{"s":"ab"}"#
        );
        assert_eq!(
            text(r#""ab""#, json!([{"p":[9],"si":"😀"}])),
            r#""ab😀""#,
            "past the end appends"
        );
        assert_eq!(
            text(
                r#"["👩‍👩‍👧"]"#,
                json!([{"p":[0],"t":"text0","o":[{"p":8,"i":"!"},{"p":0,"d":"👩"}]}])
            ),
            r#"["‍👩‍👧!"]"#
        );
        // Inserting nothing inside a pair changes nothing, as in JavaScript.
        assert_eq!(text(r#""😀""#, json!([{"p":[1],"si":""}])), r#""😀""#);
        // An op may cut a pair and put it back together.
        assert_eq!(
            text(
                r#""😀""#,
                json!([{"p":[],"t":"text0","o":[{"p":1,"i":"x"},{"p":1,"d":"x"}]}])
            ),
            r#""😀""#
        );
    }

    #[test]
    fn a_string_edit_that_leaves_half_a_character_is_refused() {
        for op in [
            json!([{"p":["s",2],"si":"x"}]),
            json!([{"p":["s",2],"sd":"😀"}]),
            json!([{"p":["s"],"t":"text0","o":[{"p":2,"i":"x"}]}]),
        ] {
            let doc = json!({"s":"a😀b"});
            let err = run(doc.clone(), op.clone()).unwrap_err();
            assert!(
                matches!(
                    err,
                    Json0Error::HalfCharacter { .. } | Json0Error::TextMismatch { .. }
                ),
                "{op}: {err}"
            );
        }
        let err = run(json!({"s":"a😀b"}), json!([{"p":["s",2],"si":"x"}])).unwrap_err();
        assert!(
            matches!(
                err,
                Json0Error::HalfCharacter {
                    offset: 1,
                    unit: 0xD83D
                }
            ),
            "{err}"
        );
        // Two components: the string in between may not hold half a character.
        let err = run(json!("😀"), json!([{"p":[1],"si":"x"},{"p":[1],"sd":"x"}])).unwrap_err();
        assert!(matches!(err, Json0Error::HalfCharacter { .. }), "{err}");
    }

    #[test]
    fn string_edit_errors() {
        let err = run(json!("abc"), json!([{"p":[1],"sd":"x"}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the text at offset 1 is \"b\", not \"x\" as the delete says"
        );
        for (doc, op) in [
            (json!({"s":1}), json!([{"p":["s",0],"si":"x"}])),
            (json!([["a"]]), json!([{"p":[0,0],"si":"x"}])),
            (
                json!({}),
                json!([{"p":["s"],"t":"text0","o":[{"p":0,"i":"x"}]}]),
            ),
        ] {
            let err = run(doc.clone(), op).unwrap_err();
            assert!(matches!(err, Json0Error::NotAString { .. }), "{doc}: {err}");
        }
        let err = run(json!({"s":"a"}), json!([{"p":["s","x"],"si":"b"}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "si at [\"s\",\"x\"]: the last step of the path must be the string offset, a number"
        );
    }

    #[test]
    fn list_components() {
        let doc = r#"["a","b","c"]"#;
        assert_eq!(
            text(doc, json!([{"p":[1],"li":{"z":1.0,"a":2}}])),
            r#"["a",{"z":1.0,"a":2},"b","c"]"#
        );
        assert_eq!(
            text(doc, json!([{"p":[9],"li":"d"}])),
            r#"["a","b","c","d"]"#,
            "li past the end appends"
        );
        assert_eq!(
            text(doc, json!([{"p":[1],"ld":"whatever"}])),
            r#"["a","c"]"#,
            "ld does not check its value"
        );
        assert_eq!(
            text(doc, json!([{"p":[3],"ld":"x"}])),
            doc,
            "ld past the end changes nothing"
        );
        assert_eq!(
            text(doc, json!([{"p":[1],"ld":"b","li":"B"}])),
            r#"["a","B","c"]"#
        );
        assert_eq!(
            text(doc, json!([{"p":[3],"ld":null,"li":"d"}])),
            r#"["a","b","c","d"]"#,
            "at the end appends"
        );
        assert_eq!(text(doc, json!([{"p":[0],"lm":2}])), r#"["b","c","a"]"#);
        assert_eq!(text(doc, json!([{"p":[2],"lm":0}])), r#"["c","a","b"]"#);
        assert_eq!(
            text(doc, json!([{"p":[0],"lm":9}])),
            r#"["b","c","a"]"#,
            "lm past the end moves to the end"
        );
        assert_eq!(
            text(doc, json!([{"p":[7],"lm":7}])),
            doc,
            "lm to where it is does nothing"
        );
    }

    #[test]
    fn list_components_that_would_leave_a_hole_are_refused() {
        let err = run(json!([1]), json!([{"p":[3],"ld":null,"li":2}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ld+li at [3]: index 3 is past the end of the list (length 1); JavaScript would leave a hole there"
        );
        let err = run(json!([1]), json!([{"p":[1],"lm":0}])).unwrap_err();
        assert!(
            matches!(
                err,
                Json0Error::PastEnd {
                    action: "lm",
                    index: 1,
                    len: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn list_components_need_a_list() {
        for (doc, op) in [
            (json!({"l":{}}), json!([{"p":["l","k"],"li":1}])),
            (json!({"l":"abc"}), json!([{"p":["l",0],"li":1}])),
            (json!({"l":null}), json!([{"p":["l",0],"ld":1}])),
            (json!([1]), json!([{"p":[],"ld":1}])),
            (json!({"l":{}}), json!([{"p":["l","k"],"lm":0}])),
        ] {
            let err = run(doc.clone(), op.clone()).unwrap_err();
            assert!(
                matches!(err, Json0Error::NotAList { .. }),
                "{doc} {op}: {err}"
            );
        }
        let err = run(json!({"l":[1]}), json!([{"p":["l","0"],"li":1}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "[\"l\"] is a list: it takes a list index (a number), not the key \"0\""
        );
    }

    #[test]
    fn object_components() {
        let doc = r#"{"a":1,"b":2,"c":3}"#;
        assert_eq!(
            text(doc, json!([{"p":["z"],"oi":0}])),
            r#"{"a":1,"b":2,"c":3,"z":0}"#,
            "a new key goes last"
        );
        assert_eq!(
            text(doc, json!([{"p":["a"],"oi":9}])),
            r#"{"a":9,"b":2,"c":3}"#,
            "oi on a key that is there keeps its place"
        );
        assert_eq!(
            text(doc, json!([{"p":["a"],"od":1,"oi":9}])),
            r#"{"a":9,"b":2,"c":3}"#
        );
        assert_eq!(
            text(doc, json!([{"p":["a"],"od":1}])),
            r#"{"b":2,"c":3}"#,
            "the others keep their order"
        );
        assert_eq!(
            text(doc, json!([{"p":["x"],"od":1}])),
            doc,
            "od of a missing key changes nothing"
        );
        assert_eq!(
            text(doc, json!([{"p":[],"od":{},"oi":[1]}])),
            "[1]",
            "at the root: the whole document"
        );
        assert_eq!(text("5", json!([{"p":[],"oi":"x"}])), r#""x""#);
        assert_eq!(
            text(
                doc,
                json!([{"p":[],"od":{}},{"p":[],"oi":{"n":1}},{"p":["n"],"na":1}])
            ),
            r#"{"n":2}"#,
            "removed, then a new document"
        );
        assert!(matches!(
            run(json!({}), json!([{"p":[],"od":{}}])),
            Err(Json0Error::DocumentDeleted)
        ));
        assert!(matches!(
            run(json!({}), json!([{"p":[],"od":{}},{"p":["a"],"oi":1}])),
            Err(Json0Error::Missing { .. })
        ));
    }

    #[test]
    fn object_components_need_an_object() {
        for (doc, op) in [
            (json!({"o":[1]}), json!([{"p":["o",0],"oi":1}])),
            (json!({"o":"abc"}), json!([{"p":["o","k"],"od":1}])),
            (json!({"o":null}), json!([{"p":["o","k"],"oi":1}])),
            (
                json!({"o":{"constructor":1}}),
                json!([{"p":["o","k"],"oi":1}]),
            ),
        ] {
            let err = run(doc.clone(), op.clone()).unwrap_err();
            assert!(
                matches!(err, Json0Error::NotAnObject { .. }),
                "{doc} {op}: {err}"
            );
        }
        let err = run(json!({"o":{}}), json!([{"p":["o",1],"oi":1}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "[\"o\"] is an object: it takes a key (a string), not the index 1"
        );
        let err = run(
            json!({"o":{"constructor":1}}),
            json!([{"p":["o","k"],"oi":1}]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("a key named \"constructor\""),
            "{err}"
        );
    }

    #[test]
    fn paths_lead_through_objects_and_lists_that_are_there() {
        let doc = json!({"a":{"b":[{"c":1}]},"s":"text","n":null});
        assert_eq!(
            run(doc.clone(), json!([{"p":["a","b",0,"c"],"na":1}])).unwrap(),
            json!({"a":{"b":[{"c":2}]},"s":"text","n":null})
        );
        let err = run(doc.clone(), json!([{"p":["a","x","c"],"oi":1}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "nothing at [\"a\",\"x\"]: the path must lead through values that are there"
        );
        let err = run(doc.clone(), json!([{"p":["a","b",5,"c"],"oi":1}])).unwrap_err();
        assert!(matches!(err, Json0Error::Missing { .. }), "{err}");
        let err = run(doc.clone(), json!([{"p":["s",0,"x"],"oi":1}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the path runs into a string at [\"s\"]; it can only go through objects and lists"
        );
        let err = run(doc.clone(), json!([{"p":["n","k","x"],"oi":1}])).unwrap_err();
        assert!(
            matches!(err, Json0Error::Blocked { found: "null", .. }),
            "{err}"
        );
        let err = run(doc, json!([{"p":["a",0,"c"],"oi":1}])).unwrap_err();
        assert!(matches!(err, Json0Error::IndexIntoObject { .. }), "{err}");
    }

    #[test]
    fn components_apply_in_order_and_the_input_is_never_changed() {
        let doc = json!({"l":[1,2],"n":1});
        let op =
            op_from_json(&json!([{"p":["l",0],"li":0},{"p":["l",1],"na":5},{"p":["n"],"od":1}]))
                .unwrap();
        assert_eq!(Json0::new().apply(&doc, &op).unwrap(), json!({"l":[0,6,2]}));
        // The last component fails: nothing of the first ones is left anywhere.
        let failing = op_from_json(&json!([{"p":["l",0],"li":0},{"p":["n"],"sd":"x"}])).unwrap();
        assert!(Json0::new().apply(&doc, &failing).is_err());
        assert_eq!(doc, json!({"l":[1,2],"n":1}));
    }

    #[test]
    fn within_transform_holes_become_null_as_json_writes_them() {
        let json0 = Json0::new();
        let c = |v: Value| crate::json0::Component::from_json(&v).unwrap();
        assert_eq!(
            json0
                .apply_to(&json!([1]), &c(json!({"p":[3],"ld":0,"li":2})))
                .unwrap(),
            json!([1, null, null, 2])
        );
        assert_eq!(
            json0
                .apply_to(&json!([1]), &c(json!({"p":[4],"lm":0})))
                .unwrap(),
            json!([null, 1])
        );
        let max = json!(1.7976931348623157e308);
        assert_eq!(
            json0
                .apply_to(
                    &json!([max]),
                    &c(json!({"p":[0],"na":1.7976931348623157e308}))
                )
                .unwrap(),
            json!([null])
        );
        // A path into a string is refused here too (JavaScript edits a copy of one
        // character and drops it).
        assert!(
            json0
                .apply_to(&json!("abc"), &c(json!({"p":[0, 0],"si":"x"})))
                .is_err()
        );
    }
}
