"""Fault-injection operations of the agent (used by chaos and soak runs).

- router faults: add (idempotent by ``idempotency_key``), list, remove (idempotent);
- ``signal_instance``: KILL / STOP / CONT / TERM one instance's process group;
- ``restore``: restart dead instances (same index, same port when free) and
  SIGCONT stopped ones, then wait for health; ``changed: false`` when all were fine;
- ``resources``: per-instance pid, rss, cpu% and cpu seconds (psutil).
All mutations are journaled like the deployment operations."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from workers.agent import instances as im
from workers.agent.core import Agent, AgentError
from workers.agent.faults import FaultSpec


def add_fault(agent: Agent, service: str, env: str, spec: FaultSpec) -> dict[str, Any]:
    svc = agent.get(service, env)
    if spec.version is not None and spec.version not in svc.versions:
        raise AgentError(
            409,
            "unknown_version",
            f"{service}/{env} has no running version {spec.version} to inject into",
        )
    fault, changed = svc.router.faults.add(spec)
    agent.record(
        "fault_add",
        svc,
        spec.version,
        spec.idempotency_key,
        changed,
        fault_id=fault.id,
        kind=fault.kind,
    )
    return {"id": fault.id, "changed": changed, "fault": fault.model_dump()}


def list_faults(agent: Agent, service: str, env: str) -> list[dict[str, Any]]:
    return [f.model_dump() for f in agent.get(service, env).router.faults.list()]


def remove_fault(
    agent: Agent, service: str, env: str, fault_id: str, key: str | None = None
) -> dict[str, Any]:
    svc = agent.services.get((service, env))
    if svc is None:
        return {"id": fault_id, "changed": False}
    changed = svc.router.faults.remove(fault_id)
    agent.record("fault_remove", svc, None, key, changed, fault_id=fault_id)
    return {"id": fault_id, "changed": changed}


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
    svc = agent.get(service, env)
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
        try:
            await asyncio.wait_for(inst.proc.wait(), 6.0 if name == "TERM" else 2.0)
        except TimeoutError:
            pass
    elif name == "STOP":
        inst.healthy = False
        for _ in range(20):  # let the kernel deliver it so `status` reads "stopped"
            if inst.stopped:
                break
            await asyncio.sleep(0.01)
    agent.record("signal", svc, version, key, was_alive, index=index, signal=name, pid=inst.pid)
    return {"changed": was_alive, "signal": name, **inst.describe()}


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def restore(
    agent: Agent, service: str, env: str, version: str, key: str | None = None
) -> dict[str, Any]:
    svc = agent.get(service, env)
    async with svc.lock:
        ver = agent.version(service, env, version)
        dead = [i for i in ver.instances if not i.alive]
        stopped = [i for i in ver.instances if i.alive and i.stopped]
        for inst in stopped:
            im.send_signal(inst, "CONT")
        restarted: list[im.Instance] = []
        if dead:
            for inst in dead:
                await im.stop_instance(inst, grace=0.1)  # reap / clean the process group
            restarted = await agent._start_healthy(
                svc,
                version,
                ver.spec,
                [i.index for i in dead],
                [i.port if _port_free(i.port) else None for i in dead],
            )
            by_index = {i.index: i for i in restarted}
            ver.instances = [by_index.get(i.index, i) for i in ver.instances]
        deadline = time.monotonic() + ver.spec.health_timeout_s
        reasons = await asyncio.gather(
            *(
                im.wait_healthy(agent.session, i, ver.spec.health_path, deadline)
                for i in ver.instances
                if not i.healthy
            )
        )
        bad = [r for r in reasons if r]
        changed = bool(dead or stopped)
        agent.record(
            "restore",
            svc,
            version,
            key,
            changed,
            restarted=[i.index for i in restarted],
            continued=[i.index for i in stopped],
        )
        if bad:
            raise AgentError(
                422,
                "unhealthy",
                f"{service}/{env} version {version} is not healthy after restore: "
                + "; ".join(bad),
            )
        return {
            "changed": changed,
            "restarted": [i.index for i in restarted],
            "continued": [i.index for i in stopped],
            "instances": [i.describe() for i in ver.instances],
        }


def resources(agent: Agent, service: str, env: str, version: str) -> dict[str, Any]:
    ver = agent.version(service, env, version)
    return {
        "service": service,
        "environment": env,
        "version": version,
        "instances": [i.resources() for i in ver.instances],
    }
