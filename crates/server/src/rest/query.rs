//! A request's query parameters, read strictly: each parameter once, none the endpoint
//! does not know (a misspelt `limt=` is an error, not silently ignored).

use super::errors::RestError;

/// The parameters of one request, taken one by one by the endpoint.
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `query` (`a=1&b=x`, percent- and `+`-decoded).
    pub fn parse(query: Option<&str>) -> Query {
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Query { pairs }
    }

    /// Takes parameter `name`; refuses it given twice.
    pub fn take(&mut self, name: &'static str) -> Result<Option<String>, RestError> {
        let mut found = None;
        let mut i = 0;
        while i < self.pairs.len() {
            if self.pairs[i].0 == name {
                let (_, value) = self.pairs.remove(i);
                if found.replace(value).is_some() {
                    return Err(RestError::BadParameter {
                        param: name,
                        reason: "given more than once".into(),
                    });
                }
            } else {
                i += 1;
            }
        }
        Ok(found)
    }

    /// Takes parameter `name` as a whole number.
    pub fn take_u64(&mut self, name: &'static str) -> Result<Option<u64>, RestError> {
        self.take(name)?
            .map(|text| {
                text.parse::<u64>().map_err(|_| RestError::BadParameter {
                    param: name,
                    reason: format!("{text:?} is not a whole number (0 or more)"),
                })
            })
            .transpose()
    }

    /// Takes parameter `name` as a time: milliseconds since the Unix epoch (`1765100000000`)
    /// or an RFC 3339 time (`2025-12-07T10:00:00Z`, `2025-12-07T11:00:00.250+01:00`).
    pub fn take_time(&mut self, name: &'static str) -> Result<Option<u64>, RestError> {
        self.take(name)?
            .map(|text| {
                if let Ok(ms) = text.parse::<u64>() {
                    return Ok(ms);
                }
                rfc3339_ms(&text).ok_or_else(|| RestError::BadParameter {
                    param: name,
                    reason: format!(
                        "{text:?} is neither milliseconds since the Unix epoch nor an RFC 3339 \
                         time such as 2025-12-07T10:00:00Z (at or after 1970)"
                    ),
                })
            })
            .transpose()
    }

    /// Takes parameter `name` as `true` or `false`.
    pub fn take_bool(&mut self, name: &'static str) -> Result<Option<bool>, RestError> {
        self.take(name)?
            .map(|text| match text.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(RestError::BadParameter {
                    param: name,
                    reason: format!("{text:?} is neither `true` nor `false`"),
                }),
            })
            .transpose()
    }

    /// Refuses whatever parameter was not taken.
    pub fn finish(self) -> Result<(), RestError> {
        match self.pairs.into_iter().next() {
            None => Ok(()),
            Some((name, _)) => Err(RestError::BadParameter {
                param: "query",
                reason: format!("unknown parameter {name:?} for this endpoint"),
            }),
        }
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 date-time
/// (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `t` or a space for `T`, `z` for `Z`);
/// digits of the fraction past milliseconds are dropped. `None`: not one, or before 1970.
fn rfc3339_ms(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut i = 19;
    let mut millis = 0;
    if at(i, b".") {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &text[start..i.min(start + 3)];
        millis = frac.parse::<i64>().ok()? * 10i64.pow(3 - frac.len() as u32);
    }
    let offset_minutes = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && at(i + 3, b":") => {
            let (h, m) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            if *sign == b'+' {
                h * 60 + m
            } else {
                -(h * 60 + m)
            }
        }
        _ => return None,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), 1970-01-01 being day 0.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(seconds * 1000 + millis).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_times_are_milliseconds_since_the_epoch() {
        use super::rfc3339_ms as ms;
        assert_eq!(ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(ms("2025-12-07T10:00:00Z"), Some(1_765_101_600_000));
        assert_eq!(ms("2025-12-07T11:00:00.250+01:00"), Some(1_765_101_600_250));
        assert_eq!(ms("2025-12-07t10:00:00.123456z"), Some(1_765_101_600_123));
        assert_eq!(ms("2024-02-29 23:59:59.5-00:30"), Some(1_709_252_999_500));
        for bad in [
            "2025-12-07",
            "2025-12-07T10:00:00",
            "2025-13-07T10:00:00Z",
            "2025-02-29T10:00:00Z",
            "2025-12-07T24:00:00Z",
            "2025-12-07T10:00:00.Z",
            "2025-12-07T10:00:00+1:00",
            "1969-12-31T23:59:59Z",
            "2025-12-07T10:00:00Zjunk",
            "",
        ] {
            assert_eq!(ms(bad), None, "{bad}");
        }
    }

    use super::*;

    #[test]
    fn parameters_are_taken_once_and_unknown_ones_refused() {
        let mut q = Query::parse(Some("path=a.b&version=3"));
        assert_eq!(q.take("path").unwrap().as_deref(), Some("a.b"));
        assert_eq!(q.take_u64("version").unwrap(), Some(3));
        assert!(q.finish().is_ok());
        let mut q = Query::parse(Some("version=-1"));
        assert!(q.take_u64("version").is_err());
        let mut q = Query::parse(Some("a=1&a=2"));
        assert!(q.take("a").is_err());
        assert!(Query::parse(Some("limt=3")).finish().is_err());
        let mut q = Query::parse(Some("history=true&h=1"));
        assert_eq!(q.take_bool("history").unwrap(), Some(true));
        assert!(q.take_bool("h").is_err());
        let mut q = Query::parse(Some("prefix=a%2Fb+c"));
        assert_eq!(q.take("prefix").unwrap().as_deref(), Some("a/b c"));
    }
}
