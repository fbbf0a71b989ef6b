//! JSON numbers compared exactly, as decimals.
//!
//! The workspace's serde_json keeps a number's text (`arbitrary_precision`), so `1`,
//! `1.0` and `1e0` are different `Number`s that MongoDB and PostgreSQL's `numeric` both
//! consider equal. Comparing through `f64` would also make `9007199254740993` equal to
//! `9007199254740992`, which PostgreSQL does not; comparing the decimals exactly agrees
//! with PostgreSQL for every number, and with JavaScript (mingo) for every number a
//! JavaScript client can write exactly.

use std::cmp::Ordering;

use serde_json::Number;

/// A finite decimal `0.digits × 10^exponent`, with `digits` free of leading and trailing
/// zeros (empty for zero, which then has exponent 0 and is never negative).
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

impl Decimal {
    /// Reads JSON number text. Text that is not a JSON number (serde_json never gives
    /// such) reads as zero rather than failing: comparisons must be total.
    fn parse(text: &str) -> Decimal {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exp_text) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, "0"),
        };
        let exp: i64 = parse_exponent(exp_text);
        let (int_part, frac_part) = match mantissa.find('.') {
            Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
            None => (mantissa, ""),
        };
        let mut digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
        // value = 0.int_part frac_part × 10^(len(int_part) + exp)
        let mut exponent = exp.saturating_add(i64::try_from(int_part.len()).unwrap_or(i64::MAX));
        let leading = digits.iter().take_while(|&&d| d == b'0').count();
        digits.drain(..leading);
        exponent = exponent.saturating_sub(i64::try_from(leading).unwrap_or(i64::MAX));
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        if digits.is_empty() {
            return Decimal {
                negative: false,
                digits,
                exponent: 0,
            };
        }
        Decimal {
            negative,
            digits,
            exponent,
        }
    }

    fn magnitude_cmp(&self, other: &Decimal) -> Ordering {
        match (self.digits.is_empty(), other.digits.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        // Both normalised: the larger exponent is the larger magnitude; with equal
        // exponents the digit strings compare lexicographically (a longer string that
        // shares the shorter one's prefix has a non-zero digit more).
        self.exponent
            .cmp(&other.exponent)
            .then_with(|| self.digits.cmp(&other.digits))
    }
}

/// An exponent's text as a saturated `i64` (digits only after an optional sign).
fn parse_exponent(text: &str) -> i64 {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = digits.bytes().fold(0i64, |acc, d| {
        acc.saturating_mul(10)
            .saturating_add(i64::from(d.wrapping_sub(b'0')))
    });
    if negative { -magnitude } else { magnitude }
}

/// Compares two JSON numbers by value.
pub(super) fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    let (a, b) = (
        Decimal::parse(&a.to_string()),
        Decimal::parse(&b.to_string()),
    );
    match (a.negative, b.negative) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => a.magnitude_cmp(&b),
        (true, true) => b.magnitude_cmp(&a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        serde_json::from_str(text).expect("a JSON number")
    }

    fn cmp(a: &str, b: &str) -> Ordering {
        compare_numbers(&n(a), &n(b))
    }

    #[test]
    fn spellings_of_one_value_are_equal() {
        for (a, b) in [
            ("1", "1.0"),
            ("1", "1e0"),
            ("100", "1e2"),
            ("100", "1E+2"),
            ("0.5", "5e-1"),
            ("0", "-0"),
            ("0", "0.000e10"),
            ("-12.50", "-1.25e1"),
        ] {
            assert_eq!(cmp(a, b), Ordering::Equal, "{a} vs {b}");
        }
    }

    #[test]
    fn order_by_value() {
        let sorted = [
            "-1e300", "-10", "-9.5", "-1", "-0.001", "0", "1e-300", "0.5", "1", "2", "9.99", "10",
            "1e3", "1e300",
        ];
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                assert_eq!(cmp(a, b), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn exact_beyond_f64() {
        assert_eq!(
            cmp("9007199254740993", "9007199254740992"),
            Ordering::Greater
        );
        assert_eq!(cmp("1e400", "1e399"), Ordering::Greater);
        assert_eq!(cmp("-1e400", "1e-400"), Ordering::Less);
    }
}
