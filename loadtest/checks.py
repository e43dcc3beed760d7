"""Soak checks between slices (pure and deterministic: safe inside workflows).

* **slo**: multi-window burn rates (``rust_core.burn_rates``) over per-slice
  good/total events; a window fires when both its long and short burn rates
  exceed its factor.
* **p99_drift**: the last slice's p99 against the baseline's p99 (merged
  sketches of the slices inside ``plan.baseline``), once the baseline is complete.
* **error_creep**: last slice's error rate minus the baseline's.
* **resources**: RSS trend of the target's processes: Theil-Sen slope
  (``rust_core.theil_sen``) in MB/hour, significant by Mann-Kendall
  (``rust_core.mann_kendall``) at ``alpha``; breach when the trend is increasing,
  significant, steeper than the limit, and has grown at least ``min_growth_mb``
  over the judged window (a noise floor, like p99 drift's ``min_delta_ms``).

The first failing check gives the breach reason."""

from __future__ import annotations

import math
from typing import Any

import rust_core
from loadtest.soak_models import (
    CheckOutcome,
    CheckReport,
    ResourceSample,
    SliceSummary,
    SoakCarry,
    SoakPlan,
    TrendPoint,
)
from loadtest.stats import LoadStats

MAX_TREND_POINTS = 1500


def _get(obj: Any, name: str, index: int) -> Any:
    """Read a field of a rust_core result (object attribute, mapping key or tuple index)."""
    if isinstance(obj, dict):
        return obj[name]
    if hasattr(obj, name):
        return getattr(obj, name)
    return obj[index]


def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def summarize(
    index: int,
    start_s: float,
    end_s: float,
    attempt: int,
    stats: LoadStats,
    resources: list[ResourceSample],
) -> SliceSummary:
    h = stats.histogram()
    q = (lambda p: _num(h.quantile(p))) if h.count else (lambda p: None)
    rss = [r.rss_bytes for r in resources if r.rss_bytes > 0]
    return SliceSummary(
        index=index,
        start_s=start_s,
        end_s=end_s,
        attempt=attempt,
        planned=stats.planned,
        sent=stats.sent,
        dropped=stats.dropped,
        completed=stats.completed,
        errors=stats.errors,
        good=stats.good,
        slo_total=stats.slo_total,
        achieved_rate=stats.achieved_rate(),
        p50_ms=q(0.5),
        p90_ms=q(0.9),
        p99_ms=q(0.99),
        max_ms=_num(h.max) if h.count else None,
        rss_mb=(sum(rss) / len(rss) / 2**20) if rss else None,
    )


def trend_points(samples: list[ResourceSample], started_at: float) -> list[TrendPoint]:
    return [
        TrendPoint(t_s=s.t - started_at, rss_mb=s.rss_bytes / 2**20, cpu_percent=s.cpu_percent)
        for s in samples
        if s.rss_bytes > 0
    ]


def thin(points: list[TrendPoint], max_n: int = MAX_TREND_POINTS) -> list[TrendPoint]:
    """Halve the series by averaging neighbours until it fits (deterministic)."""
    while len(points) > max_n:
        out = []
        for i in range(0, len(points) - 1, 2):
            a, b = points[i], points[i + 1]
            out.append(
                TrendPoint(
                    t_s=(a.t_s + b.t_s) / 2,
                    rss_mb=(a.rss_mb + b.rss_mb) / 2,
                    cpu_percent=(a.cpu_percent + b.cpu_percent) / 2,
                )
            )
        if len(points) % 2:
            out.append(points[-1])
        points = out
    return points


def rss_trend(points: list[TrendPoint], warmup_s: float) -> dict[str, float] | None:
    """Slope (MB/hour) with its confidence interval and Mann-Kendall p-value."""
    pts = [p for p in points if p.t_s >= warmup_s]
    if len(pts) < 4 or pts[-1].t_s - pts[0].t_s <= 0:
        return None
    x = [p.t_s / 3600.0 for p in pts]
    y = [p.rss_mb for p in pts]
    try:
        ts = rust_core.theil_sen(x, y, confidence=0.95)
        mk = rust_core.mann_kendall(y, x)
    except ValueError:  # degenerate series (e.g. one distinct x): no trend to judge
        return None
    return {
        "slope": float(_get(ts, "slope", 0)),
        "intercept": float(_get(ts, "intercept", 1)),
        "low_slope": float(_get(ts, "low_slope", 2)),
        "high_slope": float(_get(ts, "high_slope", 3)),
        "p_value": float(_get(mk, "p_value", 3)),
        "z": float(_get(mk, "z", 2)),
        "n": float(len(pts)),
        "span_h": x[-1] - x[0],
    }


def _burn(plan: SoakPlan, slices: list[SliceSummary], now_s: float) -> list[dict[str, float]]:
    slo = plan.checks.slo
    if slo is None:
        raise ValueError("the plan has no SLO check")
    ts = [s.end_s for s in slices]
    good = [float(s.good) for s in slices]
    total = [float(s.slo_total) for s in slices]
    windows = [
        (w.long.total_seconds(), w.short.total_seconds(), w.factor, "soak") for w in slo.windows
    ]
    res = rust_core.burn_rates(
        ts,
        good,
        total,
        slo.objective,
        windows=windows,
        now=now_s,
        budget_period=plan.duration.total_seconds(),
    )
    out = []
    for w, r in zip(slo.windows, _get(res, "windows", 0), strict=False):
        out.append(
            {
                "long": w.long.total_seconds(),
                "short": w.short.total_seconds(),
                "factor": w.factor,
                "long_burn_rate": float(_get(r, "long_burn_rate", 0)),
                "short_burn_rate": float(_get(r, "short_burn_rate", 1)),
                "firing": bool(_get(r, "firing", 2)),
            }
        )
    return out


def evaluate(
    plan: SoakPlan,
    carry: SoakCarry,
    last: LoadStats,
    index: int,
    at_s: float,
    *,
    growth_floor: bool = True,
) -> CheckReport:
    """Run every configured check after slice ``index`` (``carry`` already includes it).
    ``growth_floor=False`` judges RSS without ``min_growth_mb`` (runs started before the
    floor existed replay as they ran)."""
    checks = plan.checks
    out: list[CheckOutcome] = []
    baseline_done = at_s >= plan.baseline.total_seconds() - 1e-6 and carry.baseline.completed > 0
    if checks.slo is not None and carry.slices:
        for w in _burn(plan, carry.slices, at_s):
            name = f"slo burn {w['long'] / 3600:g}h/{w['short'] / 60:g}m"
            out.append(
                CheckOutcome(
                    name=name,
                    ok=not w["firing"],
                    value=w["long_burn_rate"],
                    limit=w["factor"],
                    detail=(
                        f"burn rate long {w['long_burn_rate']:.2f}, short {w['short_burn_rate']:.2f} "
                        f"(limit {w['factor']:g}, objective {checks.slo.objective})"
                    ),
                )
            )
    if (
        checks.p99_drift is not None
        and baseline_done
        and last.completed >= checks.p99_drift.min_requests
    ):
        base = _num(carry.baseline.histogram().quantile(0.99))
        cur = _num(last.histogram().quantile(0.99))
        if base and cur is not None:
            inc = cur / base - 1
            ok = inc <= checks.p99_drift.max_increase or cur - base < checks.p99_drift.min_delta_ms
            out.append(
                CheckOutcome(
                    name="p99 drift",
                    ok=ok,
                    value=inc,
                    limit=checks.p99_drift.max_increase,
                    detail=f"p99 {cur:.2f} ms vs baseline {base:.2f} ms ({inc:+.1%})",
                )
            )
    ec = checks.error_creep
    if ec is not None and baseline_done and last.completed >= ec.min_requests:
        inc = last.error_rate() - carry.baseline.error_rate()
        out.append(
            CheckOutcome(
                name="error creep",
                ok=inc <= ec.max_increase,
                value=inc,
                limit=ec.max_increase,
                detail=(
                    f"error rate {last.error_rate():.4%} vs baseline "
                    f"{carry.baseline.error_rate():.4%} ({inc * 100:+.3f} points)"
                ),
            )
        )
    rc = checks.resources
    if rc is not None:
        pts = [p for p in carry.trend if p.t_s >= rc.warmup.total_seconds()]
        if len(pts) >= rc.min_points:
            tr = rss_trend(pts, rc.warmup.total_seconds())
            if tr is not None:
                grown = tr["slope"] * tr["span_h"]
                breach = (
                    tr["slope"] > rc.max_rss_slope_mb_per_hour
                    and tr["p_value"] < rc.alpha
                    and tr["z"] > 0
                    and (not growth_floor or grown >= rc.min_growth_mb)
                )
                out.append(
                    CheckOutcome(
                        name="rss trend",
                        ok=not breach,
                        value=tr["slope"],
                        limit=rc.max_rss_slope_mb_per_hour,
                        detail=(
                            f"RSS slope {tr['slope']:.1f} MB/h "
                            f"[{tr['low_slope']:.1f}, {tr['high_slope']:.1f}] "
                            f"Mann-Kendall p={tr['p_value']:.3g} over {int(tr['n'])} points, "
                            f"{grown:+.1f} MB fitted (floor {rc.min_growth_mb:g} MB)"
                        ),
                    )
                )
    failed = [o for o in out if not o.ok]
    reason = f"{failed[0].name}: {failed[0].detail}" if failed else ""
    return CheckReport(
        slice_index=index, at_s=at_s, breach=bool(failed), reason=reason, outcomes=out
    )
