"""Open-model load engine (asyncio, keep-alive HTTP/1.1).

Arrivals follow the profile's schedule (constant or ramping arrival rate, like
k6's arrival-rate executors and wrk2 ``-R``) whatever the target does. Each
arrival takes an idle connection (or opens one) and is sent at once; when
``max_vus`` requests are already in flight the arrival is *dropped* and
counted. Latency is measured from the arrival's **intended** send time, so a
slow target or a late generator shows up in the latency instead of being
hidden (no coordinated omission).

Bounded by construction: the schedule is finite (``profile.planned()``
arrivals within ``profile.duration``), every request has a timeout, and after
the schedule the engine waits at most ``graceful_stop`` before closing the
remaining requests as timeouts. Only loopback targets are accepted."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from code_foundation.errors import SpecError
from loadtest.http1 import Http1Conn, encode_request
from loadtest.safety import require_loopback
from loadtest.scenario import LoadProfile, Scenario
from loadtest.stats import LoadStats, Recorder

START_DELAY_S = 0.02
YIELD_EVERY = 32  # when behind schedule, run the I/O callbacks every this many arrivals
MAX_CONNECTING = 8  # connects in progress at once; further arrivals queue for a free connection


@dataclass
class Progress:
    """A live view of a running load (for progress displays and heartbeats)."""

    elapsed_s: float
    duration_s: float
    target_rate: float
    achieved_rate: float
    planned_so_far: int
    sent: int
    completed: int
    errors: int
    dropped: int
    in_flight: int
    p99_ms: float | None


@dataclass
class _Req:
    data: bytes
    head: bool
    timeout: float
    expected: frozenset[int]


class LoadRun:
    """One load run; use :func:`run_load` unless you need ``stop()``."""

    def __init__(
        self,
        scenario: Scenario,
        profile: LoadProfile,
        *,
        base_url: str | None = None,
        slo_latency_ms: float | None = None,
    ) -> None:
        url = base_url or scenario.base_url
        if not url:
            raise SpecError("scenario", ["base_url: is required (or give a target URL)"])
        require_loopback(url)
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise SpecError(
                "scenario",
                [
                    f"base_url: {url}: this engine speaks plain HTTP (use the native engine for HTTPS)"
                ],
            )
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        host_header = parts.netloc
        prefix = parts.path.rstrip("/")
        self.scenario = scenario
        self.profile = profile
        self.reqs: list[_Req] = []
        for t in scenario.targets:
            headers = {**scenario.headers, **t.headers}
            if t.json_body is not None and not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
            timeout = (t.timeout or scenario.timeout).total_seconds()
            self.reqs.append(
                _Req(
                    data=encode_request(
                        t.method, host_header, prefix + t.path, headers, t.payload()
                    ),
                    head=t.method == "HEAD",
                    timeout=timeout,
                    expected=frozenset(t.expect_status),
                )
            )
        self.rec = Recorder([(t.name, t.method) for t in scenario.targets], slo_latency_ms)
        self.idle: list[Http1Conn] = []
        self.conns: set[Http1Conn] = set()
        self.in_flight = 0
        self.connecting = 0
        self.waiting: deque[tuple[int, float]] = deque()
        self._stop = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.t0 = 0.0
        self.planned_so_far = 0
        self.max_send_lag_s = 0.0
        self._drained: asyncio.Future[None] | None = None

    def stop(self) -> None:
        """Stop scheduling new arrivals (in-flight requests still finish)."""
        self._stop = True

    # ---------------------------------------------------------- callbacks
    def _on_done(self, conn: Http1Conn, status: int, error: str | None) -> None:
        if self._loop is None:
            raise RuntimeError("the load engine is not running")
        latency_ms = (self._loop.time() - conn.intended) * 1000.0
        i = conn.idx
        if error is None:
            self.rec.response(i, latency_ms, status, status in self.reqs[i].expected)
        else:
            self.rec.failure(i, latency_ms, error == "timeout")
        self.in_flight -= 1
        if not conn.closed and conn.keep_alive and not conn.busy:
            if self.waiting:
                wi, wintended = self.waiting.popleft()
                self._fire(conn, wi, wintended)
            else:
                self.idle.append(conn)
        else:
            self.conns.discard(conn)
            if self.waiting and self.connecting < MAX_CONNECTING and self._loop is not None:
                wi, wintended = self.waiting.popleft()
                self._loop.create_task(self._connect_and_fire(wi, wintended))
        if self.in_flight == 0 and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _fire(self, conn: Http1Conn, i: int, intended: float) -> None:
        req = self.reqs[i]
        conn.send(req.data, req.head, i, intended)
        if self._loop is None:
            raise RuntimeError("the load engine is not running")
        conn.timer = self._loop.call_at(self._loop.time() + req.timeout, conn.timed_out)

    async def _connect_and_fire(self, i: int, intended: float) -> None:
        if self._loop is None:
            raise RuntimeError("the load engine is not running")
        req = self.reqs[i]
        conn = Http1Conn(self._on_done)
        conn.busy = True
        conn.idx = i
        conn.intended = intended
        self.connecting += 1
        try:
            await asyncio.wait_for(
                self._loop.create_connection(lambda: conn, self.host, self.port), req.timeout
            )
        except (TimeoutError, OSError) as exc:
            conn.closed = True
            self._on_done(
                conn, 0, "timeout" if isinstance(exc, asyncio.TimeoutError) else "transport"
            )
            return
        finally:
            self.connecting -= 1
        self.conns.add(conn)
        self._fire(conn, i, intended)

    async def _prewarm(self, n: int, timeout: float = 2.0) -> None:  # noqa: ASYNC109 - a connect bound, not a cancellation scope
        """Open ``n`` keep-alive connections before the clock starts (like k6's
        pre-allocated VUs), so the first arrivals do not all pay for a connect."""
        if self._loop is None:
            raise RuntimeError("the load engine is not running")
        loop = self._loop

        async def one() -> None:
            conn = Http1Conn(self._on_done)
            await loop.create_connection(lambda: conn, self.host, self.port)
            self.conns.add(conn)
            self.idle.append(conn)

        tasks = [asyncio.ensure_future(one()) for _ in range(n)]
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for t in pending:
            t.cancel()
        for t in done:
            t.exception()  # failures surface later as per-request transport errors

    def warm_connections(self) -> int:
        peak = (
            max(self.profile.rate_at(t) for t in (0.0, self.profile.seconds / 2))
            if self.profile.executor == "constant"
            else max([self.profile.start_rate, *(s.target for s in self.profile.stages)])
        )
        return min(self.profile.max_vus, 8 + int(peak / 100))

    # ---------------------------------------------------------- main
    def progress(self) -> Progress:
        loop = self._loop
        elapsed = max(0.0, loop.time() - self.t0) if loop else 0.0
        h = None
        for hh in self.rec.hists:
            if hh.count:
                if h is None:
                    from loadtest.stats import new_histogram

                    h = new_histogram()
                h.merge(hh)
        return Progress(
            elapsed_s=min(elapsed, self.profile.seconds),
            duration_s=self.profile.seconds,
            target_rate=self.profile.rate_at(elapsed),
            achieved_rate=self.rec.sent / elapsed if elapsed > 0 else 0.0,
            planned_so_far=self.planned_so_far,
            sent=self.rec.sent,
            completed=self.rec.completed,
            errors=self.rec.error_total,
            dropped=self.rec.dropped,
            in_flight=self.in_flight,
            p99_ms=float(h.quantile(0.99)) if h is not None else None,
        )

    async def run(
        self,
        on_progress: Callable[[Progress], Any] | None = None,
        progress_every: float = 1.0,
    ) -> LoadStats:
        loop = asyncio.get_running_loop()
        self._loop = loop
        profile = self.profile
        cycle = self.scenario.weighted_cycle()
        ncycle = len(cycle)
        max_vus = profile.max_vus
        rec = self.rec
        idle = self.idle
        reporter = None
        await self._prewarm(self.warm_connections())
        if on_progress is not None:
            reporter = asyncio.create_task(self._report(on_progress, progress_every))
        wall0 = time.time() + START_DELAY_S
        t0 = self.t0 = loop.time() + START_DELAY_S
        hard_end = t0 + profile.seconds + 1.0
        k = 0
        since_yield = 0
        late_skipped = 0
        try:
            for off in profile.arrival_offsets():
                intended = t0 + off
                now = loop.time()
                if intended > now:
                    await asyncio.sleep(intended - now)
                    now = loop.time()
                    since_yield = 0
                elif since_yield >= YIELD_EVERY:
                    # behind schedule: let finished responses free their VUs before
                    # deciding to drop (never starve the I/O callbacks)
                    await asyncio.sleep(0)
                    now = loop.time()
                    since_yield = 0
                since_yield += 1
                if self._stop:
                    break
                if now > hard_end:  # the generator could not keep up: the rest is dropped
                    late_skipped = profile.planned() - k
                    break
                self.planned_so_far = k + 1
                i = cycle[k % ncycle]
                k += 1
                if self.in_flight >= max_vus:
                    rec.dropped += 1
                    continue
                lag = now - intended
                if lag > self.max_send_lag_s:
                    self.max_send_lag_s = lag
                self.in_flight += 1
                rec.sent += 1
                if idle:
                    self._fire(idle.pop(), i, intended)
                elif self.connecting < MAX_CONNECTING:
                    loop.create_task(self._connect_and_fire(i, intended))
                else:
                    self.waiting.append((i, intended))
            send_end = loop.time()
            await self._drain(profile.graceful_stop.total_seconds())
        finally:
            if reporter is not None:
                reporter.cancel()
            self._close_all()
        rec.dropped += late_skipped
        elapsed_sending = max(profile.seconds, send_end - t0) if k else profile.seconds
        stats = rec.snapshot(
            started_at=wall0,
            ended_at=wall0 + (loop.time() - t0),
            duration_s=elapsed_sending,
            planned=k + late_skipped,  # == profile.planned() unless stopped early
        )
        if on_progress is not None:
            res = on_progress(self.progress())
            if asyncio.iscoroutine(res):
                await res
        return stats

    async def _drain(self, grace: float) -> None:
        if self.in_flight == 0:
            return
        if self._loop is None:
            raise RuntimeError("the load engine is not running")
        self._drained = self._loop.create_future()
        with contextlib.suppress(TimeoutError):  # what is still in flight is counted as cut off
            await asyncio.wait_for(asyncio.shield(self._drained), grace)

    def _close_all(self) -> None:
        now = self._loop.time() if self._loop is not None else 0.0
        while self.waiting:  # never got a connection before the end: timeouts
            wi, wintended = self.waiting.popleft()
            self.rec.failure(wi, (now - wintended) * 1000.0, timeout=True)
            self.in_flight -= 1
        for conn in list(self.conns):
            if conn.busy:
                conn.timed_out()  # still in flight after the grace period: a timeout
            conn.close()
        self.conns.clear()
        self.idle.clear()

    async def _report(self, on_progress: Callable[[Progress], Any], every: float) -> None:
        while True:
            await asyncio.sleep(every)
            res = on_progress(self.progress())
            if asyncio.iscoroutine(res):
                await res


async def run_load(
    scenario: Scenario,
    profile: LoadProfile,
    *,
    base_url: str | None = None,
    slo_latency_ms: float | None = None,
    on_progress: Callable[[Progress], Any] | None = None,
    progress_every: float = 1.0,
) -> LoadStats:
    """Run ``profile`` against ``scenario`` (loopback only) and return its stats."""
    run = LoadRun(scenario, profile, base_url=base_url, slo_latency_ms=slo_latency_ms)
    return await run.run(on_progress, progress_every)
