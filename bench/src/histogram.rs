//! A latency histogram in microseconds: exact below 1 ms, then 128 buckets per power of
//! two (under 1% error), so that p999 and max of millions of samples cost a few KiB.

const EXACT: u64 = 1024;
const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;

#[derive(Clone)]
pub struct Histogram {
    exact: Vec<u64>,
    /// `[power - 10][sub-bucket]`, for values from 2^10 up.
    log: Vec<[u64; SUB]>,
    count: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            exact: vec![0; EXACT as usize],
            log: vec![[0; SUB]; 54],
            count: 0,
            max: 0,
            sum: 0,
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .field("max", &self.max)
            .finish()
    }
}

impl Histogram {
    pub fn record(&mut self, micros: u64) {
        self.count += 1;
        self.sum += u128::from(micros);
        self.max = self.max.max(micros);
        if micros < EXACT {
            self.exact[micros as usize] += 1;
        } else {
            let power = 63 - micros.leading_zeros();
            let sub = ((micros >> (power - SUB_BITS)) as usize) & (SUB - 1);
            self.log[(power - 10) as usize][sub] += 1;
        }
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.exact.iter_mut().zip(&other.exact) {
            *a += b;
        }
        for (a, b) in self.log.iter_mut().zip(&other.log) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0..=1), in microseconds; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (v, n) in self.exact.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return v as u64;
            }
        }
        for (p, subs) in self.log.iter().enumerate() {
            let power = p as u32 + 10;
            for (s, n) in subs.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    // The upper edge of the bucket, never above the true maximum.
                    let low = (1u64 << power) | ((s as u64) << (power - SUB_BITS));
                    let width = 1u64 << (power - SUB_BITS);
                    return (low + width - 1).min(self.max);
                }
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_close() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.0001), 10);
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.01, "{p50}");
        let p99 = h.quantile(0.99) as f64;
        assert!((p99 - 99_000.0).abs() / 99_000.0 < 0.01, "{p99}");
        assert_eq!(h.quantile(1.0), 100_000);
        assert_eq!(h.max(), 100_000);
        let mut g = Histogram::default();
        g.record(5);
        g.merge(&h);
        assert_eq!(g.count(), 100_001);
    }
}
