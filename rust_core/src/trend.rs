//! Trend detection: Theil–Sen slope (scipy.stats.theilslopes, method "separate")
//! and the Mann–Kendall test (S, Kendall tau-b as scipy.stats.kendalltau, tie-
//! corrected variance, continuity-corrected z, two-sided p).
//!
//! Theil–Sen needs order statistics of the slopes of all pairs with x_i < x_j.
//! Up to 2^22 pairs they are materialised; beyond that the k-th slope is found by
//! bisection on the f64 bit pattern with an O(n log n) inversion count per step,
//! so memory stays O(n) and the answer is still the exact order statistic.

use crate::numeric::{norm_ppf, norm_sf};

/// Numeric order without NaN (-0.0 == 0.0, unlike `total_cmp`).
fn cmp(a: f64, b: f64) -> std::cmp::Ordering {
    a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal)
}

fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        // numpy.median: mean of the two middle values
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_unstable_by(f64::total_cmp);
    median_sorted(&s)
}

fn repeat_counts(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_unstable_by(f64::total_cmp);
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let mut j = i + 1;
        while j < s.len() && s[j] == s[i] {
            j += 1;
        }
        if j - i > 1 {
            out.push((j - i) as f64);
        }
        i = j;
    }
    out
}

pub struct TheilSen {
    pub slope: f64,
    pub intercept: f64,
    pub low_slope: f64,
    pub high_slope: f64,
}

/// Sort order of points by x ascending (ties by index).
fn order_by_x(x: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| cmp(x[a], x[b]).then(a.cmp(&b)));
    idx
}

/// Number of pairs (x_i < x_j) whose slope is <= t.
fn count_slopes_le(xo: &[f64], yo: &[f64], t: f64) -> u64 {
    // slope_ij <= t  <=>  y_j - t x_j <= y_i - t x_i  for x_i < x_j, evaluated on the
    // computed slope itself to stay consistent with materialised slopes.
    // Use merge sort counting pairs (i < j in x order, x_i < x_j) with
    // (y_j - y_i) / (x_j - x_i) <= t; we count via keys u = y - t x, which is exact
    // in ordering up to rounding; ties are resolved by direct slope evaluation.
    let n = xo.len();
    let u: Vec<f64> = (0..n).map(|i| yo[i] - t * xo[i]).collect();
    // count pairs i<j with x_i < x_j and u_j <= u_i
    let mut idx: Vec<usize> = (0..n).collect();
    let mut buf = vec![0usize; n];
    let mut count = 0u64;
    let mut width = 1;
    while width < n {
        let mut start = 0;
        while start < n {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            // left = idx[start..mid] (earlier in x order), right = idx[mid..end]
            // both sorted by u descending; count for each right r the lefts with u_l >= u_r
            let (mut i, mut j, mut k) = (start, mid, start);
            while i < mid && j < end {
                if u[idx[i]] >= u[idx[j]] {
                    buf[k] = idx[i];
                    i += 1;
                } else {
                    count += (i - start) as u64;
                    buf[k] = idx[j];
                    j += 1;
                }
                k += 1;
            }
            while j < end {
                count += (i - start) as u64;
                buf[k] = idx[j];
                j += 1;
                k += 1;
            }
            while i < mid {
                buf[k] = idx[i];
                i += 1;
                k += 1;
            }
            start = end;
        }
        std::mem::swap(&mut idx, &mut buf);
        width *= 2;
    }
    // remove pairs with equal x (they are not slopes): within equal-x runs every pair
    // with u_j <= u_i was counted; count them directly.
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && xo[j] == xo[i] {
            j += 1;
        }
        for a in i..j {
            for b in a + 1..j {
                if u[b] <= u[a] {
                    count -= 1;
                }
            }
        }
        i = j;
    }
    count
}

#[inline]
fn okey(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

#[inline]
fn unokey(k: u64) -> f64 {
    if k >> 63 == 1 {
        f64::from_bits(k & !(1 << 63))
    } else {
        f64::from_bits(!k)
    }
}

/// k-th smallest slope (0-based) by bisection over the ordered bit patterns.
fn kth_slope(xo: &[f64], yo: &[f64], k: u64) -> f64 {
    let (mut lo, mut hi) = (okey(f64::MIN), okey(f64::MAX));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let t = unokey(mid);
        if count_slopes_le(xo, yo, t) > k {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    unokey(lo)
}

pub fn theil_sen(x: &[f64], y: &[f64], confidence: f64) -> Option<TheilSen> {
    let n = x.len();
    let order = order_by_x(x);
    let xo: Vec<f64> = order.iter().map(|&i| x[i]).collect();
    let yo: Vec<f64> = order.iter().map(|&i| y[i]).collect();
    // number of pairs with x_i < x_j
    let reps = repeat_counts(x);
    let all_pairs = n as u64 * (n as u64 - 1) / 2;
    let eq_pairs: u64 = reps.iter().map(|&k| (k as u64) * (k as u64 - 1) / 2).sum();
    let nt = all_pairs - eq_pairs;
    if nt == 0 {
        return None;
    }
    let mut alpha = confidence;
    if alpha > 0.5 {
        alpha = 1.0 - alpha;
    }
    let z = norm_ppf(alpha / 2.0);
    let nf = n as f64;
    let term = |k: f64| k * (k - 1.0) * (2.0 * k + 5.0);
    let sigsq = (nf * (nf - 1.0) * (2.0 * nf + 5.0)
        - reps.iter().map(|&k| term(k)).sum::<f64>()
        - repeat_counts(y).iter().map(|&k| term(k)).sum::<f64>())
        / 18.0;
    let bounds = if sigsq >= 0.0 {
        let sigma = sigsq.sqrt();
        let ntf = nt as f64;
        let ru = (((ntf - z * sigma) / 2.0).round_ties_even() as i64).min(nt as i64 - 1);
        let rl = (((ntf + z * sigma) / 2.0).round_ties_even() as i64 - 1).max(0);
        if ru < 0 || rl > nt as i64 - 1 {
            None
        } else {
            Some((rl as u64, ru as u64))
        }
    } else {
        None
    };
    // order statistics needed: the median pair and the two bounds
    let mut ranks = vec![nt / 2];
    if nt.is_multiple_of(2) {
        ranks.push(nt / 2 - 1);
    }
    if let Some((rl, ru)) = bounds {
        ranks.push(rl);
        ranks.push(ru);
    }
    ranks.sort_unstable();
    ranks.dedup();
    let mut found: Vec<(u64, f64)> = Vec::with_capacity(ranks.len());
    if nt <= 1 << 23 {
        let mut slopes: Vec<f64> = Vec::with_capacity(nt as usize);
        for i in 0..n {
            for j in 0..n {
                let dx = x[i] - x[j];
                if dx > 0.0 {
                    slopes.push((y[i] - y[j]) / dx);
                }
            }
        }
        let mut start = 0usize;
        for &k in &ranks {
            let k = k as usize;
            slopes[start..].select_nth_unstable_by(k - start, f64::total_cmp);
            found.push((k as u64, slopes[k]));
            start = k + 1;
        }
    } else {
        for &k in &ranks {
            found.push((k, kth_slope(&xo, &yo, k)));
        }
    }
    let kth = |k: u64| -> f64 {
        found
            .iter()
            .find(|(r, _)| *r == k)
            .map(|(_, v)| *v)
            .unwrap_or(f64::NAN)
    };
    let slope = if nt % 2 == 1 {
        kth(nt / 2)
    } else {
        (kth(nt / 2 - 1) + kth(nt / 2)) / 2.0
    };
    let intercept = median(y) - slope * median(x);
    let (low, high) = match bounds {
        Some((rl, ru)) => (kth(rl), kth(ru)),
        None => (f64::NAN, f64::NAN),
    };
    Some(TheilSen {
        slope,
        intercept,
        low_slope: low,
        high_slope: high,
    })
}

pub struct MannKendall {
    pub s: f64,
    pub tau: f64,
    pub z: f64,
    pub p_value: f64,
}

fn tie_sums(sorted: &[f64]) -> (f64, f64, f64) {
    // (sum t(t-1)/2, sum t(t-1)(t-2), sum t(t-1)(2t+5))
    let (mut a, mut b, mut c) = (0.0, 0.0, 0.0);
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        a += t * (t - 1.0) / 2.0;
        b += t * (t - 1.0) * (t - 2.0);
        c += t * (t - 1.0) * (2.0 * t + 5.0);
        i = j;
    }
    (a, b, c)
}

/// Count strict inversions of `v` (pairs i<j with v[i] > v[j]) by merge sort.
fn inversions(v: &mut [f64]) -> u64 {
    let n = v.len();
    let mut buf = vec![0f64; n];
    let mut count = 0u64;
    let mut width = 1;
    while width < n {
        let mut start = 0;
        while start < n {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let (mut i, mut j, mut k) = (start, mid, start);
            while i < mid && j < end {
                if v[i] <= v[j] {
                    buf[k] = v[i];
                    i += 1;
                } else {
                    count += (mid - i) as u64;
                    buf[k] = v[j];
                    j += 1;
                }
                k += 1;
            }
            buf[k..k + (mid - i)].copy_from_slice(&v[i..mid]);
            k += mid - i;
            buf[k..k + (end - j)].copy_from_slice(&v[j..end]);
            start = end;
        }
        v.copy_from_slice(&buf);
        width *= 2;
    }
    count
}

pub fn mann_kendall(x: &[f64], y: &[f64]) -> MannKendall {
    let n = x.len();
    let nf = n as f64;
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| cmp(x[a], x[b]).then(cmp(y[a], y[b])));
    let xs: Vec<f64> = idx.iter().map(|&i| x[i]).collect();
    let mut ys: Vec<f64> = idx.iter().map(|&i| y[i]).collect();
    // joint ties
    let mut n3 = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && xs[j] == xs[i] && ys[j] == ys[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        n3 += t * (t - 1.0) / 2.0;
        i = j;
    }
    let (xtie, x0, x1) = tie_sums(&xs);
    let dis = inversions(&mut ys) as f64; // ys is now sorted
    let (ytie, y0, y1) = tie_sums(&ys);
    let n0 = nf * (nf - 1.0) / 2.0;
    let s = n0 - xtie - ytie + n3 - 2.0 * dis;
    let tau = (s / (n0 - xtie).sqrt() / (n0 - ytie).sqrt()).clamp(-1.0, 1.0);
    let m = nf * (nf - 1.0);
    let mut var = (m * (2.0 * nf + 5.0) - x1 - y1) / 18.0 + (2.0 * xtie * ytie) / m;
    if n > 2 {
        var += x0 * y0 / (9.0 * m * (nf - 2.0));
    }
    let num = if s > 0.0 {
        s - 1.0
    } else if s < 0.0 {
        s + 1.0
    } else {
        0.0
    };
    let z = if var > 0.0 { num / var.sqrt() } else { 0.0 };
    let p_value = (2.0 * norm_sf(z.abs())).min(1.0);
    MannKendall { s, tau, z, p_value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theil_sen_exact_line() {
        let x: Vec<f64> = (0..50).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| 2.0 * v + 1.0).collect();
        let r = theil_sen(&x, &y, 0.95).unwrap();
        assert_eq!(r.slope, 2.0);
        assert_eq!(r.intercept, 1.0);
    }

    #[test]
    fn bisection_matches_materialised() {
        let x: Vec<f64> = (0..300).map(|i| ((i * 7) % 50) as f64).collect();
        let y: Vec<f64> = (0..300)
            .map(|i| ((i * 13) % 29) as f64 + 0.1 * i as f64)
            .collect();
        let order = order_by_x(&x);
        let xo: Vec<f64> = order.iter().map(|&i| x[i]).collect();
        let yo: Vec<f64> = order.iter().map(|&i| y[i]).collect();
        let mut slopes = Vec::new();
        for i in 0..x.len() {
            for j in 0..x.len() {
                if x[i] - x[j] > 0.0 {
                    slopes.push((y[i] - y[j]) / (x[i] - x[j]));
                }
            }
        }
        slopes.sort_unstable_by(f64::total_cmp);
        for k in [
            0u64,
            10,
            1000,
            slopes.len() as u64 / 2,
            slopes.len() as u64 - 1,
        ] {
            let (a, b) = (kth_slope(&xo, &yo, k), slopes[k as usize]);
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "k={k}");
        }
    }

    #[test]
    fn mann_kendall_increasing() {
        let x: Vec<f64> = (0..20).map(f64::from).collect();
        let y: Vec<f64> = (0..20)
            .map(|i| i as f64 + if i % 3 == 0 { 0.5 } else { 0.0 })
            .collect();
        let r = mann_kendall(&x, &y);
        assert!(r.tau > 0.9 && r.p_value < 0.001);
    }
}
