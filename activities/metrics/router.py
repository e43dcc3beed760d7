"""``RouterProvider``: the embedded default. Reads per-version request samples from the
local agent's router (``/v1/services/{s}/{e}/samples``), no Prometheus needed.

Sources: ``latency_ms`` (per-request latencies of the window, at most ``MAX_POINTS``
kept by an even stride), ``error_rate`` and ``latency_mean_ms`` (one value per ``step``
bucket; a bucket without requests has no value). The agent being down or answering
5xx is :class:`MetricsUnavailable` (an unknown service: :class:`MetricsError`); a version without requests is :class:`NoData`."""

from __future__ import annotations

import math
from collections.abc import Mapping

from activities.metrics.base import MetricsError, MetricsUnavailable, NoData, Scope, Series
from activities.platform.base import PlatformError, SampleSource, WindowSample
from workflows.spec import AnalysisMetric

MAX_POINTS = 2000
MAX_BUCKETS = 600


class RouterProvider:
    name = "router"

    def __init__(self, platform: SampleSource) -> None:
        self.platform = platform
        self._cache: dict[tuple[str, str, float, float], Mapping[str, WindowSample]] = {}

    def describe(self) -> str:
        return f"router {getattr(self.platform, 'agent_url', '')}".strip()

    async def _window(
        self, scope: Scope, since: float, until: float, what: str
    ) -> Mapping[str, WindowSample]:
        key = (scope.service, scope.environment, since, until)
        if key not in self._cache:
            try:
                self._cache[key] = await self.platform.fetch_samples(
                    scope.service, scope.environment, since, until
                )
            except PlatformError as exc:
                cls = MetricsUnavailable if exc.retryable else MetricsError
                raise cls(f"cannot read {what} from the router: {exc}", query=what) from None
        return self._cache[key]

    async def fetch(
        self, metric: AnalysisMetric, scope: Scope, start: float, end: float, step: float
    ) -> Series:
        src = metric.source or "latency_ms"
        what = f"router:{src}{{service={scope.service},environment={scope.environment},version={scope.version}}}"
        if src == "latency_ms":
            sample = (await self._window(scope, start, end, what)).get(scope.version)
            values = list(sample.latencies_ms) if sample is not None else []
            if len(values) > MAX_POINTS:
                stride = len(values) / MAX_POINTS
                values = [values[int(i * stride)] for i in range(MAX_POINTS)]
            series = Series(query=what, timestamps=[end] * len(values), values=values)
        else:
            n = max(1, min(MAX_BUCKETS, math.ceil((end - start) / step - 1e-9)))
            width = (end - start) / n
            ts: list[float] = []
            vals: list[float] = []
            for i in range(n):
                lo, hi = start + i * width, start + (i + 1) * width
                sample = (await self._window(scope, lo, hi, what)).get(scope.version)
                if sample is None or sample.count == 0:
                    continue
                ts.append(hi)
                if src == "error_rate":
                    vals.append(sample.errors / sample.count)
                else:
                    vals.append(
                        sum(sample.latencies_ms) / len(sample.latencies_ms)
                        if sample.latencies_ms
                        else math.nan
                    )
            series = Series(query=what, timestamps=ts, values=vals)
        if not series.values:
            raise NoData(f"no requests reached {scope.version} in the window: {what}", query=what)
        return series

    async def validate(self, metric: AnalysisMetric, scope: Scope) -> None:
        return None
