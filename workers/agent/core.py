"""The agent's state and operations: services (one router each), versions,
instances, traffic weights, the operations journal and ``state.json``.

Every mutating operation takes the service's lock, is idempotent (a repeated
call finds the work done and reports ``changed: false``), is appended to the
journal (``/v1/ops``, also ``ops.jsonl`` in the state dir) and rewrites
``state.json`` atomically. Failures raise :class:`AgentError` carrying the HTTP
status, a short error code and a detail a user can act on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import aiohttp

from workers.agent import instances as im
from workers.agent.metrics import Metrics
from workers.agent.model import AgentError, Service, Version, VersionSpec
from workers.agent.router import Router

__all__ = ["Agent", "AgentError", "VersionSpec"]


class Agent:
    def __init__(self, state_dir: Path, url: str = "", upstream_timeout: float = 10.0) -> None:
        self.state_dir = state_dir
        self.url = url
        self.upstream_timeout = upstream_timeout
        self.metrics = Metrics()
        self.services: dict[tuple[str, str], Service] = {}
        self.journal: deque[dict[str, Any]] = deque(maxlen=10_000)
        self._known_ports: dict[str, int] = {}
        self._session: aiohttp.ClientSession | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._create_lock = asyncio.Lock()

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError, ValueError):
            old = json.loads((self.state_dir / "state.json").read_text())
            for key, svc in old.get("services", {}).items():
                self._known_ports[key] = int(svc["router_port"])
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512, limit_per_host=128, keepalive_timeout=30),
            auto_decompress=False,
        )
        self._monitor = asyncio.create_task(self._monitor_loop())
        self.persist()

    async def close(self) -> None:
        if self._monitor:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for svc in self.services.values():
            await svc.router.stop()
        await asyncio.gather(
            *(
                im.stop_instance(i)
                for s in self.services.values()
                for v in s.versions.values()
                for i in v.instances
            ),
            return_exceptions=True,
        )
        for svc in self.services.values():
            svc.versions.clear()
            svc.weights.clear()
        if self._session:
            await self._session.close()
        self.persist(running=False)

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "agent not started"
        return self._session

    # ------------------------------------------------------------ helpers
    def get(self, service: str, env: str) -> Service:
        svc = self.services.get((service, env))
        if svc is None:
            raise AgentError(
                404, "not_found", f"service {service}/{env} is not deployed on this agent"
            )
        return svc

    def version(self, service: str, env: str, version: str) -> Version:
        svc = self.get(service, env)
        ver = svc.versions.get(version)
        if ver is None:
            raise AgentError(
                404, "not_found", f"version {version} of {service}/{env} is not running"
            )
        return ver

    async def _service(self, service: str, env: str, router_port: int | None) -> Service:
        async with self._create_lock:
            svc = self.services.get((service, env))
            if svc is not None:
                return svc
            router = Router(
                service,
                env,
                lambda: self._targets(service, env),
                self.session,
                self.metrics,
                self.upstream_timeout,
            )
            candidates = [p for p in (router_port, self._known_ports.get(f"{service}/{env}")) if p]
            for port in [*candidates, 0]:
                try:
                    await router.start(port or im.free_port())
                    break
                except OSError:
                    if port and port == router_port:
                        raise AgentError(
                            409,
                            "port_in_use",
                            f"router port {port} for {service}/{env} is busy; omit router_port",
                        ) from None
            svc = Service(service, env, router)
            self.services[(service, env)] = svc
            return svc

    def _targets(self, service: str, env: str) -> dict[str, tuple[int, list[Any]]]:
        svc = self.services[(service, env)]
        return {n: (svc.weights.get(n, 0), v.instances) for n, v in svc.versions.items()}

    def record(
        self,
        op: str,
        svc: Service,
        version: str | None,
        key: str | None,
        changed: bool,
        **extra: Any,
    ) -> None:
        entry = {
            "ts": time.time(),
            "op": op,
            "service": svc.service,
            "environment": svc.environment,
            "version": version,
            "idempotency_key": key,
            "changed": changed,
            **extra,
        }
        self.journal.append(entry)
        with contextlib.suppress(OSError), open(self.state_dir / "ops.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.persist()

    def persist(self, running: bool = True) -> None:
        state = {
            "agent": {
                "url": self.url,
                "pid": os.getpid(),
                "running": running,
                "updated_at": time.time(),
            },
            "services": {
                f"{s.service}/{s.environment}": {
                    **s.describe(),
                    "router_port": s.router.port,
                    "specs": {n: v.spec.public() for n, v in s.versions.items()},
                }
                for s in self.services.values()
            },
        }
        tmp = self.state_dir / "state.json.tmp"
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(state, indent=2))
            os.replace(tmp, self.state_dir / "state.json")

    async def _start_healthy(
        self,
        svc: Service,
        name: str,
        spec: VersionSpec,
        indices: list[int],
        ports: list[int | None],
    ) -> list[im.Instance]:
        """Start instances and wait for health; on failure stop them and raise 422."""
        insts: list[im.Instance] = []
        try:
            for idx, port in zip(indices, ports, strict=True):
                insts.append(
                    await im.start_instance(
                        index=idx,
                        command=spec.command,
                        workdir=spec.workdir,
                        env={**spec.env, **spec.secret_env},
                        version=name,
                        log_dir=self.state_dir / "logs",
                        log_name=f"{svc.service}-{svc.environment}-{name}",
                        port=port,
                    )
                )
            deadline = time.monotonic() + spec.health_timeout_s
            reasons = await asyncio.gather(
                *(im.wait_healthy(self.session, i, spec.health_path, deadline) for i in insts)
            )
        except BaseException:
            await asyncio.gather(*(im.stop_instance(i) for i in insts), return_exceptions=True)
            raise
        bad = [r for r in reasons if r]
        if bad:
            await asyncio.gather(*(im.stop_instance(i) for i in insts), return_exceptions=True)
            raise AgentError(
                422,
                "unhealthy",
                f"{svc.service}/{svc.environment} version {name} did not become healthy within "
                f"{spec.health_timeout_s:g}s: {'; '.join(bad)}. Its processes were stopped; "
                "fix the version (or its health check) and apply again.",
            )
        return insts

    # ------------------------------------------------------------ operations
    async def apply(
        self,
        service: str,
        env: str,
        name: str,
        spec: VersionSpec,
        key: str | None,
        initial_weight: int | None,
        router_port: int | None,
    ) -> dict[str, Any]:
        if spec.workdir and not Path(spec.workdir).is_dir():
            raise AgentError(
                400, "bad_request", f"workdir {spec.workdir} does not exist on the agent host"
            )
        created = (service, env) not in self.services
        svc = await self._service(service, env, router_port)
        async with svc.lock:
            h = spec.hash()
            cur = svc.versions.get(name)
            changed = True
            if cur and cur.spec_hash == h and all(i.alive and i.healthy for i in cur.instances):
                changed = False
            else:
                try:
                    insts = await self._start_healthy(
                        svc, name, spec, list(range(spec.replicas)), [None] * spec.replicas
                    )
                except AgentError:
                    if created and not svc.versions:
                        await svc.router.stop()
                        self.services.pop((service, env), None)
                    self.record("apply", svc, name, key, False, result="unhealthy")
                    raise
                old = cur.instances if cur else []
                svc.versions[name] = Version(name, spec, h, insts)
                await asyncio.gather(*(im.stop_instance(i) for i in old), return_exceptions=True)
            if initial_weight is not None and sum(svc.weights.values()) == 0 and initial_weight > 0:
                svc.weights = {n: 0 for n in svc.versions} | {name: initial_weight}
                changed = True
            svc.weights.setdefault(name, 0)
            self.record("apply", svc, name, key, changed, spec_hash=h)
            return {"changed": changed, **svc.describe()}

    async def retire(
        self, service: str, env: str, name: str, force: bool, key: str | None
    ) -> dict[str, Any]:
        svc = self.services.get((service, env))
        if svc is None:
            return {"changed": False, "version": name}
        async with svc.lock:
            ver = svc.versions.get(name)
            if ver is None:
                svc.weights.pop(name, None)
                self.record("retire", svc, name, key, False)
                return {"changed": False, "version": name, **svc.describe()}
            if svc.weights.get(name, 0) > 0 and not force:
                raise AgentError(
                    409,
                    "has_traffic",
                    f"version {name} of {service}/{env} still receives {svc.weights[name]}% of "
                    "traffic; move traffic away first (PUT .../traffic) or retire with ?force=1",
                )
            svc.weights.pop(name, None)
            svc.versions.pop(name, None)
            await asyncio.gather(
                *(im.stop_instance(i) for i in ver.instances), return_exceptions=True
            )
            self.record("retire", svc, name, key, True)
            return {"changed": True, "version": name, **svc.describe()}

    async def set_traffic(
        self, service: str, env: str, weights: Any, key: str | None
    ) -> dict[str, Any]:
        svc = self.get(service, env)
        if (
            not isinstance(weights, dict)
            or not weights
            or not all(
                isinstance(w, int) and not isinstance(w, bool) and w >= 0 for w in weights.values()
            )
        ):
            raise AgentError(
                400, "bad_request", "weights must be a non-empty map of version -> integer >= 0"
            )
        if sum(weights.values()) != 100:
            raise AgentError(
                400,
                "bad_request",
                f"weights must sum to 100, got {sum(weights.values())}: {weights}",
            )
        async with svc.lock:
            unknown = sorted(v for v in weights if v not in svc.versions)
            if unknown:
                raise AgentError(
                    409,
                    "unknown_version",
                    f"{service}/{env} has no running version(s) {', '.join(unknown)} "
                    f"(running: {', '.join(sorted(svc.versions)) or 'none'}); apply them first",
                )
            sick = sorted(
                v
                for v, w in weights.items()
                if w > 0 and not any(i.healthy and i.alive for i in svc.versions[v].instances)
            )
            if sick:
                raise AgentError(
                    422,
                    "unhealthy",
                    f"{service}/{env} version(s) {', '.join(sick)} have no healthy instance; "
                    "restore or re-apply them before sending traffic",
                )
            new = {v: 0 for v in svc.versions} | dict(weights)
            changed = new != ({v: 0 for v in svc.versions} | svc.weights)
            svc.weights = new
            self.record("traffic", svc, None, key, changed, weights=new)
            return {"changed": changed, "weights": new, "endpoint": svc.router.endpoint}

    # ------------------------------------------------------------ health monitor
    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                checks = [
                    (i, v.spec.health_path)
                    for s in list(self.services.values())
                    for v in list(s.versions.values())
                    for i in v.instances
                ]
                results = await asyncio.gather(
                    *(
                        im.probe(self.session, i, p, timeout=0.9) if i.alive else _false()
                        for i, p in checks
                    )
                )
                for (inst, _), ok in zip(checks, results, strict=True):
                    inst.healthy = bool(ok) and inst.alive
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep monitoring; a bad probe must not stop it
                continue


async def _false() -> bool:
    return False
