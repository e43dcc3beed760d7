"""External oracles: scipy and numpy agree with rust_core."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import rust_core as rc
from tests.ci import require_module

from .rc_testutil import RC

scipy_stats = require_module("scipy.stats")

sample = st.one_of(
    st.lists(st.integers(0, 6).map(float), min_size=1, max_size=40),
    st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=40),
)


@RC
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300),
    st.lists(st.floats(0, 100), min_size=1, max_size=10),
)
def test_percentiles_vs_numpy(values: list[float], qs: list[float]) -> None:
    assert rc.percentiles(values, qs) == np.percentile(np.asarray(values), qs).tolist()


def test_percentiles_vs_numpy_large() -> None:
    v = np.random.default_rng(0).lognormal(size=200_001)
    qs = [0, 0.1, 1, 25, 50, 75, 99, 99.9, 100]
    assert rc.percentiles(v, qs) == np.percentile(v, qs).tolist()


@RC
@given(
    sample,
    sample,
    st.sampled_from(["two-sided", "less", "greater"]),
    st.sampled_from(["auto", "asymptotic"]),
)
def test_mann_whitney_vs_scipy(x: list[float], y: list[float], alt: str, method: str) -> None:
    r = rc.mann_whitney_u(x, y, alt, method)
    s = scipy_stats.mannwhitneyu(x, y, alternative=alt, method=method)
    assert r.u == pytest.approx(float(s.statistic), rel=1e-12, abs=1e-12)
    assert r.p_value == pytest.approx(float(s.pvalue), rel=1e-9, abs=1e-14, nan_ok=True)


def test_mann_whitney_vs_scipy_large() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0.01, 1, 200_000).round(2)
    y = rng.normal(0.0, 1, 150_000).round(2)
    r = rc.mann_whitney_u(x, y)
    s = scipy_stats.mannwhitneyu(x, y)
    assert r.u == float(s.statistic)
    assert r.p_value == pytest.approx(float(s.pvalue), rel=1e-9)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@RC
@given(
    st.integers(2, 40).flatmap(
        lambda n: st.tuples(
            st.lists(
                st.one_of(st.integers(0, 8).map(float), st.floats(-1e3, 1e3)),
                min_size=n,
                max_size=n,
            ),
            st.lists(
                st.one_of(st.integers(0, 4).map(float), st.floats(-1e3, 1e3)),
                min_size=n,
                max_size=n,
            ),
        )
    ),
    st.sampled_from([0.9, 0.95, 0.99]),
)
def test_theil_sen_vs_scipy(xy: tuple, conf: float) -> None:
    x, y = xy
    assume(len(set(x)) >= 2)  # a slope needs two distinct x (hypothesis draws another case)
    r = rc.theil_sen(x, y, conf)
    s = scipy_stats.theilslopes(y, x, alpha=conf)
    assert r.slope == pytest.approx(s.slope, rel=1e-12, abs=1e-12)
    assert r.intercept == pytest.approx(s.intercept, rel=1e-9, abs=1e-9)
    assert r.low_slope == pytest.approx(s.low_slope, rel=1e-12, abs=1e-12, nan_ok=True)
    assert r.high_slope == pytest.approx(s.high_slope, rel=1e-12, abs=1e-12, nan_ok=True)


def test_theil_sen_large_uses_selection_and_matches_scipy() -> None:
    # 5,000 points = 12.5M slopes: above the materialisation limit, so the O(n log n)
    # bisection path runs; scipy materialises them all (still feasible at this size).
    rng = np.random.default_rng(2)
    x = np.arange(5000.0)
    y = 0.003 * x + rng.normal(0, 1, 5000)
    r = rc.theil_sen(x, y)
    s = scipy_stats.theilslopes(y, x)
    assert r.slope == pytest.approx(s.slope, rel=1e-12)
    assert r.low_slope == pytest.approx(s.low_slope, rel=1e-12)
    assert r.high_slope == pytest.approx(s.high_slope, rel=1e-12)


@RC
@given(
    st.lists(
        st.one_of(st.integers(0, 5).map(float), st.floats(-1e3, 1e3)), min_size=3, max_size=80
    ),
    st.booleans(),
)
def test_mann_kendall_tau_vs_scipy(y: list[float], with_x: bool) -> None:
    x = [float(i // 2) for i in range(len(y))] if with_x else list(range(len(y)))
    r = rc.mann_kendall(y, x if with_x else None)
    s = scipy_stats.kendalltau(x, y)
    assert r.tau == pytest.approx(float(s.statistic), rel=1e-12, abs=1e-12, nan_ok=True)
    # S counted pair by pair, independently of both implementations
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    i, j = np.triu_indices(len(ys), 1)
    s_exact = int(np.sum(np.sign(xs[j] - xs[i]) * np.sign(ys[j] - ys[i])))
    assert r.s == s_exact
    # the continuity-corrected two-sided p-value, for every case: scipy's asymptotic test
    # gives z = S / sigma (sigma with the tie corrections for x and y); ours uses
    # (|S| - 1) / sigma. S = 0 means no evidence of a trend: p = 1 (scipy's z is 0 or nan).
    if s_exact == 0:
        expected = 1.0
    else:
        z = scipy_stats.norm.isf(scipy_stats.kendalltau(x, y, method="asymptotic").pvalue / 2)
        expected = min(1.0, 2 * scipy_stats.norm.sf(z * (abs(s_exact) - 1) / abs(s_exact)))
    # the round trip through scipy's p-value (isf) costs < 1e-14 relative (measured over
    # 3,000 cases down to p = 2e-39); 1e-9 leaves room for another libm, not for a wrong formula
    assert r.p_value == pytest.approx(expected, rel=1e-9, abs=0)


@RC
@given(
    st.lists(st.floats(0, 1e7), min_size=1, max_size=500),
    st.sampled_from([0.001, 0.01, 0.05]),
)
def test_histogram_within_stated_error(values: list[float], rel: float) -> None:
    h = rc.Histogram(rel)
    h.record_many(values)
    arr = np.asarray(values)
    for q in (0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0):
        exact = float(np.percentile(arr, q * 100, method="lower"))
        est = h.quantile(q)
        assert abs(est - exact) <= rel * exact + 1e-300, (q, est, exact)


def test_histogram_lognormal_million() -> None:
    v = np.random.default_rng(3).lognormal(3, 1.5, 1_000_000)
    h = rc.Histogram()
    h.record_many(v)
    for q in (0.5, 0.9, 0.99, 0.999, 0.9999):
        exact = float(np.percentile(v, q * 100, method="lower"))
        assert abs(h.quantile(q) - exact) <= 0.01 * exact
