"""A router process: the data plane of one service/environment, apart from the agent.

``python -m workers.agent.routerd --service S --environment E --port P --admin-port A
--token T --config FILE`` (started by the agent, in its own session).

- ``127.0.0.1:P`` serves client traffic (:class:`~workers.agent.router.Router`:
  weighted split, faults, samples, metrics). Nothing in this path talks to the agent.
- ``127.0.0.1:A`` is the admin API the agent uses:
  ``GET /healthz`` (identity: service, environment, token, pid, generation),
  ``PUT /config`` (weights, versions and their instances, faults — replaces all),
  ``GET /samples?since=&until=``, ``GET /metrics`` (Prometheus text), ``GET /faults``
  (with hit counts).
- ``FILE`` is the config to serve from the first request (written by the agent
  from its desired state), so a restarted router never starts empty.
- The router probes every instance's health path each second itself, so a version
  whose instances all fail is skipped while the agent is away.
- Exit codes: 0 after SIGTERM/SIGINT, 98 when the data port is busy, 97 when the
  admin port is busy, 2 on a bad config file."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from workers.agent.faults import Fault
from workers.agent.instances import probe
from workers.agent.metrics import RouterMetrics
from workers.agent.router import Router


@dataclass
class Target:
    index: int
    port: int
    pid: int
    healthy: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class RouterState:
    """The config the agent pushed, as the router's target table."""

    def __init__(self) -> None:
        self.generation = 0
        self.weights: dict[str, int] = {}
        self.versions: dict[str, list[Target]] = {}
        self.health_paths: dict[str, str] = {}

    def apply(self, cfg: dict[str, Any], router: Router) -> None:
        old = {(t.port, t.pid): t for ts in self.versions.values() for t in ts}
        versions: dict[str, list[Target]] = {}
        paths: dict[str, str] = {}
        for name, v in (cfg.get("versions") or {}).items():
            paths[name] = str(v.get("health_path") or "/healthz")
            ts = []
            for i in v.get("instances") or []:
                t = Target(int(i["index"]), int(i["port"]), int(i.get("pid", 0)))
                prev = old.get((t.port, t.pid))
                t.healthy = prev.healthy if prev else bool(i.get("healthy", False))
                ts.append(t)
            versions[name] = ts
        router.faults.replace([Fault.model_validate(f) for f in cfg.get("faults") or []])
        self.versions, self.health_paths = versions, paths
        self.weights = {str(k): int(w) for k, w in (cfg.get("weights") or {}).items()}
        self.generation = int(cfg.get("generation", self.generation + 1))

    def targets(self) -> dict[str, tuple[int, list[Any]]]:
        return {n: (self.weights.get(n, 0), ts) for n, ts in self.versions.items()}


async def _probe_loop(state: RouterState, session: aiohttp.ClientSession) -> None:
    while True:
        await asyncio.sleep(1.0)
        checks = [
            (t, state.health_paths.get(v, "/healthz"))
            for v, ts in list(state.versions.items())
            for t in ts
        ]
        results = await asyncio.gather(
            *(probe(session, t, path, 0.9) for t, path in checks),
            return_exceptions=True,
        )
        for (t, _), ok in zip(checks, results, strict=True):
            t.healthy = ok is True


def _admin_app(
    args: argparse.Namespace, state: RouterState, router: Router, metrics: RouterMetrics
) -> web.Application:
    app = web.Application()

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "service": args.service,
                "environment": args.environment,
                "token": args.token,
                "port": args.port,
                "pid": os.getpid(),
                "generation": state.generation,
            }
        )

    async def put_config(request: web.Request) -> web.Response:
        try:
            cfg = await request.json()
            state.apply(cfg, router)
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": "bad_config", "detail": str(exc)}, status=400)
        return web.json_response({"ok": True, "generation": state.generation})

    async def samples(request: web.Request) -> web.Response:
        now = time.time()
        try:
            since = float(request.query.get("since") or now - 60.0)
            until = float(request.query.get("until") or now)
        except ValueError:
            return web.json_response({"error": "bad_request"}, status=400)
        return web.json_response(router.samples.window(since, until))

    async def get_metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=metrics.render(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    async def faults(_: web.Request) -> web.Response:
        return web.json_response([f.model_dump() for f in router.faults.list()])

    app.router.add_get("/healthz", healthz)
    app.router.add_put("/config", put_config)
    app.router.add_get("/samples", samples)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/faults", faults)
    return app


def _read(path: str) -> str:
    return Path(path).read_text()


async def _serve(args: argparse.Namespace) -> int:
    state = RouterState()
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=512, limit_per_host=128, keepalive_timeout=30),
        auto_decompress=False,
    )
    metrics = RouterMetrics()
    router = Router(
        args.service, args.environment, state.targets, session, metrics, args.upstream_timeout
    )
    if args.config:
        try:
            state.apply(json.loads(_read(args.config)), router)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"router: bad config {args.config}: {exc}", file=sys.stderr)
            await session.close()
            return 2
    admin = web.AppRunner(
        _admin_app(args, state, router, metrics), access_log=None, handle_signals=False
    )
    await admin.setup()
    try:
        await router.start(args.port)
    except OSError as exc:
        print(f"router: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        await admin.cleanup()
        await session.close()
        return 98
    try:
        await web.TCPSite(admin, "127.0.0.1", args.admin_port).start()
    except OSError as exc:
        print(f"router: admin port {args.admin_port}: {exc.strerror}", file=sys.stderr)
        await router.stop()
        await admin.cleanup()
        await session.close()
        return 97
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    prober = asyncio.create_task(_probe_loop(state, session))
    print(
        f"router {args.service}/{args.environment}: serving 127.0.0.1:{args.port} "
        f"(admin 127.0.0.1:{args.admin_port})",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        prober.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await prober
        await router.stop()
        await admin.cleanup()
        await session.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workers.agent.routerd")
    p.add_argument("--service", required=True)
    p.add_argument("--environment", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--admin-port", type=int, required=True)
    p.add_argument("--token", required=True, help="identity the agent checks on re-adoption")
    p.add_argument("--config", default=None)
    p.add_argument("--upstream-timeout", type=float, default=10.0)
    return asyncio.run(_serve(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
