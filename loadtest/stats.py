"""Load statistics keyed by (request name, method), mergeable and serialisable.

Latencies (milliseconds, measured from the *intended* send time) go into
``rust_core.Histogram`` sketches (1% relative error); counters are exact.
:class:`LoadStats` is a pydantic model whose histograms travel as base64
bytes, so slices can be merged across activities, processes and
continue-as-new runs without losing precision: ``a.merge(b)`` adds counts and
merges sketches exactly (a merged sketch equals the sketch of the union).

:class:`Recorder` is the engine's hot-path accumulator; ``snapshot()`` turns it
into a :class:`LoadStats`."""

from __future__ import annotations

import base64
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import rust_core

RELATIVE_ERROR = 0.01
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)


def new_histogram() -> Any:
    return rust_core.Histogram(relative_error=RELATIVE_ERROR)


def hist_to_b64(h: Any) -> str:
    return base64.b64encode(bytes(h.to_bytes())).decode()


def hist_from_b64(text: str) -> Any:
    if not text:
        return new_histogram()
    return rust_core.Histogram.from_bytes(base64.b64decode(text))


def _q(h: Any, q: float) -> float | None:
    if h.count == 0:
        return None
    v = float(h.quantile(q))
    return None if math.isnan(v) else v


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyStats(_M):
    """Counters and latency sketch of one (name, method)."""

    name: str
    method: str
    count: int = Field(0, description="requests that finished (any outcome)")
    ok: int = Field(0, description="answered with an expected status")
    errors: int = Field(0, description="unexpected status, transport error or timeout")
    timeouts: int = 0
    transport_errors: int = 0
    slow: int = Field(0, description="ok but slower than the SLO latency threshold")
    status: dict[str, int] = Field(default_factory=dict)
    histogram: str = Field("", description="base64 rust_core.Histogram of latency (ms)")

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.method)

    def hist(self) -> Any:
        return hist_from_b64(self.histogram)

    def merged(self, other: KeyStats) -> KeyStats:
        h = self.hist()
        h.merge(other.hist())
        status = dict(self.status)
        for k, v in other.status.items():
            status[k] = status.get(k, 0) + v
        return KeyStats(
            name=self.name,
            method=self.method,
            count=self.count + other.count,
            ok=self.ok + other.ok,
            errors=self.errors + other.errors,
            timeouts=self.timeouts + other.timeouts,
            transport_errors=self.transport_errors + other.transport_errors,
            slow=self.slow + other.slow,
            status=dict(sorted(status.items())),
            histogram=hist_to_b64(h),
        )


class LoadStats(_M):
    """Everything one load run (or a merge of runs) measured."""

    started_at: float = Field(0.0, description="unix time of the first intended send")
    ended_at: float = 0.0
    duration_s: float = Field(0.0, description="sum of scheduled durations")
    planned: int = Field(0, description="arrivals the profile scheduled")
    sent: int = 0
    dropped: int = Field(0, description="arrivals skipped: all VUs busy (open model)")
    keys: list[KeyStats] = Field(default_factory=list)

    # ------------------------------------------------------------ totals
    @property
    def completed(self) -> int:
        return sum(k.count for k in self.keys)

    @property
    def errors(self) -> int:
        return sum(k.errors for k in self.keys)

    @property
    def ok(self) -> int:
        return sum(k.ok for k in self.keys)

    @property
    def good(self) -> int:
        """SLO-good events: expected status and not slow."""
        return sum(k.ok - k.slow for k in self.keys)

    @property
    def slo_total(self) -> int:
        """SLO events: finished requests plus dropped arrivals (both are demand)."""
        return self.completed + self.dropped

    def error_rate(self) -> float:
        return self.errors / self.completed if self.completed else 0.0

    def achieved_rate(self) -> float:
        return self.sent / self.duration_s if self.duration_s > 0 else 0.0

    def histogram(self, key: tuple[str, str] | None = None) -> Any:
        """Latency sketch of one key, or of all keys merged."""
        h = new_histogram()
        for k in self.keys:
            if key is None or k.key == key:
                h.merge(k.hist())
        return h

    def quantiles(self, key: tuple[str, str] | None = None) -> dict[str, float | None]:
        h = self.histogram(key)
        return {f"p{q * 100:g}": _q(h, q) for q in QUANTILES}

    # ------------------------------------------------------------ merge
    def merge(self, other: LoadStats) -> LoadStats:
        """Exact union of two runs (counters add, sketches merge)."""
        by_key = {k.key: k for k in self.keys}
        for k in other.keys:
            by_key[k.key] = by_key[k.key].merged(k) if k.key in by_key else k
        starts = [s for s in (self.started_at, other.started_at) if s]
        return LoadStats(
            started_at=min(starts) if starts else 0.0,
            ended_at=max(self.ended_at, other.ended_at),
            duration_s=self.duration_s + other.duration_s,
            planned=self.planned + other.planned,
            sent=self.sent + other.sent,
            dropped=self.dropped + other.dropped,
            keys=[by_key[k] for k in sorted(by_key)],
        )

    @classmethod
    def merge_all(cls, items: list[LoadStats]) -> LoadStats:
        out = cls()
        for s in items:
            out = out.merge(s)
        return out

    def summary(self) -> dict[str, Any]:
        """Plain numbers for tables and reports."""
        return {
            "planned": self.planned,
            "sent": self.sent,
            "dropped": self.dropped,
            "completed": self.completed,
            "errors": self.errors,
            "error_rate": self.error_rate(),
            "achieved_rate": self.achieved_rate(),
            **self.quantiles(),
        }


class Recorder:
    """Hot-path accumulator for one run; index = target index in the scenario."""

    def __init__(self, keys: list[tuple[str, str]], slo_latency_ms: float | None = None) -> None:
        self.keys = keys
        self.slo_latency_ms = slo_latency_ms if slo_latency_ms else math.inf
        n = len(keys)
        self.hists = [new_histogram() for _ in range(n)]
        self.count = [0] * n
        self.ok = [0] * n
        self.errors = [0] * n
        self.timeouts = [0] * n
        self.transport = [0] * n
        self.slow = [0] * n
        self.status: list[dict[int, int]] = [{} for _ in range(n)]
        self.sent = 0
        self.dropped = 0

    def response(self, i: int, latency_ms: float, status: int, expected: bool) -> None:
        self.hists[i].record(latency_ms)
        self.count[i] += 1
        st = self.status[i]
        st[status] = st.get(status, 0) + 1
        if expected:
            self.ok[i] += 1
            if latency_ms > self.slo_latency_ms:
                self.slow[i] += 1
        else:
            self.errors[i] += 1

    def failure(self, i: int, latency_ms: float, timeout: bool) -> None:
        self.hists[i].record(latency_ms)
        self.count[i] += 1
        self.errors[i] += 1
        if timeout:
            self.timeouts[i] += 1
        else:
            self.transport[i] += 1

    @property
    def completed(self) -> int:
        return sum(self.count)

    @property
    def error_total(self) -> int:
        return sum(self.errors)

    def snapshot(
        self, *, started_at: float, ended_at: float, duration_s: float, planned: int
    ) -> LoadStats:
        keys = []
        for i, (name, method) in enumerate(self.keys):
            keys.append(
                KeyStats(
                    name=name,
                    method=method,
                    count=self.count[i],
                    ok=self.ok[i],
                    errors=self.errors[i],
                    timeouts=self.timeouts[i],
                    transport_errors=self.transport[i],
                    slow=self.slow[i],
                    status={str(k): v for k, v in sorted(self.status[i].items())},
                    histogram=hist_to_b64(self.hists[i]),
                )
            )
        return LoadStats(
            started_at=started_at,
            ended_at=ended_at,
            duration_s=duration_s,
            planned=planned,
            sent=self.sent,
            dropped=self.dropped,
            keys=sorted(keys, key=lambda k: k.key),
        )
