//! Canary judge with Kayenta (NetflixACAJudge + MannWhitneyClassifier) semantics.
//!
//! Per metric: non-finite values are removed (`nan_strategy="remove"`) or replaced by
//! 0 (`"replace"`); outliers outside `[min(P1, Q1 - f*IQR), max(P99, Q3 + f*IQR)]`
//! are dropped (f = `outlier_factor`, disabled when <= 0; percentiles are numpy
//! "linear").  Missing data gives NoData (a failure when `must_have_data`; a pass
//! under "replace").  Identical samples, or a single distinct value, pass.
//! Otherwise the Hodges–Lehmann interval of canary - baseline at `confidence` is
//! compared with the band +/- 0.25 * |HL estimate|: High when the interval lies
//! wholly above the band, the direction allows increases and the effect size
//! (canary mean / baseline mean) is > `allowed_increase`; Low mirrors it with
//! `allowed_decrease`.  Group score = passed / counted * 100 (NoData not counted,
//! NoData-with-must_have_data and Error counted as failures; a group with nothing
//! counted scores 100).  Summary = weighted mean of group scores; configured weights
//! are used as given and unweighted groups share `100 - sum(weights)` equally.
//! Any non-Pass critical metric, or NoData on >= 50% of metrics, scores 0.

use crate::stats::{hl_sorted, mwu_sorted, percentiles, Alternative, Method};

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Direction {
    Increase,
    Decrease,
    Either,
}

pub struct MetricSpec {
    pub name: String,
    pub group: String,
    pub direction: Direction,
    pub critical: bool,
    pub must_have_data: bool,
    pub allowed_increase: f64,
    pub allowed_decrease: f64,
    pub replace_nan: bool,
    pub outlier_factor: f64,
}

#[derive(Clone, Debug)]
pub struct MetricResult {
    pub name: String,
    pub group: String,
    pub classification: &'static str,
    pub reason: String,
    pub critical: bool,
    pub canary_mean: f64,
    pub baseline_mean: f64,
    pub effect_size: f64,
    pub p_value: f64,
    pub hl_estimate: f64,
    pub hl_lower: f64,
    pub hl_upper: f64,
    pub canary_count: usize,
    pub baseline_count: usize,
    counted_as_failure: bool,
}

pub struct JudgeResult {
    pub score: f64,
    pub classification: &'static str,
    pub reason: String,
    pub groups: Vec<(String, f64)>,
    pub metrics: Vec<MetricResult>,
}

fn clean(values: &[f64], replace_nan: bool, factor: f64) -> Vec<f64> {
    let mut v: Vec<f64> = if replace_nan {
        values
            .iter()
            .map(|&x| if x.is_finite() { x } else { 0.0 })
            .collect()
    } else {
        values.iter().copied().filter(|x| x.is_finite()).collect()
    };
    if factor > 0.0 && !v.is_empty() {
        let p = percentiles(&v, &[1.0, 25.0, 75.0, 99.0]);
        let iqr = p[2] - p[1];
        let lower = p[0].min(p[1] - factor * iqr);
        let upper = p[3].max(p[2] + factor * iqr);
        v.retain(|&x| x >= lower && x <= upper);
    }
    v
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn ratio(c: f64, b: f64) -> f64 {
    if b != 0.0 {
        c / b
    } else if c == 0.0 {
        1.0
    } else if c > 0.0 {
        f64::INFINITY
    } else {
        f64::NEG_INFINITY
    }
}

pub fn classify(
    spec: &MetricSpec,
    canary: &[f64],
    baseline: &[f64],
    confidence: f64,
) -> MetricResult {
    let mut c = clean(canary, spec.replace_nan, spec.outlier_factor);
    let mut b = clean(baseline, spec.replace_nan, spec.outlier_factor);
    let mut r = MetricResult {
        name: spec.name.clone(),
        group: spec.group.clone(),
        classification: "Pass",
        reason: String::new(),
        critical: false,
        canary_mean: mean(&c),
        baseline_mean: mean(&b),
        effect_size: f64::NAN,
        p_value: f64::NAN,
        hl_estimate: f64::NAN,
        hl_lower: f64::NAN,
        hl_upper: f64::NAN,
        canary_count: c.len(),
        baseline_count: b.len(),
        counted_as_failure: false,
    };
    if c.is_empty() || b.is_empty() {
        let side = match (c.is_empty(), b.is_empty()) {
            (true, true) => "canary and baseline",
            (true, false) => "canary",
            _ => "baseline",
        };
        if spec.replace_nan {
            r.reason = format!("no data for {side}; nan_strategy=replace counts it as a pass");
            r.effect_size = 1.0;
            return r;
        }
        r.classification = "NoData";
        if spec.critical {
            r.critical = true;
            r.reason = format!("no data for {side} on a critical metric");
        } else if spec.must_have_data {
            r.counted_as_failure = true;
            r.reason =
                format!("no data for {side} and must_have_data is set: counted as a failure");
        } else {
            r.reason = format!("no data for {side}");
        }
        return r;
    }
    crate::numeric::sort_f64(&mut c);
    crate::numeric::sort_f64(&mut b);
    r.effect_size = ratio(r.canary_mean, r.baseline_mean);
    if c == b {
        r.reason = "canary and baseline data are identical".into();
        r.effect_size = 1.0;
        return r;
    }
    if c[0] == c[c.len() - 1] && b[0] == b[b.len() - 1] && c[0] == b[0] {
        r.reason = "all values are equal".into();
        r.effect_size = 1.0;
        return r;
    }
    let mw = mwu_sorted(&c, &b, Alternative::TwoSided, Method::Auto, true);
    let hl = hl_sorted(&c, &b, confidence);
    r.p_value = mw.p_value;
    r.hl_estimate = hl.estimate;
    r.hl_lower = hl.lower;
    r.hl_upper = hl.upper;
    let band = 0.25 * hl.estimate.abs();
    let up = matches!(spec.direction, Direction::Increase | Direction::Either);
    let down = matches!(spec.direction, Direction::Decrease | Direction::Either);
    let pct = (confidence * 100.0).to_string();
    if up && hl.lower > band && r.effect_size > spec.allowed_increase {
        r.classification = "High";
        r.reason = format!(
            "canary is higher: {pct}% interval of the shift [{:.6}, {:.6}] lies above +{:.6} and effect size {:.4} > allowed_increase {}",
            hl.lower, hl.upper, band, r.effect_size, spec.allowed_increase
        );
    } else if down && hl.upper < -band && r.effect_size < spec.allowed_decrease {
        r.classification = "Low";
        r.reason = format!(
            "canary is lower: {pct}% interval of the shift [{:.6}, {:.6}] lies below -{:.6} and effect size {:.4} < allowed_decrease {}",
            hl.lower, hl.upper, band, r.effect_size, spec.allowed_decrease
        );
    } else {
        r.reason = format!(
            "no significant difference in the allowed direction ({pct}% interval [{:.6}, {:.6}], effect size {:.4})",
            hl.lower, hl.upper, r.effect_size
        );
    }
    if r.classification != "Pass" {
        r.counted_as_failure = true;
        if spec.critical {
            r.critical = true;
            r.reason.push_str(" (critical metric)");
        }
    }
    r
}

pub fn score(
    metrics: Vec<MetricResult>,
    weights: &[(String, f64)],
    pass_threshold: f64,
    marginal_threshold: f64,
) -> JudgeResult {
    let mut order: Vec<String> = Vec::new();
    for m in &metrics {
        if !order.contains(&m.group) {
            order.push(m.group.clone());
        }
    }
    let groups: Vec<(String, f64)> = order
        .iter()
        .map(|g| {
            let (mut passed, mut counted) = (0usize, 0usize);
            for m in metrics.iter().filter(|m| &m.group == g) {
                if m.classification == "Pass" {
                    passed += 1;
                    counted += 1;
                } else if m.counted_as_failure || m.classification == "Error" {
                    counted += 1;
                }
            }
            let s = if counted == 0 {
                100.0
            } else {
                passed as f64 / counted as f64 * 100.0
            };
            (g.clone(), s)
        })
        .collect();
    let weight_of = |g: &str| weights.iter().find(|(n, _)| n == g).map(|(_, w)| *w);
    let configured: f64 = order.iter().filter_map(|g| weight_of(g)).sum();
    let unweighted = order.iter().filter(|g| weight_of(g).is_none()).count();
    let share = if unweighted > 0 {
        ((100.0 - configured) / unweighted as f64).max(0.0)
    } else {
        0.0
    };
    let (mut total_w, mut acc) = (0.0, 0.0);
    for (g, s) in &groups {
        let w = weight_of(g).unwrap_or(share);
        total_w += w;
        acc += w * s;
    }
    let mut score = if total_w > 0.0 {
        acc / total_w
    } else {
        groups.iter().map(|(_, s)| s).sum::<f64>() / groups.len().max(1) as f64
    };
    let nodata = metrics
        .iter()
        .filter(|m| m.classification == "NoData")
        .count();
    let critical: Vec<&str> = metrics
        .iter()
        .filter(|m| m.critical)
        .map(|m| m.name.as_str())
        .collect();
    let reason;
    if !critical.is_empty() {
        score = 0.0;
        reason = format!("critical metric failed: {}", critical.join(", "));
    } else if nodata * 2 >= metrics.len() {
        score = 0.0;
        reason = format!(
            "{nodata} of {} metrics have no data (>= 50%)",
            metrics.len()
        );
    } else {
        let failed: Vec<&str> = metrics
            .iter()
            .filter(|m| m.classification != "Pass" && m.classification != "NoData")
            .map(|m| m.name.as_str())
            .collect();
        reason = if failed.is_empty() {
            "all metrics passed".to_string()
        } else {
            format!("metrics not passing: {}", failed.join(", "))
        };
    }
    let classification = if score >= pass_threshold {
        "Pass"
    } else if score >= marginal_threshold {
        "Marginal"
    } else {
        "Fail"
    };
    JudgeResult {
        score,
        classification,
        reason: format!("score {score:.2} ({classification}): {reason}"),
        groups,
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, critical: bool) -> MetricSpec {
        MetricSpec {
            name: name.into(),
            group: "default".into(),
            direction: Direction::Increase,
            critical,
            must_have_data: false,
            allowed_increase: 1.0,
            allowed_decrease: 1.0,
            replace_nan: false,
            outlier_factor: 3.0,
        }
    }

    #[test]
    fn identical_passes_and_regression_fails() {
        let base: Vec<f64> = (0..200).map(|i| 100.0 + (i % 17) as f64).collect();
        let same = classify(&spec("lat", true), &base, &base, 0.98);
        assert_eq!(same.classification, "Pass");
        let slow: Vec<f64> = base.iter().map(|v| v * 1.3).collect();
        let worse = classify(&spec("lat", true), &slow, &base, 0.98);
        assert_eq!(worse.classification, "High");
        let res = score(vec![same, worse], &[], 95.0, 75.0);
        assert_eq!(res.score, 0.0);
        assert_eq!(res.classification, "Fail");
    }

    #[test]
    fn no_data_scores_zero() {
        let r = classify(&spec("x", false), &[], &[1.0], 0.98);
        assert_eq!(r.classification, "NoData");
        let res = score(vec![r], &[], 95.0, 75.0);
        assert_eq!(res.score, 0.0);
    }
}
