"""The agent (control plane): services, their router processes, versions,
instances, weights, faults, the desired-state file and the operations journal.

- Desired state is ``state.json`` in the state dir (:meth:`Agent.persist`, atomic:
  write-temp, fsync, rename, fsync dir). Every mutation changes memory, persists,
  and only then touches the data plane; a failed write undoes the change in
  memory and is returned to the caller as 507 ``state_not_persisted``.
- Every mutation runs through :meth:`Agent.keyed`: it is journaled (``ops.jsonl``,
  see :mod:`workers.agent.state`) with its idempotency key, and a second call with
  a key already done returns the first result (``changed: false``,
  ``replayed: true``) without doing anything. Reusing a key for a different
  request is refused (409 ``idempotency_key_reused``).
- On start the agent reconciles (:mod:`workers.agent.reconcile`): re-adopts live
  routers and instances, restarts dead ones, restores weights and faults.
- A clean stop (SIGTERM/SIGINT, :meth:`Agent.close`) tears the data plane down
  and records an empty desired state; a crash leaves it serving.
- The monitor probes instance health every second and restarts router
  processes that died.
Failures raise :class:`AgentError` carrying the HTTP status, a short error code
and a detail a user can act on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from workers.agent import instances as im
from workers.agent import routers as rt
from workers.agent.metrics import AgentMetrics
from workers.agent.model import AgentError, Service, Version, VersionSpec
from workers.agent.state import DONE, FAILED, REPLAYED, Journal, atomic_write_json

__all__ = ["Agent", "AgentError", "VersionSpec"]

Run = Callable[[], Awaitable[tuple[dict[str, Any], bool, dict[str, Any]]]]


class Agent:
    def __init__(self, state_dir: Path, url: str = "", upstream_timeout: float = 10.0) -> None:
        self.state_dir = state_dir
        self.url = url
        self.upstream_timeout = upstream_timeout
        self.metrics = AgentMetrics()
        self.services: dict[tuple[str, str], Service] = {}
        self.journal = Journal(state_dir / "ops.jsonl", boot=uuid.uuid4().hex[:8])
        self.report: dict[str, Any] = {}
        self.known_ports: dict[str, int] = {}
        self.started_at = time.time()
        self._session: aiohttp.ClientSession | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._create_lock = asyncio.Lock()

    # ------------------------------------------------------------ lifecycle
    async def start(
        self, reconcile: Callable[[Agent], Awaitable[dict[str, Any]]] | None = None
    ) -> None:
        """Open the session, reconcile what a previous agent left (``reconcile``, see
        :mod:`workers.agent.reconcile`), persist, start the monitor."""
        await asyncio.to_thread(self.state_dir.mkdir, parents=True, exist_ok=True)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=30),
            auto_decompress=False,
        )
        if reconcile is not None:
            self.report = await reconcile(self)
        self.persist()
        self._monitor = asyncio.create_task(self._monitor_loop())

    async def close(self) -> None:
        """Clean stop: stop routers and instances, record an empty desired state."""
        if self._monitor:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await asyncio.gather(
            *(rt.stop(s.router) for s in self.services.values()), return_exceptions=True
        )
        await asyncio.gather(
            *(
                im.stop_instance(i)
                for s in self.services.values()
                for v in s.versions.values()
                for i in v.instances
            ),
            return_exceptions=True,
        )
        self.services.clear()
        try:
            entry = self.journal.new("shutdown", None, None, None, None)
            self.journal.end({**entry, "outcome": DONE, "changed": True})
            self.persist(running=False)
        except AgentError as exc:  # no caller to return it to: say it where it is seen
            print(f"agent: {exc.detail}", flush=True)
        self.journal.close()
        if self._session:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("agent not started")
        return self._session

    # ------------------------------------------------------------ lookups
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

    # ------------------------------------------------------------ desired state
    def state_doc(self, running: bool = True) -> dict[str, Any]:
        return {
            "format": 2,
            "agent": {
                "url": self.url,
                "pid": os.getpid(),
                "create_time": im.create_time(os.getpid()),
                "running": running,
                "started_at": self.started_at,
                "updated_at": time.time(),
            },
            "services": {s.key: s.to_state() for s in self.services.values()},
        }

    def persist(self, running: bool = True) -> None:
        """Write ``state.json`` atomically; raises AgentError 507 on failure."""
        atomic_write_json(self.state_dir / "state.json", self.state_doc(running))

    # ------------------------------------------------------------ keyed calls
    async def keyed(
        self,
        op: str,
        service: str,
        env: str,
        version: str | None,
        key: str | None,
        fp: str,
        run: Run,
        repair: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """Run one mutation through the journal. ``run`` returns (result, changed,
        extra journal fields). The caller holds the service lock if there is one."""
        first = self.journal.first(op, key)
        if first is not None:
            if first.get("fingerprint") != fp:
                raise AgentError(
                    409,
                    "idempotency_key_reused",
                    f"idempotency key {key!r} was used by call {first['call']} for a different "
                    f"{op} request; use a new key for a new request",
                )
            if repair is None or not repair():
                entry = self.journal.new(op, service, env, version, key, fp)
                entry.update(outcome=REPLAYED, changed=False, first_call=first["call"])
                self.journal.end(entry)
                return {**first.get("result", {}), "changed": False, "replayed": True}
        entry = self.journal.new(op, service, env, version, key, fp)
        self.journal.begin(entry)
        try:
            result, changed, extra = await run()
        except AgentError as exc:
            entry.update(outcome=FAILED, changed=False, error={"error": exc.error})
            entry["error"]["detail"] = exc.detail[:500]
            with contextlib.suppress(AgentError):  # the original error is the one to return
                self.journal.end(entry)
            raise
        except Exception as exc:
            entry.update(outcome=FAILED, changed=False, error={"error": type(exc).__name__})
            with contextlib.suppress(AgentError):
                self.journal.end(entry)
            raise
        outcome = DONE if first is None else "repaired"
        entry.update(extra)
        entry.update(outcome=outcome, changed=changed, result=result)
        if first is not None:
            entry["first_call"] = first["call"]
        self.journal.end(entry)
        return result

    def note(self, op: str, svc: Service | None, changed: bool, **extra: Any) -> None:
        """Journal something the agent did by itself (reconcile, router restart)."""
        entry = self.journal.new(
            op, svc.service if svc else None, svc.environment if svc else None, None, None
        )
        entry.update(extra)
        entry.update(outcome=DONE, changed=changed)
        self.journal.end(entry)

    # ------------------------------------------------------------ routers
    async def service_for(self, service: str, env: str, router_port: int | None) -> Service:
        async with self._create_lock:
            svc = self.services.get((service, env))
            if svc is not None:
                return svc
            candidates = [p for p in (router_port, self.known_ports.get(f"{service}/{env}")) if p]
            empty = {"service": service, "environment": env, "versions": {}, "weights": {}}
            for port in [*candidates, 0]:
                try:
                    router = await rt.spawn(
                        self.state_dir,
                        service,
                        env,
                        port or im.free_port(),
                        empty,
                        self.upstream_timeout,
                        self.session,
                    )
                    break
                except rt.PortBusy:
                    if port and port == router_port:
                        raise AgentError(
                            409,
                            "port_in_use",
                            f"router port {port} for {service}/{env} is busy; omit router_port",
                        ) from None
            svc = Service(service, env, router)
            self.services[(service, env)] = svc
            return svc

    async def drop_service(self, svc: Service) -> None:
        await rt.stop(svc.router)
        self.services.pop((svc.service, svc.environment), None)

    async def restart_router(self, svc: Service) -> bool:
        """Start the router again (same port when free); True when the endpoint kept its port."""
        old = svc.router
        if old.pid:
            await rt.stop(old, grace=1.0)
        svc.generation += 1
        cfg = svc.router_config()
        ports = [old.port] if im.port_free(old.port) else []
        for port in [*ports, 0]:
            try:
                svc.router = await rt.spawn(
                    self.state_dir,
                    svc.service,
                    svc.environment,
                    port or im.free_port(),
                    cfg,
                    self.upstream_timeout,
                    self.session,
                )
                break
            except rt.PortBusy:
                continue
        return svc.router.port == old.port

    async def sync_router(self, svc: Service) -> None:
        """Send the service's config to its router; restart the router when it died."""
        svc.generation += 1
        if not svc.router.alive:
            await self.restart_router(svc)
            self.persist()
            return
        await rt.push(svc.router, self.session, svc.router_config())

    # ------------------------------------------------------------ instances
    async def start_healthy(
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
                        state_dir=self.state_dir,
                        obj=f"instance:{svc.key}/{name}/{idx}",
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
                    *(im.probe(self.session, i, p, 0.9) if i.alive else _false() for i, p in checks)
                )
                for (inst, _), ok in zip(checks, results, strict=True):
                    inst.healthy = bool(ok) and inst.alive
                for svc in list(self.services.values()):
                    if svc.router.alive or svc.lock.locked():
                        continue
                    async with svc.lock:
                        old = svc.router.pid
                        same_port = await self.restart_router(svc)
                        self.persist()
                        self.note(
                            "router_restart",
                            svc,
                            True,
                            old_pid=old,
                            pid=svc.router.pid,
                            same_port=same_port,
                        )
                        print(f"agent: router of {svc.key} died; restarted", flush=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep monitoring; a bad probe must not stop it
                print(f"agent: monitor: {type(exc).__name__}: {exc}", flush=True)
                continue


async def _false() -> bool:
    return False
