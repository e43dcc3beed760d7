"""The RSS trend check: a significant, steep trend is a leak only once the fitted growth
reaches ``min_growth_mb``; a short window's allocator jitter (CI saw +0.09 MB over 12 s
of a healthy service judged as 26.9 MB/h) is not."""

from __future__ import annotations

import pytest

from loadtest import checks
from loadtest.soak_models import SoakCarry, TrendPoint, parse_plan
from loadtest.stats import LoadStats


def _plan(extra: str = "") -> object:
    return parse_plan(
        "target: {url: 'http://127.0.0.1:1'}\nscenario: {targets: [{name: home}]}\n"
        "rate: 5\nduration: 1h\nslice: 1m\nbaseline: 1m\n"
        "checks: {slo: null, p99_drift: null, error_creep: null, resources: "
        "{max_rss_slope_mb_per_hour: 20, min_points: 6" + extra + "}}\n"
    )


def _rss(points: list[tuple[float, float]], extra: str = "", **kw: bool) -> checks.CheckOutcome:
    carry = SoakCarry(started_at=0.0, trend=[TrendPoint(t_s=t, rss_mb=m) for t, m in points])
    report = checks.evaluate(_plan(extra), carry, LoadStats(), 0, points[-1][0], **kw)  # type: ignore[arg-type]
    return next(o for o in report.outcomes if o.name == "rss trend")


# 12 s, monotone +0.015 MB/s: 54 MB/h, significant, but +0.18 MB in all
JITTER = [(6.0 + 2 * i, 100.0 + 0.03 * i) for i in range(7)]
# 10 min, monotone +0.5 MB/min: 30 MB/h and +5 MB
LEAK = [(60.0 * i, 100.0 + 0.5 * i) for i in range(11)]


def test_short_window_jitter_is_not_a_leak() -> None:
    out = _rss(JITTER)
    assert out.ok, out.detail
    assert out.value is not None and out.value > 20  # steep and significant, yet under the floor
    assert "floor 2 MB" in out.detail


def test_without_the_floor_the_same_jitter_breaches() -> None:
    assert not _rss(JITTER, growth_floor=False).ok
    assert not _rss(JITTER, ", min_growth_mb: 0").ok


def test_a_leak_past_the_floor_breaches() -> None:
    out = _rss(LEAK)
    assert not out.ok, out.detail
    assert out.value == pytest.approx(30.0, rel=0.01)
    assert _rss(LEAK, ", min_growth_mb: 10").ok  # +5 MB is under a 10 MB floor


def test_floor_must_not_be_negative() -> None:
    from code_foundation.errors import SpecError

    with pytest.raises(SpecError, match="min_growth_mb"):
        _plan(", min_growth_mb: -1")
