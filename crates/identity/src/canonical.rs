//! RFC 8785 (JSON Canonicalization Scheme) canonical JSON, the form every id hashes and
//! every signature signs.
//!
//! Invariants (RFC 8785 §3.2): no whitespace; object members sorted by their names'
//! UTF-16 code units (not UTF-8 bytes, not code points: `"\u{fb33}"` sorts after
//! `"\u{1f600}"`); strings escaped minimally (only `"`, `\` and controls, as `\n` or
//! `\u000f`); numbers written as ECMAScript's `Number.prototype.toString` writes the
//! IEEE 754 double they denote (`4.50` is `4.5`, `1E30` is `1e+30`, `-0` is `0`).
//!
//! Consequences worth knowing:
//! - numbers are doubles: integers beyond 2^53 lose digits (`12345678901234567890`
//!   hashes as `12345678901234567000`), so values that must stay exact belong in strings;
//! - NaN and infinities have no JSON form, and a number beyond the double range
//!   (`1e400`) is refused, not rounded.
//!
//! The work is done by the `serde_json_canonicalizer` crate; this module fixes how
//! recordsync calls it and tests it with the RFC's published examples.

use serde::Serialize;
use thiserror::Error;

/// Why a value has no canonical form.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// A number that is not a finite IEEE 754 double, or a map whose keys are not
    /// strings.
    #[error(
        "the value has no RFC 8785 canonical form ({0}); numbers must be finite and within the range of a 64-bit float"
    )]
    Unrepresentable(#[source] serde_json::Error),
}

/// The RFC 8785 canonical JSON text of `value`, as UTF-8 bytes.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    serde_json_canonicalizer::to_vec(value).map_err(CanonicalError::Unrepresentable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn canon(text: &str) -> String {
        let value: Value = serde_json::from_str(text).unwrap();
        String::from_utf8(canonical_json(&value).unwrap()).unwrap()
    }

    /// RFC 8785 §3.2.2, the example of the whole transformation.
    #[test]
    fn rfc8785_section_3_2_2_example() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        let expected = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
        assert_eq!(canon(input), expected);
    }

    /// RFC 8785 §3.2.3, sorting by UTF-16 code units.
    #[test]
    fn rfc8785_section_3_2_3_sorting_example() {
        let input = r#"{
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let value: Value = serde_json::from_str(&canon(input)).unwrap();
        let order: Vec<&str> = value
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "Carriage Return",
                "One",
                "Control",
                "Latin Small Letter O With Diaeresis",
                "Euro Sign",
                "Emoji: Grinning Face",
                "Hebrew Letter Dalet With Dagesh",
            ]
        );
    }

    /// RFC 8785 Appendix B: IEEE 754 doubles (as bit patterns) and their canonical text.
    #[test]
    fn rfc8785_appendix_b_numbers() {
        let cases: [(u64, &str); 24] = [
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            // 10^21 is a double exactly (5^21 < 2^53): the first integer written with
            // an exponent.
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, expected) in cases {
            let number = f64::from_bits(bits);
            let text = String::from_utf8(canonical_json(&number).unwrap()).unwrap();
            assert_eq!(text, expected, "{bits:#018x}");
            // The same number arriving as JSON text (the workspace keeps numbers as
            // their text: serde_json's arbitrary_precision) canonicalises the same way.
            let as_text = serde_json::to_string(&number).unwrap();
            assert_eq!(canon(&as_text), expected, "{bits:#018x} from {as_text}");
        }
    }

    #[test]
    fn non_finite_and_out_of_range_numbers_are_refused() {
        assert!(canonical_json(&f64::NAN).is_err());
        assert!(canonical_json(&f64::INFINITY).is_err());
        let huge: Value = serde_json::from_str("[1e400]").unwrap();
        let error = canonical_json(&huge).unwrap_err();
        assert!(error.to_string().contains("finite"), "{error}");
    }

    /// JSON values with numbers as their text, as they arrive from outside.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e15f64..1e15).prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("\\PC{0,6}", inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// Reverses the member order of every object, recursively.
    fn reversed(value: &Value) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
            Value::Object(members) => Value::Object(
                members
                    .iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), reversed(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    proptest! {
        /// Canonical text parses back to the same value and is its own canonical form;
        /// member order and whitespace of the input do not change it.
        #[test]
        fn canonical_form_is_stable(value in json_value()) {
            let canonical = canonical_json(&value).unwrap();
            let reparsed: Value = serde_json::from_slice(&canonical).unwrap();
            prop_assert_eq!(canonical_json(&reparsed).unwrap(), canonical.clone());
            prop_assert_eq!(canonical_json(&reversed(&value)).unwrap(), canonical.clone());
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            let from_pretty: Value = serde_json::from_str(&pretty).unwrap();
            prop_assert_eq!(canonical_json(&from_pretty).unwrap(), canonical);
        }
    }
}
