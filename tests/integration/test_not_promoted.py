"""On the real embedded stack (dev server, local agent, worker process): a canary that
analysis rolls back ends as a FAILED workflow execution carrying its ``DeployResult``
in the failure details, so the Web UI's status column and its Failures filter
(``ExecutionStatus="Failed"``) show it; a promoted one is COMPLETED. ``codectl deploy``
and ``codectl status --watch`` still print the structured result and exit 1, and
``codectl status`` reads it back after the run ended."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from code_foundation.error_types import DEPLOYMENT_NOT_PROMOTED
from tests.integration.stack import LiveStack
from tests.integration.test_deploy_local import Client, deploy, endpoint, example
from tests.waiting import wait_until_async
from workflows.client import connect, deployment_result
from workflows.models import DeployResult
from workflows.outcome import deploy_result_from_failure

pytestmark = pytest.mark.integration


async def with_traffic(stack: LiveStack, service: str, run: Any) -> Any:
    """Await ``run`` while a live client sends requests (analysis needs them to judge)."""
    traffic = Client(await endpoint(stack, service))
    task = asyncio.create_task(traffic.run())
    try:
        return await run
    finally:
        traffic.stop.set()
        await task


async def rolled_back_canary(client: Any, stack: LiveStack, service: str) -> DeployResult:
    """v1 promoted, then the bad v3 canary rolled back by analysis: v3's result."""
    first = await deploy(client, stack, example("demo-v1.yaml", service))
    assert first.outcome == "promoted", first.reason
    bad = await with_traffic(
        stack, service, deploy(client, stack, example("demo-v3-bad.yaml", service))
    )
    assert bad.outcome == "rolled_back", bad.reason
    return bad  # type: ignore[no-any-return]


async def test_rolled_back_canary_is_a_failed_run_with_its_result(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    client = await connect(live_stack.settings.temporal_address)
    svc = f"np{uuid.uuid4().hex[:6]}"
    first = await deploy(client, live_stack, example("demo-v1.yaml", svc))
    assert first.outcome == "promoted", first.reason
    good = client.get_workflow_handle(first.workflow_id)
    assert (await good.describe()).status == WorkflowExecutionStatus.COMPLETED

    bad_spec = example("demo-v3-bad.yaml", svc)
    path = tmp_path / "bad.json"
    path.write_text(bad_spec.model_dump_json(indent=2))
    deploying = asyncio.to_thread(live_stack.cli, "deploy", str(path), timeout=300)
    proc = await with_traffic(live_stack, svc, deploying)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "rolled_back" in proc.stdout and "analysis failed" in proc.stdout, out
    assert "deployment failed" not in out  # the structured result, not an error

    wid = bad_spec.workflow_id()
    handle = client.get_workflow_handle(wid, result_type=DeployResult)
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == DEPLOYMENT_NOT_PROMOTED
    assert cause.non_retryable and "analysis failed" in cause.message
    carried = deploy_result_from_failure(info.value)
    assert carried is not None and carried.outcome == "rolled_back", carried
    assert carried.version == "v3" and carried.previous_version == "v1"
    assert carried.rollback_workflow_id == f"rollback-{svc}-dev-from-v3"
    assert await deployment_result(handle) == carried

    # the Failures filter finds the canary (its compensating rollback completed), the
    # CodeOutcome attribute is still set, and the promoted release is not among them
    failed_q = f'CodeService="{svc}" AND ExecutionStatus="Failed"'

    async def listed() -> bool:
        return sorted([w.id async for w in client.list_workflows(failed_q)]) == [wid]

    await wait_until_async(listed, 30, "the failed canary listed by the Failures filter")
    outcome_q = f'CodeService="{svc}" AND CodeOutcome="rolled_back" AND CodeKind="deployment"'
    assert [w.id async for w in client.list_workflows(outcome_q)] == [wid]
    completed_q = f'CodeService="{svc}" AND ExecutionStatus="Completed"'
    done = sorted([w.id async for w in client.list_workflows(completed_q)])
    assert first.workflow_id in done and wid not in done, done

    watch = await asyncio.to_thread(live_stack.cli, "status", wid, "--watch")
    assert watch.returncode == 1, watch.stdout + watch.stderr
    assert "rolled_back" in watch.stdout and "analysis failed" in watch.stdout, watch.stdout
    st = await asyncio.to_thread(live_stack.cli, "status", wid, "--output", "json")
    assert st.returncode == 0, st.stderr
    assert "rolled_back" in json.dumps(json.loads(st.stdout)), st.stdout
