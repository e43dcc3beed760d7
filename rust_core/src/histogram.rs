//! Mergeable log-bucketed histogram with a bounded relative error.
//!
//! Buckets are HdrHistogram-style: the bucket index of a positive value is its
//! IEEE-754 bit pattern shifted right so that only the exponent and the top `p`
//! mantissa bits remain.  Every bucket therefore spans `[L, L * (1 + 2^-p))` and
//! its midpoint is within `2^-(p+1)` (relative) of every value inside it.  `p` is
//! the smallest precision with `2^-(p+1) <= relative_error`, so the requested
//! bound always holds (for normal, i.e. non-subnormal, values).  Zero has its own
//! counter; min, max, count and sum are exact.
//!
//! Serialised form (version 1, little endian):
//! `b"CDH1"`, relative_error f64, p u8, count u64, zero_count u64, min f64, max f64,
//! sum f64, first_index u64, n_buckets u32, then `n_buckets` LEB128 varint counts.

pub const MAGIC: &[u8; 4] = b"CDH1";
pub const MIN_RELATIVE_ERROR: f64 = 1e-4;
pub const MAX_RELATIVE_ERROR: f64 = 0.5;

#[derive(Clone, Debug)]
pub struct Histogram {
    relative_error: f64,
    precision: u32,
    shift: u32,
    count: u64,
    zero_count: u64,
    min: f64,
    max: f64,
    sum: f64,
    offset: u64,
    counts: Vec<u64>,
}

/// Why a value or a histogram was refused.
#[derive(Debug, PartialEq)]
pub enum HistError {
    BadValue(usize, f64),
    BadRelativeError(f64),
    Incompatible(f64, f64),
    Decode(String),
}

impl std::fmt::Display for HistError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HistError::BadValue(i, v) => {
                write!(f, "must be finite and >= 0 (got {v} at index {i})")
            }
            HistError::BadRelativeError(r) => write!(
                f,
                "must be in [{MIN_RELATIVE_ERROR}, {MAX_RELATIVE_ERROR}] (got {r})"
            ),
            HistError::Incompatible(a, b) => write!(
                f,
                "cannot merge histograms with different relative_error ({a} != {b})"
            ),
            HistError::Decode(m) => write!(f, "{m}"),
        }
    }
}

#[inline]
fn valid(v: f64) -> bool {
    (0.0..f64::INFINITY).contains(&v)
}

pub fn precision_for(relative_error: f64) -> u32 {
    let mut p = 0u32;
    while (0.5f64).powi(p as i32 + 1) > relative_error && p < 52 {
        p += 1;
    }
    p
}

impl Histogram {
    pub fn new(relative_error: f64) -> Result<Self, HistError> {
        if !(MIN_RELATIVE_ERROR..=MAX_RELATIVE_ERROR).contains(&relative_error) {
            return Err(HistError::BadRelativeError(relative_error));
        }
        let precision = precision_for(relative_error);
        Ok(Histogram {
            relative_error,
            precision,
            shift: 52 - precision,
            count: 0,
            zero_count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            offset: 0,
            counts: Vec::new(),
        })
    }

    pub fn relative_error(&self) -> f64 {
        self.relative_error
    }
    pub fn count(&self) -> u64 {
        self.count
    }
    pub fn sum(&self) -> f64 {
        self.sum
    }
    pub fn min(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.min
        }
    }
    pub fn max(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.max
        }
    }
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.sum / self.count as f64
        }
    }

    #[inline]
    fn index_of(&self, v: f64) -> u64 {
        v.to_bits() >> self.shift
    }

    /// Representative value of bucket `idx` (its midpoint).
    fn value_of(&self, idx: u64) -> f64 {
        let lo = f64::from_bits(idx << self.shift);
        let hi = f64::from_bits((idx + 1) << self.shift);
        if hi.is_finite() {
            lo + (hi - lo) * 0.5
        } else {
            lo
        }
    }

    fn ensure(&mut self, lo: u64, hi: u64) {
        if self.counts.is_empty() {
            self.offset = lo;
            self.counts = vec![0; (hi - lo + 1) as usize];
            return;
        }
        let cur_hi = self.offset + self.counts.len() as u64 - 1;
        if lo < self.offset {
            let extra = (self.offset - lo) as usize;
            let mut v = vec![0; extra + self.counts.len()];
            v[extra..].copy_from_slice(&self.counts);
            self.counts = v;
            self.offset = lo;
        }
        if hi > cur_hi {
            self.counts.resize((hi - self.offset + 1) as usize, 0);
        }
    }

    pub fn record(&mut self, value: f64, n: u64) -> Result<(), HistError> {
        if !valid(value) {
            return Err(HistError::BadValue(0, value));
        }
        if n == 0 {
            return Ok(());
        }
        self.count += n;
        self.sum += value * n as f64;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if value == 0.0 {
            self.zero_count += n;
        } else {
            let idx = self.index_of(value);
            self.ensure(idx, idx);
            self.counts[(idx - self.offset) as usize] += n;
        }
        Ok(())
    }

    /// Record every value; validates all values first so a refusal changes nothing.
    pub fn record_many(&mut self, values: &[f64]) -> Result<(), HistError> {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        let mut sum = 0.0;
        let mut ok = true;
        for &v in values {
            ok &= valid(v);
            lo = lo.min(v);
            hi = hi.max(v);
            sum += v;
        }
        if !ok {
            let (i, v) = values
                .iter()
                .enumerate()
                .find(|(_, v)| !valid(**v))
                .map(|(i, v)| (i, *v))
                .unwrap_or((0, f64::NAN));
            return Err(HistError::BadValue(i, v));
        }
        if values.is_empty() {
            return Ok(());
        }
        self.count += values.len() as u64;
        self.sum += sum;
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        let lo_pos = if lo > 0.0 {
            lo
        } else {
            values
                .iter()
                .copied()
                .filter(|v| *v > 0.0)
                .fold(f64::INFINITY, f64::min)
        };
        if lo_pos.is_finite() {
            let (a, b) = (self.index_of(lo_pos), self.index_of(hi));
            self.ensure(a, b);
        }
        let offset = self.offset;
        let shift = self.shift;
        let counts = &mut self.counts;
        let mut zeros = 0u64;
        for &v in values {
            if v == 0.0 {
                zeros += 1;
            } else {
                let i = ((v.to_bits() >> shift) - offset) as usize;
                if let Some(c) = counts.get_mut(i) {
                    *c += 1;
                }
            }
        }
        self.zero_count += zeros;
        Ok(())
    }

    pub fn merge(&mut self, other: &Histogram) -> Result<(), HistError> {
        if self.relative_error != other.relative_error {
            return Err(HistError::Incompatible(
                self.relative_error,
                other.relative_error,
            ));
        }
        if other.count == 0 {
            return Ok(());
        }
        if let Some((a, b)) = other.nonzero_range() {
            self.ensure(a, b);
            for (k, &c) in other.counts.iter().enumerate() {
                if c > 0 {
                    let i = (other.offset + k as u64 - self.offset) as usize;
                    self.counts[i] += c;
                }
            }
        }
        self.count += other.count;
        self.zero_count += other.zero_count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        Ok(())
    }

    fn nonzero_range(&self) -> Option<(u64, u64)> {
        let first = self.counts.iter().position(|c| *c > 0)?;
        let last = self.counts.iter().rposition(|c| *c > 0)?;
        Some((self.offset + first as u64, self.offset + last as u64))
    }

    /// Estimate of the value of rank `floor(q * (count - 1))` (0-based); exact at q=0 and q=1.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return f64::NAN;
        }
        if q == 0.0 {
            return self.min;
        }
        if q == 1.0 {
            return self.max;
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        if rank < self.zero_count {
            return 0.0;
        }
        let mut seen = self.zero_count;
        for (k, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen > rank {
                let v = self.value_of(self.offset + k as u64);
                return v.clamp(self.min, self.max);
            }
        }
        self.max
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let (first, buckets): (u64, &[u64]) = match self.nonzero_range() {
            Some((a, b)) => (
                a,
                &self.counts[(a - self.offset) as usize..=(b - self.offset) as usize],
            ),
            None => (0, &[]),
        };
        let mut out = Vec::with_capacity(64 + buckets.len() * 2);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.relative_error.to_le_bytes());
        out.push(self.precision as u8);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.zero_count.to_le_bytes());
        out.extend_from_slice(&self.min.to_le_bytes());
        out.extend_from_slice(&self.max.to_le_bytes());
        out.extend_from_slice(&self.sum.to_le_bytes());
        out.extend_from_slice(&first.to_le_bytes());
        out.extend_from_slice(&(buckets.len() as u32).to_le_bytes());
        for &c in buckets {
            let mut c = c;
            loop {
                let byte = (c & 0x7f) as u8;
                c >>= 7;
                if c == 0 {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Histogram, HistError> {
        let err = |m: &str| HistError::Decode(m.to_string());
        let mut r = Reader { b, pos: 0 };
        if r.take(4).ok_or_else(|| err("truncated header"))? != MAGIC {
            return Err(err("not a serialised Histogram (bad magic or version)"));
        }
        let rel = r.f64().ok_or_else(|| err("truncated header"))?;
        let mut h = Histogram::new(rel).map_err(|_| err("bad relative_error"))?;
        let p = r.take(1).ok_or_else(|| err("truncated header"))?[0] as u32;
        if p != h.precision {
            return Err(err("precision does not match relative_error"));
        }
        let count = r.u64().ok_or_else(|| err("truncated header"))?;
        let zero = r.u64().ok_or_else(|| err("truncated header"))?;
        let min = r.f64().ok_or_else(|| err("truncated header"))?;
        let max = r.f64().ok_or_else(|| err("truncated header"))?;
        let sum = r.f64().ok_or_else(|| err("truncated header"))?;
        let first = r.u64().ok_or_else(|| err("truncated header"))?;
        let nb = r.u32().ok_or_else(|| err("truncated header"))? as usize;
        let max_index = (f64::MAX.to_bits() >> h.shift) + 1;
        if nb > 1 << 20
            || first
                .checked_add(nb as u64)
                .is_none_or(|end| end > max_index)
        {
            return Err(err("bucket range out of bounds"));
        }
        if count > 0 && !(valid(min) && valid(max) && min <= max) {
            return Err(err("min/max are not finite values with min <= max"));
        }
        let mut counts = Vec::with_capacity(nb);
        let mut total = zero;
        for _ in 0..nb {
            let c = r.varint().ok_or_else(|| err("truncated bucket counts"))?;
            total = total.checked_add(c).ok_or_else(|| err("count overflow"))?;
            counts.push(c);
        }
        if r.pos != b.len() {
            return Err(err("trailing bytes"));
        }
        if total != count {
            return Err(err("bucket counts do not add up to count"));
        }
        h.count = count;
        h.zero_count = zero;
        h.min = if count == 0 { f64::INFINITY } else { min };
        h.max = if count == 0 { f64::NEG_INFINITY } else { max };
        h.sum = sum;
        h.offset = first;
        h.counts = counts;
        Ok(h)
    }

    /// Equality of the distribution: relative error, count, zeros, min, max and buckets
    /// (the float `sum` is excluded: merge order changes its last bits).
    pub fn same(&self, other: &Histogram) -> bool {
        if self.relative_error != other.relative_error
            || self.count != other.count
            || self.zero_count != other.zero_count
        {
            return false;
        }
        if self.count > 0 && (self.min != other.min || self.max != other.max) {
            return false;
        }
        let a = self.nonzero_range();
        let b = other.nonzero_range();
        match (a, b) {
            (None, None) => true,
            (Some((a0, a1)), Some((b0, b1))) if a0 == b0 && a1 == b1 => {
                let sa = &self.counts[(a0 - self.offset) as usize..=(a1 - self.offset) as usize];
                let sb = &other.counts[(b0 - other.offset) as usize..=(b1 - other.offset) as usize];
                sa == sb
            }
            _ => false,
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn f64(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            v |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_error_bound_holds() {
        let mut h = Histogram::new(0.01).unwrap();
        let vals: Vec<f64> = (1..10_000).map(|i| (i as f64) * 0.37).collect();
        h.record_many(&vals).unwrap();
        for q in [0.01, 0.1, 0.5, 0.9, 0.99, 0.999] {
            let rank = (q * (vals.len() - 1) as f64).floor() as usize;
            let exact = vals[rank];
            let est = h.quantile(q);
            assert!(((est - exact) / exact).abs() <= 0.01, "q={q}");
        }
    }

    #[test]
    fn roundtrip_and_merge() {
        let mut a = Histogram::new(0.01).unwrap();
        let mut b = Histogram::new(0.01).unwrap();
        let mut all = Histogram::new(0.01).unwrap();
        a.record_many(&[0.0, 1.0, 2.5, 1000.0]).unwrap();
        b.record_many(&[3.0, 1e-3]).unwrap();
        all.record_many(&[0.0, 1.0, 2.5, 1000.0, 3.0, 1e-3])
            .unwrap();
        a.merge(&b).unwrap();
        assert!(a.same(&all));
        let back = Histogram::from_bytes(&a.to_bytes()).unwrap();
        assert!(back.same(&a));
        assert!(Histogram::from_bytes(b"nope").is_err());
        let mut evil = a.to_bytes();
        evil[53..61].copy_from_slice(&u64::MAX.to_le_bytes()); // first bucket index
        assert!(Histogram::from_bytes(&evil).is_err());
        let mut evil = a.to_bytes();
        evil[29..37].copy_from_slice(&f64::NAN.to_le_bytes()); // min
        assert!(Histogram::from_bytes(&evil).is_err());
        let c = Histogram::new(0.02).unwrap();
        assert!(a.merge(&c).is_err());
    }

    #[test]
    fn refuses_bad_values() {
        let mut h = Histogram::new(0.01).unwrap();
        assert_eq!(
            h.record_many(&[1.0, -1.0]),
            Err(HistError::BadValue(1, -1.0))
        );
        assert_eq!(h.count(), 0);
        assert!(h.record(f64::NAN, 1).is_err());
    }
}
