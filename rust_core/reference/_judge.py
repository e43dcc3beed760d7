"""Reference Kayenta-style canary judge."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rust_core._types import (
    JudgeResult,
    MetricResult,
    MetricSpec,
    check_groups,
    check_mapping,
    coerce_specs,
)
from rust_core.reference._common import (
    _confidence,
    _floats,
    _q,
    _rust_float,
)
from rust_core.reference._stats import hodges_lehmann, mann_whitney_u, percentiles


def _clean(values: list[float], replace: bool, factor: float) -> list[float]:
    v = (
        [x if math.isfinite(x) else 0.0 for x in values]
        if replace
        else [x for x in values if math.isfinite(x)]
    )
    if factor > 0.0 and v:
        p1, q1, q3, p99 = percentiles(v, [1.0, 25.0, 75.0, 99.0])
        iqr = q3 - q1
        lower = min(p1, q1 - factor * iqr)
        upper = max(p99, q3 + factor * iqr)
        v = [x for x in v if lower <= x <= upper]
    return v


def _mean(v: list[float]) -> float:
    if not v:
        return math.nan
    s = 0.0
    for x in v:
        s += x
    return s / len(v)


def _ratio(c: float, b: float) -> float:
    if b != 0.0:
        return c / b
    if c == 0.0:
        return 1.0
    return math.inf if c > 0 else -math.inf


def _classify(
    spec: MetricSpec, canary: list[float], baseline: list[float], confidence: float
) -> tuple[MetricResult, bool]:
    if spec.direction not in ("increase", "decrease", "either"):
        raise ValueError(
            f"metrics: {spec.name}: direction must be increase|decrease|either, got {_q(str(spec.direction))}"
        )
    if spec.nan_strategy not in ("remove", "replace"):
        raise ValueError(
            f"metrics: {spec.name}: nan_strategy must be remove|replace, got {_q(str(spec.nan_strategy))}"
        )
    replace = spec.nan_strategy == "replace"
    factor = 0.0 if spec.outlier_factor is None else float(spec.outlier_factor)
    c = _clean(canary, replace, factor)
    b = _clean(baseline, replace, factor)
    res: dict[str, Any] = dict(
        name=spec.name, group=spec.group, classification="Pass", reason="", critical=False,
        canary_mean=_mean(c), baseline_mean=_mean(b), effect_size=math.nan, p_value=math.nan,
        hl_estimate=math.nan, hl_lower=math.nan, hl_upper=math.nan,
        canary_count=len(c), baseline_count=len(b),
    )  # fmt: skip
    failure = False
    if not c or not b:
        side = "canary and baseline" if not c and not b else ("canary" if not c else "baseline")
        if replace:
            res.update(
                reason=f"no data for {side}; nan_strategy=replace counts it as a pass",
                effect_size=1.0,
            )
            return MetricResult(**res), False
        res["classification"] = "NoData"
        if spec.critical:
            res.update(critical=True, reason=f"no data for {side} on a critical metric")
        elif spec.must_have_data:
            failure = True
            res["reason"] = f"no data for {side} and must_have_data is set: counted as a failure"
        else:
            res["reason"] = f"no data for {side}"
        return MetricResult(**res), failure
    c.sort()
    b.sort()
    res["effect_size"] = _ratio(res["canary_mean"], res["baseline_mean"])
    if c == b:
        res.update(reason="canary and baseline data are identical", effect_size=1.0)
        return MetricResult(**res), False
    if c[0] == c[-1] and b[0] == b[-1] and c[0] == b[0]:
        res.update(reason="all values are equal", effect_size=1.0)
        return MetricResult(**res), False
    mw = mann_whitney_u(c, b)
    hl = hodges_lehmann(c, b, confidence)
    res.update(p_value=mw.p_value, hl_estimate=hl.estimate, hl_lower=hl.lower, hl_upper=hl.upper)
    band = 0.25 * abs(hl.estimate)
    up = spec.direction in ("increase", "either")
    down = spec.direction in ("decrease", "either")
    pct = _rust_float(confidence * 100.0)
    es = res["effect_size"]
    if up and hl.lower > band and es > spec.allowed_increase:
        res["classification"] = "High"
        res["reason"] = (
            f"canary is higher: {pct}% interval of the shift [{hl.lower:.6f}, {hl.upper:.6f}] lies above "
            f"+{band:.6f} and effect size {es:.4f} > allowed_increase {_rust_float(float(spec.allowed_increase))}"
        )
    elif down and hl.upper < -band and es < spec.allowed_decrease:
        res["classification"] = "Low"
        res["reason"] = (
            f"canary is lower: {pct}% interval of the shift [{hl.lower:.6f}, {hl.upper:.6f}] lies below "
            f"-{band:.6f} and effect size {es:.4f} < allowed_decrease {_rust_float(float(spec.allowed_decrease))}"
        )
    else:
        res["reason"] = (
            f"no significant difference in the allowed direction ({pct}% interval "
            f"[{hl.lower:.6f}, {hl.upper:.6f}], effect size {es:.4f})"
        )
    if res["classification"] != "Pass":
        failure = True
        if spec.critical:
            res["critical"] = True
            res["reason"] += " (critical metric)"
    return MetricResult(**res), failure


def judge(
    metrics: Sequence[MetricSpec | Mapping[str, Any]],
    canary: Mapping[str, Any],
    baseline: Mapping[str, Any],
    groups: Mapping[str, float] | None = None,
    pass_threshold: float = 95.0,
    marginal_threshold: float = 75.0,
    confidence: float = 0.98,
) -> JudgeResult:
    specs = coerce_specs(metrics)
    check_mapping(canary, "canary")
    check_mapping(baseline, "baseline")
    weights = dict(check_groups(groups))
    _confidence(confidence)
    if not specs:
        raise ValueError("metrics: must not be empty")
    results: list[tuple[MetricResult, bool]] = []
    for s in specs:
        c = _floats(canary.get(s.name, ()), f"canary[{_q(s.name)}]")
        b = _floats(baseline.get(s.name, ()), f"baseline[{_q(s.name)}]")
        results.append(_classify(s, c, b, confidence))
    order: list[str] = []
    for m, _ in results:
        if m.group not in order:
            order.append(m.group)
    gscores: dict[str, float] = {}
    for g in order:
        passed = counted = 0
        for m, failure in results:
            if m.group != g:
                continue
            if m.classification == "Pass":
                passed += 1
                counted += 1
            elif failure or m.classification == "Error":
                counted += 1
        gscores[g] = 100.0 if counted == 0 else passed / counted * 100.0
    configured = 0.0
    for g in order:
        if g in weights:
            configured += weights[g]
    unweighted = sum(1 for g in order if g not in weights)
    share = max((100.0 - configured) / unweighted, 0.0) if unweighted else 0.0
    total_w = acc = 0.0
    for g in order:
        w = weights.get(g, share)
        total_w += w
        acc += w * gscores[g]
    if total_w > 0.0:
        score = acc / total_w
    else:
        tot = 0.0
        for g in order:
            tot += gscores[g]
        score = tot / max(len(order), 1)
    ms = [m for m, _ in results]
    nodata = sum(1 for m in ms if m.classification == "NoData")
    critical = [m.name for m in ms if m.critical]
    if critical:
        score = 0.0
        why = f"critical metric failed: {', '.join(critical)}"
    elif nodata * 2 >= len(ms):
        score = 0.0
        why = f"{nodata} of {len(ms)} metrics have no data (>= 50%)"
    else:
        failed = [m.name for m in ms if m.classification not in ("Pass", "NoData")]
        why = "all metrics passed" if not failed else f"metrics not passing: {', '.join(failed)}"
    cls = (
        "Pass"
        if score >= pass_threshold
        else ("Marginal" if score >= marginal_threshold else "Fail")
    )
    return JudgeResult(
        score=score,
        classification=cls,  # type: ignore[arg-type]
        groups=gscores,
        metrics=ms,
        reason=f"score {score:.2f} ({cls}): {why}",
    )
