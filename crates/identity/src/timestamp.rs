//! Message timestamps: UTC instants with microsecond precision, written as DWN writes
//! them (`2026-12-07T23:40:32.123456Z`).
//!
//! Invariant: one instant has exactly one text. Parsing accepts only the 27-character
//! form `YYYY-MM-DDTHH:MM:SS.ffffffZ` (no offsets, no other precision, no leap second),
//! years 1970 to 9999, so the text a signature covers cannot be rewritten into another
//! text of the same instant, and texts sort as their instants do.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Length of a timestamp's text.
const TEXT_LEN: usize = 27;

/// Microseconds since 1970 of 9999-12-31T23:59:59.999999Z, the last instant written with
/// a four-digit year.
const MAX_MICROS: i64 = 253_402_300_799_999_999;

/// A UTC instant with microsecond precision, between 1970 and the end of 9999.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

/// Why a text is not a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// Not of the form `YYYY-MM-DDTHH:MM:SS.ffffffZ`, or not a date and time that exist.
    #[error(
        "{text:?} is not a timestamp: write UTC with six decimals, like 2026-12-07T23:40:32.123456Z"
    )]
    Format { text: String },
    /// A number of microseconds outside 1970 ..= 9999.
    #[error("{micros} µs since 1970 is outside the years 1970 to 9999")]
    OutOfRange { micros: i64 },
}

impl Timestamp {
    /// The instant `micros` microseconds after 1970-01-01T00:00:00Z.
    pub fn from_micros(micros: i64) -> Result<Timestamp, TimestampError> {
        if (0..=MAX_MICROS).contains(&micros) {
            Ok(Timestamp(micros))
        } else {
            Err(TimestampError::OutOfRange { micros })
        }
    }

    /// Microseconds since 1970-01-01T00:00:00Z.
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// Now, from the system clock (truncated to the microsecond). A clock before 1970 or
    /// after 9999 reads as the nearest end of the range.
    pub fn now() -> Timestamp {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        Timestamp(micros.clamp(0, MAX_MICROS))
    }

    /// This instant plus `duration`, saturating at the end of 9999.
    pub fn saturating_add(self, duration: Duration) -> Timestamp {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(micros).min(MAX_MICROS))
    }

    /// The later of this instant and one microsecond after `other`: a timestamp for a
    /// new version that is newer than `other` even when the clock has not moved on (or
    /// went back).
    pub fn after(self, other: Timestamp) -> Timestamp {
        self.max(Timestamp((other.0 + 1).min(MAX_MICROS)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1000)
            .expect("the range is checked on construction: 1970 ..= 9999 is representable");
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.microsecond()
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Timestamp, TimestampError> {
        let error = || TimestampError::Format { text: text.into() };
        let bytes = text.as_bytes();
        if bytes.len() != TEXT_LEN {
            return Err(error());
        }
        for (at, separator) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (26, b'Z'),
        ] {
            if bytes[at] != separator {
                return Err(error());
            }
        }
        let number = |from: usize, to: usize| -> Result<u32, TimestampError> {
            let digits = &bytes[from..to];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(error());
            }
            Ok(digits
                .iter()
                .fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
        };
        let year = i32::try_from(number(0, 4)?).map_err(|_| error())?;
        let month = u8::try_from(number(5, 7)?).map_err(|_| error())?;
        let day = u8::try_from(number(8, 10)?).map_err(|_| error())?;
        let hour = u8::try_from(number(11, 13)?).map_err(|_| error())?;
        let minute = u8::try_from(number(14, 16)?).map_err(|_| error())?;
        let second = u8::try_from(number(17, 19)?).map_err(|_| error())?;
        let micro = number(20, 26)?;
        let month = Month::try_from(month).map_err(|_| error())?;
        let date = Date::from_calendar_date(year, month, day).map_err(|_| error())?;
        let time = Time::from_hms_micro(hour, minute, second, micro).map_err(|_| error())?;
        let nanos = PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp_nanos();
        let micros = i64::try_from(nanos / 1000).map_err(|_| error())?;
        Timestamp::from_micros(micros).map_err(|_| error())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        assert_eq!(
            Timestamp::from_micros(0).unwrap().to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        // 2000-02-29 (a leap day) 12:34:56.789012 UTC is 951827696 s after 1970.
        let leap: Timestamp = "2000-02-29T12:34:56.789012Z".parse().unwrap();
        assert_eq!(leap.as_micros(), 951_827_696_789_012);
        assert_eq!(
            Timestamp::from_micros(MAX_MICROS).unwrap().to_string(),
            "9999-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn only_the_one_form_is_accepted() {
        for text in [
            "2026-12-07T23:40:32Z",
            "2026-12-07T23:40:32.123Z",
            "2026-12-07T23:40:32.123456+00:00",
            "2026-12-07 23:40:32.123456Z",
            "2026-12-07T23:40:32.123456z",
            "2026-02-30T00:00:00.000000Z",
            "2026-13-01T00:00:00.000000Z",
            "2026-12-07T23:40:60.000000Z",
            "1969-12-31T23:59:59.999999Z",
            "+026-12-07T23:40:32.123456Z",
            "2026-12-07T23:40:32.12345\u{0661}Z",
        ] {
            let error = text.parse::<Timestamp>().unwrap_err();
            assert!(
                error.to_string().contains("six decimals"),
                "{text}: {error}"
            );
        }
        assert!(Timestamp::from_micros(-1).is_err());
        assert!(Timestamp::from_micros(MAX_MICROS + 1).is_err());
    }

    #[test]
    fn after_is_strictly_later_even_when_the_clock_is_behind() {
        let t = Timestamp::from_micros(10).unwrap();
        let behind = Timestamp::from_micros(5).unwrap();
        assert_eq!(behind.after(t).as_micros(), 11);
        let ahead = Timestamp::from_micros(50).unwrap();
        assert_eq!(ahead.after(t).as_micros(), 50);
    }

    proptest! {
        #[test]
        fn text_round_trips_and_sorts_like_the_instant(
            a in 0..=MAX_MICROS,
            b in 0..=MAX_MICROS,
        ) {
            let (ta, tb) = (Timestamp(a), Timestamp(b));
            let (sa, sb) = (ta.to_string(), tb.to_string());
            prop_assert_eq!(sa.len(), TEXT_LEN);
            prop_assert_eq!(sa.parse::<Timestamp>().unwrap(), ta);
            prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
        }
    }
}
