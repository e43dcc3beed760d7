//! Numeric building blocks: normal distribution, fast f64 sort, selection helpers.

/// Upper tail of the standard normal, `P(Z > z)` (scipy `ndtr(-z)`).
pub fn norm_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// Inverse CDF of the standard normal (Wichura AS241, as Python's `statistics`).
#[allow(clippy::excessive_precision)]
pub fn norm_ppf(p: f64) -> f64 {
    const A_NUM: [f64; 8] = [
        2.5090809287301226727e+3,
        3.3430575583588128105e+4,
        6.7265770927008700853e+4,
        4.5921953931549871457e+4,
        1.3731693765509461125e+4,
        1.9715909503065514427e+3,
        1.3314166789178437745e+2,
        3.3871328727963666080e+0,
    ];
    const A_DEN: [f64; 8] = [
        5.2264952788528545610e+3,
        2.8729085735721942674e+4,
        3.9307895800092710610e+4,
        2.1213794301586595867e+4,
        5.3941960214247511077e+3,
        6.8718700749205790830e+2,
        4.2313330701600911252e+1,
        1.0,
    ];
    const B_NUM: [f64; 8] = [
        7.74545014278341407640e-4,
        2.27238449892691845833e-2,
        2.41780725177450611770e-1,
        1.27045825245236838258e+0,
        3.64784832476320460504e+0,
        5.76949722146069140550e+0,
        4.63033784615654529590e+0,
        1.42343711074968357734e+0,
    ];
    const B_DEN: [f64; 8] = [
        1.05075007164441684324e-9,
        5.47593808499534494600e-4,
        1.51986665636164571966e-2,
        1.48103976427480074590e-1,
        6.89767334985100004550e-1,
        1.67638483018380384940e+0,
        2.05319162663775882187e+0,
        1.0,
    ];
    const C_NUM: [f64; 8] = [
        2.01033439929228813265e-7,
        2.71155556874348757815e-5,
        1.24266094738807843860e-3,
        2.65321895265761230930e-2,
        2.96560571828504891230e-1,
        1.78482653991729133580e+0,
        5.46378491116411436990e+0,
        6.65790464350110377720e+0,
    ];
    const C_DEN: [f64; 8] = [
        2.04426310338993978564e-15,
        1.42151175831644588870e-7,
        1.84631831751005468180e-5,
        7.86869131145613259100e-4,
        1.48753612908506148525e-2,
        1.36929880922735805310e-1,
        5.99832206555887937690e-1,
        1.0,
    ];
    fn horner(c: &[f64], r: f64) -> f64 {
        let mut acc = c[0];
        for &k in &c[1..] {
            acc = acc * r + k;
        }
        acc
    }
    if !(p > 0.0 && p < 1.0) {
        return if p == 0.0 {
            f64::NEG_INFINITY
        } else if p == 1.0 {
            f64::INFINITY
        } else {
            f64::NAN
        };
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        let num = horner(&A_NUM, r) * q;
        let den = horner(&A_DEN, r);
        return num / den;
    }
    let mut r = if q <= 0.0 { p } else { 1.0 - p };
    r = (-r.ln()).sqrt();
    let (num, den) = if r <= 5.0 {
        r -= 1.6;
        (horner(&B_NUM, r), horner(&B_DEN, r))
    } else {
        r -= 5.0;
        (horner(&C_NUM, r), horner(&C_DEN, r))
    };
    let x = num / den;
    if q < 0.0 {
        -x
    } else {
        x
    }
}

#[inline]
fn key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

#[inline]
fn unkey(k: u64) -> f64 {
    if k >> 63 == 1 {
        f64::from_bits(k & !(1 << 63))
    } else {
        f64::from_bits(!k)
    }
}

/// Sort finite (non-NaN) f64 values ascending.  LSD radix sort on the order-preserving
/// bit pattern for large inputs (skipping passes where all keys share a digit).
pub fn sort_f64(v: &mut [f64]) {
    if v.len() < 4096 {
        v.sort_unstable_by(f64::total_cmp);
        // -0.0 and 0.0 compare equal for our purposes; total_cmp orders -0 first.
        return;
    }
    let n = v.len();
    let mut a: Vec<u64> = v.iter().map(|&x| key(x)).collect();
    let mut b: Vec<u64> = vec![0; n];
    const BITS: u32 = 11;
    const RADIX: usize = 1 << BITS;
    let passes = 64_u32.div_ceil(BITS);
    let mut hist = vec![[0usize; RADIX]; passes as usize];
    for &k in &a {
        for p in 0..passes {
            hist[p as usize][((k >> (p * BITS)) as usize) & (RADIX - 1)] += 1;
        }
    }
    for p in 0..passes {
        let h = &mut hist[p as usize];
        if h.contains(&n) {
            continue;
        }
        let mut sum = 0;
        for c in h.iter_mut() {
            let t = *c;
            *c = sum;
            sum += t;
        }
        for &k in &a {
            let d = ((k >> (p * BITS)) as usize) & (RADIX - 1);
            b[h[d]] = k;
            h[d] += 1;
        }
        std::mem::swap(&mut a, &mut b);
    }
    for (dst, &k) in v.iter_mut().zip(a.iter()) {
        *dst = unkey(k);
    }
}

/// Tie groups of a sorted slice: sum of t^3 - t over groups of equal values.
pub fn tie_term(sorted: &[f64]) -> f64 {
    let mut term = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        term += t * t * t - t;
        i = j;
    }
    term
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppf_inverts_sf() {
        for p in [1e-10, 0.01, 0.025, 0.3, 0.5, 0.9, 0.99] {
            let z = norm_ppf(p);
            assert!((1.0 - norm_sf(z) - p).abs() < 1e-12 * p.max(1e-3));
        }
        assert!((norm_ppf(0.975) - 1.959963984540054).abs() < 1e-14);
    }

    #[test]
    fn radix_sort_matches_std() {
        let mut v: Vec<f64> = (0..10_000)
            .map(|i| ((i * 7919) % 10007) as f64 * if i % 3 == 0 { -1.5 } else { 0.25 })
            .collect();
        let mut w = v.clone();
        sort_f64(&mut v);
        w.sort_unstable_by(f64::total_cmp);
        assert_eq!(v, w);
    }
}
