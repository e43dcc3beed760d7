"""Probe batches of a chaos experiment's fault window, as pure functions: how the window
is cut into batches, and how one batch's rounds are judged and condensed.

A fault window of ``duration`` probed every ``interval`` has rounds at every
``k * interval < duration`` and one at ``duration`` (the same rounds the one-probe-at-a-
time loop ran). :func:`batch_rounds` says how many rounds one batch holds: about ten
minutes of them, more when the window would need over :data:`MAX_BATCHES` batches, so a
window of any length is a bounded number of activities. :class:`BatchRun` judges each
round with :func:`chaos.abort.judge_round` (the burn series carried in a
:class:`~chaos.messages.BurnTail`, trimmed to the long burn window), counts every round
in a :class:`~chaos.messages.ProbeTally`, keeps the first ``keep_rounds`` rounds and an
aborting round in full and aggregates the others into one record per probe, so a batch
result (and the journal) stays bounded. Used by the real probe-batch activity and by test
fakes alike. Pure: no I/O, no clock (callers pass ``now``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from chaos.abort import BurnSeries, judge_round
from chaos.messages import BurnTail, ProbeBatchInput, ProbeBatchResult, ProbeRecord

BATCH_WINDOW_S = 600.0  # a batch holds about ten minutes of rounds...
MAX_BATCHES = 500  # ...unless the window would need more batches than this
MAX_DEVIATIONS = 20  # deviation messages returned per batch


def window_rounds(duration_s: float, interval_s: float) -> int:
    """How many rounds the fault window has: ``k * interval < duration``, plus the last."""
    return math.ceil(duration_s / interval_s) + 1 if duration_s > 0 else 1


def batch_rounds(duration_s: float, interval_s: float) -> int:
    """How many rounds (``k * interval`` offsets) one batch covers."""
    per = max(1, int(BATCH_WINDOW_S // interval_s))
    return max(per, math.ceil(window_rounds(duration_s, interval_s) / MAX_BATCHES))


def offsets(inp: ProbeBatchInput) -> list[float]:
    """The batch's round offsets (seconds after its start)."""
    step = inp.controls.probe_interval.total_seconds()
    out = [k * step for k in range(math.ceil(inp.span_s / step))] if inp.span_s > 0 else []
    if inp.final:
        out.append(inp.span_s)
    return out


class BatchRun:
    """One batch being run: feed it rounds with :meth:`add`, then take :meth:`result`."""

    def __init__(self, inp: ProbeBatchInput) -> None:
        self.inp = inp
        t = inp.series
        self.series = BurnSeries(list(t.stamps), list(t.good), list(t.total))
        self.res = ProbeBatchResult()
        self._agg: dict[str, ProbeRecord] = {}
        self._agg_rounds: dict[str, tuple[int, int, str]] = {}
        self._now = inp.start_ts

    @property
    def stopped(self) -> bool:
        return self.res.abort is not None

    def add(self, records: Sequence[ProbeRecord], now: float) -> bool:
        """Judge and keep one round; True when it aborts (the batch stops)."""
        res = self.res
        self._now = now
        verdict = judge_round(records, self.series, self.inp.controls, now)
        res.tally.add(list(records))
        if verdict.deviation is not None:
            res.deviated_rounds += 1
            if len(res.deviations) < MAX_DEVIATIONS:
                res.deviations.append(verdict.deviation)
        if verdict.abort is not None:
            res.abort = verdict.abort
        if res.tally.rounds <= self.inp.keep_rounds or verdict.abort is not None:
            res.records.extend(records)
        else:
            for r in records:
                self._aggregate(r)
        return verdict.abort is not None

    def _aggregate(self, r: ProbeRecord) -> None:
        n, bad, first = self._agg_rounds.get(r.name, (0, 0, ""))
        n, bad = n + 1, bad + (0 if r.ok else 1)
        first = first or ("" if r.ok else r.detail)
        self._agg_rounds[r.name] = (n, bad, first)
        a = self._agg.get(r.name)
        if a is None:
            self._agg[r.name] = r.model_copy()
            return
        a.ok = a.ok and r.ok
        a.finished_at, a.status = r.finished_at, r.status
        a.latency_ms = max(a.latency_ms, r.latency_ms)
        a.requests += r.requests
        a.failures += r.failures

    def result(self, partial: bool = False) -> ProbeBatchResult:
        """The batch's result; the burn series trimmed to the long burn window."""
        res = self.res
        for name, rec in self._agg.items():
            n, bad, first = self._agg_rounds[name]
            rec.detail = f"{n} rounds aggregated, {bad} out of tolerance" + (
                f" (first: {first})" if first else ""
            )
            res.records.append(rec)
        self._agg.clear()
        c = self.inp.controls
        horizon = self._now - c.burn_window * c.probe_interval.total_seconds()
        s = self.series
        keep = [i for i, t in enumerate(s.stamps) if t > horizon]
        res.series = BurnTail(
            stamps=[s.stamps[i] for i in keep],
            good=[s.good[i] for i in keep],
            total=[s.total[i] for i in keep],
        )
        res.partial = partial
        return res
