//! The registry's source of randomness.
//!
//! deepstream shuffles the candidates for a record so that load spreads over providers.
//! We want the same spread but reproducible runs (tests, replays), so the runtime passes a
//! seed and the registry draws from this small generator instead of the OS.

/// SplitMix64: tiny, fast, and every seed (including 0) gives a good stream. Not for secrets.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`). Multiply-shift keeps the bias negligible for any
    /// candidate count we will ever see, without a rejection loop.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_all_values_reachable() {
        let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
        let mut seen = [false; 5];
        for _ in 0..200 {
            let x = a.below(5);
            assert_eq!(x, b.below(5));
            seen[x] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
