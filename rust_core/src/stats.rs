//! Exact percentiles, Mann–Whitney U and the Hodges–Lehmann shift estimate.
//!
//! * `percentiles`: numpy's default "linear" method, bit-for-bit formula
//!   (`(n-1)*q/100` virtual index, numpy's two-sided lerp).
//! * `mann_whitney_u`: scipy.stats.mannwhitneyu semantics (U of x, tie term,
//!   continuity correction, "auto" = exact when n1 <= 8 or n2 <= 8 and no ties, as scipy,
//!   except that the exact table is capped at n1*n2 <= 1e7: beyond it "auto" is asymptotic).
//! * `hodges_lehmann`: median of all x_i - y_j and the distribution-free interval
//!   `[D_(c), D_(N+1-c)]` (Lehmann/Bauer) where c is the Mann–Whitney critical value
//!   (exact distribution when n1 + n2 <= 50 without ties, so every count is exact in f64;
//!   tie-corrected normal approximation otherwise).
//!   Order statistics of the N = n1*n2 differences are found by randomised selection on
//!   the implicit sorted matrix in O((n1+n2) log N) time and O(n1+n2) memory.

use crate::numeric::{norm_ppf, norm_sf, sort_f64};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Alternative {
    TwoSided,
    Less,
    Greater,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    Auto,
    Exact,
    Asymptotic,
}

/// numpy's `_lerp`.
#[inline]
pub fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Percentiles (q in [0, 100]) of `values` (non-empty, no NaN).
pub fn percentiles(values: &[f64], qs: &[f64]) -> Vec<f64> {
    let n = values.len();
    let plan: Vec<(usize, usize, f64)> = qs
        .iter()
        .map(|&q| {
            let quantile = q / 100.0;
            let virt = (n - 1) as f64 * quantile;
            if virt >= (n - 1) as f64 {
                (n - 1, n - 1, virt)
            } else {
                let prev = virt.floor();
                (prev as usize, prev as usize + 1, virt - prev)
            }
        })
        .collect();
    let mut idx: Vec<usize> = plan.iter().flat_map(|p| [p.0, p.1]).collect();
    idx.sort_unstable();
    idx.dedup();
    let mut v = values.to_vec();
    if idx.len() > 24 {
        sort_f64(&mut v);
    } else {
        let mut start = 0;
        for &k in &idx {
            if k < start {
                continue;
            }
            v[start..].select_nth_unstable_by(k - start, f64::total_cmp);
            start = k + 1;
        }
    }
    plan.iter()
        .map(|&(a, b, t)| if a == b { v[a] } else { lerp(v[a], v[b], t) })
        .collect()
}

/// Rank sum of x (average ranks) and the tie term over the pooled sorted samples.
fn rank_sum(xs: &[f64], ys: &[f64]) -> (f64, f64, bool) {
    let (mut i, mut j, mut pos) = (0usize, 0usize, 0f64);
    let (mut r1, mut tie, mut ties) = (0f64, 0f64, false);
    while i < xs.len() || j < ys.len() {
        let v = match (xs.get(i), ys.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        let i0 = i;
        while i < xs.len() && xs[i] == v {
            i += 1;
        }
        let j0 = j;
        while j < ys.len() && ys[j] == v {
            j += 1;
        }
        let cx = (i - i0) as f64;
        let t = cx + (j - j0) as f64;
        r1 += cx * (pos + (t + 1.0) / 2.0);
        if t > 1.0 {
            ties = true;
            tie += t * t * t - t;
        }
        pos += t;
    }
    (r1, tie, ties)
}

/// Frequencies of U for sample sizes (m, n): coefficients of the Gaussian binomial.
pub fn u_frequencies(m: usize, n: usize) -> Vec<f64> {
    let deg = m * n;
    let mut c = vec![0f64; deg + 1];
    c[0] = 1.0;
    let mut cur = 0usize;
    for i in 1..=m {
        // multiply by (1 - q^(n+i)), then divide by (1 - q^i)
        let a = n + i;
        let newdeg = cur + n;
        for k in (a..=newdeg.min(deg)).rev() {
            c[k] -= c[k - a];
        }
        for k in i..=newdeg {
            c[k] += c[k - i];
        }
        cur = newdeg;
    }
    c
}

/// P(U >= k) under H0 for sizes (m, n).
fn exact_sf(k: i64, m: usize, n: usize) -> f64 {
    let f = u_frequencies(m, n);
    let total: f64 = f.iter().sum();
    if k <= 0 {
        return 1.0;
    }
    let k = k as usize;
    if k >= f.len() {
        return 0.0;
    }
    // sum the smaller tail for accuracy
    let upper: f64 = f[k..].iter().sum();
    upper / total
}

pub struct MwuResult {
    pub u: f64,
    pub p_value: f64,
    pub z: f64,
}

/// Mann–Whitney U test; inputs non-empty, no NaN.
pub fn mann_whitney_u(
    x: &[f64],
    y: &[f64],
    alternative: Alternative,
    method: Method,
    continuity: bool,
) -> MwuResult {
    let mut xs = x.to_vec();
    let mut ys = y.to_vec();
    sort_f64(&mut xs);
    sort_f64(&mut ys);
    mwu_sorted(&xs, &ys, alternative, method, continuity)
}

pub fn mwu_sorted(
    xs: &[f64],
    ys: &[f64],
    alternative: Alternative,
    method: Method,
    continuity: bool,
) -> MwuResult {
    let (n1, n2) = (xs.len() as f64, ys.len() as f64);
    let (r1, tie, has_ties) = rank_sum(xs, ys);
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let u2 = n1 * n2 - u1;
    let (u, f) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let method = match method {
        // scipy's rule, plus: the exact table (n1*n2 + 1 floats) is only built up to 1e7 cells
        Method::Auto if (xs.len() > 8 && ys.len() > 8) || has_ties || n1 * n2 > 1e7 => {
            Method::Asymptotic
        }
        Method::Auto => Method::Exact,
        m => m,
    };
    let (p, z) = if method == Method::Exact {
        let (m, n) = (xs.len().min(ys.len()), xs.len().max(ys.len()));
        (exact_sf(u as i64, m, n), f64::NAN)
    } else {
        let mu = n1 * n2 / 2.0;
        let n = n1 + n2;
        let s = (n1 * n2 / 12.0 * ((n + 1.0) - tie / (n * (n - 1.0)))).sqrt();
        let mut num = u - mu;
        if continuity {
            num -= 0.5;
        }
        let z = num / s;
        (norm_sf(z), z)
    };
    MwuResult {
        u: u1,
        p_value: (p * f).clamp(0.0, 1.0),
        z,
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Per-row prefix lengths of `{ j : xs[i] - yd[j] < p }` (strict) or `<= p`; rows are
/// ascending in j and the prefixes are non-increasing in i, so one branch-free merge
/// walk of n + m steps finds them all.  `ydp` is `yd` with a `+inf` sentinel in front
/// (`ydp[j + 1] == yd[j]`), which makes the walk stop at an empty prefix.
fn count_rows(xs: &[f64], ydp: &[f64], p: f64, strict: bool, out: &mut [usize]) -> u64 {
    let n = xs.len();
    let (mut i, mut ptr) = (0usize, ydp.len() - 1);
    while i < n {
        let d = xs[i] - ydp[ptr];
        let inside = if strict { d < p } else { d <= p };
        // outside: drop the last cell of the prefix; inside: the row is done
        ptr -= (!inside) as usize;
        out[i] = ptr;
        i += inside as usize;
    }
    out.iter().map(|&c| c as u64).sum()
}

fn with_sentinel(yd: &[f64]) -> Vec<f64> {
    let mut v = Vec::with_capacity(yd.len() + 1);
    v.push(f64::INFINITY);
    v.extend_from_slice(yd);
    v
}

/// k-th smallest (0-based) of { xs[i] - yd[j] } with xs ascending and yd descending.
///
/// Floyd–Rivest style selection on the implicit sorted matrix: every round samples
/// active cells, brackets the target rank between two sample order statistics, and
/// narrows each row's candidate range `[lo, hi)` with two O(n + m) counting passes.
pub fn kth_difference(xs: &[f64], yd: &[f64], k: u64) -> f64 {
    let (n, m) = (xs.len(), yd.len());
    let total = n as u64 * m as u64;
    if total <= 1 << 16 {
        let mut all: Vec<f64> = Vec::with_capacity(total as usize);
        for &a in xs {
            for &b in yd {
                all.push(a - b);
            }
        }
        let (_, v, _) = all.select_nth_unstable_by(k as usize, f64::total_cmp);
        return *v;
    }
    let mut lo = vec![0usize; n];
    let mut hi = vec![m; n];
    let mut a = vec![0usize; n];
    let mut b = vec![0usize; n];
    let ydp = with_sentinel(yd);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ total);
    let gather_limit = ((n + m) / 4).max(4096) as u64;
    const SAMPLE: usize = 2048;
    let mut last_active = u64::MAX;
    loop {
        let active: u64 = lo.iter().zip(&hi).map(|(a, b)| (b - a) as u64).sum();
        let below: u64 = lo.iter().map(|&a| a as u64).sum();
        let target = k - below;
        if active <= gather_limit {
            let mut cand: Vec<f64> = Vec::with_capacity(active as usize);
            for i in 0..n {
                cand.extend(yd[lo[i]..hi[i]].iter().map(|y| xs[i] - y));
            }
            let (_, v, _) = cand.select_nth_unstable_by(target as usize, f64::total_cmp);
            return *v;
        }
        // sample active cells at sorted random ranks
        let mut ranks: Vec<u64> = (0..SAMPLE).map(|_| rng.next() % active).collect();
        ranks.sort_unstable();
        let mut sample = Vec::with_capacity(SAMPLE);
        let (mut row, mut base) = (0usize, 0u64);
        for r in ranks {
            while base + ((hi[row] - lo[row]) as u64) <= r {
                base += (hi[row] - lo[row]) as u64;
                row += 1;
            }
            sample.push(xs[row] - yd[lo[row] + (r - base) as usize]);
        }
        sample.sort_unstable_by(f64::total_cmp);
        let (p_lo, p_hi) = if active == last_active {
            // no progress last round (heavy ties): a single pivot always makes progress
            let p = sample[(rng.next() % SAMPLE as u64) as usize];
            (p, p)
        } else {
            let pos = (target as f64 / active as f64) * SAMPLE as f64;
            let d = 2.5 * (SAMPLE as f64).sqrt();
            let i_lo = (pos - d).max(0.0) as usize;
            let i_hi = ((pos + d) as usize).min(SAMPLE - 1);
            (sample[i_lo.min(SAMPLE - 1)], sample[i_hi])
        };
        last_active = active;
        let below_lo = count_rows(xs, &ydp, p_lo, true, &mut a); // cells < p_lo
        if k < below_lo {
            for i in 0..n {
                hi[i] = hi[i].min(a[i]).max(lo[i]);
            }
            continue;
        }
        let upto_hi = count_rows(xs, &ydp, p_hi, false, &mut b); // cells <= p_hi
        if k >= upto_hi {
            for i in 0..n {
                lo[i] = lo[i].max(b[i]).min(hi[i]);
            }
            continue;
        }
        if p_lo == p_hi {
            return p_lo;
        }
        for i in 0..n {
            lo[i] = lo[i].max(a[i]);
            hi[i] = hi[i].min(b[i]).max(lo[i]);
        }
    }
}

/// The k-th smallest difference given that `a` is the (k-1)-th: `a` itself when it is
/// tied, otherwise the smallest difference above `a` (one O(n + m) pass).
fn next_difference(xs: &[f64], yd: &[f64], a: f64, k: u64) -> f64 {
    let mut upto = vec![0usize; xs.len()];
    if count_rows(xs, &with_sentinel(yd), a, false, &mut upto) > k {
        return a;
    }
    xs.iter()
        .zip(&upto)
        .filter(|(_, &j)| j < yd.len())
        .map(|(x, &j)| x - yd[j])
        .fold(f64::INFINITY, f64::min)
}

pub struct HlResult {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Mann–Whitney critical value c (1-based order statistic of the lower bound); 0 = unbounded.
pub fn critical_value(n1: usize, n2: usize, confidence: f64, tie: f64) -> u64 {
    let alpha = 1.0 - confidence;
    let big_n = n1 as u64 * n2 as u64;
    if n1 + n2 <= 50 && tie == 0.0 {
        let (m, n) = (n1.min(n2), n1.max(n2));
        let f = u_frequencies(m, n);
        let total: f64 = f.iter().sum();
        // largest c with P(U <= c - 1) <= alpha / 2
        let mut cum = 0.0;
        let mut c = 0u64;
        for (u, &fu) in f.iter().enumerate() {
            cum += fu;
            if cum / total <= alpha / 2.0 {
                c = u as u64 + 1;
            } else {
                break;
            }
        }
        return c.min(big_n.div_ceil(2));
    }
    let z = norm_ppf(1.0 - alpha / 2.0);
    let (a, b) = (n1 as f64, n2 as f64);
    let n = a + b;
    let sigma = (a * b / 12.0 * ((n + 1.0) - tie / (n * (n - 1.0)))).sqrt();
    let c = (a * b / 2.0 - z * sigma).floor();
    if c < 1.0 {
        0
    } else {
        (c as u64).min(big_n.div_ceil(2))
    }
}

/// Hodges–Lehmann shift of x - y with its confidence interval; inputs non-empty, no NaN.
pub fn hodges_lehmann(x: &[f64], y: &[f64], confidence: f64) -> HlResult {
    let mut xs = x.to_vec();
    let mut ys = y.to_vec();
    sort_f64(&mut xs);
    sort_f64(&mut ys);
    hl_sorted(&xs, &ys, confidence)
}

pub fn hl_sorted(xs: &[f64], ys: &[f64], confidence: f64) -> HlResult {
    let yd: Vec<f64> = ys.iter().rev().copied().collect();
    let big_n = xs.len() as u64 * ys.len() as u64;
    let estimate = if big_n % 2 == 1 {
        kth_difference(xs, &yd, big_n / 2)
    } else {
        let a = kth_difference(xs, &yd, big_n / 2 - 1);
        let b = next_difference(xs, &yd, a, big_n / 2);
        (a + b) / 2.0
    };
    let (_, tie, _) = rank_sum(xs, ys); // tie term of the pooled sample, by merging
    let c = critical_value(xs.len(), ys.len(), confidence, tie);
    let (lower, upper) = if c == 0 {
        (f64::NEG_INFINITY, f64::INFINITY)
    } else {
        (
            kth_difference(xs, &yd, c - 1),
            kth_difference(xs, &yd, big_n - c),
        )
    };
    HlResult {
        estimate,
        lower,
        upper,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_like_numpy() {
        let v = [3.0, 1.0, 4.0, 1.0, 5.0];
        assert_eq!(
            percentiles(&v, &[0.0, 50.0, 100.0, 25.0]),
            vec![1.0, 3.0, 5.0, 1.0]
        );
        assert_eq!(percentiles(&[1.0, 2.0], &[50.0]), vec![1.5]);
    }

    #[test]
    fn mwu_known_values() {
        // scipy.stats.mannwhitneyu([1,2,3,4,5], [6,7,8,9,10]) -> U=0, p=0.007936507936507936
        let r = mann_whitney_u(
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            &[6.0, 7.0, 8.0, 9.0, 10.0],
            Alternative::TwoSided,
            Method::Auto,
            true,
        );
        assert_eq!(r.u, 0.0);
        assert!((r.p_value - 0.007936507936507936).abs() < 1e-15);
    }

    #[test]
    fn kth_difference_matches_bruteforce() {
        let xs: Vec<f64> = (0..400).map(|i| ((i * 37) % 101) as f64).collect();
        let ys: Vec<f64> = (0..300).map(|i| ((i * 53) % 97) as f64 * 0.5).collect();
        let (mut xs, mut ys) = (xs, ys);
        sort_f64(&mut xs);
        sort_f64(&mut ys);
        let yd: Vec<f64> = ys.iter().rev().copied().collect();
        let mut all: Vec<f64> = xs
            .iter()
            .flat_map(|a| ys.iter().map(move |b| a - b))
            .collect();
        all.sort_unstable_by(f64::total_cmp);
        for k in [0u64, 1, 777, 60_000, 119_999] {
            assert_eq!(kth_difference(&xs, &yd, k), all[k as usize], "k={k}");
        }
    }

    #[test]
    fn u_frequencies_sum_to_binomial() {
        let f = u_frequencies(3, 4);
        assert_eq!(f.iter().sum::<f64>(), 35.0);
        assert_eq!(
            f,
            vec![1.0, 1.0, 2.0, 3.0, 4.0, 4.0, 5.0, 4.0, 4.0, 3.0, 2.0, 1.0, 1.0]
        );
    }
}
