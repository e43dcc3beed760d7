"""A synthetic slice activity registered under the real slice's name: it returns
deterministic histograms/counters/RSS samples instead of generating load, so
the *orchestration* (slicing, checks, continue-as-new, accounting) is tested."""

from __future__ import annotations

import time
from collections.abc import Callable

from temporalio import activity

from code_foundation.names import SoakA
from loadtest.soak_models import ResourceSample, SliceInput, SliceResult
from loadtest.stats import Recorder

LATENCIES = (2.0, 3.0, 4.0, 5.0, 8.0, 12.0, 20.0, 40.0)  # ms, each 1/8 of the requests


def slice_stats(inp: SliceInput, latency_factor: float, error_rate: float):
    n = round(inp.rate * inp.duration_s)
    rec = Recorder([(t.name, t.method) for t in inp.scenario.targets])
    per = n // len(LATENCIES)
    for lat in LATENCIES:
        rec.hists[0].record(lat * latency_factor, per)
    done = per * len(LATENCIES)
    errors = round(done * error_rate)
    rec.count[0] = done
    rec.ok[0] = done - errors
    rec.errors[0] = errors
    rec.status[0] = {200: done - errors, **({500: errors} if errors else {})}
    rec.sent = done
    rec.dropped = n - done
    now = 1_700_000_000.0 + inp.index * inp.duration_s  # synthetic wall clock
    return rec.snapshot(
        started_at=now, ended_at=now + inp.duration_s, duration_s=inp.duration_s, planned=n
    ), now


def make_slice_activity(
    *,
    drift_from: int | None = None,
    errors_from: int | None = None,
    leak_mb_per_slice: float = 0.0,
    calls: list[int] | None = None,
) -> Callable[..., object]:
    @activity.defn(name=SoakA.SLICE)
    async def synthetic_slice(inp: SliceInput) -> SliceResult:
        if calls is not None:
            calls.append(inp.index)
        factor = 3.0 if drift_from is not None and inp.index >= drift_from else 1.0
        err = 0.05 if errors_from is not None and inp.index >= errors_from else 0.0005
        stats, t0 = slice_stats(inp, factor, err)
        samples = []
        for k in range(3):  # three RSS samples per slice, small deterministic wobble
            wobble = ((inp.index * 7 + k * 3) % 5 - 2) * 0.4
            rss_mb = 100.0 + wobble + leak_mb_per_slice * (inp.index + k / 3)
            samples.append(
                ResourceSample(
                    t=t0 + k * inp.duration_s / 3,
                    rss_bytes=int(rss_mb * 2**20),
                    cpu_percent=5.0,
                    instances=2,
                )
            )
        _ = time.time  # no sleeping: the workflow's durable timers pace the slices
        return SliceResult(
            index=inp.index, attempt=activity.info().attempt, stats=stats, resources=samples
        )

    return synthetic_slice
