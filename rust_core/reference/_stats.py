"""Reference percentiles, Mann–Whitney U and Hodges–Lehmann."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rust_core._types import (
    HodgesLehmannResult,
    MannWhitneyResult,
)
from rust_core.reference._common import (
    _confidence,
    _floats,
    _lerp,
    _nonempty,
    _norm_sf,
    _ppf,
)

# ---------------------------------------------------------------- percentiles


def percentiles(values: Any, quantiles: Sequence[float]) -> list[float]:
    v = _floats(values, "values")
    qs = _floats(quantiles, "quantiles")
    _nonempty(v, "values")
    for q in qs:
        if not (0.0 <= q <= 100.0):
            raise ValueError(f"quantiles: must be in [0, 100], got {q}")
    s = sorted(v)
    n = len(s)
    out = []
    for q in qs:
        virt = (n - 1) * (q / 100.0)
        if virt >= n - 1:
            out.append(s[n - 1])
            continue
        prev = math.floor(virt)
        out.append(_lerp(s[prev], s[prev + 1], virt - prev))
    return out


# ---------------------------------------------------------------- Mann–Whitney, HL


def _rank_sum(xs: list[float], ys: list[float]) -> tuple[float, float, bool]:
    i = j = 0
    pos = r1 = tie = 0.0
    ties = False
    while i < len(xs) or j < len(ys):
        v = min(xs[i], ys[j]) if i < len(xs) and j < len(ys) else xs[i] if i < len(xs) else ys[j]
        i0 = i
        while i < len(xs) and xs[i] == v:
            i += 1
        j0 = j
        while j < len(ys) and ys[j] == v:
            j += 1
        cx = float(i - i0)
        t = cx + float(j - j0)
        r1 += cx * (pos + (t + 1.0) / 2.0)
        if t > 1.0:
            ties = True
            tie += t * t * t - t
        pos += t
    return r1, tie, ties


def _u_freqs(m: int, n: int) -> list[int]:
    """Frequencies of U for sizes (m, n) (Gaussian binomial coefficients)."""
    deg = m * n
    c = [0] * (deg + 1)
    c[0] = 1
    cur = 0
    for i in range(1, m + 1):
        a = n + i
        new = cur + n
        for k in range(new, a - 1, -1):
            c[k] -= c[k - a]
        for k in range(i, new + 1):
            c[k] += c[k - i]
        cur = new
    return c


def mann_whitney_u(
    x: Any,
    y: Any,
    alternative: str = "two-sided",
    method: str = "auto",
    use_continuity: bool = True,
) -> MannWhitneyResult:
    if alternative not in ("two-sided", "less", "greater"):
        raise ValueError(
            f"alternative: must be 'two-sided', 'less' or 'greater', got {alternative!r}"
        )
    if method not in ("auto", "exact", "asymptotic"):
        raise ValueError(f"method: must be 'auto', 'exact' or 'asymptotic', got {method!r}")
    xs, ys = _floats(x, "x"), _floats(y, "y")
    _nonempty(xs, "x")
    _nonempty(ys, "y")
    xs.sort()
    ys.sort()
    n1, n2 = float(len(xs)), float(len(ys))
    r1, tie, has_ties = _rank_sum(xs, ys)
    u1 = r1 - n1 * (n1 + 1.0) / 2.0
    u2 = n1 * n2 - u1
    if alternative == "greater":
        u, f = u1, 1.0
    elif alternative == "less":
        u, f = u2, 1.0
    else:
        u, f = max(u1, u2), 2.0
    if method == "auto":
        method = (
            "asymptotic" if (len(xs) > 8 and len(ys) > 8) or has_ties or n1 * n2 > 1e7 else "exact"
        )
    if method == "exact":
        m, n = min(len(xs), len(ys)), max(len(xs), len(ys))
        freqs = _u_freqs(m, n)
        k = int(u)
        p = (
            1.0
            if k <= 0
            else (0.0 if k >= len(freqs) else float(sum(freqs[k:])) / float(sum(freqs)))
        )
        z = math.nan
    else:
        mu = n1 * n2 / 2.0
        nn = n1 + n2
        s = math.sqrt(n1 * n2 / 12.0 * ((nn + 1.0) - tie / (nn * (nn - 1.0))))
        num = u - mu
        if use_continuity:
            num -= 0.5
        z = (math.copysign(math.inf, num) if num != 0 else math.nan) if s == 0.0 else num / s
        p = _norm_sf(z) if not math.isnan(z) else math.nan
    return MannWhitneyResult(u=u1, p_value=min(max(p * f, 0.0), 1.0), z=z)


def _critical_value(n1: int, n2: int, confidence: float, tie: float) -> int:
    alpha = 1.0 - confidence
    big_n = n1 * n2
    if n1 + n2 <= 50 and tie == 0.0:
        freqs = _u_freqs(min(n1, n2), max(n1, n2))
        total = float(sum(freqs))
        cum = 0.0
        c = 0
        for u, fu in enumerate(freqs):
            cum += float(fu)
            if cum / total <= alpha / 2.0:
                c = u + 1
            else:
                break
        return min(c, (big_n + 1) // 2)
    z = _ppf(1.0 - alpha / 2.0)
    a, b = float(n1), float(n2)
    n = a + b
    sigma = math.sqrt(a * b / 12.0 * ((n + 1.0) - tie / (n * (n - 1.0))))
    c = math.floor(a * b / 2.0 - z * sigma)
    return 0 if c < 1 else min(int(c), (big_n + 1) // 2)


def _tie_term(s: list[float]) -> float:
    term = 0.0
    i = 0
    while i < len(s):
        j = i + 1
        while j < len(s) and s[j] == s[i]:
            j += 1
        t = float(j - i)
        term += t * t * t - t
        i = j
    return term


def hodges_lehmann(x: Any, y: Any, confidence: float = 0.95) -> HodgesLehmannResult:
    _confidence(confidence)
    xs, ys = _floats(x, "x"), _floats(y, "y")
    _nonempty(xs, "x")
    _nonempty(ys, "y")
    d = sorted(a - b for a in xs for b in ys)
    n = len(d)
    est = d[n // 2] if n % 2 == 1 else (d[n // 2 - 1] + d[n // 2]) / 2.0
    c = _critical_value(len(xs), len(ys), confidence, _tie_term(sorted(xs + ys)))
    if c == 0:
        return HodgesLehmannResult(estimate=est, lower=-math.inf, upper=math.inf)
    return HodgesLehmannResult(estimate=est, lower=d[c - 1], upper=d[n - c])
