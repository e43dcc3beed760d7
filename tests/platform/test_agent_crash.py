"""The local platform survives its own crash: real agent processes (SIGKILLed and
started again on the same port and state dir), real router processes, real demo
service instances and a real HTTP client at 40 req/s on loopback.

Each test starts its own agent and ends with a clean stop plus a sweep of every
process labelled with its state dir, so nothing outlives it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from activities.platform.base import PlatformConflict, PlatformUnavailable
from activities.platform.local import LocalPlatform
from tests.platform.agent_proc import (
    AgentProc,
    Traffic,
    demo_body,
    journal_lines,
    keys_applied_twice,
    sweep,
)
from tests.servers import wait_until
from workflows.models import RetireVersionInput, SetTrafficInput

SVC, ENV = "crash", "test"
pytestmark = pytest.mark.integration


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProc]:
    a = AgentProc(tmp_path / "state").start()
    try:
        yield a
    finally:
        if a.proc is not None and a.proc.poll() is not None:
            # killed and not restarted: its data plane still serves; the next agent stops it
            with contextlib.suppress(Exception):
                a.start()
        a.stop()
    assert sweep(a.state_dir) == [], "processes outlived the agent's clean stop"


def put(a: AgentProc, path: str, body: dict[str, Any], timeout: float = 60) -> httpx.Response:
    return httpx.put(f"{a.url}/v1/services/{SVC}/{ENV}{path}", json=body, timeout=timeout)


def describe(a: AgentProc) -> dict[str, Any]:
    return httpx.get(f"{a.url}/v1/services/{SVC}/{ENV}", timeout=5).json()


def pids(d: dict[str, Any]) -> dict[str, list[int]]:
    return {v: [i["pid"] for i in x["instances"]] for v, x in d["versions"].items()}


def traffic(key: str, **weights: int) -> SetTrafficInput:
    return SetTrafficInput(service=SVC, environment=ENV, weights=weights, idempotency_key=key)


async def test_sigkill_mid_canary_zero_failed_requests(agent: AgentProc) -> None:
    assert put(agent, "/versions/v1", demo_body("k-v1", replicas=2, initial_weight=100)).is_success
    assert put(agent, "/versions/v2", demo_body("k-v2")).is_success
    platform = LocalPlatform(agent.url, timeout=10)
    await platform.set_traffic(traffic("k-w30", v1=70, v2=30))
    before = describe(agent)
    load = Traffic(before["endpoint"], rate=40.0)
    runner = asyncio.create_task(load.run())
    await asyncio.sleep(2.0)

    t_kill = time.time()
    agent.kill(signal.SIGKILL)
    with pytest.raises(PlatformUnavailable):
        await platform.describe_raw(SVC, ENV)
    await asyncio.sleep(5.0)  # the agent is away; clients must not notice
    t_back = time.time()
    await asyncio.to_thread(agent.start)

    report = await platform.reconcile_report()
    assert report["routers"] == {
        "adopted": [{"at": f"{SVC}/{ENV}", "pid": before["router"]["pid"]}],
        "restarted": [],
    }
    assert len(report["instances"]["adopted"]) == 3 and report["instances"]["restarted"] == []
    assert report["weights"] == {f"{SVC}/{ENV}": {"v1": 70, "v2": 30}}
    after = await asyncio.to_thread(describe, agent)
    assert pids(after) == pids(before) and after["endpoint"] == before["endpoint"]

    # the approved canary continues on the restarted agent
    assert (await platform.set_traffic(traffic("k-w60", v1=40, v2=60))).changed
    stale = await platform.set_traffic(traffic("k-w30", v1=70, v2=30))  # a late duplicate
    assert not stale.changed
    assert (await platform.describe_raw(SVC, ENV) or {})["weights"] == {"v1": 40, "v2": 60}
    await asyncio.sleep(1.0)
    await platform.set_traffic(traffic("k-w100", v1=0, v2=100))
    await platform.retire_version(
        RetireVersionInput(service=SVC, environment=ENV, version="v1", idempotency_key="k-r1")
    )
    await asyncio.sleep(1.0)
    load.stop()
    await runner

    absent = load.between(t_kill, t_back)
    assert len(absent) >= 40 * 5 * 0.9, len(absent)
    assert Traffic.failed(load.results) == [], Traffic.failed(load.results)[:5]
    share = sum(1 for r in absent if r[2] == "v2") / len(absent)
    assert 0.25 <= share <= 0.35, share  # the 70/30 split held while the agent was away
    assert load.results[-1][2] == "v2"

    entries = agent.ops()
    assert keys_applied_twice(entries) == {}
    assert keys_applied_twice(journal_lines(agent.state_dir)) == {}
    replay = [e for e in entries if e["idempotency_key"] == "k-w30"]
    assert [e["outcome"] for e in replay] == ["done", "replayed"]
    assert replay[1]["first_call"] == replay[0]["call"]
    lines = journal_lines(agent.state_dir)
    begun = {e["call"] for e in lines if e["phase"] == "begin"}
    ended = {e["call"] for e in lines if e["phase"] == "end"}
    assert begun <= ended


async def test_dead_instances_restarted_secret_ones_need_reapply(agent: AgentProc) -> None:
    secret = "s3cr3t-value-" + str(time.time_ns())
    assert put(agent, "/versions/v1", demo_body("a-v1", initial_weight=100)).is_success
    body = demo_body(
        "a-v2",
        replicas=2,
        secret_env={"DEMO_DB_PASSWORD": secret},
        secret_versions={"DEMO_DB_PASSWORD": "7"},
    )
    assert put(agent, "/versions/v2", body).is_success
    d = describe(agent)
    v1_pid, (v2a, v2b) = pids(d)["v1"][0], pids(d)["v2"]
    assert psutil.Process(v2b).environ()["DEMO_DB_PASSWORD"] == secret

    for pid in (v1_pid, v2a):
        psutil.Process(pid).kill()
    agent.kill(signal.SIGKILL)
    agent.start()
    report = httpx.get(agent.url + "/v1/reconcile").json()
    assert [r["at"] for r in report["instances"]["restarted"]] == [f"{SVC}/{ENV}/v1/0"]
    assert report["instances"]["needs_reapply"] == [
        {"at": f"{SVC}/{ENV}/v2/0", "secrets": ["DEMO_DB_PASSWORD"]}
    ]
    d = describe(agent)
    assert d["versions"]["v1"]["status"] == "running"
    assert d["versions"]["v2"]["instances"][0]["needs_reapply"] is True
    assert d["versions"]["v2"]["instances"][1]["pid"] == v2b  # re-adopted, env intact
    assert psutil.Process(v2b).environ()["DEMO_DB_PASSWORD"] == secret

    platform = LocalPlatform(agent.url)
    with pytest.raises(PlatformConflict, match="needs_reapply|re-apply"):
        await platform.restore_version(SVC, ENV, "v2", idempotency_key="r-v2")
    # the deployment's apply, retried with the same key, carries the secrets again
    again = put(agent, "/versions/v2", body).json()
    assert again["changed"] is True
    inst = describe(agent)["versions"]["v2"]["instances"]
    assert all(i["healthy"] for i in inst) and inst[1]["pid"] == v2b
    assert psutil.Process(inst[0]["pid"]).environ()["DEMO_DB_PASSWORD"] == secret
    outcomes = [e["outcome"] for e in agent.ops(idempotency_key="a-v2")]
    assert outcomes == ["done", "repaired"]
    assert not put(agent, "/versions/v2", body).json()["changed"]  # now a plain replay
    assert keys_applied_twice(agent.ops()) == {}

    for path in agent.state_dir.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), f"secret persisted in {path}"


async def test_orphans_stopped_and_interrupted_call_closed(agent: AgentProc) -> None:
    assert put(agent, "/versions/v1", demo_body("o-v1", initial_weight=100)).is_success
    slow = demo_body("o-v2", env={"DEMO_FAIL_HEALTH": "1"}, health_timeout_s=60)

    def call() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the agent dies under this call
            httpx.put(f"{agent.url}/v1/services/{SVC}/{ENV}/versions/v2", json=slow, timeout=90)

    threading.Thread(target=call, daemon=True).start()

    def v2_process() -> psutil.Process | None:
        for p in psutil.process_iter(["pid"]):
            try:
                if f"/{ENV}/v2/0#" in p.environ().get("CODE_AGENT_OBJ", ""):
                    return p
            except psutil.Error:
                continue
        return None

    orphan = wait_until(v2_process, 20, "the v2 instance of the interrupted apply")
    agent.kill(signal.SIGKILL)
    assert orphan.is_running()
    agent.start()
    report = httpx.get(agent.url + "/v1/reconcile").json()
    assert [o["pid"] for o in report["orphans_stopped"]] == [orphan.pid]
    assert [c["idempotency_key"] for c in report["interrupted_calls"]] == ["o-v2"]
    assert not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE
    assert [e["outcome"] for e in agent.ops(idempotency_key="o-v2")] == ["interrupted"]
    # the retried call (same key) runs: an interrupted call kept no result
    ok = put(agent, "/versions/v2", demo_body("o-v2")).json()
    assert ok["changed"] and ok["versions"]["v2"]["status"] == "running"
    assert [e["outcome"] for e in agent.ops(idempotency_key="o-v2")] == ["interrupted", "done"]
    assert keys_applied_twice(agent.ops()) == {}


async def test_state_write_failure_is_returned_and_nothing_applied(agent: AgentProc) -> None:
    assert put(agent, "/versions/v1", demo_body("w-v1", initial_weight=100)).is_success
    assert put(agent, "/versions/v2", demo_body("w-v2")).is_success
    endpoint = describe(agent)["endpoint"]
    blocker = agent.state_dir / "state.json.tmp"
    blocker.mkdir()  # the atomic write cannot create its temp file
    platform = LocalPlatform(agent.url)
    with pytest.raises(PlatformUnavailable, match="could not write") as exc:
        await platform.set_traffic(traffic("w-50", v1=50, v2=50))
    assert exc.value.retryable
    r = put(agent, "/versions/v3", demo_body("w-v3"))
    assert r.status_code == 507 and r.json()["error"] == "state_not_persisted"
    d = describe(agent)
    assert d["weights"] == {"v1": 100, "v2": 0} and "v3" not in d["versions"]
    assert not [p for p in psutil.process_iter() if _obj(p).startswith(f"instance:{SVC}/{ENV}/v3")]
    async with httpx.AsyncClient() as c:
        seen = {(await c.get(endpoint + "/work")).headers["x-code-version"] for _ in range(20)}
    assert seen == {"v1"}
    assert [e["outcome"] for e in agent.ops(idempotency_key="w-50")] == ["failed"]

    blocker.rmdir()
    assert (await platform.set_traffic(traffic("w-50", v1=50, v2=50))).changed
    assert [e["outcome"] for e in agent.ops(idempotency_key="w-50")] == ["failed", "done"]
    assert agent.state()["services"][f"{SVC}/{ENV}"]["weights"] == {"v1": 50, "v2": 50}


def _obj(p: psutil.Process) -> str:
    try:
        return p.environ().get("CODE_AGENT_OBJ", "")
    except psutil.Error:
        return ""


async def test_key_reuse_refused_and_revert_never_resurrected(agent: AgentProc) -> None:
    assert put(agent, "/versions/v1", demo_body("i-v1", initial_weight=100)).is_success
    assert put(agent, "/versions/v2", demo_body("i-v2")).is_success
    platform = LocalPlatform(agent.url)
    first = await platform.set_traffic(traffic("i-w", v1=90, v2=10))
    assert first.changed and not (await platform.set_traffic(traffic("i-w", v1=90, v2=10))).changed
    with pytest.raises(PlatformConflict, match="idempotency key 'i-w'"):
        await platform.set_traffic(traffic("i-w", v1=80, v2=20))

    fid = await platform.inject_fault(SVC, ENV, "error", idempotency_key="i-f")
    assert await platform.remove_fault(SVC, ENV, fid, idempotency_key="i-f:revert")
    # a late duplicate of the inject (an activity retried after its revert) adds nothing
    assert await platform.inject_fault(SVC, ENV, "error", idempotency_key="i-f") == fid
    assert await platform.list_faults(SVC, ENV) == []
    agent.kill(signal.SIGKILL)
    agent.start()
    assert await platform.list_faults(SVC, ENV) == []  # the revert is durable too
    assert await platform.inject_fault(SVC, ENV, "error", idempotency_key="i-f") == fid
    ops = [(e["op"], e["outcome"]) for e in agent.ops(idempotency_key="i-f")]
    assert ops == [("fault_add", "done"), ("fault_add", "replayed"), ("fault_add", "replayed")]
    assert keys_applied_twice(agent.ops()) == {}


async def test_faults_restored_and_dead_router_restarted(agent: AgentProc) -> None:
    assert put(agent, "/versions/v1", demo_body("f-v1", initial_weight=100)).is_success
    platform = LocalPlatform(agent.url)
    await platform.inject_fault(SVC, ENV, "drop", route_prefix="/work", idempotency_key="f-d")
    d = describe(agent)
    endpoint, router_pid = d["endpoint"], d["router"]["pid"]
    psutil.Process(router_pid).kill()
    wait_until(
        lambda: (
            describe(agent)["router"]["pid"] != router_pid and describe(agent)["router"]["alive"]
        ),
        10,
        "the agent restarts its dead router",
    )
    assert describe(agent)["endpoint"] == endpoint
    async with httpx.AsyncClient(base_url=endpoint) as c:
        assert (await c.get("/work")).status_code == 503  # the fault came back with it
        assert (await c.get("/")).status_code == 200
    assert [e["op"] for e in agent.ops() if e["op"] == "router_restart"] == ["router_restart"]
    # agent and router both dead: the next agent starts the router from the desired state
    router_pid = describe(agent)["router"]["pid"]
    agent.kill(signal.SIGKILL)
    psutil.Process(router_pid).kill()
    agent.start()
    report = httpx.get(agent.url + "/v1/reconcile").json()
    assert report["routers"]["restarted"][0]["same_port"] is True and report["faults"] == 1
    async with httpx.AsyncClient(base_url=endpoint) as c:
        assert (await c.get("/work")).status_code == 503
    await platform.remove_fault(SVC, ENV, (await platform.list_faults(SVC, ENV))[0]["id"])
    async with httpx.AsyncClient(base_url=endpoint) as c:
        assert (await c.get("/work")).status_code == 200


async def test_second_agent_on_same_state_dir_touches_nothing(agent: AgentProc) -> None:
    assert put(agent, "/versions/v1", demo_body("s-v1", initial_weight=100)).is_success
    before = pids(describe(agent))
    other = AgentProc(agent.state_dir)
    with pytest.raises(RuntimeError):
        other.start(timeout=10)
    assert other.proc is not None and other.proc.wait(5) == 3
    assert pids(describe(agent)) == before
