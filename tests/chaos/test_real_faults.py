"""Real faults on the local platform: a real agent subprocess running the demo
service, a real Temporal dev server, the real chaos activities.

* killing the stable instance during the probe window is detected and the
  rollback restores it;
* killing the worker after injection and before rollback: a new worker runs
  the rollback and the fault is gone (checked by probing the service)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.chaos import chaos_activities
from activities.interceptor import ErrorInterceptor
from activities.settings import Settings
from chaos.messages import ChaosResult, ChaosRunInput, Journal
from chaos.model import parse_experiment
from tests.chaos.conftest import ENV, SVC
from tests.waiting import wait_until_async
from workflows.chaos import ChaosExperimentWorkflow

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def settings(agent: dict[str, Any]) -> Settings:
    return Settings(agent_url=agent["url"], state_dir=agent["state"])


async def describe(agent: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient() as c:
        return (await c.get(f"{agent['url']}/v1/services/{SVC}/{ENV}")).json()  # type: ignore[no-any-return]


async def get(url: str) -> int:
    async with httpx.AsyncClient(timeout=5) as c:
        try:
            return (await c.get(url)).status_code
        except httpx.HTTPError:
            return -1


def experiment(agent: dict[str, Any], method: list[dict[str, Any]], **controls: Any) -> Any:
    return parse_experiment(
        {
            "title": "real faults",
            "configuration": {"endpoint": agent["endpoint"]},
            "steady_state": {
                "probes": [{"name": "work", "url": "${endpoint}/work", "timeout": "2s"}]
            },
            "method": method,
            "controls": {"duration": "8s", "probe_interval": "1s", **controls},
        },
        environ={},
    )


async def test_killing_the_stable_instance_is_detected_and_restored(
    dev_env: WorkflowEnvironment, agent: dict[str, Any]
) -> None:
    before = (await describe(agent))["versions"]["v1"]["instances"][0]
    exp = experiment(
        agent,
        [
            {
                "action": {
                    "name": "kill-stable",
                    "fault": "kill_instance",
                    "target": {"service": SVC, "environment": ENV, "version": "v1", "mode": "one"},
                }
            }
        ],
    )
    tq = f"chaos-{uuid.uuid4()}"
    async with Worker(
        dev_env.client,
        task_queue=tq,
        workflows=[ChaosExperimentWorkflow],
        activities=chaos_activities(settings(agent)),
        interceptors=[ErrorInterceptor()],
    ):
        res: ChaosResult = await dev_env.client.execute_workflow(
            ChaosExperimentWorkflow.run,
            ChaosRunInput(experiment=exp, actor="pytest", set_search_attributes=False),
            id=f"chaos-kill-{uuid.uuid4()}",
            task_queue=tq,
        )
    assert res.deviated and res.status == "aborted", res.reason
    during = [p for p in res.journal.probes if p.phase == "during"]
    assert during and not during[0].ok  # the kill was seen in the probe window
    assert all(f.reverted_at is not None for f in res.journal.faults)
    after = [p for p in res.journal.probes if p.phase == "after"]
    assert after and all(p.ok for p in after)
    inst = (await describe(agent))["versions"]["v1"]["instances"][0]
    assert inst["alive"] and inst["healthy"] and inst["pid"] != before["pid"]
    assert await get(agent["endpoint"] + "/work") == 200
    # journal + report stored as artifacts
    from activities.artifacts import store_from_settings

    store = store_from_settings(settings(agent))
    assert res.report_md_key and b"Chaos experiment" in store.get(res.report_md_key)
    assert b'"deviated": true' in store.get(res.report_json_key or "")


async def test_worker_killed_mid_experiment_a_new_worker_runs_the_rollback(
    dev_env: WorkflowEnvironment, agent: dict[str, Any]
) -> None:
    exp = experiment(
        agent,
        [
            {
                "action": {
                    "name": "break-work",
                    "fault": "error",
                    "target": {"service": SVC, "environment": ENV},
                    "params": {"status": 500, "fraction": 1.0, "route_prefix": "/work"},
                }
            }
        ],
        duration="15s",
        probe_interval="2s",
        abort_on_probe_failure=False,
    )
    tq = f"chaos-{uuid.uuid4()}"
    addr = dev_env.client.service_client.config.target_host
    cmd = [
        sys.executable,
        "-m",
        "tests.chaos.worker_proc",
        addr,
        tq,
        agent["url"],
        str(agent["state"]),
    ]
    log = (agent["state"] / f"worker-{tq}.log").open("wb")
    w1 = subprocess.Popen(
        cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    w2 = None
    try:
        handle = await dev_env.client.start_workflow(
            ChaosExperimentWorkflow.run,
            ChaosRunInput(experiment=exp, actor="pytest", set_search_attributes=False),
            id=f"chaos-crash-{uuid.uuid4()}",
            task_queue=tq,
        )
        for _ in range(300):
            j: Journal | None = await handle.query(ChaosExperimentWorkflow.status)
            if j is not None and j.phase == "fault-window":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the fault was never injected")
        os.killpg(w1.pid, signal.SIGKILL)  # the worker dies with the fault in place
        w1.wait(10)
        assert await get(agent["endpoint"] + "/work") == 500
        faults = httpx.get(f"{agent['url']}/v1/services/{SVC}/{ENV}/faults").json()
        assert len(faults) == 1
        # the experiment is stranded: it has a workflow task (the next probe) that no
        # worker picks up; the fault stays in place meanwhile
        await wait_until_async(lambda: stranded(handle), 30, "a workflow task with no worker")
        assert await get(agent["endpoint"] + "/work") == 500

        w2 = subprocess.Popen(
            cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        res: ChaosResult = await asyncio.wait_for(handle.result(), 90)
    finally:
        for w in (w1, w2):
            if w is not None and w.poll() is None:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait(10)
    # /work answered 500 during the window (deviation, no abort configured); after the
    # rollback run by the second worker the steady state holds again
    assert res.status == "completed" and res.deviated, res.reason
    assert any(p.phase == "during" and not p.ok for p in res.journal.probes)
    assert [p.ok for p in res.journal.probes if p.phase == "after"] == [True]
    assert all(f.reverted_at is not None for f in res.journal.faults)
    assert httpx.get(f"{agent['url']}/v1/services/{SVC}/{ENV}/faults").json() == []
    assert await get(agent["endpoint"] + "/work") == 200  # the fault is gone: probe the service


async def stranded(handle: Any) -> bool:
    """The run has a workflow task scheduled that no worker has started."""
    from temporalio.api.enums.v1 import PendingWorkflowTaskState

    raw = (await handle.describe()).raw_description
    return bool(
        raw.HasField("pending_workflow_task")
        and raw.pending_workflow_task.state
        == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED
    )


async def _run_until_window(dev_env: WorkflowEnvironment, tq: str, exp: Any) -> Any:
    handle = await dev_env.client.start_workflow(
        ChaosExperimentWorkflow.run,
        ChaosRunInput(experiment=exp, actor="pytest", set_search_attributes=False),
        id=f"chaos-{uuid.uuid4()}",
        task_queue=tq,
    )
    for _ in range(300):
        j: Journal | None = await handle.query(ChaosExperimentWorkflow.status)
        if j is not None and j.phase == "fault-window":
            return handle
        await asyncio.sleep(0.1)
    raise AssertionError("the fault was never injected")


async def test_manual_abort_mid_experiment_resumes_the_paused_instance(
    dev_env: WorkflowEnvironment, agent: dict[str, Any]
) -> None:
    from chaos.messages import AbortRequest

    exp = experiment(
        agent,
        [
            {
                "action": {
                    "name": "freeze",
                    "fault": "pause_instance",
                    "target": {"service": SVC, "environment": ENV, "version": "v1"},
                }
            }
        ],
        duration="5m",
        probe_interval="2s",
        abort_on_probe_failure=False,
    )
    tq = f"chaos-{uuid.uuid4()}"
    async with Worker(
        dev_env.client,
        task_queue=tq,
        workflows=[ChaosExperimentWorkflow],
        activities=chaos_activities(settings(agent)),
        interceptors=[ErrorInterceptor()],
    ):
        handle = await _run_until_window(dev_env, tq, exp)
        inst = (await describe(agent))["versions"]["v1"]["instances"][0]
        assert inst["status"] == "stopped"
        await handle.execute_update(
            ChaosExperimentWorkflow.abort, AbortRequest(identity="oncall@test", reason="stop it")
        )
        res: ChaosResult = await asyncio.wait_for(handle.result(), 60)
    assert res.status == "aborted" and res.journal.aborted_by == "oncall@test"
    assert (await describe(agent))["versions"]["v1"]["instances"][0]["status"] != "stopped"
    assert await get(agent["endpoint"] + "/work") == 200


async def test_cancel_mid_experiment_removes_the_router_fault(
    dev_env: WorkflowEnvironment, agent: dict[str, Any]
) -> None:
    from temporalio.client import WorkflowFailureError

    exp = experiment(
        agent,
        [
            {
                "action": {
                    "name": "drop-work",
                    "fault": "drop_dependency",
                    "target": {"service": SVC, "environment": ENV},
                    "params": {"route_prefix": "/work"},
                }
            }
        ],
        duration="5m",
        probe_interval="2s",
        abort_on_probe_failure=False,
    )
    tq = f"chaos-{uuid.uuid4()}"
    async with Worker(
        dev_env.client,
        task_queue=tq,
        workflows=[ChaosExperimentWorkflow],
        activities=chaos_activities(settings(agent)),
        interceptors=[ErrorInterceptor()],
    ):
        handle = await _run_until_window(dev_env, tq, exp)
        assert await get(agent["endpoint"] + "/work") == 503
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 60)
        j: Journal = await handle.query(ChaosExperimentWorkflow.status)
    assert j.status == "interrupted" and all(f.reverted_at for f in j.faults)
    assert httpx.get(f"{agent['url']}/v1/services/{SVC}/{ENV}/faults").json() == []
    assert await get(agent["endpoint"] + "/work") == 200


async def test_cpu_burner_inject_and_revert_are_idempotent(agent: dict[str, Any]) -> None:
    import psutil

    from activities.faults.local import LocalFaults
    from chaos.blast import Target

    faults = LocalFaults(agent["url"], agent["state"])
    target = Target(unit="host", service=SVC, environment=ENV)
    key = f"burn-{uuid.uuid4()}"
    h1 = await faults.inject(key, "cpu_burn", target, {"cores": 1, "max_duration_s": 30})
    h2 = await faults.inject(key, "cpu_burn", target, {"cores": 1, "max_duration_s": 30})
    assert h1["pid"] == h2["pid"] and psutil.pid_exists(h1["pid"])
    assert f"burner pid {h1['pid']} stopped" == await faults.revert(key, "cpu_burn", target, h1)
    assert "already stopped" in await faults.revert(key, "cpu_burn", target, h1)
    assert (
        not psutil.pid_exists(h1["pid"])
        or psutil.Process(h1["pid"]).status() == psutil.STATUS_ZOMBIE
    )


async def test_memory_pressure_holds_memory_until_reverted(agent: dict[str, Any]) -> None:
    import psutil

    from activities.faults.local import LocalFaults
    from chaos.blast import Target

    faults = LocalFaults(agent["url"], agent["state"])
    target = Target(unit="host", service=SVC, environment=ENV)
    key = f"mem-{uuid.uuid4()}"
    h = await faults.inject(key, "memory_pressure", target, {"mb": 48, "max_duration_s": 30})
    rss = 0
    for _ in range(50):
        rss = psutil.Process(h["pid"]).memory_info().rss
        if rss > 40 * 1024 * 1024:
            break
        await asyncio.sleep(0.1)
    assert rss > 40 * 1024 * 1024
    await faults.revert(key, "memory_pressure", target, h)
    assert (
        not psutil.pid_exists(h["pid"]) or psutil.Process(h["pid"]).status() == psutil.STATUS_ZOMBIE
    )
