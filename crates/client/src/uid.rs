//! Unique ids for record names, made on the client.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

/// A unique id: the current time in milliseconds and a random part, both in base 36,
/// joined by `-` (e.g. `mg5z8l3k-1x9qk2v7d3a0e`), as deepstream's `client.getUid()` makes
/// them. Ids made later sort after earlier ones when their timestamps have equal length.
///
/// ```
/// let a = recordsync_client::uid();
/// let b = recordsync_client::uid();
/// assert_ne!(a, b);
/// let (time, random) = a.split_once('-').unwrap();
/// assert!(!time.is_empty() && random.len() >= 10);
/// ```
pub fn uid() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    // 64 random bits: two ids made in the same millisecond collide with probability 2^-64.
    let random: u64 = rand::rng().random();
    format!("{}-{}", base36(millis), base36(random))
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".into();
    }
    let mut out = Vec::with_capacity(13);
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(u64::MAX), "3w5e11264sgsf");
    }

    #[test]
    fn uids_are_unique_and_shaped() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| uid()).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids {
            let (time, random) = id.split_once('-').expect("a dash");
            assert!(time.len() >= 8, "{id}");
            assert!(!random.is_empty(), "{id}");
            assert!(id.chars().all(|c| c == '-' || c.is_ascii_alphanumeric()));
        }
    }
}
