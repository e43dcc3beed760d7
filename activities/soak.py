"""Soak activities: resolve the target, run one load slice, store the report.

* ``soak.resolve_target``: a URL (loopback only) or a local-platform
  service/environment -> its router endpoint and serving versions; an unknown
  service is :class:`UnknownTarget` (non-retryable), a non-loopback target
  ``NotLoopbackError``.
* ``soak.slice``: constant-rate load for the slice's length (heartbeating
  progress), sampling the target processes' RSS/CPU through the agent; returns
  the slice's :class:`LoadStats` and samples. A retry reruns the whole slice;
  only the attempt that returns is counted by the workflow (keyed by index).
* ``soak.report``: renders PNG/HTML/Markdown (:mod:`loadtest.report`) and
  stores them with ``activities.artifacts.store_from_settings``.

Errors are the project's own (``CodeError``); the worker's
:class:`~activities.interceptor.ErrorInterceptor` reports them as ``ApplicationError``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from temporalio import activity

from activities.settings import Settings
from code_foundation.errors import CodeError, ConfigError
from code_foundation.names import SoakA
from loadtest.engine import Progress
from loadtest.native import load_run
from loadtest.safety import load_target_problem, require_loopback
from loadtest.scenario import LoadProfile
from loadtest.soak_models import (
    ResolveTargetInput,
    ResolveTargetResult,
    ResourceSample,
    SliceInput,
    SliceResult,
    SoakReportInput,
    SoakReportResult,
    SoakTarget,
)

if TYPE_CHECKING:
    from activities.platform.local import LocalPlatform

HEARTBEAT_EVERY_S = 2.0


class UnknownTarget(CodeError):
    """The soak target's service/environment is not on the platform (or has no router
    endpoint yet): deploy it first."""

    exit_code = 2


PROMETHEUS_NEEDED = "checks.resources.prometheus_query needs CODE_PROMETHEUS_URL"


def _names(t: SoakTarget) -> tuple[str, str]:
    """Service and environment of a platform target (the plan model requires both when
    there is no URL)."""
    if not (t.service and t.environment):
        raise UnknownTarget(f"{t.describe()} names no service/environment on the platform")
    return t.service, t.environment


class SoakActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _platform(self) -> LocalPlatform:
        from activities.platform.local import LocalPlatform

        return LocalPlatform(self.settings.agent_url)

    async def _describe(self, target: SoakTarget) -> dict[str, Any]:
        data = await self._platform().describe_raw(*_names(target))
        if data is None:
            raise UnknownTarget(
                f"unknown target {target.describe()}: the local platform at "
                f"{self.settings.agent_url} has no such service/environment (deploy it first)"
            )
        return data

    @activity.defn(name=SoakA.RESOLVE)
    async def resolve_target(self, inp: ResolveTargetInput) -> ResolveTargetResult:
        t = inp.target
        if t.url:
            require_loopback(t.url)
            return ResolveTargetResult(url=t.url.rstrip("/"))
        data = await self._describe(t)
        endpoint = str(data.get("endpoint") or "").rstrip("/")
        if not endpoint:
            raise UnknownTarget(f"{t.describe()} has no router endpoint yet")
        require_loopback(endpoint)
        weights = {k: int(v) for k, v in (data.get("weights") or {}).items()}
        versions = sorted(v for v, w in weights.items() if w > 0) or sorted(
            data.get("versions", {})
        )
        return ResolveTargetResult(url=endpoint, versions=versions)

    async def _sample(self, inp: SliceInput) -> ResourceSample | None:
        if inp.prometheus_query:
            return await self._sample_prometheus(inp.prometheus_query)
        if not inp.target.service:
            return None
        platform = self._platform()
        service, environment = _names(inp.target)
        versions = inp.versions
        data = await platform.describe_raw(service, environment)
        if data:  # follow what is serving now (a deployment may happen mid-soak)
            weights = {k: int(v) for k, v in (data.get("weights") or {}).items()}
            versions = sorted(v for v, w in weights.items() if w > 0) or versions
        rss, cpu, n = 0, 0.0, 0
        for v in versions:
            for inst in await platform.resources(service, environment, v):
                if inst.get("alive", True) and inst.get("rss_bytes"):
                    rss += int(inst["rss_bytes"])
                    cpu += float(inst.get("cpu_percent") or 0.0)
                    n += 1
        if n == 0:
            return None
        return ResourceSample(t=time.time(), rss_bytes=rss, cpu_percent=cpu, instances=n)

    async def _sample_prometheus(self, query: str) -> ResourceSample | None:
        """Instant query against Prometheus' HTTP API; the series' values are summed."""
        import httpx

        url = self.settings.prometheus_url
        if not url:
            raise ConfigError(PROMETHEUS_NEEDED)
        headers = {}
        if self.settings.prometheus_token is not None:
            headers["Authorization"] = f"Bearer {self.settings.prometheus_token.get_secret_value()}"
        async with httpx.AsyncClient(timeout=5.0, headers=headers) as c:
            r = await c.get(url.rstrip("/") + "/api/v1/query", params={"query": query})
            r.raise_for_status()
            body = r.json()
        result = body.get("data", {}).get("result", [])
        if not result:
            return None
        total = sum(float(series["value"][1]) for series in result)
        return ResourceSample(t=time.time(), rss_bytes=int(total), instances=len(result))

    async def _sampler(
        self, inp: SliceInput, out: list[ResourceSample], stop: asyncio.Event
    ) -> None:
        """Sample resources every ``sample_every_s`` until ``stop`` (bounded by the slice)."""
        deadline = time.monotonic() + inp.duration_s + 5
        while not stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # a missed sample is not a failed slice
                s = await self._sample(inp)
                if s is not None:
                    out.append(s)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), inp.sample_every_s)

    @activity.defn(name=SoakA.SLICE)
    async def run_slice(self, inp: SliceInput) -> SliceResult:
        require_loopback(inp.url)
        if inp.prometheus_query and not self.settings.prometheus_url:
            raise ConfigError(PROMETHEUS_NEEDED)
        info = activity.info()
        profile = LoadProfile.model_validate(
            {
                "executor": "constant",
                "rate": inp.rate,
                "duration": inp.duration_s,
                "max_vus": inp.max_vus,
                "graceful_stop": min(5.0, inp.scenario.timeout.total_seconds()),
            }
        )
        ca = str(self.settings.tls_ca_file) if self.settings.tls_ca_file else None
        run = load_run(
            inp.scenario,
            profile,
            base_url=inp.url,
            slo_latency_ms=inp.slo_latency_ms,
            ca_file=ca,  # HTTPS trust: the tls_ca_file setting
        )
        samples: list[ResourceSample] = []
        stop = asyncio.Event()
        sampler = None
        if inp.sample_every_s > 0 and (inp.target.service or inp.prometheus_query):
            sampler = asyncio.create_task(self._sampler(inp, samples, stop))
        beat: Callable[[Progress], None] = lambda p: activity.heartbeat(  # noqa: E731
            {
                "index": inp.index,
                "sent": p.sent,
                "completed": p.completed,
                "errors": p.errors,
                "elapsed_s": round(p.elapsed_s, 1),
            }
        )
        try:
            stats = await run.run(on_progress=beat, progress_every=HEARTBEAT_EVERY_S)
        finally:
            stop.set()
            if sampler is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sampler, 10)
        return SliceResult(index=inp.index, attempt=info.attempt, stats=stats, resources=samples)

    @activity.defn(name=SoakA.REPORT)
    async def report(self, inp: SoakReportInput) -> SoakReportResult:
        from loadtest.report import render_report

        files = await asyncio.to_thread(render_report, inp)
        return await asyncio.to_thread(self._store, inp.workflow_id, files)

    def _store(self, workflow_id: str, files: dict[str, tuple[bytes, str]]) -> SoakReportResult:
        from activities.artifacts import store_from_settings

        store = store_from_settings(self.settings)
        keys = {}
        for name, (data, ctype) in files.items():
            key = f"soak/{workflow_id}/{name}"
            store.put(key, data, ctype)
            keys[name] = key
        return SoakReportResult(
            html_key=keys.get("report.html", ""),
            markdown_key=keys.get("report.md", ""),
            png_key=keys.get("report.png", ""),
            store=self.settings.artifact_store,
        )


async def check_target(target: SoakTarget, settings: Settings, source: str = "plan") -> None:
    """Before starting: the target must exist (local platform) and be loopback.

    Raises SpecError (unknown service, non-loopback endpoint) or ServerUnavailable
    (agent unreachable), so a bad plan starts nothing."""
    from activities.platform.base import PlatformUnavailable
    from code_foundation.errors import ServerUnavailable, SpecError

    if target.url:
        problem = load_target_problem(target.url)
        if problem:
            raise SpecError(source, [f"target.url: {problem}"])
        return
    try:
        data = await SoakActivities(settings)._platform().describe_raw(*_names(target))
    except PlatformUnavailable as exc:
        raise ServerUnavailable(f"cannot check the soak target: {exc}") from None
    if data is None:
        raise SpecError(
            source,
            [
                f"target: unknown service/environment {target.describe()} on the local platform "
                f"at {settings.agent_url} (deploy it first, or use target.url)"
            ],
        )
    endpoint = str(data.get("endpoint") or "")
    problem = load_target_problem(endpoint) if endpoint else "it has no router endpoint"
    if problem:
        raise SpecError(source, [f"target: {target.describe()}: {problem}"])


def soak_activities(settings: Settings) -> list[Callable[..., Any]]:
    a = SoakActivities(settings)
    return [a.resolve_target, a.run_slice, a.report]
