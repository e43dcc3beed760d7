"""The local platform agent as a real subprocess, driven through ``LocalPlatform``
and raw HTTP: real demo-service processes, real traffic through the router.

Every test starts its own agent (``agent`` is function-scoped, about half a second)
and builds the state it needs itself (most start from :func:`stable_v1`), so any
test passes alone, in any order."""

from __future__ import annotations

import collections
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from activities.platform.base import PlatformConflict, PlatformUnavailable, UnhealthyVersion
from activities.platform.local import LocalPlatform
from tests.servers import free_port, start_agent, stop_process, wait_until
from workflows.models import (
    ApplyVersionInput,
    DescribeInput,
    RetireVersionInput,
    SetTrafficInput,
)
from workflows.spec import DeploymentSpec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "examples"
SVC, ENV = "demo", "test"


def spec(version: str, replicas: int = 1, timeout: str = "15s", **env: str) -> DeploymentSpec:
    return DeploymentSpec.model_validate(
        {
            "service": SVC,
            "environment": ENV,
            "version": version,
            "artifact": {
                "command": ["{python}", "demo_service.py"],
                "workdir": str(EXAMPLES),
                "env": env,
            },
            "replicas": replicas,
            "health_check": {"path": "/healthz", "timeout": timeout},
        }
    )


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A fresh agent for each test: its URL and pid."""
    proc, url = start_agent(tmp_path / "state")
    try:
        yield url, proc.pid
    finally:
        stop_process(proc)


@pytest.fixture
def platform(agent: tuple[str, int]) -> LocalPlatform:
    return LocalPlatform(agent[0])


async def describe(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as c:
        return (await c.get(f"{url}/v1/services/{SVC}/{ENV}")).json()  # type: ignore[no-any-return]


async def hit(endpoint: str, n: int, path: str = "/work") -> collections.Counter[tuple[str, int]]:
    seen: collections.Counter[tuple[str, int]] = collections.Counter()
    async with httpx.AsyncClient(base_url=endpoint, timeout=10) as c:
        for _ in range(n):
            r = await c.get(path)
            seen[(r.headers.get("x-code-version", "-"), r.status_code)] += 1
    return seen


def pids(desc: dict[str, Any], version: str) -> list[int]:
    return [i["pid"] for i in desc["versions"][version]["instances"]]


async def stable_v1(platform: LocalPlatform) -> str:
    """The usual starting point: v1, two replicas, all traffic. Returns the router URL."""
    res = await platform.apply_version(
        ApplyVersionInput(spec=spec("v1", replicas=2), idempotency_key="t-v1", initial_weight=100)
    )
    assert res.changed
    return res.endpoint


async def test_apply_first_version_and_route(
    platform: LocalPlatform, agent: tuple[str, int]
) -> None:
    res = await platform.apply_version(
        ApplyVersionInput(spec=spec("v1", replicas=2), idempotency_key="t-v1", initial_weight=100)
    )
    assert res.changed and res.instances == 2 and res.endpoint.startswith("http://127.0.0.1:")
    seen = await hit(res.endpoint, 20)
    assert seen == {("v1", 200): 20}
    d = await platform.describe(DescribeInput(service=SVC, environment=ENV))
    assert d.exists and d.weights == {"v1": 100} and d.healthy == {"v1": True}
    for pid in pids(await describe(agent[0]), "v1"):
        assert psutil.Process(pid).is_running()


async def test_reapply_is_idempotent(platform: LocalPlatform, agent: tuple[str, int]) -> None:
    await stable_v1(platform)
    before = pids(await describe(agent[0]), "v1")
    res = await platform.apply_version(
        ApplyVersionInput(spec=spec("v1", replicas=2), idempotency_key="t-v1", initial_weight=100)
    )
    assert not res.changed
    assert pids(await describe(agent[0]), "v1") == before
    ops = httpx.get(agent[0] + "/v1/ops").json()
    applies = [o for o in ops if o["op"] == "apply" and o["version"] == "v1"]
    assert [o["changed"] for o in applies] == [True, False]
    assert all(o["idempotency_key"] == "t-v1" for o in applies)


async def test_canary_split_is_exact(platform: LocalPlatform, agent: tuple[str, int]) -> None:
    await stable_v1(platform)
    res = await platform.apply_version(
        ApplyVersionInput(spec=spec("v2"), idempotency_key="t-v2", initial_weight=None)
    )
    assert res.changed
    t = await platform.set_traffic(
        SetTrafficInput(
            service=SVC, environment=ENV, weights={"v1": 80, "v2": 20}, idempotency_key="w1"
        )
    )
    assert t.changed and t.weights == {"v1": 80, "v2": 20}
    again = await platform.set_traffic(
        SetTrafficInput(
            service=SVC, environment=ENV, weights={"v1": 80, "v2": 20}, idempotency_key="w1"
        )
    )
    assert not again.changed
    assert await hit(res.endpoint, 100) == {("v1", 200): 80, ("v2", 200): 20}


async def test_traffic_validation(platform: LocalPlatform) -> None:
    await stable_v1(platform)
    with pytest.raises(PlatformConflict, match="sum to 100"):
        await platform.set_traffic(
            SetTrafficInput(
                service=SVC, environment=ENV, weights={"v1": 70, "v2": 20}, idempotency_key="x"
            )
        )
    with pytest.raises(PlatformConflict, match="no running version.*nope"):
        await platform.set_traffic(
            SetTrafficInput(
                service=SVC, environment=ENV, weights={"nope": 100}, idempotency_key="x"
            )
        )


async def test_unhealthy_version_is_refused_and_cleaned(
    platform: LocalPlatform, agent: tuple[str, int]
) -> None:
    await stable_v1(platform)
    children_before = {p.pid for p in psutil.Process(agent[1]).children(recursive=True)}
    # given up after the spec's health timeout (named in the error), not the default 15s
    with pytest.raises(UnhealthyVersion, match="vsick.*did not become healthy within 2s"):
        await platform.apply_version(
            ApplyVersionInput(
                spec=spec("vsick", replicas=2, timeout="2s", DEMO_FAIL_HEALTH="1"),
                idempotency_key="t-sick",
                initial_weight=None,
            )
        )
    children_after = {p.pid for p in psutil.Process(agent[1]).children(recursive=True)}
    assert children_after == children_before
    assert "vsick" not in (await describe(agent[0]))["versions"]


async def test_bad_version_errors_in_samples_and_metrics(
    platform: LocalPlatform, agent: tuple[str, int]
) -> None:
    await stable_v1(platform)
    res = await platform.apply_version(
        ApplyVersionInput(
            spec=spec("v3", DEMO_ERROR_RATE="0.5"), idempotency_key="t-v3", initial_weight=None
        )
    )
    await platform.set_traffic(
        SetTrafficInput(
            service=SVC, environment=ENV, weights={"v1": 50, "v3": 50}, idempotency_key="w2"
        )
    )
    since = time.time()
    seen = await hit(res.endpoint, 300)
    samples = await platform.fetch_samples(SVC, ENV, since, time.time() + 1)
    v3, v1 = samples["v3"], samples["v1"]
    assert v3.count == 150 and v1.count == 150
    assert 0.35 < v3.errors / v3.count < 0.65, v3.errors
    assert v1.errors == 0
    assert seen[("v3", 500)] == v3.errors
    assert len(v3.latencies_ms) == 150 and all(x > 0 for x in v3.latencies_ms)
    text = httpx.get(agent[0] + "/metrics").text
    m = re.search(
        r'code_router_requests_total\{code="500",environment="test",service="demo",version="v3"\} (\d+)',
        text,
    )
    assert m and int(float(m.group(1))) == v3.errors
    assert 'code_router_weight{environment="test",service="demo",version="v3"} 50.0' in text
    assert (
        'code_instance_up{environment="test",instance="0",service="demo",version="v1"} 1.0' in text
    )
    assert (
        "code_instance_rss_bytes" in text and "code_router_request_duration_seconds_bucket" in text
    )


async def test_retire_refuses_while_weighted(
    platform: LocalPlatform, agent: tuple[str, int]
) -> None:
    await stable_v1(platform)
    for v in ("v2", "v3"):  # v2 idle at weight 0, v3 holding half of the traffic
        await platform.apply_version(
            ApplyVersionInput(spec=spec(v), idempotency_key=f"t-{v}", initial_weight=None)
        )
    await platform.set_traffic(
        SetTrafficInput(
            service=SVC, environment=ENV, weights={"v1": 50, "v3": 50}, idempotency_key="w2"
        )
    )
    v3_pids = pids(await describe(agent[0]), "v3")
    retire = RetireVersionInput(
        service=SVC, environment=ENV, version="v3", idempotency_key="r3", force=False
    )
    with pytest.raises(PlatformConflict, match="v3.*50% of traffic"):
        await platform.retire_version(retire)
    await platform.set_traffic(
        SetTrafficInput(service=SVC, environment=ENV, weights={"v1": 100}, idempotency_key="w3")
    )
    assert (await platform.retire_version(retire)).changed
    assert not (await platform.retire_version(retire)).changed
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in v3_pids)
    d = await platform.describe(DescribeInput(service=SVC, environment=ENV))
    assert d.versions == ["v1", "v2"] and d.weights == {"v1": 100, "v2": 0}


async def test_error_fault_and_revert(platform: LocalPlatform, agent: tuple[str, int]) -> None:
    await stable_v1(platform)
    endpoint = (await describe(agent[0]))["endpoint"]
    fid = await platform.inject_fault(SVC, ENV, "error", fraction=1.0, idempotency_key="f1")
    assert fid == await platform.inject_fault(SVC, ENV, "error", fraction=1.0, idempotency_key="f1")
    assert [f["id"] for f in await platform.list_faults(SVC, ENV)] == [fid]
    assert await hit(endpoint, 20) == {("v1", 500): 20}
    assert await platform.remove_fault(SVC, ENV, fid)
    assert not await platform.remove_fault(SVC, ENV, fid)
    assert await platform.list_faults(SVC, ENV) == []
    assert await hit(endpoint, 20) == {("v1", 200): 20}
    # a dropped dependency: 503 on one route only
    fid = await platform.inject_fault(SVC, ENV, "drop", route_prefix="/work")
    assert await hit(endpoint, 5, "/work") == {("v1", 503): 5}
    assert await hit(endpoint, 5, "/") == {("v1", 200): 5}
    await platform.remove_fault(SVC, ENV, fid)


async def test_kill_then_restore(platform: LocalPlatform, agent: tuple[str, int]) -> None:
    await stable_v1(platform)
    before = pids(await describe(agent[0]), "v1")
    killed = await platform.signal_instance(SVC, ENV, "v1", 0, "KILL")
    assert killed["alive"] is False
    d = await describe(agent[0])
    assert d["versions"]["v1"]["instances"][0]["alive"] is False
    wait_until(lambda: not psutil.pid_exists(before[0]), 5, "killed pid reaped")
    # the dead replica refuses connections: the router sends its share to the live one
    # (retry on connect-failure + passive ejection), so no request fails
    assert await hit(d["endpoint"], 10) == {("v1", 200): 10}
    stopped = await platform.signal_instance(SVC, ENV, "v1", 1, "STOP")
    assert stopped["status"] == "stopped"
    res = await platform.restore_version(SVC, ENV, "v1", idempotency_key="restore-1")
    assert res["changed"] and res["restarted"] == [0] and res["continued"] == [1]
    after = await describe(agent[0])
    inst = after["versions"]["v1"]["instances"]
    assert all(i["healthy"] and i["alive"] for i in inst)
    assert inst[0]["pid"] != before[0] and inst[1]["pid"] == before[1]
    assert not (await platform.restore_version(SVC, ENV, "v1"))["changed"]
    assert await hit(d["endpoint"], 10) == {("v1", 200): 10}
    res_list = await platform.resources(SVC, ENV, "v1")
    assert [r["index"] for r in res_list] == [0, 1]
    assert all(r["rss_bytes"] > 1_000_000 and r["alive"] for r in res_list)


async def test_every_replica_dead_answers_502(
    platform: LocalPlatform, agent: tuple[str, int]
) -> None:
    await stable_v1(platform)
    d = await describe(agent[0])
    before = pids(d, "v1")
    assert len(before) == 2
    for index in (0, 1):
        await platform.signal_instance(SVC, ENV, "v1", index, "KILL")
    wait_until(lambda: not any(psutil.pid_exists(p) for p in before), 5, "both pids reaped")
    # nowhere left to retry: each request tried both replicas and fails honestly
    assert await hit(d["endpoint"], 4) == {("v1", 502): 4}
    res = await platform.restore_version(SVC, ENV, "v1", idempotency_key="restore-all-dead")
    assert res["changed"] and sorted(res["restarted"]) == [0, 1]
    assert await hit(d["endpoint"], 4) == {("v1", 200): 4}


async def test_forced_retire_takes_weight_away(platform: LocalPlatform) -> None:
    await stable_v1(platform)
    await platform.apply_version(
        ApplyVersionInput(spec=spec("v4"), idempotency_key="t-v4", initial_weight=None)
    )
    await platform.set_traffic(
        SetTrafficInput(
            service=SVC, environment=ENV, weights={"v1": 90, "v4": 10}, idempotency_key="w4"
        )
    )
    retire = RetireVersionInput(
        service=SVC, environment=ENV, version="v4", idempotency_key="r4", force=True
    )
    assert (await platform.retire_version(retire)).changed
    d = await platform.describe(DescribeInput(service=SVC, environment=ENV))
    assert "v4" not in d.versions and "v4" not in d.weights and d.weights["v1"] == 90


async def test_unreachable_agent_is_retryable() -> None:
    p = LocalPlatform(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(PlatformUnavailable, match="unreachable") as exc:
        await p.describe(DescribeInput(service=SVC, environment=ENV))
    assert exc.value.retryable


async def test_sigterm_leaves_no_child(tmp_path: Path) -> None:
    proc, url = start_agent(tmp_path / "state")
    try:
        p = LocalPlatform(url)
        await p.apply_version(
            ApplyVersionInput(spec=spec("v1", replicas=2), idempotency_key="k", initial_weight=100)
        )
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2
        state = (tmp_path / "state" / "state.json").read_text()
        assert '"demo/test"' in state and '"endpoint"' in state
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert alive == []
    finally:
        stop_process(proc)
