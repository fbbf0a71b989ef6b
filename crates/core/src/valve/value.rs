//! JavaScript values as rules see them, and JavaScript's conversions between them.
//!
//! Record data is not copied into rule values: a JSON object or array is referenced where
//! it lies (`Value::Json`), and only scalars are converted.

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::Value as Json;

use super::ast::JsRegex;

#[derive(Debug, Clone)]
pub enum Value<'a> {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// A JSON object or array from record or user data.
    Json(&'a Json),
    /// An array built by the rule (a literal, or what `match` returns).
    Array(Rc<Vec<Value<'a>>>),
    Regex(Arc<JsRegex>),
    /// A function used as a value (`_`, or a method read without calling it).
    Function(&'static str),
}

/// The double JavaScript reads for a number token, as a rule running in deepstream sees
/// it: beyond the double range it is ±Infinity (or ±0), not an error. Numbers are kept as
/// written (serde_json's `arbitrary_precision`), so this parses the token itself.
fn js_number_value(n: &serde_json::Number) -> f64 {
    n.as_str().parse().unwrap_or(f64::NAN)
}

impl<'a> Value<'a> {
    pub fn from_json(json: &'a Json) -> Value<'a> {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Num(js_number_value(n)),
            Json::String(s) => Value::Str(Cow::Borrowed(s)),
            Json::Array(_) | Json::Object(_) => Value::Json(json),
        }
    }

    pub fn is_nullish(&self) -> bool {
        matches!(self, Value::Undefined | Value::Null)
    }

    pub fn truthy(&self) -> bool {
        match self {
            Value::Undefined | Value::Null => false,
            Value::Bool(b) => *b,
            Value::Num(n) => *n != 0.0 && !n.is_nan(),
            Value::Str(s) => !s.is_empty(),
            _ => true,
        }
    }

    pub fn type_of(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Null | Value::Json(_) | Value::Array(_) | Value::Regex(_) => "object",
            Value::Bool(_) => "boolean",
            Value::Num(_) => "number",
            Value::Str(_) => "string",
            Value::Function(_) => "function",
        }
    }

    fn is_object(&self) -> bool {
        matches!(
            self,
            Value::Json(_) | Value::Array(_) | Value::Regex(_) | Value::Function(_)
        )
    }

    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Value::Undefined => "undefined".into(),
            Value::Null => "null".into(),
            Value::Str(s) if s.len() > 40 => {
                format!("string {:?}...", &s[..s.floor_char_boundary(40)])
            }
            Value::Str(s) => format!("string {s:?}"),
            other => other.type_of().into(),
        }
    }
}

/// JavaScript's ToString. `budget` is charged for the bytes produced.
pub fn to_string(v: &Value<'_>) -> String {
    match v {
        Value::Undefined => "undefined".into(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Num(n) => number_to_string(*n),
        Value::Str(s) => s.to_string(),
        Value::Json(Json::Array(items)) => join(items.iter().map(Value::from_json)),
        Value::Json(_) => "[object Object]".into(),
        Value::Array(items) => join(items.iter().cloned()),
        Value::Regex(r) => format!("/{}/{}", r.source, r.flags),
        Value::Function(name) => format!("function {name}() {{ [native code] }}"),
    }
}

/// Array.prototype.join(","): null and undefined become empty strings.
fn join<'a>(items: impl Iterator<Item = Value<'a>>) -> String {
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if !item.is_nullish() {
            out.push_str(&to_string(&item));
        }
    }
    out
}

/// ToPrimitive: objects become their string form (arrays join, objects
/// `[object Object]`); primitives stay.
pub fn to_primitive<'a>(v: &Value<'a>) -> Value<'a> {
    if v.is_object() {
        Value::Str(Cow::Owned(to_string(v)))
    } else {
        v.clone()
    }
}

/// JavaScript's ToNumber.
pub fn to_number(v: &Value<'_>) -> f64 {
    match v {
        Value::Undefined => f64::NAN,
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Num(n) => *n,
        Value::Str(s) => string_to_number(s),
        other => to_number(&to_primitive(other)),
    }
}

/// JavaScript's StringToNumber.
pub use crate::js_number::from_string as string_to_number;

/// Number.prototype.toString() for radix 10.
pub use crate::js_number::format as number_to_string;

/// ToInt32, for the bitwise operators.
pub fn to_int32(n: f64) -> i32 {
    if !n.is_finite() {
        return 0;
    }
    let m = n.trunc().rem_euclid(4_294_967_296.0);
    (m as u32) as i32
}

/// `===`.
pub fn strict_equals(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Num(x), Value::Num(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Json(x), Value::Json(y)) => std::ptr::eq(*x, *y),
        (Value::Array(x), Value::Array(y)) => Rc::ptr_eq(x, y),
        (Value::Regex(x), Value::Regex(y)) => Arc::ptr_eq(x, y),
        (Value::Function(x), Value::Function(y)) => x == y,
        _ => false,
    }
}

/// SameValueZero, what `Array.prototype.includes` compares with (NaN equals NaN).
pub fn same_value_zero(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) if x.is_nan() && y.is_nan() => true,
        _ => strict_equals(a, b),
    }
}

/// `==`, with JavaScript's conversions.
pub fn loose_equals(a: &Value<'_>, b: &Value<'_>) -> bool {
    use Value::*;
    match (a, b) {
        (Undefined | Null, Undefined | Null) => true,
        (Undefined | Null, _) | (_, Undefined | Null) => false,
        (Num(_), Str(_)) | (Str(_), Num(_)) => to_number(a) == to_number(b),
        (Bool(_), _) => loose_equals(&Num(to_number(a)), b),
        (_, Bool(_)) => loose_equals(a, &Num(to_number(b))),
        (x, y) if x.is_object() && !y.is_object() => loose_equals(&to_primitive(x), y),
        (x, y) if !x.is_object() && y.is_object() => loose_equals(x, &to_primitive(y)),
        _ => strict_equals(a, b),
    }
}

/// Compares strings as JavaScript does: by UTF-16 code units.
pub fn compare_strings(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Length in UTF-16 code units, what `.length` reports.
pub fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_in_javascript() {
        for (n, s) in [
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (123.456, "123.456"),
            (-0.0, "0"),
            (2.5e-10, "2.5e-10"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(number_to_string(n), s, "{n}");
        }
    }

    #[test]
    fn strings_read_as_numbers_as_in_javascript() {
        assert_eq!(string_to_number(" 12 "), 12.0);
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("0x10"), 16.0);
        assert!(string_to_number("12px").is_nan());
        assert!(string_to_number("inf").is_nan());
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
    }

    #[test]
    fn loose_equality_converts() {
        let s = |x: &'static str| Value::Str(Cow::Borrowed(x));
        assert!(loose_equals(&Value::Num(1.0), &s("1")));
        assert!(loose_equals(&Value::Bool(true), &s("1")));
        assert!(loose_equals(&Value::Null, &Value::Undefined));
        assert!(!loose_equals(&Value::Null, &Value::Num(0.0)));
        let arr = serde_json::json!([1, 2]);
        assert!(loose_equals(&Value::Json(&arr), &s("1,2")));
    }
}
