"""Fault-injection operations of the agent (used by chaos and soak runs).

- router faults: add, list (with the router's hit counts), remove. The fault
  set is part of the desired state (persisted, restored after a restart) and
  pushed to the router process; a removed fault is gone from the state, so a
  restart never brings it back;
- ``signal_instance``: KILL / STOP / CONT / TERM one instance's process group;
- ``restore``: restart dead instances (same index, same port when free) and
  SIGCONT stopped ones, then wait for health; ``changed: false`` when all were fine.
  A version whose secrets the agent no longer holds (it restarted) cannot be
  restarted here: 409 ``needs_reapply``;
- ``resources``: per-instance pid, rss, cpu% and cpu seconds (psutil).
All mutations run through :meth:`Agent.keyed` like the deployment operations:
journaled, and replayed (not repeated) for a key already done."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from workers.agent import instances as im
from workers.agent import routers as rt
from workers.agent.core import Agent
from workers.agent.model import AgentError
from workers.agent.state import fingerprint

Result = tuple[dict[str, Any], bool, dict[str, Any]]


async def add_fault(agent: Agent, service: str, env: str, spec: Any) -> dict[str, Any]:
    key = spec.idempotency_key
    fp = fingerprint("fault_add", service, env, spec.model_dump(exclude={"idempotency_key"}))

    async def run() -> Result:
        svc = agent.get(service, env)
        if spec.version is not None and spec.version not in svc.versions:
            raise AgentError(
                409,
                "unknown_version",
                f"{service}/{env} has no running version {spec.version} to inject into",
            )
        fault, changed = svc.faults.add(spec)
        if changed:
            try:
                agent.persist()
            except AgentError:
                svc.faults.remove(fault.id)
                raise
            await agent.sync_router(svc)
        extra = {"fault_id": fault.id, "kind": fault.kind}
        return {"id": fault.id, "changed": changed, "fault": fault.model_dump()}, changed, extra

    return await agent.keyed("fault_add", service, env, spec.version, key, fp, run)


async def list_faults(agent: Agent, service: str, env: str) -> list[dict[str, Any]]:
    svc = agent.get(service, env)
    hits: dict[str, int] = {}
    try:
        for f in await rt.admin_get(svc.router, agent.session, "/faults"):
            hits[str(f.get("id"))] = int(f.get("hits", 0))
    except AgentError:
        pass  # the desired set is still the answer; hit counts are best effort
    return [{**f.model_dump(), "hits": hits.get(f.id, f.hits)} for f in svc.faults.list()]


async def remove_fault(
    agent: Agent, service: str, env: str, fault_id: str, key: str | None = None
) -> dict[str, Any]:
    fp = fingerprint("fault_remove", service, env, fault_id)

    async def run() -> Result:
        svc = agent.services.get((service, env))
        if svc is None:
            return {"id": fault_id, "changed": False}, False, {"fault_id": fault_id}
        gone = next((f for f in svc.faults.list() if f.id == fault_id), None)
        changed = svc.faults.remove(fault_id)
        if changed:
            try:
                agent.persist()
            except AgentError:
                if gone is not None:
                    svc.faults.replace([*svc.faults.list(), gone])
                raise
            await agent.sync_router(svc)
        return {"id": fault_id, "changed": changed}, changed, {"fault_id": fault_id}

    return await agent.keyed("fault_remove", service, env, None, key, fp, run)


async def signal_instance(
    agent: Agent,
    service: str,
    env: str,
    version: str,
    index: int,
    name: str,
    key: str | None = None,
) -> dict[str, Any]:
    name = name.upper().removeprefix("SIG")
    if name not in im.SIGNALS:
        raise AgentError(400, "bad_request", f"signal must be one of {', '.join(im.SIGNALS)}")
    fp = fingerprint("signal", service, env, version, index, name)

    async def run() -> Result:
        ver = agent.version(service, env, version)
        inst = next((i for i in ver.instances if i.index == index), None)
        if inst is None:
            raise AgentError(
                404,
                "not_found",
                f"{service}/{env} version {version} has no instance {index} "
                f"(instances 0..{len(ver.instances) - 1})",
            )
        was_alive = inst.alive
        im.send_signal(inst, name)
        if name in ("KILL", "TERM"):
            inst.healthy = False
            await inst.wait_exit(6.0 if name == "TERM" else 2.0)
        elif name == "STOP":
            inst.healthy = False
            await im.until(lambda: inst.stopped, 0.2, every=0.01)  # let the kernel deliver it
        extra = {"index": index, "signal": name, "pid": inst.pid}
        return {"changed": was_alive, "signal": name, **inst.describe()}, was_alive, extra

    return await agent.keyed("signal", service, env, version, key, fp, run)


async def restore(
    agent: Agent, service: str, env: str, version: str, key: str | None = None
) -> dict[str, Any]:
    svc = agent.get(service, env)
    fp = fingerprint("restore", service, env, version)

    async def run() -> Result:
        ver = agent.version(service, env, version)
        dead = [i for i in ver.instances if not i.alive]
        if dead and ver.secrets_missing:
            raise AgentError(
                409,
                "needs_reapply",
                f"{service}/{env} version {version} uses secrets ({', '.join(ver.secret_names)}) "
                "whose values this agent does not keep across restarts; re-apply the version "
                "(the deployment's apply re-sends them) to restart instance(s) "
                + ", ".join(str(i.index) for i in dead),
            )
        stopped = [i for i in ver.instances if i.alive and i.stopped]
        for inst in stopped:
            im.send_signal(inst, "CONT")
        restarted: list[im.Instance] = []
        if dead:
            for inst in dead:
                await im.stop_instance(inst, grace=0.1)  # reap / clean the process group
            restarted = await agent.start_healthy(
                svc,
                version,
                ver.spec,
                [i.index for i in dead],
                [i.port if im.port_free(i.port) else None for i in dead],
            )
            by_index = {i.index: i for i in restarted}
            ver.instances = [by_index.get(i.index, i) for i in ver.instances]
            agent.persist()
            await agent.sync_router(svc)
        deadline = time.monotonic() + ver.spec.health_timeout_s
        reasons = await asyncio.gather(
            *(
                im.wait_healthy(agent.session, i, ver.spec.health_path, deadline)
                for i in ver.instances
                if not i.healthy
            )
        )
        bad = [r for r in reasons if r]
        if bad:
            raise AgentError(
                422,
                "unhealthy",
                f"{service}/{env} version {version} is not healthy after restore: "
                + "; ".join(bad),
            )
        changed = bool(dead or stopped)
        ids = {"restarted": [i.index for i in restarted], "continued": [i.index for i in stopped]}
        return (
            {"changed": changed, **ids, "instances": [i.describe() for i in ver.instances]},
            changed,
            ids,
        )

    async with svc.lock:
        return await agent.keyed("restore", service, env, version, key, fp, run)


def resources(agent: Agent, service: str, env: str, version: str) -> dict[str, Any]:
    ver = agent.version(service, env, version)
    return {
        "service": service,
        "environment": env,
        "version": version,
        "instances": [i.resources() for i in ver.instances],
    }
