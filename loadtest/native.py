"""The native load engine (``rust_core.LoadEngine``) driven with the scenario model.

Same contract as :mod:`loadtest.engine` (the Python engine, kept as its reference):
open-model arrivals from :meth:`LoadProfile.arrival_offsets`'s formula (constant or
ramping), latency from the **intended** send time, at most ``max_vus`` requests in
flight (further arrivals dropped and counted), keep-alive connections, per-request
timeouts, a bounded graceful stop, loopback targets only, and the same
:class:`~loadtest.stats.LoadStats` (per-(name, method) ``rust_core.Histogram`` in the
same format). On top: HTTPS (rustls; trust a CA file with ``ca_file`` or
``$SSL_CERT_FILE``, else the system roots), and the whole run happens in Rust with the
GIL released, so Python threads (and the event loop awaiting :meth:`NativeLoadRun.run`)
keep running; :meth:`NativeLoadRun.progress` reads live counters at any time.

:func:`load_run` picks an engine: ``"native"`` (the default) or ``"python"``;
``$CODE_LOAD_ENGINE`` overrides the default."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

import rust_core
from code_foundation.errors import SpecError
from loadtest.engine import LoadRun, Progress
from loadtest.http1 import encode_request
from loadtest.safety import require_loopback
from loadtest.scenario import LoadProfile, Scenario
from loadtest.stats import RELATIVE_ERROR, KeyStats, LoadStats

EngineName = Literal["native", "python"]
DEFAULT_ENGINE: EngineName = "native"
ENGINE_ENV = "CODE_LOAD_ENGINE"


def warm_connections(profile: LoadProfile) -> int:
    """Connections opened before the clock starts: the Python engine's rule."""
    if profile.executor == "constant":
        peak = max(profile.rate_at(t) for t in (0.0, profile.seconds / 2))
    else:
        peak = max([profile.start_rate, *(s.target for s in profile.stages)])
    return min(profile.max_vus, 8 + int(peak / 100))


class NativeLoadRun:
    """One native load run; the same interface as :class:`loadtest.engine.LoadRun`."""

    def __init__(
        self,
        scenario: Scenario,
        profile: LoadProfile,
        *,
        base_url: str | None = None,
        slo_latency_ms: float | None = None,
        ca_file: str | None = None,
    ) -> None:
        url = base_url or scenario.base_url
        if not url:
            raise SpecError("scenario", ["base_url: is required (or give a target URL)"])
        require_loopback(url)
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        host = parts.hostname or "127.0.0.1"
        prefix = parts.path.rstrip("/")
        requests = []
        for t in scenario.targets:
            headers = {**scenario.headers, **t.headers}
            if t.json_body is not None and not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
            data = encode_request(t.method, parts.netloc, prefix + t.path, headers, t.payload())
            timeout = (t.timeout or scenario.timeout).total_seconds()
            requests.append((data, t.method == "HEAD", timeout, list(t.expect_status)))
        self.scenario = scenario
        self.profile = profile
        try:
            self._engine = rust_core.LoadEngine(
                host,
                parts.port or (443 if tls else 80),
                requests,
                scenario.weighted_cycle(),
                profile._segments(),
                profile.planned(),
                profile.seconds,
                profile.max_vus,
                profile.graceful_stop.total_seconds(),
                warm_connections(profile),
                slo_latency_ms,
                RELATIVE_ERROR,
                tls,
                ca_file or (os.environ.get("SSL_CERT_FILE") if tls else None),
            )
        except ValueError as exc:
            raise SpecError("load target", [str(exc)]) from None

    def stop(self) -> None:
        """Stop scheduling new arrivals (in-flight requests still finish)."""
        self._engine.stop()

    def progress(self) -> Progress:
        elapsed, planned, sent, completed, errors, dropped, in_flight, p99 = self._engine.progress()
        return Progress(
            elapsed_s=min(elapsed, self.profile.seconds),
            duration_s=self.profile.seconds,
            target_rate=self.profile.rate_at(elapsed),
            achieved_rate=sent / elapsed if elapsed > 0 else 0.0,
            planned_so_far=planned,
            sent=sent,
            completed=completed,
            errors=errors,
            dropped=dropped,
            in_flight=in_flight,
            p99_ms=p99,
        )

    def run_sync(self) -> LoadStats:
        """Run on the calling thread (the GIL is released while it runs)."""
        return self._stats(self._engine.run())

    async def run(
        self,
        on_progress: Callable[[Progress], Any] | None = None,
        progress_every: float = 1.0,
    ) -> LoadStats:
        """Run on a worker thread; ``on_progress`` is called on this loop meanwhile."""
        fut = asyncio.ensure_future(asyncio.to_thread(self._engine.run))
        try:
            while on_progress is not None:
                done, _ = await asyncio.wait({fut}, timeout=progress_every)
                if done:
                    break
                await _call(on_progress, self.progress())
            raw = await asyncio.shield(fut)
        except asyncio.CancelledError:
            self.stop()  # the thread ends within the graceful stop
            raise
        stats = self._stats(raw)
        if on_progress is not None:
            await _call(on_progress, self.progress())
        return stats

    def _stats(self, raw: tuple[Any, ...]) -> LoadStats:
        wall0, total_s, send_s, planned, sent, dropped, _lag, keys = raw
        out = []
        for t, (count, ok, errors, timeouts, transport, slow, status, hist) in zip(
            self.scenario.targets, keys, strict=True
        ):
            out.append(
                KeyStats(
                    name=t.name,
                    method=t.method,
                    count=count,
                    ok=ok,
                    errors=errors,
                    timeouts=timeouts,
                    transport_errors=transport,
                    slow=slow,
                    status={str(s): n for s, n in status},
                    histogram=base64.b64encode(hist).decode(),
                )
            )
        return LoadStats(
            started_at=wall0,
            ended_at=wall0 + total_s,
            duration_s=send_s,
            planned=planned,
            sent=sent,
            dropped=dropped,
            keys=sorted(out, key=lambda k: k.key),
        )


async def _call(fn: Callable[[Progress], Any], p: Progress) -> None:
    res = fn(p)
    if asyncio.iscoroutine(res):
        await res


def load_run(
    scenario: Scenario,
    profile: LoadProfile,
    *,
    engine: EngineName | None = None,
    base_url: str | None = None,
    slo_latency_ms: float | None = None,
    ca_file: str | None = None,
) -> NativeLoadRun | LoadRun:
    """A run on the chosen engine (default: native, or ``$CODE_LOAD_ENGINE``);
    ``ca_file`` (HTTPS trust, native engine) is the ``tls_ca_file`` setting."""
    name = engine or os.environ.get(ENGINE_ENV) or DEFAULT_ENGINE
    if name == "native":
        return NativeLoadRun(
            scenario, profile, base_url=base_url, slo_latency_ms=slo_latency_ms, ca_file=ca_file
        )
    if name == "python":
        return LoadRun(scenario, profile, base_url=base_url, slo_latency_ms=slo_latency_ms)
    raise SpecError(ENGINE_ENV, [f"engine: unknown load engine {name!r} (native or python)"])


async def run_load(
    scenario: Scenario,
    profile: LoadProfile,
    *,
    engine: EngineName | None = None,
    base_url: str | None = None,
    slo_latency_ms: float | None = None,
    on_progress: Callable[[Progress], Any] | None = None,
    progress_every: float = 1.0,
) -> LoadStats:
    """Run ``profile`` against ``scenario`` (loopback only) on the chosen engine."""
    run = load_run(
        scenario, profile, engine=engine, base_url=base_url, slo_latency_ms=slo_latency_ms
    )
    return await run.run(on_progress, progress_every)
