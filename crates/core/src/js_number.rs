//! Numbers as JavaScript reads, adds and writes them.
//!
//! recordsync keeps every number as the text it was written in (serde_json's
//! `arbitrary_precision`), and never computes with numbers — except where a protocol
//! defines arithmetic the way JavaScript does it: json0's `na` ([`crate::json0`]) adds
//! two doubles, and the result is written as JavaScript writes it. This module is that
//! bridge: the double JavaScript reads for a number token ([`read`]) or converts a string
//! to ([`from_string`]), and the text `Number.prototype.toString` (and so
//! `JSON.stringify`) writes for a double ([`format()`], [`to_json`]).

use serde_json::Number;

/// The double JavaScript's `JSON.parse` reads for `n`: the nearest double, ±Infinity
/// beyond the double range (`1e400`), ±0 below it.
pub fn read(n: &Number) -> f64 {
    // A JSON number token is always valid Rust float syntax.
    n.as_str().parse().unwrap_or(f64::NAN)
}

/// The number JavaScript converts the string `s` to (ECMAScript's StringToNumber, as in
/// `Number(s)` or `s < 1`): white space around it is ignored, the empty string is 0,
/// `0x`/`0o`/`0b` prefixes give hexadecimal, octal and binary integers, `Infinity` may be
/// signed, and anything else that is not a decimal literal is NaN.
pub fn from_string(s: &str) -> f64 {
    let t = s.trim_matches(is_js_whitespace);
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(digits) = t.strip_prefix(prefix) {
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return f64::NAN;
            }
            return digits.chars().fold(0.0, |acc, c| {
                acc * f64::from(radix) + f64::from(c.to_digit(radix).unwrap_or(0))
            });
        }
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "Infinity" {
        return if t.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    // Rust's parser also takes "inf", "NaN" and the like: allow decimal literals only.
    if !is_decimal_literal(unsigned) {
        return f64::NAN;
    }
    t.parse().unwrap_or(f64::NAN)
}

/// ECMAScript's StrUnsignedDecimalLiteral without `Infinity`: `1`, `1.`, `1.5`, `.5`, each
/// with an optional exponent (`e`/`E`, an optional sign, digits).
fn is_decimal_literal(s: &str) -> bool {
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mantissa_ok =
        digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// White space and line terminators as ECMAScript trims them: Rust's `is_whitespace`
/// with U+FEFF and without U+0085.
fn is_js_whitespace(c: char) -> bool {
    (c.is_whitespace() && c != '\u{0085}') || c == '\u{feff}'
}

/// `x` as ECMAScript's `Number::toString(x)` writes it: the shortest digits that read
/// back as `x`, in plain notation for `1e-7 <= |x| < 1e21` and as `d.ddde±n` otherwise;
/// `-0` is written `0`; `NaN`, `Infinity` and `-Infinity` as JavaScript spells them
/// (which JSON cannot hold: see `js_number::to_json`).
pub fn format(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return "0".into();
    }
    // Rust writes the shortest round-trip digits, like ECMAScript: `d.ddde<n-1>`.
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits = even_on_tie(mantissa.replace('.', ""), exponent, x.abs());
    // At most 17 digits and |exponent| <= 324: these conversions cannot truncate.
    let k = digits.len() as i32;
    let n = exponent.parse::<i32>().unwrap_or(0) + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (whole, fraction) = digits.split_at(n as usize);
        format!("{whole}.{fraction}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let sign = if e >= 0 { '+' } else { '-' };
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{first}{fraction}e{sign}{}", e.abs())
    };
    if x < 0.0 { format!("-{body}") } else { body }
}

/// ECMAScript's tie-break between two shortest spellings: where `x` (positive) lies
/// exactly halfway between the shortest `digits` (times 10^`exponent`, `d.ddd` form) and
/// the same digits with the last one a step lower or higher, and both read back as `x`,
/// Number::toString takes the one whose last digit is even; Rust's shortest formatting
/// rounds such a tie up. (-1910252516433600.25 is a double: JavaScript writes
/// -1910252516433600.2, Rust 1910252516433600.3.) Only an odd last digit can lose a tie.
fn even_on_tie(digits: String, exponent: &str, x: f64) -> String {
    let Some(last) = digits.bytes().last().map(|b| b - b'0') else {
        return digits;
    };
    if last % 2 == 0 || digits.len() < 2 {
        return digits;
    }
    let prefix = &digits[..digits.len() - 1];
    for other in [last - 1, last + 1] {
        if other > 9 {
            continue;
        }
        let candidate = format!("{prefix}{other}");
        let (head, tail) = candidate.split_at(1);
        // Cheap first: most spellings have no neighbour that reads back as x.
        if format!("{head}.{tail}e{exponent}").parse::<f64>() != Ok(x) {
            continue;
        }
        // The exact decimal value of x (a double has at most 767 significant digits),
        // compared with the midpoint of the two spellings.
        let exact = format!("{x:.800e}");
        let Some((mantissa, exact_exponent)) = exact.split_once('e') else {
            return digits;
        };
        let exact_digits = mantissa.replace('.', "");
        let midpoint = format!("{prefix}{}5", other.min(last));
        if exact_exponent == exponent && exact_digits.trim_end_matches('0') == midpoint {
            return candidate;
        }
    }
    digits
}

/// `x` as the JSON number `JSON.stringify` writes, or `None` if `x` is not finite
/// (`JSON.stringify` writes `null` for those; recordsync refuses to store them).
pub fn to_json(x: f64) -> Option<Number> {
    if !x.is_finite() {
        return None;
    }
    format(x).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_spelling_of_doubles() {
        let cases = [
            (3990.8571428571427, "3990.8571428571427"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789e12, "123456789000000000000"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (-0.0, "0"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-2.5, "-2.5"),
            (9007199254740993.0, "9007199254740992"),
            // Exactly halfway between two shortest spellings: the even one, as V8 writes.
            (-1910252516433600.0 - 0.25, "-1910252516433600.2"),
            (1910252516433600.0 + 0.75, "1910252516433600.8"),
            (0.5, "0.5"),
            (2f64.powi(70), "1.1805916207174113e+21"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (x, js) in cases {
            assert_eq!(format(x), js, "{x:e}");
        }
    }

    #[test]
    fn tokens_read_as_javascript_reads_them() {
        let read_text = |s: &str| read(&s.parse().unwrap());
        assert_eq!(read_text("1.50"), 1.5);
        assert_eq!(read_text("1e400"), f64::INFINITY);
        assert_eq!(read_text("-1e400"), f64::NEG_INFINITY);
        assert_eq!(read_text("1e-400"), 0.0);
        assert_eq!(read_text("9007199254740993"), 9007199254740992.0);
    }

    #[test]
    fn strings_convert_as_in_javascript() {
        let cases = [
            ("", 0.0),
            (" 12 ", 12.0),
            ("\u{feff}\n7\t", 7.0),
            ("1.5e2", 150.0),
            ("-.5", -0.5),
            ("5.", 5.0),
            ("+3", 3.0),
            ("0x10", 16.0),
            ("0b101", 5.0),
            ("0o17", 15.0),
            ("-Infinity", f64::NEG_INFINITY),
            ("+Infinity", f64::INFINITY),
            ("007", 7.0),
        ];
        for (s, x) in cases {
            assert_eq!(from_string(s), x, "{s:?}");
        }
        for s in [
            "12px",
            "inf",
            "NaN",
            "infinity",
            "1e",
            "1e+",
            ".",
            "+",
            "-0x10",
            "0x",
            "1_0",
            "1.2.3",
            "\u{0085}1",
            "e5",
            "a",
        ] {
            assert!(from_string(s).is_nan(), "{s:?}");
        }
    }

    #[test]
    fn json_numbers_are_finite() {
        assert_eq!(to_json(0.1 + 0.2).unwrap().as_str(), "0.30000000000000004");
        assert_eq!(to_json(-0.0).unwrap().as_str(), "0");
        assert_eq!(to_json(1e21).unwrap().as_str(), "1e+21");
        assert!(to_json(f64::INFINITY).is_none());
        assert!(to_json(f64::NAN).is_none());
    }
}
