"""Verdicts of canary analysis: pure computation, no I/O.

* thresholds mode: :func:`summarise` two request windows and :func:`judge_thresholds`
  (error rate, p99 latency, canary vs stable) -> ``pass`` / ``fail`` / ``inconclusive``;
  :func:`analyse_windows` wraps that into an ``AnalysisResult``.
* judge mode: :func:`judge_values` runs ``rust_core.judge`` (Kayenta semantics) over the
  metric values of both versions; ``Pass`` / ``Marginal`` / ``Fail`` map to ``pass`` /
  ``marginal`` / ``fail``, no data for every metric is ``inconclusive``;
  :func:`result_from_judge` turns the judge's result into an ``AnalysisResult``;
  ``dry_run`` metrics are left out of that judgement and each is judged alone by
  :func:`judge_dry_run` (reasons only: they never change the verdict or score).
* :func:`rejudge_record` re-runs either mode on a stored :class:`AnalysisRecord`, with
  other thresholds if asked (``codectl rejudge``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, Protocol

import rust_core
from activities.analysis.record import AnalysisRecord, RecordError
from workflows.models import AnalyseInput, AnalysisResult
from workflows.spec import AnalysisSpec, Thresholds

Verdict = Literal["pass", "marginal", "fail", "inconclusive"]
_JUDGED: dict[str, Verdict] = {"Pass": "pass", "Marginal": "marginal"}  # anything else: fail


class Window(Protocol):
    count: int
    errors: int
    latencies_ms: list[float]


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    return float(rust_core.percentiles(values, [99.0])[0])


def summarise(w: Window | None) -> dict[str, float]:
    if w is None or w.count == 0:
        return {"requests": 0.0, "errors": 0.0, "error_rate": 0.0, "p99_ms": 0.0}
    return {
        "requests": float(w.count),
        "errors": float(w.errors),
        "error_rate": w.errors / w.count,
        "p99_ms": p99(list(w.latencies_ms)),
    }


def judge_thresholds(
    canary: dict[str, float], stable: dict[str, float], t: Thresholds
) -> tuple[Verdict, list[str]]:
    reasons: list[str] = []
    if canary["requests"] < t.min_requests:
        return "inconclusive", [
            f"only {int(canary['requests'])} canary request(s) in the window (need {t.min_requests})"
        ]
    fail = False
    if canary["error_rate"] > t.max_error_rate:
        fail = True
        reasons.append(f"canary error rate {canary['error_rate']:.1%} > max {t.max_error_rate:.1%}")
    if (
        stable["requests"] > 0
        and canary["error_rate"] - stable["error_rate"] > t.max_error_rate_increase
    ):
        fail = True
        reasons.append(
            f"canary error rate {canary['error_rate']:.1%} exceeds stable "
            f"{stable['error_rate']:.1%} by more than {t.max_error_rate_increase:.1%}"
        )
    if t.max_p99_latency_ms is not None and canary["p99_ms"] > t.max_p99_latency_ms:
        fail = True
        reasons.append(f"canary p99 {canary['p99_ms']:.1f} ms > max {t.max_p99_latency_ms:.1f} ms")
    if stable["requests"] > 0 and stable["p99_ms"] > 0:
        ratio = canary["p99_ms"] / stable["p99_ms"]
        # small absolute differences (< 5 ms) are noise on loopback, not regressions
        if ratio > t.max_p99_latency_ratio and canary["p99_ms"] - stable["p99_ms"] > 5.0:
            fail = True
            reasons.append(
                f"canary p99 {canary['p99_ms']:.1f} ms is {ratio:.2f}x stable "
                f"{stable['p99_ms']:.1f} ms (max {t.max_p99_latency_ratio:.2f}x)"
            )
    if not fail:
        reasons.append(
            f"canary error rate {canary['error_rate']:.1%}, p99 {canary['p99_ms']:.1f} ms "
            f"within thresholds ({int(canary['requests'])} requests)"
        )
    return ("fail" if fail else "pass"), reasons


def analysis_for(inp: AnalyseInput) -> AnalysisSpec | None:
    """The AnalysisSpec of the step being analysed (None: the spec's defaults apply)."""
    steps = inp.spec.strategy.canary.steps if inp.spec.strategy.canary else []
    if 0 <= inp.step_index < len(steps) and steps[inp.step_index].analysis is not None:
        return steps[inp.step_index].analysis
    bg = inp.spec.strategy.blue_green
    if bg is not None and bg.pre_promotion_analysis is not None:
        return bg.pre_promotion_analysis
    return None


def thresholds_for(inp: AnalyseInput) -> Thresholds:
    a = analysis_for(inp)
    return a.thresholds if a is not None else inp.spec.analysis_defaults


def analyse_windows(
    inp: AnalyseInput, canary: Window | None, stable: Window | None
) -> AnalysisResult:
    c, s = summarise(canary), summarise(stable)
    verdict, reasons = judge_thresholds(c, s, thresholds_for(inp))
    return AnalysisResult(
        verdict=verdict,
        reasons=reasons,
        canary=c,
        stable=s,
        window_start=inp.window_start,
        window_end=inp.window_end,
    )


# ====================================================================== judge mode
def metric_specs(a: AnalysisSpec) -> list[rust_core.MetricSpec]:
    return [
        rust_core.MetricSpec(
            name=m.name,
            group=m.group,
            direction=m.direction,
            critical=m.critical,
            must_have_data=m.must_have_data,
            allowed_increase=m.allowed_increase,
            allowed_decrease=m.allowed_decrease,
            nan_strategy=m.nan_strategy,
            outlier_factor=m.outlier_factor,
        )
        for m in a.live_metrics()
    ]


def judge_values(
    a: AnalysisSpec,
    canary: Mapping[str, list[float]],
    baseline: Mapping[str, list[float]],
    *,
    pass_threshold: float | None = None,
    marginal_threshold: float | None = None,
    confidence: float | None = None,
) -> tuple[Verdict, rust_core.JudgeResult]:
    """Run rust_core.judge with the spec's config (or overrides); returns (verdict, JudgeResult)."""
    live = {m.group for m in a.live_metrics()}
    res = rust_core.judge(
        metric_specs(a),
        {k: v for k, v in canary.items() if v},
        {k: v for k, v in baseline.items() if v},
        groups={g: w for g, w in a.groups.items() if g in live} or None,
        pass_threshold=a.pass_threshold if pass_threshold is None else pass_threshold,
        marginal_threshold=a.marginal_threshold
        if marginal_threshold is None
        else marginal_threshold,
        confidence=a.confidence if confidence is None else confidence,
    )
    if res.metrics and all(m.classification == "NoData" for m in res.metrics):
        return "inconclusive", res
    return _JUDGED.get(res.classification, "fail"), res


def judge_dry_run(
    a: AnalysisSpec, canary: Mapping[str, list[float]], baseline: Mapping[str, list[float]]
) -> list[str]:
    """Each ``dry_run`` metric judged alone with the spec's thresholds: one reason each
    (``dry-run NAME [Pass|Marginal|Fail|NoData] score S: ...``); never a verdict."""
    out: list[str] = []
    for m in a.metrics:
        if not m.dry_run:
            continue
        alone = a.model_copy(update={"metrics": [m.model_copy(update={"dry_run": False})]})
        alone = alone.model_copy(update={"groups": {}})
        verdict, jr = judge_values(alone, canary, baseline)
        why = "; ".join(x.reason for x in jr.metrics) or jr.reason
        out.append(f"dry-run {m.name} [{verdict}] score {jr.score:.1f}: {why}")
    return out


def _finite(values: dict[str, float]) -> dict[str, float]:
    # NaN/inf cannot cross the data converter into a dict[str, float]; the record keeps them
    return {k: v for k, v in values.items() if math.isfinite(v)}


def result_from_judge(
    verdict: Verdict, res: rust_core.JudgeResult, inp_window: tuple[float, float]
) -> AnalysisResult:
    reasons = [res.reason]
    for m in res.metrics:
        if m.classification != "Pass":
            reasons.append(f"{m.name} [{m.classification}]: {m.reason}")
    return AnalysisResult(
        verdict=verdict,
        reasons=reasons,
        canary=_finite({m.name: m.canary_mean for m in res.metrics}),
        stable=_finite({m.name: m.baseline_mean for m in res.metrics}),
        window_start=inp_window[0],
        window_end=inp_window[1],
        score=res.score,
    )


# ====================================================================== rejudge
def rejudge_record(
    record: AnalysisRecord,
    *,
    pass_threshold: float | None = None,
    marginal_threshold: float | None = None,
    confidence: float | None = None,
    thresholds: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Re-run the judge on a stored record; returns {"old": verdict, "new": verdict,
    "score_old", "score_new", "metrics": [(name, old, new)], "error": ...}."""
    a = record.config
    old = record.verdict
    out: dict[str, Any] = {
        "key": record.key,
        "interval": record.interval_index,
        "step": record.step_index,
        "old": old.verdict if old is not None else "error",
        "score_old": old.score if old is not None else None,
    }
    if record.error is not None and old is None:
        err = record.error
        out |= {
            "new": "error",
            "score_new": None,
            "metrics": [],
            "error": err.message if isinstance(err, RecordError) else err,
        }
        return out
    if record.mode == "thresholds":
        t = a.thresholds.model_copy(update=thresholds or {})
        wins = record.windows or {}
        c = summarise(wins.get(record.canary_version))
        s = summarise(wins.get(record.baseline_version))
        verdict, reasons = judge_thresholds(c, s, t)
        out |= {"new": verdict, "score_new": None, "metrics": [], "reasons": reasons}
        return out
    series = record.series or {}
    canary = {m: sides["canary"].values if "canary" in sides else [] for m, sides in series.items()}
    base = {
        m: sides["baseline"].values if "baseline" in sides else [] for m, sides in series.items()
    }
    new, jr = judge_values(
        a,
        canary,
        base,
        pass_threshold=pass_threshold,
        marginal_threshold=marginal_threshold,
        confidence=confidence,
    )
    old_metrics = {m.name: m.classification for m in record.judge.metrics} if record.judge else {}
    out |= {
        "new": new,
        "score_new": jr.score,
        "reason_new": jr.reason,
        "metrics": [(m.name, old_metrics.get(m.name, "-"), m.classification) for m in jr.metrics],
    }
    return out
