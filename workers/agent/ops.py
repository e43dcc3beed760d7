"""Deployment operations of the agent: apply, retire, set traffic.

Each takes the service's lock and runs through :meth:`Agent.keyed` (journaled,
replayed for a key already done). Order within an operation: change memory,
persist the desired state (undo and fail if that write fails), then act on the
data plane (start/stop processes, push the router config). A repeated request
with a new key finds the work done and reports ``changed: false``.

``apply`` with a key already done is replayed, except when instances of that
version were lost in an agent crash and could not be restarted because their
secrets are not persisted (``needs_reapply``): the call carries the secrets again,
so those instances are restarted (outcome ``repaired``)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from workers.agent import instances as im
from workers.agent.core import Agent
from workers.agent.model import AgentError, Version, VersionSpec
from workers.agent.state import fingerprint


async def apply(
    agent: Agent,
    service: str,
    env: str,
    name: str,
    spec: VersionSpec,
    key: str | None,
    initial_weight: int | None,
    router_port: int | None,
) -> dict[str, Any]:
    if spec.workdir and not await asyncio.to_thread(os.path.isdir, spec.workdir):
        raise AgentError(
            400, "bad_request", f"workdir {spec.workdir} does not exist on the agent host"
        )
    h = spec.hash()
    fp = fingerprint("apply", service, env, name, h, initial_weight, router_port)
    created = (service, env) not in agent.services
    svc = await agent.service_for(service, env, router_port)

    def needs_repair() -> bool:
        cur = svc.versions.get(name)
        return bool(cur and cur.spec_hash == h and any(i.needs_reapply for i in cur.instances))

    async def run() -> tuple[dict[str, Any], bool, dict[str, Any]]:
        cur = svc.versions.get(name)
        before = (list(cur.instances), cur.spec) if cur else None
        old_weights = dict(svc.weights)
        stale: list[im.Instance] = []
        if (
            cur
            and cur.spec_hash == h
            and all(i.alive and i.healthy and not i.needs_reapply for i in cur.instances)
        ):
            changed = False
            if spec.secret_env and not cur.spec.secret_env:
                cur.spec.secret_env = dict(spec.secret_env)  # for later restores
        elif cur and cur.spec_hash == h and len(cur.instances) == spec.replicas:
            # same version, some instances dead or lost: restart those only
            stale = [i for i in cur.instances if i.needs_reapply or not i.alive]
            fresh = await agent.start_healthy(
                svc,
                name,
                spec,
                [i.index for i in stale],
                [i.port if im.port_free(i.port) else None for i in stale],
            )
            by_index = {i.index: i for i in fresh}
            cur.instances = [by_index.get(i.index, i) for i in cur.instances]
            cur.spec = spec
            changed = True
        else:
            try:
                insts = await agent.start_healthy(
                    svc, name, spec, list(range(spec.replicas)), [None] * spec.replicas
                )
            except AgentError:
                if created and not svc.versions:
                    await agent.drop_service(svc)
                raise
            stale = cur.instances if cur else []
            svc.versions[name] = Version(name, spec, h, insts, sorted(spec.secret_env))
            changed = True
        if initial_weight is not None and sum(svc.weights.values()) == 0 and initial_weight > 0:
            svc.weights = {n: 0 for n in svc.versions} | {name: initial_weight}
            changed = True
        svc.weights.setdefault(name, 0)
        if changed or svc.weights != old_weights:
            try:
                agent.persist()
            except AgentError:  # nothing took effect: undo, stop what was started
                started = [i for i in svc.versions[name].instances if i not in stale]
                if before is not None and cur is not None:
                    cur.instances, cur.spec = before
                    svc.versions[name] = cur
                    started = [i for i in started if i not in before[0]]
                else:
                    svc.versions.pop(name, None)
                svc.weights = old_weights
                await asyncio.gather(*(im.stop_instance(i) for i in started))
                raise
            await agent.sync_router(svc)
            await asyncio.gather(*(im.stop_instance(i) for i in stale), return_exceptions=True)
        return {"changed": changed, **svc.describe()}, changed, {"spec_hash": h}

    async with svc.lock:
        return await agent.keyed("apply", service, env, name, key, fp, run, repair=needs_repair)


async def retire(
    agent: Agent, service: str, env: str, name: str, force: bool, key: str | None
) -> dict[str, Any]:
    fp = fingerprint("retire", service, env, name, force)
    svc = agent.services.get((service, env))
    if svc is None:

        async def nothing() -> tuple[dict[str, Any], bool, dict[str, Any]]:
            return {"changed": False, "version": name}, False, {}

        return await agent.keyed("retire", service, env, name, key, fp, nothing)

    async def run() -> tuple[dict[str, Any], bool, dict[str, Any]]:
        ver = svc.versions.get(name)
        if ver is None:
            if svc.weights.pop(name, None) is not None:
                agent.persist()
            return {"changed": False, "version": name, **svc.describe()}, False, {}
        if svc.weights.get(name, 0) > 0 and not force:
            raise AgentError(
                409,
                "has_traffic",
                f"version {name} of {service}/{env} still receives {svc.weights[name]}% of "
                "traffic; move traffic away first (PUT .../traffic) or retire with ?force=1",
            )
        weight = svc.weights.pop(name, None)
        svc.versions.pop(name, None)
        try:
            agent.persist()
        except AgentError:
            svc.versions[name] = ver
            if weight is not None:
                svc.weights[name] = weight
            raise
        await agent.sync_router(svc)
        await asyncio.gather(*(im.stop_instance(i) for i in ver.instances), return_exceptions=True)
        return {"changed": True, "version": name, **svc.describe()}, True, {}

    async with svc.lock:
        return await agent.keyed("retire", service, env, name, key, fp, run)


def _check_weights(weights: Any) -> dict[str, int]:
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
    return {str(k): int(v) for k, v in weights.items()}


async def set_traffic(
    agent: Agent, service: str, env: str, weights: Any, key: str | None
) -> dict[str, Any]:
    fp = fingerprint("traffic", service, env, weights)

    async def run() -> tuple[dict[str, Any], bool, dict[str, Any]]:
        wanted = _check_weights(weights)
        svc = agent.get(service, env)
        unknown = sorted(v for v in wanted if v not in svc.versions)
        if unknown:
            raise AgentError(
                409,
                "unknown_version",
                f"{service}/{env} has no running version(s) {', '.join(unknown)} "
                f"(running: {', '.join(sorted(svc.versions)) or 'none'}); apply them first",
            )
        sick = sorted(
            v
            for v, w in wanted.items()
            if w > 0 and not any(i.healthy and i.alive for i in svc.versions[v].instances)
        )
        if sick:
            raise AgentError(
                422,
                "unhealthy",
                f"{service}/{env} version(s) {', '.join(sick)} have no healthy instance; "
                "restore or re-apply them before sending traffic",
            )
        new = {v: 0 for v in svc.versions} | wanted
        old = dict(svc.weights)
        changed = new != ({v: 0 for v in svc.versions} | old)
        svc.weights = new
        try:
            agent.persist()
        except AgentError:
            svc.weights = old
            raise
        await agent.sync_router(svc)
        return (
            {"changed": changed, "weights": new, "endpoint": svc.router.endpoint},
            changed,
            {"weights": new},
        )

    svc = agent.services.get((service, env))
    if svc is None:
        return await agent.keyed("traffic", service, env, None, key, fp, run)
    async with svc.lock:
        return await agent.keyed("traffic", service, env, None, key, fp, run)
