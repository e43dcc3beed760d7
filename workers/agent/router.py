"""The weighted HTTP router of one service/environment (data plane).

It runs in its own router process (:mod:`workers.agent.routerd`), never inside
the agent, so it keeps serving while the agent is down. One aiohttp server per
service/environment on its own 127.0.0.1 port. For each
request it picks a version by smooth weighted round-robin (nginx algorithm:
exact, deterministic splits) among versions with weight > 0 that have at least
one healthy instance (falling back to every weighted version when none is
healthy), then an instance by round-robin over that version's replicas. A replica
that refuses the connection (dead, not yet listening) never saw the request, so the
request is sent to the version's next replica, and the refusing one is skipped for
``EJECT_S`` seconds (Envoy's retry on ``connect-failure`` plus passive outlier
ejection, what a Kubernetes Service with Istio does): killing one of two replicas
costs no request, killing every replica of a version answers 502. A failure after the
request was sent (reset, timeout) is never retried (the request may not be
idempotent): 502/504. It forwards method, path, query, headers and body over a shared
keep-alive ``ClientSession``, adds ``X-Code-Version``, applies faults, and records
every request in :class:`Samples` and the Prometheus metrics.
Errors = status >= 500 or an upstream failure (502/504)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from workers.agent.faults import FaultSet
from workers.agent.metrics import RouterMetrics

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
VERSION_HEADER = "X-Code-Version"
EJECT_S = 5.0  # how long a replica that refused a connection is passed over


class Samples:
    """Bounded ring buffer of recent requests: (ts, version, error, latency_ms)."""

    def __init__(self, max_items: int = 200_000, max_age_s: float = 900.0) -> None:
        self._items: deque[tuple[float, str, bool, float]] = deque(maxlen=max_items)
        self.max_age_s = max_age_s

    def add(self, version: str, error: bool, latency_ms: float) -> None:
        now = time.time()
        self._items.append((now, version, error, latency_ms))
        cutoff = now - self.max_age_s
        while self._items and self._items[0][0] < cutoff:
            self._items.popleft()

    def window(self, since: float, until: float) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for ts, version, error, latency in reversed(self._items):
            if ts < since - 5.0:  # completion order is nearly monotonic
                break
            if ts < since or ts > until:
                continue
            v = out.setdefault(version, {"count": 0, "errors": 0, "latencies_ms": []})
            v["count"] += 1
            v["errors"] += int(error)
            v["latencies_ms"].append(round(latency, 3))
        for v in out.values():
            v["latencies_ms"].reverse()
        return out


class SmoothWRR:
    def __init__(self) -> None:
        self._current: dict[str, int] = {}
        self._key: tuple[tuple[str, int], ...] = ()

    def pick(self, weights: dict[str, int]) -> str | None:
        key = tuple(sorted((v, w) for v, w in weights.items() if w > 0))
        if not key:
            return None
        if key != self._key:
            self._key = key
            self._current = {v: 0 for v, _ in key}
        total = 0
        best, best_val = None, None
        for v, w in key:
            self._current[v] += w
            total += w
            if best_val is None or self._current[v] > best_val:
                best, best_val = v, self._current[v]
        if best is None:
            return None
        self._current[best] -= total
        return best


class Router:
    """``targets()`` returns ``{version: (weight, [instances])}``; instances have
    ``url``, ``healthy`` attributes."""

    def __init__(
        self,
        service: str,
        environment: str,
        targets: Callable[[], dict[str, tuple[int, list[Any]]]],
        session: aiohttp.ClientSession,
        metrics: RouterMetrics,
        upstream_timeout: float = 10.0,
    ) -> None:
        self.service, self.environment = service, environment
        self._targets = targets
        self._session = session
        self._metrics = metrics
        self._timeout = aiohttp.ClientTimeout(total=upstream_timeout)
        self.samples = Samples()
        self.faults = FaultSet()
        self._wrr = SmoothWRR()
        self._rr: dict[str, int] = {}
        self._ejected: dict[str, float] = {}  # replica url -> monotonic time it is back
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        self.port = port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _choose(self) -> tuple[str | None, list[Any]]:
        """The version for this request and its replicas, in the order to try them."""
        targets = self._targets()
        weights = {v: w for v, (w, insts) in targets.items() if w > 0 and insts}
        eligible = {
            v: w for v, w in weights.items() if any(i.healthy for i in targets[v][1])
        } or weights
        version = self._wrr.pick(eligible)
        if version is None:
            return None, []
        insts = targets[version][1]
        n = self._rr.get(version, 0)
        self._rr[version] = n + 1
        order = [insts[(n + k) % len(insts)] for k in range(len(insts))]
        now = time.monotonic()
        # replicas that refused a connection lately go last (still tried: they may be back)
        return version, sorted(order, key=lambda i: self._ejected.get(i.url, 0.0) > now)

    def _record(self, version: str, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        self._metrics.observe(self.service, self.environment, version, status, elapsed)
        self.samples.add(version, status >= 500, elapsed * 1000.0)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        body = await request.read()
        version, insts = self._choose()
        if version is None:
            self._metrics.observe(self.service, self.environment, "none", 503, 0.0)
            return web.json_response(
                {
                    "error": "no_version",
                    "detail": f"{self.service}/{self.environment} has no "
                    "version with traffic weight; set traffic with PUT .../traffic",
                },
                status=503,
            )
        if self.faults:
            delay, status = self.faults.decide(request.path, version)
            if delay:
                await asyncio.sleep(delay)
            if status is not None:
                self._record(version, status, started)
                return web.json_response(
                    {"error": "injected_fault", "version": version},
                    status=status,
                    headers={VERSION_HEADER: version},
                )
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP
        )
        status, detail, index = 502, "no replica", None
        for inst in insts:
            index = inst.index
            url = URL(inst.url + request.raw_path, encoded=True)  # the path exactly as sent
            try:
                async with self._session.request(
                    request.method,
                    url,
                    headers=headers,
                    data=body or None,
                    allow_redirects=False,
                    timeout=self._timeout,
                ) as resp:
                    payload = await resp.read()
                    out_headers = CIMultiDict(
                        (k, v) for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP
                    )
                    out_headers[VERSION_HEADER] = version
                    self._record(version, resp.status, started)
                    self._ejected.pop(inst.url, None)
                    return web.Response(status=resp.status, body=payload, headers=out_headers)
            except aiohttp.ClientConnectorError as exc:  # never reached it: try the next one
                self._ejected[inst.url] = time.monotonic() + EJECT_S
                status, detail = 502, f"upstream failed: {type(exc).__name__}"
                continue
            except TimeoutError:
                status, detail = 504, "upstream timed out"
            except (aiohttp.ClientError, OSError) as exc:
                status, detail = 502, f"upstream failed: {type(exc).__name__}"
            break
        self._record(version, status, started)
        return web.json_response(
            {"error": "upstream", "detail": detail, "version": version, "instance": index},
            status=status,
            headers={VERSION_HEADER: version},
        )
