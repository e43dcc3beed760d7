"""The issue's measurement, end to end on the embedded stack started by `codectl dev`
(real Temporal dev server, supervised agent and worker, real router and demo
processes): a canary waits for approval at v1 70% / v2 30% while a client sends
40 req/s through the router; the agent is SIGKILLed. Clients see 0 failed requests
while it is away; the supervisor restarts it, the restarted agent re-adopts the
data plane, someone approves, the canary promotes (set_weight 60 and 100 on the
new agent), and the op journal shows no key applied twice."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.platform.agent_proc import EXAMPLES, Traffic, journal_lines, keys_applied_twice, sweep
from tests.workers.test_devstack import env_for, start_dev, wait_for
from tests.workers.test_supervisor import Reader, dev_status, need_temporal, record
from workflows.client import connect, deployment_result, start_deployment
from workflows.models import ApproveInput, DeployResult, DeployStatus
from workflows.spec import DeploymentSpec, parse_spec

pytestmark = pytest.mark.integration


def example(name: str, service: str, **changes: Any) -> DeploymentSpec:
    spec = parse_spec((EXAMPLES / name).read_text(), name)
    art = spec.artifact.model_copy(update={"workdir": str(EXAMPLES)})
    return spec.model_copy(update={"service": service, "artifact": art, **changes})


async def wait_status(h: Any, pred: Any, timeout: float = 60) -> DeployStatus:
    end = time.monotonic() + timeout
    while True:
        st = await h.query("status", result_type=DeployStatus)
        if pred(st) or time.monotonic() > end:
            return st
        await asyncio.sleep(0.2)


async def test_agent_sigkill_mid_canary_supervised_then_promoted(tmp_path: Path) -> None:
    need_temporal()
    state = tmp_path / "state"
    env = env_for(state)
    queue, agent_url = env["CODE_TASK_QUEUE"], env["CODE_AGENT_URL"]
    dev = start_dev(env)
    try:
        wait_for(dev, "Ctrl-C stops")
        out = Reader(dev)
        client = await connect(env["CODE_TEMPORAL_ADDRESS"])
        svc = "show"
        v1 = await start_deployment(client, example("demo-v1.yaml", svc), "it", queue)
        first = await deployment_result(client.get_workflow_handle(v1.id, result_type=DeployResult))
        assert first.outcome == "promoted", first.reason
        steps = [
            {"set_weight": 30},
            {"pause": {"until_approved": True, "timeout": "10m"}},
            {"set_weight": 60},
        ]
        spec = example("demo-v2.yaml", svc)
        spec = DeploymentSpec.model_validate(
            {
                **spec.model_dump(mode="json"),
                "strategy": {"type": "canary", "canary": {"steps": steps}},
            }
        )
        h = await start_deployment(client, spec, "it", queue)
        st = await wait_status(h, lambda s: s.waiting_for_approval)
        assert st.waiting_for_approval and st.weights == {"v1": 70, "v2": 30}
        async with httpx.AsyncClient() as c:
            endpoint = (await c.get(f"{agent_url}/v1/services/{svc}/dev")).json()["endpoint"]
        load = Traffic(endpoint, rate=40.0)
        runner = asyncio.create_task(load.run())
        await asyncio.sleep(2.0)

        agent_pid = record(state)["agent"]
        t_kill = time.time()
        os.kill(agent_pid, signal.SIGKILL)

        async def agent_back() -> float:
            async with httpx.AsyncClient(timeout=0.5) as c:
                while True:
                    try:
                        if (await c.get(agent_url + "/healthz")).status_code == 200:
                            return time.time()
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.05)

        t_back = await asyncio.wait_for(agent_back(), 60)
        status = await asyncio.to_thread(dev_status, env)
        assert status["components"]["agent"]["restarts"] == 1
        assert status["components"]["agent"]["last_exit"]["signal"] == "SIGKILL"
        await asyncio.sleep(1.0)

        await h.execute_update("approve", ApproveInput(identity="oncall"))
        res = await deployment_result(client.get_workflow_handle(h.id, result_type=DeployResult))
        assert res.outcome == "promoted", res.reason
        await asyncio.sleep(1.0)
        load.stop()
        await runner

        absent = load.between(t_kill, t_back)
        failed = Traffic.failed(load.results)
        served = collections.Counter(r[2] for r in load.results)
        print(
            f"\nagent away {t_back - t_kill:.2f}s: {len(absent)} requests, "
            f"{len(Traffic.failed(absent))} failed; whole run {len(load.results)} requests "
            f"({dict(served)}), {len(failed)} failed"
        )
        assert len(absent) >= 40 * (t_back - t_kill) * 0.8
        assert Traffic.failed(absent) == []
        assert failed == [], failed[:5]
        assert load.results[-1][2] == "v2"

        async with httpx.AsyncClient() as c:
            ops = (await c.get(f"{agent_url}/v1/ops")).json()
            report = (await c.get(f"{agent_url}/v1/reconcile")).json()
        assert len(report["instances"]["adopted"]) == 4 and report["routers"]["restarted"] == []
        assert keys_applied_twice(ops) == {}
        assert keys_applied_twice(journal_lines(state / "agent")) == {}
        mine = [o for o in ops if o.get("service") == svc]
        v2_applies = [o for o in mine if o["op"] == "apply" and o["version"] == "v2"]
        assert [o["outcome"] for o in v2_applies] == ["done"]
        boots = {o["call"].split("-")[0] for o in mine if o["op"] == "traffic"}
        assert len(boots) == 2  # weights set by the agent before the kill and the one after
        assert "agent (pid" in out.text() and "agent is up again" in out.text()
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=60)
    assert sweep(state / "agent") == []
