//! The JSON form of ops, as ShareDB clients send them: `[{"p": ["a", 0], "li": 1}, …]`.
//!
//! Reading checks the shape ([`super::validate`]); writing gives each component's fields
//! in one order (`p`, then `na`/`si`/`sd`/`li`/`lm`/`oi`/`t`, then `o`; `ld` before `li`,
//! `od` before `oi`). Values (`li`, `oi`, `ld`, `od`, a subtype's `o`) are carried as
//! they are: numbers as written, keys in their order.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

use super::op::{Action, Component, Op, Step};
use super::text0;
use super::validate::{MAX_INDEX, ShapeError};

/// The fields a component may have besides `p`, in the order [`Component::to_json`] writes.
const ACTION_FIELDS: [&str; 10] = ["na", "si", "sd", "ld", "li", "lm", "od", "oi", "t", "o"];

impl Component {
    /// Reads one component (`{"p": [...], "oi": ...}`).
    pub fn from_json(value: &Value) -> Result<Component, ShapeError> {
        read_component(value, false)
    }

    /// Reads a component as ot-json0's `normalize` does: a missing (or null) `p` is `[]`.
    pub(super) fn from_json_lenient(value: &Value) -> Result<Component, ShapeError> {
        read_component(value, true)
    }

    /// The component as JSON.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert(
            "p".into(),
            Value::Array(self.path.iter().map(step_to_json).collect()),
        );
        let mut put = |field: &str, value: Value| {
            out.insert(field.into(), value);
        };
        match &self.action {
            Action::NumberAdd(n) => put("na", Value::Number(n.clone())),
            Action::StringInsert(s) => put("si", Value::String(s.clone())),
            Action::StringDelete(s) => put("sd", Value::String(s.clone())),
            Action::Text(op) => {
                put("t", Value::String(text0::NAME.into()));
                put("o", text0::to_json(op));
            }
            Action::ListInsert(v) => put("li", v.clone()),
            Action::ListDelete(v) => put("ld", v.clone()),
            Action::ListReplace { old, new } => {
                put("ld", old.clone());
                put("li", new.clone());
            }
            Action::ListMove { to } => put("lm", index_to_json(*to)),
            Action::ObjectInsert(v) => put("oi", v.clone()),
            Action::ObjectDelete(v) => put("od", v.clone()),
            Action::ObjectReplace { old, new } => {
                put("od", old.clone());
                put("oi", new.clone());
            }
            Action::Subtype { name, op } => {
                put("t", Value::String(name.clone()));
                put("o", op.clone());
            }
        }
        Value::Object(out)
    }
}

/// Reads an op: a JSON array of components.
pub fn op_from_json(value: &Value) -> Result<Op, ShapeError> {
    let Value::Array(items) = value else {
        return Err(ShapeError::OpNotAList { found: kind(value) });
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| Component::from_json(item).map_err(|e| e.in_component(i)))
        .collect()
}

/// An op as JSON.
pub fn op_to_json(op: &[Component]) -> Value {
    Value::Array(op.iter().map(Component::to_json).collect())
}

impl Serialize for Component {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Component {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Component, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Component::from_json(&value).map_err(D::Error::custom)
    }
}

fn read_component(value: &Value, lenient_path: bool) -> Result<Component, ShapeError> {
    let Value::Object(fields) = value else {
        return Err(ShapeError::NotAnObject { found: kind(value) });
    };
    let path = match fields.get("p") {
        Some(Value::Null) | None if lenient_path => Vec::new(),
        None => return Err(ShapeError::MissingPath),
        Some(p) => read_path(p)?,
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| *k != "p" && !ACTION_FIELDS.contains(&k.as_str()))
    {
        return Err(ShapeError::UnknownField(unknown.clone()));
    }
    let present: Vec<&str> = ACTION_FIELDS
        .into_iter()
        .filter(|f| fields.contains_key(*f))
        .collect();
    let field = |name: &str| fields.get(name).cloned().unwrap_or(Value::Null);
    let action = match present.as_slice() {
        [] => return Err(ShapeError::NoAction),
        ["na"] => match field("na") {
            Value::Number(n) => Action::NumberAdd(n),
            other => return Err(wrong_type("na", "a number", &other)),
        },
        ["si"] => Action::StringInsert(string_field("si", field("si"))?),
        ["sd"] => Action::StringDelete(string_field("sd", field("sd"))?),
        ["li"] => Action::ListInsert(field("li")),
        ["ld"] => Action::ListDelete(field("ld")),
        ["ld", "li"] => Action::ListReplace {
            old: field("ld"),
            new: field("li"),
        },
        ["lm"] => Action::ListMove {
            to: read_index(&field("lm")).ok_or_else(|| {
                wrong_type("lm", "a list index (a whole number from 0)", &field("lm"))
            })?,
        },
        ["oi"] => Action::ObjectInsert(field("oi")),
        ["od"] => Action::ObjectDelete(field("od")),
        ["od", "oi"] => Action::ObjectReplace {
            old: field("od"),
            new: field("oi"),
        },
        ["t", "o"] => {
            let name = string_field("t", field("t"))?;
            if name == text0::NAME {
                Action::Text(text0::from_json(&field("o"))?)
            } else {
                Action::Subtype {
                    name,
                    op: field("o"),
                }
            }
        }
        ["t"] => return Err(ShapeError::Combined("`t` without `o`".into())),
        ["o"] => return Err(ShapeError::Combined("`o` without `t`".into())),
        several => return Err(ShapeError::Combined(several.join(", "))),
    };
    Component::new(path, action)
}

fn read_path(value: &Value) -> Result<Vec<Step>, ShapeError> {
    let Value::Array(steps) = value else {
        return Err(ShapeError::PathNotAList { found: kind(value) });
    };
    steps
        .iter()
        .enumerate()
        .map(|(position, step)| match step {
            Value::String(key) => Ok(Step::Key(key.clone())),
            other => read_index(other)
                .map(Step::Index)
                .ok_or_else(|| ShapeError::BadStep {
                    position,
                    found: other.to_string(),
                }),
        })
        .collect()
}

/// A list index or string offset: a number whose value is a whole number from 0 to
/// [`MAX_INDEX`] (however it is spelled: `3`, `3.0` and `3e0` are all 3, as in JavaScript).
pub(super) fn read_index(value: &Value) -> Option<usize> {
    let Value::Number(n) = value else {
        return None;
    };
    let x = crate::js_number::read(n);
    // The range check makes the conversion exact.
    (x.fract() == 0.0 && (0.0..=MAX_INDEX as f64).contains(&x)).then_some(x as usize)
}

pub(super) fn index_to_json(i: usize) -> Value {
    Value::Number(Number::from(i as u64))
}

fn step_to_json(step: &Step) -> Value {
    match step {
        Step::Index(i) => index_to_json(*i),
        Step::Key(k) => Value::String(k.clone()),
    }
}

/// A path as JSON text, for messages: `["a",0]`.
pub(super) fn path_text(path: &[Step]) -> String {
    Value::Array(path.iter().map(step_to_json).collect()).to_string()
}

pub(super) fn string_field(field: &'static str, value: Value) -> Result<String, ShapeError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(wrong_type(field, "a string", &other)),
    }
}

pub(super) fn wrong_type(field: &'static str, expected: &'static str, found: &Value) -> ShapeError {
    ShapeError::WrongType {
        field,
        expected,
        found: short(found),
    }
}

/// A value for a message: its JSON, cut after 40 characters.
pub(super) fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// What kind of JSON value this is, for messages.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(value: Value) -> Result<Component, ShapeError> {
        Component::from_json(&value)
    }

    #[test]
    fn every_component_type_reads_and_writes_back() {
        for text in [
            r#"{"p":["a",1],"na":-2.50}"#,
            r#"{"p":["s",3],"si":"a😀"}"#,
            r#"{"p":[3],"sd":"x"}"#,
            r#"{"p":["l",0],"li":{"z":1,"a":[1.0]}}"#,
            r#"{"p":[0],"ld":null}"#,
            r#"{"p":[0],"ld":1,"li":2}"#,
            r#"{"p":["l",4],"lm":1}"#,
            r#"{"p":["k"],"oi":{"b":1,"a":2}}"#,
            r#"{"p":[],"od":"x"}"#,
            r#"{"p":["k"],"od":1,"oi":2}"#,
            r#"{"p":["s"],"t":"text0","o":[{"p":1,"i":"x"},{"p":0,"d":"y"}]}"#,
            r#"{"p":[],"t":"rich-text","o":{"ops":[{"insert":"a"}]}}"#,
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            let c = Component::from_json(&value).unwrap();
            assert_eq!(c.to_json().to_string(), text);
            let via_serde: Component = serde_json::from_str(text).unwrap();
            assert_eq!(via_serde, c);
            assert_eq!(serde_json::to_string(&c).unwrap(), text);
        }
    }

    #[test]
    fn field_order_is_fixed_on_writing() {
        let c = read(json!({"li": 2, "ld": 1, "p": [0]})).unwrap();
        assert_eq!(c.to_json().to_string(), r#"{"p":[0],"ld":1,"li":2}"#);
        let c = read(json!({"o": [{"i": "x", "p": 1}], "t": "text0", "p": []})).unwrap();
        assert_eq!(
            c.to_json().to_string(),
            r#"{"p":[],"t":"text0","o":[{"p":1,"i":"x"}]}"#
        );
    }

    #[test]
    fn indexes_are_whole_numbers_however_spelled() {
        let c = read(json!({"p": [3.0, "a"], "na": 1})).unwrap();
        assert_eq!(c.path(), [Step::Index(3), Step::Key("a".into())]);
        let c: Component = serde_json::from_str(r#"{"p":[1e1],"lm":2E0}"#).unwrap();
        assert_eq!(c.path(), [Step::Index(10)]);
        assert_eq!(c.action(), &Action::ListMove { to: 2 });
        for bad in [
            json!(-1),
            json!(1.5),
            json!(true),
            json!(null),
            json!([0]),
            json!(9007199254740992u64),
        ] {
            match read(json!({"p": [bad.clone()], "li": 1})) {
                Err(ShapeError::BadStep { position: 0, .. }) => {}
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_components_are_refused_with_the_reason() {
        let cases = [
            (json!(1), "a component is a JSON object, not a number"),
            (json!({"oi": 1}), "the component has no path `p`"),
            (
                json!({"p": "a", "oi": 1}),
                "the path `p` must be a JSON array, not a string",
            ),
            (json!({"p": []}), "the component does nothing"),
            (json!({"p": [], "oi": 1, "x": 2}), "unknown field `x`"),
            (
                json!({"p": ["a"], "oi": 1, "na": 1}),
                "the component combines na, oi",
            ),
            (
                json!({"p": ["a"], "li": 1, "oi": 1}),
                "the component combines li, oi",
            ),
            (
                json!({"p": ["a"], "si": "x", "sd": "y"}),
                "the component combines si, sd",
            ),
            (json!({"p": ["a"], "t": "text0"}), "`t` without `o`"),
            (json!({"p": ["a"], "o": []}), "`o` without `t`"),
            (
                json!({"p": ["a"], "na": "1"}),
                "`na` must be a number, not \"1\"",
            ),
            (
                json!({"p": ["a", 0], "si": 1}),
                "`si` must be a string, not 1",
            ),
            (json!({"p": [0], "lm": -1}), "`lm` must be a list index"),
            (json!({"p": [0], "lm": "1"}), "`lm` must be a list index"),
            (json!({"p": ["a"], "t": 1, "o": []}), "`t` must be a string"),
            (
                json!({"p": ["a"], "t": "", "o": []}),
                "`t` must name a subtype",
            ),
            (
                json!({"p": ["__proto__"], "oi": 1}),
                "\"__proto__\" cannot be used",
            ),
            (
                json!({"p": [], "t": "text0", "o": {"p": 0, "i": "x"}}),
                "`o` must be a text0 op: a JSON array",
            ),
            (
                json!({"p": [], "t": "text0", "o": [{"p": 0}]}),
                "text0 component 0 in `o`: a text0 component needs exactly one of",
            ),
            (
                json!({"p": [], "t": "text0", "o": [{"p": 0, "i": "a", "d": "b"}]}),
                "exactly one of",
            ),
            (
                json!({"p": [], "t": "text0", "o": [{"p": -1, "i": "a"}]}),
                "`p` must be a string offset",
            ),
            (
                json!({"p": [], "t": "text0", "o": [{"i": "a"}]}),
                "`p` must be a string offset",
            ),
            (
                json!({"p": [], "t": "text0", "o": [{"p": 0, "i": "a", "x": 1}]}),
                "unknown field `x` in a text0 component",
            ),
        ];
        for (value, message) in cases {
            let err = read(value.clone()).unwrap_err();
            assert!(
                err.to_string().contains(message),
                "{value}: {err} (wanted {message:?})"
            );
        }
        let na: Value = serde_json::from_str(r#"{"p":[],"na":1e400}"#).unwrap();
        assert!(
            read(na)
                .unwrap_err()
                .to_string()
                .contains("beyond what a double holds")
        );
    }

    #[test]
    fn an_op_is_a_list_and_errors_name_the_component() {
        assert_eq!(op_from_json(&json!([])).unwrap(), vec![]);
        assert_eq!(
            op_from_json(&json!({"p": []})).unwrap_err().to_string(),
            "a json0 op is a JSON array of components, not an object"
        );
        let err = op_from_json(&json!([{"p": [], "oi": 1}, {"p": []}])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("component 1: the component does nothing"),
            "{err}"
        );
    }

    #[test]
    fn normalize_reads_a_missing_path_as_the_root() {
        for value in [json!({"oi": 1}), json!({"p": null, "oi": 1})] {
            let c = Component::from_json_lenient(&value).unwrap();
            assert!(c.path().is_empty());
        }
        assert!(Component::from_json(&json!({"oi": 1})).is_err());
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = Value::String("x".repeat(100));
        assert_eq!(short(&long).chars().count(), 41);
        assert_eq!(short(&json!(1)), "1");
    }
}
