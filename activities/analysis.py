"""Backbone canary analysis: canary vs stable thresholds on error rate and p99
latency over one window of live traffic, read from the local router.

The Kayenta-style statistical judge (rust_core) and Prometheus provider build on
this module's window/threshold shape. Returns an ``AnalysisResult`` verdict:
``pass``, ``fail`` or ``inconclusive`` (too little canary traffic), with reasons."""

from __future__ import annotations

from typing import Protocol

from workflows.models import AnalyseInput, AnalysisResult
from workflows.spec import Thresholds


class Window(Protocol):
    count: int
    errors: int
    latencies_ms: list[float]


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    try:
        import rust_core

        return float(rust_core.percentiles(values, [99.0])[0])
    except (ImportError, AttributeError):  # pragma: no cover - rust_core always built in CI
        ordered = sorted(values)
        pos = 0.99 * (len(ordered) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


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
) -> tuple[str, list[str]]:
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


def thresholds_for(inp: AnalyseInput) -> Thresholds:
    steps = inp.spec.strategy.canary.steps if inp.spec.strategy.canary else []
    if 0 <= inp.step_index < len(steps) and steps[inp.step_index].analysis is not None:
        return steps[inp.step_index].analysis.thresholds  # type: ignore[union-attr]
    bg = inp.spec.strategy.blue_green
    if bg is not None and bg.pre_promotion_analysis is not None:
        return bg.pre_promotion_analysis.thresholds
    return inp.spec.analysis_defaults


def analyse_windows(
    inp: AnalyseInput, canary: Window | None, stable: Window | None
) -> AnalysisResult:
    c, s = summarise(canary), summarise(stable)
    verdict, reasons = judge_thresholds(c, s, thresholds_for(inp))
    return AnalysisResult(
        verdict=verdict,  # type: ignore[arg-type]
        reasons=reasons,
        canary=c,
        stable=s,
        window_start=inp.window_start,
        window_end=inp.window_end,
    )
