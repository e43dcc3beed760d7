//! Intended send times of an open-model profile, lazily (a long run never materialises them).
//!
//! Segments are `(duration_s, rate_start, rate_end)`, the rate linear within a segment;
//! arrival `k` happens when the integrated rate reaches `k`. The arithmetic is exactly
//! that of `loadtest.scenario.arrival_offsets`, so both engines send at the same times.

/// Iterator over arrival offsets (seconds from the start), in order.
pub struct Arrivals {
    segments: Vec<(f64, f64, f64)>,
    count: u64,
    k: u64,
    seg: usize,
    base_t: f64,
    base_n: f64,
}

impl Arrivals {
    pub fn new(segments: Vec<(f64, f64, f64)>, count: u64) -> Self {
        Arrivals {
            segments,
            count,
            k: 0,
            seg: 0,
            base_t: 0.0,
            base_n: 0.0,
        }
    }
}

impl Iterator for Arrivals {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        while self.seg < self.segments.len() {
            if self.k >= self.count {
                return None;
            }
            let (d, a, b) = self.segments[self.seg];
            let seg_n = d * (a + b) / 2.0;
            let k = self.k as f64;
            if k < self.base_n + seg_n - 1e-9 {
                let c2 = (b - a) / (2.0 * d);
                let dn = k - self.base_n;
                let disc = a * a + 4.0 * c2 * dn;
                let tau = if dn > 0.0 {
                    2.0 * dn / (a + disc.max(0.0).sqrt())
                } else {
                    0.0
                };
                self.k += 1;
                return Some(self.base_t + tau.min(d));
            }
            self.base_t += d;
            self.base_n += seg_n;
            self.seg += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let v: Vec<f64> = Arrivals::new(vec![(1.0, 4.0, 4.0)], 4).collect();
        assert_eq!(v, vec![0.0, 0.25, 0.5, 0.75]);
    }

    #[test]
    fn ramp_accelerates_and_stops_at_count() {
        // 0 -> 10/s over 2 s: 10 arrivals, t_k = sqrt(2 k / 5)
        let v: Vec<f64> = Arrivals::new(vec![(2.0, 0.0, 10.0)], 10).collect();
        assert_eq!(v.len(), 10);
        for (k, t) in v.iter().enumerate() {
            assert!((t - (2.0 * k as f64 / 5.0).sqrt()).abs() < 1e-9);
        }
        assert_eq!(Arrivals::new(vec![(1.0, 5.0, 5.0)], 0).count(), 0);
    }
}
