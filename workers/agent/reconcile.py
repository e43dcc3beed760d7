"""What a starting agent does with the state a previous agent left (a crash, a kill).

:func:`reconcile` reads ``ops.jsonl`` (calls found begun but not ended are
closed as ``interrupted``) and ``state.json``, then:

1. stops orphans: processes carrying this state dir's label that the state does
   not know (started by a call the previous agent never finished recording);
2. per instance: re-adopts it when alive (pid + start time + its port
   listening), stops and restarts it when alive but not listening, restarts it
   when dead — unless its version has secrets: their values are never persisted,
   so the instance is reported ``needs_reapply`` (the next apply, which re-sends
   the secrets, restarts it; a re-adopted instance keeps its env);
3. per service: re-adopts its router process (pid + start time + admin token +
   data port) or starts a new one on the same port, then pushes the restored
   weights, instances and faults to it.

It returns a report of what it did (also ``GET /v1/reconcile``, the agent's log
and a ``reconcile`` entry in the journal). An unreadable ``state.json`` is moved
aside and nothing is stopped."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from workers.agent import instances as im
from workers.agent import routers as rt
from workers.agent.core import Agent
from workers.agent.faults import Fault
from workers.agent.model import AgentError, Service, Version, VersionSpec


def _load(agent: Agent, report: dict[str, Any]) -> dict[str, Any] | None:
    path = agent.state_dir / "state.json"
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except FileNotFoundError:
        report["state"] = "fresh"
        return None
    except (OSError, ValueError) as exc:
        aside = path.with_name(f"state.json.unreadable-{int(time.time())}")
        os.replace(path, aside)
        report["state"] = f"unreadable ({exc}); moved to {aside.name}; nothing adopted"
        return None
    if doc.get("format") != 2:  # an older agent: its processes died with it
        for key, svc in (doc.get("services") or {}).items():
            if svc.get("router_port"):
                agent.known_ports[key] = int(svc["router_port"])
        report["state"] = "legacy (router ports kept)"
        return None
    report["state"] = "loaded"
    return doc


def _services(agent: Agent, doc: dict[str, Any]) -> None:
    for key, rec in (doc.get("services") or {}).items():
        service, env = rec.get("service"), rec.get("environment")
        if not service or not env:
            service, _, env = key.partition("/")
        router = rt.RouterProc.from_state(service, env, rec["router"])
        svc = Service(service, env, router, weights=dict(rec.get("weights") or {}))
        svc.faults.replace([Fault.model_validate(f) for f in rec.get("faults") or []])
        for name, v in (rec.get("versions") or {}).items():
            svc.versions[name] = Version(
                name,
                VersionSpec.from_public(v["spec"]),
                str(v["spec_hash"]),
                [im.Instance.from_state(i) for i in v.get("instances") or []],
                list(v.get("secret_names") or []),
            )
        agent.services[(service, env)] = svc
        agent.known_ports[key] = router.port


async def _orphans(agent: Agent, report: dict[str, Any]) -> None:
    known = {s.router.obj for s in agent.services.values()} | {
        i.obj for s in agent.services.values() for v in s.versions.values() for i in v.instances
    }
    me = os.getpid()
    found = await asyncio.to_thread(im.labelled, agent.state_dir)
    for proc, obj in found:
        if proc.pid == me or obj in known:
            continue
        started = im.create_time(proc.pid)
        if started and await im.stop_pid(proc.pid, started, grace=2.0):
            report["orphans_stopped"].append({"pid": proc.pid, "what": obj.split("#")[0]})


async def _instances(agent: Agent, svc: Service, ver: Version, report: dict[str, Any]) -> None:
    restart: list[im.Instance] = []
    for inst in ver.instances:
        where = f"{svc.key}/{ver.name}/{inst.index}"
        if inst.ps() is not None:
            if await asyncio.to_thread(im.listening, inst.pid, inst.started, inst.port):
                inst.healthy = await im.probe(agent.session, inst, ver.spec.health_path, 1.0)
                inst.needs_reapply = False
                report["instances"]["adopted"].append({"at": where, "pid": inst.pid})
                continue
            await im.stop_pid(inst.pid, inst.started, grace=2.0)  # wedged: alive, not listening
            report["instances"]["replaced"].append({"at": where, "pid": inst.pid})
        if ver.secret_names:
            inst.needs_reapply, inst.healthy = True, False
            report["instances"]["needs_reapply"].append(
                {"at": where, "secrets": sorted(ver.secret_names)}
            )
            continue
        restart.append(inst)
    if not restart:
        return
    try:
        fresh = await agent.start_healthy(
            svc,
            ver.name,
            ver.spec,
            [i.index for i in restart],
            [i.port if im.port_free(i.port) else None for i in restart],
        )
    except AgentError as exc:
        report["instances"]["failed"].append({"at": f"{svc.key}/{ver.name}", "error": exc.detail})
        return
    by_index = {i.index: i for i in fresh}
    ver.instances = [by_index.get(i.index, i) for i in ver.instances]
    for i in fresh:
        report["instances"]["restarted"].append(
            {"at": f"{svc.key}/{ver.name}/{i.index}", "pid": i.pid, "port": i.port}
        )


async def _router(agent: Agent, svc: Service, report: dict[str, Any]) -> None:
    svc.generation += 1
    if await rt.identify(svc.router, agent.session):
        await rt.push(svc.router, agent.session, svc.router_config())
        report["routers"]["adopted"].append({"at": svc.key, "pid": svc.router.pid})
        return
    old = svc.router.port
    same = await agent.restart_router(svc)
    report["routers"]["restarted"].append(
        {"at": svc.key, "pid": svc.router.pid, "port": svc.router.port, "same_port": same}
    )
    if not same:
        report["endpoints_changed"].append({"at": svc.key, "from": old, "to": svc.router.port})


async def reconcile(agent: Agent) -> dict[str, Any]:
    t0 = time.monotonic()
    report: dict[str, Any] = {
        "state": "",
        "routers": {"adopted": [], "restarted": []},
        "instances": {
            "adopted": [],
            "restarted": [],
            "replaced": [],
            "needs_reapply": [],
            "failed": [],
        },
        "orphans_stopped": [],
        "endpoints_changed": [],
        "interrupted_calls": [],
        "weights": {},
        "faults": 0,
    }
    interrupted = await asyncio.to_thread(agent.journal.load)
    report["interrupted_calls"] = [
        {"call": e["call"], "op": e.get("op"), "idempotency_key": e.get("idempotency_key")}
        for e in interrupted
    ]
    doc = await asyncio.to_thread(_load, agent, report)
    if doc is not None:
        _services(agent, doc)
    if not report["state"].startswith("unreadable"):
        await _orphans(agent, report)
    for svc in agent.services.values():
        await asyncio.gather(*(_instances(agent, svc, v, report) for v in svc.versions.values()))
        await _router(agent, svc, report)
        report["weights"][svc.key] = dict(svc.weights)
        report["faults"] += len(svc.faults.list())
    report["seconds"] = round(time.monotonic() - t0, 3)
    changed = bool(
        report["routers"]["restarted"]
        or report["instances"]["restarted"]
        or report["instances"]["replaced"]
        or report["orphans_stopped"]
    )
    agent.note("reconcile", None, changed, report=report)
    print("agent: reconciled " + json.dumps(report, sort_keys=True), flush=True)
    return report
