"""Reference SLO burn rates, Theil–Sen and Mann–Kendall."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rust_core._types import (
    DEFAULT_WINDOWS,
    BurnRateResult,
    BurnWindow,
    MannKendallResult,
    TheilSenResult,
    trend_of,
)
from rust_core.reference._common import (
    _confidence,
    _floats,
    _no_nan,
    _nonempty,
    _norm_sf,
    _ppf,
)

# ---------------------------------------------------------------- SLO burn rates


def burn_rates(
    timestamps: Any,
    good: Any,
    total: Any,
    objective: float,
    windows: Sequence[tuple[float, float, float, str]] | None = None,
    now: float | None = None,
    budget_period: float = 30 * 86400.0,
) -> BurnRateResult:
    t, g, n = _floats(timestamps, "timestamps"), _floats(good, "good"), _floats(total, "total")
    if len(g) != len(t):
        raise ValueError(f"good: length {len(g)} != len(timestamps) {len(t)}")
    if len(n) != len(t):
        raise ValueError(f"total: length {len(n)} != len(timestamps) {len(t)}")
    for name, arr in (("timestamps", t),):
        for i, v in enumerate(arr):
            if not math.isfinite(v):
                raise ValueError(f"{name}: must be finite (index {i})")
    for name, arr in (("good", g), ("total", n)):
        for i, v in enumerate(arr):
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"{name}: must be finite and >= 0 (index {i})")
    for i in range(len(t)):
        if g[i] > n[i]:
            raise ValueError(f"good: must be <= total (index {i})")
    if not (0.0 < objective < 1.0):
        raise ValueError(f"objective: must be in (0, 1), got {objective}")
    if not (math.isfinite(budget_period) and budget_period > 0):
        raise ValueError("budget_period: must be a positive number of seconds")
    ws = [
        (float(a), float(b), float(c), str(d))
        for a, b, c, d in (DEFAULT_WINDOWS if windows is None else windows)
    ]
    for w in ws:
        if not (w[0] > 0 and w[1] > 0 and math.isfinite(w[2])):
            raise ValueError(f"windows: bad window {w}")
    if now is None:
        if not t:
            raise ValueError("timestamps: must not be empty when now is not given")
        now = max(t)
    elif not math.isfinite(now):
        raise ValueError("now: must be finite")
    budget = 1.0 - objective
    now_f = float(now)

    def sums(w: float) -> tuple[float, float]:
        start = now_f - w
        gs = ns = 0.0
        for i in range(len(t)):
            if start < t[i] <= now_f:
                gs += g[i]
                ns += n[i]
        return gs, ns

    def burn(w: float) -> float:
        gs, ns = sums(w)
        return ((ns - gs) / ns) / budget if ns > 0 else 0.0

    out = []
    for long, short, factor, sev in ws:
        lb, sb = burn(long), burn(short)
        out.append(BurnWindow(sev, long, short, factor, lb, sb, lb > factor and sb > factor))
    gs, ns = sums(budget_period)
    remaining = 1.0 - (ns - gs) / (budget * ns) if ns > 0 else 1.0
    return BurnRateResult(
        windows=out,
        error_budget_remaining=remaining,
        now=float(now),
        firing=any(w.firing for w in out),
    )


# ---------------------------------------------------------------- trends


def _median(v: list[float]) -> float:
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def _repeats(v: list[float]) -> list[float]:
    counts: dict[float, int] = {}
    for x in v:
        counts[x] = counts.get(x, 0) + 1
    return [float(c) for c in counts.values() if c > 1]


def theil_sen(x: Any, y: Any, confidence: float = 0.95) -> TheilSenResult:
    _confidence(confidence)
    xs, ys = _floats(x, "x"), _floats(y, "y")
    _nonempty(xs, "x")
    _nonempty(ys, "y")
    if len(xs) != len(ys):
        raise ValueError(f"y: length {len(ys)} != len(x) {len(xs)}")
    slopes = sorted(
        (ys[i] - ys[j]) / (xs[i] - xs[j])
        for i in range(len(xs))
        for j in range(len(xs))
        if xs[i] - xs[j] > 0
    )
    nt = len(slopes)
    if nt == 0:
        raise ValueError("x: needs at least two distinct values")
    slope = slopes[nt // 2] if nt % 2 else (slopes[nt // 2 - 1] + slopes[nt // 2]) / 2.0
    intercept = _median(ys) - slope * _median(xs)
    alpha = confidence
    if alpha > 0.5:
        alpha = 1.0 - alpha
    z = _ppf(alpha / 2.0)
    n = float(len(xs))

    def term(k: float) -> float:
        return k * (k - 1.0) * (2.0 * k + 5.0)

    rx = 0.0
    for k in sorted(_repeats(xs)):
        rx += term(k)
    ry = 0.0
    for k in sorted(_repeats(ys)):
        ry += term(k)
    sigsq = (n * (n - 1.0) * (2.0 * n + 5.0) - rx - ry) / 18.0
    if sigsq >= 0:
        sigma = math.sqrt(sigsq)
        ru = min(round((nt - z * sigma) / 2.0), nt - 1)
        rl = max(round((nt + z * sigma) / 2.0) - 1, 0)
        low, high = slopes[rl], slopes[ru]
    else:
        low = high = math.nan
    return TheilSenResult(slope=slope, intercept=intercept, low_slope=low, high_slope=high)


def _tie_sums(v: list[float]) -> tuple[float, float, float]:
    a = b = c = 0.0
    counts: dict[float, int] = {}
    for x in v:
        counts[x] = counts.get(x, 0) + 1
    for key in sorted(counts):
        t = float(counts[key])
        a += t * (t - 1.0) / 2.0
        b += t * (t - 1.0) * (t - 2.0)
        c += t * (t - 1.0) * (2.0 * t + 5.0)
    return a, b, c


def mann_kendall(y: Any, x: Any = None, alpha: float = 0.05) -> MannKendallResult:
    ys = _floats(y, "y")
    _nonempty(ys, "y")
    if len(ys) < 2:
        raise ValueError("y: needs at least 2 values")
    xs = [float(i) for i in range(len(ys))] if x is None else _floats(x, "x")
    _no_nan(xs, "x")
    if len(xs) != len(ys):
        raise ValueError(f"x: length {len(xs)} != len(y) {len(ys)}")
    n = len(ys)
    s_int = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = xs[j] - xs[i], ys[j] - ys[i]
            s_int += (dx > 0) - (dx < 0) if dy > 0 else -((dx > 0) - (dx < 0)) if dy < 0 else 0
    s = float(s_int)
    nf = float(n)
    xtie, x0, x1 = _tie_sums(xs)
    ytie, y0, y1 = _tie_sums(ys)
    n0 = nf * (nf - 1.0) / 2.0
    tau = (
        max(-1.0, min(1.0, s / math.sqrt(n0 - xtie) / math.sqrt(n0 - ytie)))
        if n0 > xtie and n0 > ytie
        else math.nan
    )
    m = nf * (nf - 1.0)
    var = (m * (2.0 * nf + 5.0) - x1 - y1) / 18.0 + (2.0 * xtie * ytie) / m
    if n > 2:
        var += x0 * y0 / (9.0 * m * (nf - 2.0))
    num = s - 1.0 if s > 0 else (s + 1.0 if s < 0 else 0.0)
    z = num / math.sqrt(var) if var > 0 else 0.0
    p = min(2.0 * _norm_sf(abs(z)), 1.0)
    return MannKendallResult(s=s, tau=tau, z=z, p_value=p, trend=trend_of(p, z, alpha))
