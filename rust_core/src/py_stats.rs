//! Bindings of the statistics: percentiles, Mann–Whitney, Hodges–Lehmann, judge, SLO, trends.

use crate::py_input::{
    check_confidence, check_finite_nonempty, check_no_nan, data, run, verr, Data,
};
use crate::{judge, slo, stats, trend};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

#[pyfunction]
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pyfunction]
pub fn percentiles(
    py: Python<'_>,
    values: &Bound<'_, PyAny>,
    quantiles: &Bound<'_, PyAny>,
) -> PyResult<Vec<f64>> {
    let v = data(values, "values")?;
    let q = data(quantiles, "quantiles")?;
    let (vs, qs) = (v.slice(), q.slice());
    check_finite_nonempty(vs, "values")?;
    if let Some(bad) = qs.iter().find(|q| !(0.0..=100.0).contains(*q)) {
        return Err(verr("quantiles", format!("must be in [0, 100], got {bad}")));
    }
    run(py, || stats::percentiles(vs, qs))
}

pub fn parse_alternative(s: &str) -> PyResult<stats::Alternative> {
    match s {
        "two-sided" => Ok(stats::Alternative::TwoSided),
        "less" => Ok(stats::Alternative::Less),
        "greater" => Ok(stats::Alternative::Greater),
        _ => Err(verr(
            "alternative",
            format!("must be 'two-sided', 'less' or 'greater', got {s:?}"),
        )),
    }
}

#[pyfunction]
#[pyo3(signature = (x, y, alternative = "two-sided", method = "auto", use_continuity = true))]
pub fn mann_whitney_u(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    alternative: &str,
    method: &str,
    use_continuity: bool,
) -> PyResult<(f64, f64, f64)> {
    let alt = parse_alternative(alternative)?;
    let m = match method {
        "auto" => stats::Method::Auto,
        "exact" => stats::Method::Exact,
        "asymptotic" => stats::Method::Asymptotic,
        _ => {
            return Err(verr(
                "method",
                format!("must be 'auto', 'exact' or 'asymptotic', got {method:?}"),
            ))
        }
    };
    let (dx, dy) = (data(x, "x")?, data(y, "y")?);
    let (xs, ys) = (dx.slice(), dy.slice());
    check_finite_nonempty(xs, "x")?;
    check_finite_nonempty(ys, "y")?;
    if m == stats::Method::Exact {
        let (a, b) = (xs.len().min(ys.len()) as f64, xs.len().max(ys.len()) as f64);
        if a * a * b > 2e9 || a * b > 2e7 {
            return Err(verr(
                "method",
                "'exact' is too expensive for these sample sizes; use 'asymptotic'",
            ));
        }
    }
    let r = run(py, || stats::mann_whitney_u(xs, ys, alt, m, use_continuity))?;
    Ok((r.u, r.p_value, r.z))
}

#[pyfunction]
#[pyo3(signature = (x, y, confidence = 0.95))]
pub fn hodges_lehmann(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    confidence: f64,
) -> PyResult<(f64, f64, f64)> {
    check_confidence(confidence)?;
    let (dx, dy) = (data(x, "x")?, data(y, "y")?);
    let (xs, ys) = (dx.slice(), dy.slice());
    check_finite_nonempty(xs, "x")?;
    check_finite_nonempty(ys, "y")?;
    let r = run(py, || stats::hodges_lehmann(xs, ys, confidence))?;
    Ok((r.estimate, r.lower, r.upper))
}

pub type SpecTuple = (String, String, String, bool, bool, f64, f64, String, f64);

#[pyfunction(name = "judge")]
#[allow(clippy::too_many_arguments)]
pub fn judge_metrics<'py>(
    py: Python<'py>,
    metrics: Vec<SpecTuple>,
    canary: Vec<Bound<'py, PyAny>>,
    baseline: Vec<Bound<'py, PyAny>>,
    groups: Vec<(String, f64)>,
    pass_threshold: f64,
    marginal_threshold: f64,
    confidence: f64,
) -> PyResult<Bound<'py, PyTuple>> {
    check_confidence(confidence)?;
    if metrics.is_empty() {
        return Err(verr("metrics", "must not be empty"));
    }
    if canary.len() != metrics.len() || baseline.len() != metrics.len() {
        return Err(verr("canary", "internal: one series per metric expected"));
    }
    for (g, w) in &groups {
        if !(w.is_finite() && *w >= 0.0) {
            return Err(verr(
                "groups",
                format!("weight of {g:?} must be a finite number >= 0"),
            ));
        }
    }
    let mut specs = Vec::with_capacity(metrics.len());
    for (name, group, dir, critical, must, inc, dec, nan, outlier) in metrics {
        let direction = match dir.as_str() {
            "increase" => judge::Direction::Increase,
            "decrease" => judge::Direction::Decrease,
            "either" => judge::Direction::Either,
            _ => {
                return Err(verr(
                    "metrics",
                    format!("{name}: direction must be increase|decrease|either, got {dir:?}"),
                ))
            }
        };
        let replace_nan = match nan.as_str() {
            "remove" => false,
            "replace" => true,
            _ => {
                return Err(verr(
                    "metrics",
                    format!("{name}: nan_strategy must be remove|replace, got {nan:?}"),
                ))
            }
        };
        specs.push(judge::MetricSpec {
            name,
            group,
            direction,
            critical,
            must_have_data: must,
            allowed_increase: inc,
            allowed_decrease: dec,
            replace_nan,
            outlier_factor: outlier,
        });
    }
    let mut c_data = Vec::with_capacity(specs.len());
    let mut b_data = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        c_data.push(data(&canary[i], &format!("canary[{:?}]", s.name))?);
        b_data.push(data(&baseline[i], &format!("baseline[{:?}]", s.name))?);
    }
    let slices: Vec<(&[f64], &[f64])> = c_data
        .iter()
        .zip(&b_data)
        .map(|(c, b)| (c.slice(), b.slice()))
        .collect();
    let result = run(py, || {
        let results = specs
            .iter()
            .zip(&slices)
            .map(|(s, (c, b))| judge::classify(s, c, b, confidence))
            .collect();
        judge::score(results, &groups, pass_threshold, marginal_threshold)
    })?;
    let mut ms = Vec::with_capacity(result.metrics.len());
    for m in &result.metrics {
        let d = PyDict::new(py);
        d.set_item("name", &m.name)?;
        d.set_item("group", &m.group)?;
        d.set_item("classification", m.classification)?;
        d.set_item("reason", &m.reason)?;
        d.set_item("critical", m.critical)?;
        d.set_item("canary_mean", m.canary_mean)?;
        d.set_item("baseline_mean", m.baseline_mean)?;
        d.set_item("effect_size", m.effect_size)?;
        d.set_item("p_value", m.p_value)?;
        d.set_item("hl_estimate", m.hl_estimate)?;
        d.set_item("hl_lower", m.hl_lower)?;
        d.set_item("hl_upper", m.hl_upper)?;
        d.set_item("canary_count", m.canary_count)?;
        d.set_item("baseline_count", m.baseline_count)?;
        ms.push(d);
    }
    PyTuple::new(
        py,
        [
            result.score.into_pyobject(py)?.into_any(),
            result.classification.into_pyobject(py)?.into_any(),
            result.reason.into_pyobject(py)?.into_any(),
            result.groups.into_pyobject(py)?.into_any(),
            ms.into_pyobject(py)?.into_any(),
        ],
    )
}

pub type WindowTuple = (f64, f64, f64, String);
pub type WindowOut = (String, f64, f64, f64, f64, f64, bool);

#[pyfunction]
#[pyo3(signature = (timestamps, good, total, objective, windows = None, now = None, budget_period = 2_592_000.0))]
#[allow(clippy::too_many_arguments)]
pub fn burn_rates(
    py: Python<'_>,
    timestamps: &Bound<'_, PyAny>,
    good: &Bound<'_, PyAny>,
    total: &Bound<'_, PyAny>,
    objective: f64,
    windows: Option<Vec<WindowTuple>>,
    now: Option<f64>,
    budget_period: f64,
) -> PyResult<(Vec<WindowOut>, f64, f64)> {
    let (dt, dg, dn) = (
        data(timestamps, "timestamps")?,
        data(good, "good")?,
        data(total, "total")?,
    );
    let (t, g, n) = (dt.slice(), dg.slice(), dn.slice());
    if g.len() != t.len() {
        return Err(verr(
            "good",
            format!("length {} != len(timestamps) {}", g.len(), t.len()),
        ));
    }
    if n.len() != t.len() {
        return Err(verr(
            "total",
            format!("length {} != len(timestamps) {}", n.len(), t.len()),
        ));
    }
    if let Some(i) = t.iter().position(|v| !v.is_finite()) {
        return Err(verr("timestamps", format!("must be finite (index {i})")));
    }
    if let Some(i) = g.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(verr("good", format!("must be finite and >= 0 (index {i})")));
    }
    if let Some(i) = n.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(verr(
            "total",
            format!("must be finite and >= 0 (index {i})"),
        ));
    }
    if let Some(i) = (0..t.len()).find(|&i| g[i] > n[i]) {
        return Err(verr("good", format!("must be <= total (index {i})")));
    }
    if !(objective > 0.0 && objective < 1.0) {
        return Err(verr(
            "objective",
            format!("must be in (0, 1), got {objective}"),
        ));
    }
    if !(budget_period.is_finite() && budget_period > 0.0) {
        return Err(verr(
            "budget_period",
            "must be a positive number of seconds",
        ));
    }
    let ws: Vec<slo::Window> = match windows {
        None => slo::default_windows(),
        Some(ws) => ws
            .into_iter()
            .map(|(long, short, factor, severity)| slo::Window {
                long,
                short,
                factor,
                severity,
            })
            .collect(),
    };
    if let Some(w) = ws
        .iter()
        .find(|w| !(w.long > 0.0 && w.short > 0.0 && w.factor.is_finite()))
    {
        return Err(verr(
            "windows",
            format!(
                "bad window ({}, {}, {}, {:?})",
                w.long, w.short, w.factor, w.severity
            ),
        ));
    }
    let now = match now {
        Some(v) if v.is_finite() => v,
        Some(_) => return Err(verr("now", "must be finite")),
        None => t.iter().copied().fold(f64::NAN, f64::max),
    };
    if now.is_nan() {
        return Err(verr(
            "timestamps",
            "must not be empty when now is not given",
        ));
    }
    let r = run(py, || {
        slo::burn_rates(t, g, n, objective, &ws, now, budget_period)
    })?;
    let out = ws
        .iter()
        .zip(&r.windows)
        .map(|(w, x)| {
            (
                w.severity.clone(),
                w.long,
                w.short,
                w.factor,
                x.long_burn_rate,
                x.short_burn_rate,
                x.firing,
            )
        })
        .collect();
    Ok((out, r.error_budget_remaining, r.now))
}

#[pyfunction]
#[pyo3(signature = (x, y, confidence = 0.95))]
pub fn theil_sen(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    confidence: f64,
) -> PyResult<(f64, f64, f64, f64)> {
    check_confidence(confidence)?;
    let (dx, dy) = (data(x, "x")?, data(y, "y")?);
    let (xs, ys) = (dx.slice(), dy.slice());
    check_finite_nonempty(xs, "x")?;
    check_finite_nonempty(ys, "y")?;
    if xs.len() != ys.len() {
        return Err(verr(
            "y",
            format!("length {} != len(x) {}", ys.len(), xs.len()),
        ));
    }
    let r = run(py, || trend::theil_sen(xs, ys, confidence))?
        .ok_or_else(|| verr("x", "needs at least two distinct values"))?;
    Ok((r.slope, r.intercept, r.low_slope, r.high_slope))
}

#[pyfunction]
#[pyo3(signature = (y, x = None))]
pub fn mann_kendall(
    py: Python<'_>,
    y: &Bound<'_, PyAny>,
    x: Option<&Bound<'_, PyAny>>,
) -> PyResult<(f64, f64, f64, f64)> {
    let dy = data(y, "y")?;
    let ys = dy.slice();
    check_finite_nonempty(ys, "y")?;
    if ys.len() < 2 {
        return Err(verr("y", "needs at least 2 values"));
    }
    let dx = match x {
        Some(x) => data(x, "x")?,
        None => Data::Owned((0..ys.len()).map(|i| i as f64).collect()),
    };
    let xs = dx.slice();
    check_no_nan(xs, "x")?;
    if xs.len() != ys.len() {
        return Err(verr(
            "x",
            format!("length {} != len(y) {}", xs.len(), ys.len()),
        ));
    }
    let r = run(py, || trend::mann_kendall(xs, ys))?;
    Ok((r.s, r.tau, r.z, r.p_value))
}
