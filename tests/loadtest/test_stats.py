"""Stats are exact counters plus rust_core sketches, mergeable and serialisable."""

from __future__ import annotations

import random

from loadtest.stats import LoadStats, Recorder


def _stats(values: list[float], errors: int, seed_key: str = "a") -> LoadStats:
    rec = Recorder([(seed_key, "GET"), ("b", "POST")], slo_latency_ms=50.0)
    for i, v in enumerate(values):
        rec.response(i % 2, v, 200, True)
        rec.sent += 1
    for _ in range(errors):
        rec.failure(0, 1000.0, timeout=True)
        rec.sent += 1
    rec.dropped = 3
    return rec.snapshot(
        started_at=1000.0, ended_at=1010.0, duration_s=10.0, planned=len(values) + errors + 3
    )


def test_merge_is_exact_union() -> None:
    rng = random.Random(7)
    xs = [rng.lognormvariate(2, 1) for _ in range(5000)]
    ys = [rng.lognormvariate(3, 0.5) for _ in range(3000)]
    a, b, both = _stats(xs, 5), _stats(ys, 7), _stats(xs + ys, 12)
    m = a.merge(b)
    assert m.completed == both.completed == 8012
    assert m.errors == 12 and m.dropped == 6 and m.sent == a.sent + b.sent
    assert m.planned == a.planned + b.planned and m.duration_s == 20.0
    # a merged sketch equals the sketch of the union (same buckets)
    for key in (("a", "GET"), ("b", "POST"), None):
        hm, hb = m.histogram(key), both.histogram(key)
        assert hm.count == hb.count
        for q in (0.5, 0.9, 0.99, 0.999):
            assert hm.quantile(q) == hb.quantile(q)
    # 1% relative error against the exact quantile (errors-free sketch)
    clean = _stats(xs + ys, 0).histogram(("b", "POST"))
    exact = sorted(v for i, v in enumerate(xs + ys) if i % 2 == 1)
    for q in (0.5, 0.99):
        true = exact[round(q * (len(exact) - 1))]
        assert abs(clean.quantile(q) / true - 1) < 0.02


def test_slow_and_good_counts() -> None:
    s = _stats([10.0, 60.0, 70.0, 20.0], 1)
    assert s.ok == 4 and s.good == 2 and s.slo_total == 5 + 3


def test_json_roundtrip_keeps_histograms() -> None:
    s = _stats([1.0, 2.0, 3.0, 400.0], 2)
    again = LoadStats.model_validate_json(s.model_dump_json())
    assert again == s
    assert again.histogram().quantile(0.999) == s.histogram().quantile(0.999)
    assert LoadStats.merge_all([s, again]).completed == 12


def test_merge_with_empty() -> None:
    s = _stats([5.0], 0)
    assert LoadStats().merge(s).completed == 1
    assert s.merge(LoadStats()).histogram().count == 1
