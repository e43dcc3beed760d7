"""A deployment that is not promoted ends as a FAILED workflow execution carrying its
result (the ``not-promoted-fails`` patch), on the time-skipping server:

- promoted: COMPLETED, as before;
- rolled back (bad canary) or aborted: FAILED with a non-retryable
  ``DeploymentNotPromoted`` whose ``details[0]`` is the ``DeployResult``;
  :func:`workflows.client.deployment_result` and
  :func:`workflows.outcome.deploy_result_from_failure` give the structured result back;
- nothing applied: FAILED ``DeploymentFailed`` as before (now with the result in its
  details too); ``deployment_result`` still raises it;
- the run replays, and the committed ``_red`` histories pin the new shape beside the old
  ones, which still end COMPLETED."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from code_foundation.error_types import DEPLOYMENT_FAILED, DEPLOYMENT_NOT_PROMOTED
from tests.workflows.fakes import FakePlatform
from tests.workflows.test_deployment import spec, worker
from workflows.client import data_converter, deployment_result, execute_deployment
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.models import ControlInput, DeployInput, DeployResult
from workflows.outcome import deploy_result_from_failure
from workflows.rollback import RollbackWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


async def start(env: WorkflowEnvironment, version: str, tq: str):  # type: ignore[no-untyped-def]
    return await env.client.start_workflow(
        DeploymentWorkflow.run,
        DeployInput(spec=spec(version), actor="tester", set_search_attributes=False),
        id=f"deploy-{uuid.uuid4()}",
        task_queue=tq,
        result_type=DeployResult,
    )


async def lane_closed(env: WorkflowEnvironment, tq: str) -> None:
    """Wait, with the worker still up, until the service's release lane has ended: a lane
    left open on a task queue nobody polls any more stops the time-skipping server from
    skipping time for every later test of the session."""
    lane = env.client.get_workflow_handle(f"{spec('v1').lane_id()}@{tq}")
    await lane.result()


def failure(info: pytest.ExceptionInfo[WorkflowFailureError]) -> ApplicationError:
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def test_promoted_completes_rolled_back_fails_with_its_result(
    ts_env: WorkflowEnvironment,
) -> None:
    fake = FakePlatform(bad_versions={"v3"})
    w, tq = worker(ts_env, fake)
    async with w:
        good = await start(ts_env, "v1", tq)
        assert (await good.result()).outcome == "promoted"  # COMPLETED: a plain result
        assert (await good.describe()).status == WorkflowExecutionStatus.COMPLETED
        bad = await start(ts_env, "v3", tq)
        with pytest.raises(WorkflowFailureError) as info:
            await bad.result()
        res = await deployment_result(bad)
        history = await bad.fetch_history()
        await lane_closed(ts_env, tq)
    assert (await bad.describe()).status == WorkflowExecutionStatus.FAILED
    err = failure(info)
    assert err.type == DEPLOYMENT_NOT_PROMOTED and err.non_retryable
    assert err.message == res.reason and "analysis failed" in res.reason
    assert res.outcome == "rolled_back" and res.version == "v3" and res.previous_version == "v1"
    assert res.rollback_workflow_id and res.steps  # the whole result, steps included
    assert deploy_result_from_failure(info.value) == res
    assert fake.weights == {"v1": 100}  # compensation ran before the run failed
    replayer = Replayer(
        workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
        data_converter=data_converter(),
    )
    await replayer.replay_workflow(history)


async def test_aborted_fails_with_its_result(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform()
    w, tq = worker(ts_env, fake)
    async with w:
        await execute_deployment(
            ts_env.client,
            DeploymentWorkflow.run,
            DeployInput(spec=spec("v1"), set_search_attributes=False),
            id=f"deploy-{uuid.uuid4()}",
            task_queue=tq,
            result_type=DeployResult,
        )
        h = await start(ts_env, "v2", tq)
        await h.signal(DeploymentWorkflow.abort, ControlInput(identity="alice", reason="no"))
        res = await deployment_result(h)
        with pytest.raises(WorkflowFailureError) as info:
            await h.result()
        await lane_closed(ts_env, tq)
    assert res.outcome == "aborted" and "alice" in res.reason
    assert failure(info).type == DEPLOYMENT_NOT_PROMOTED
    assert (await h.describe()).status == WorkflowExecutionStatus.FAILED


async def test_nothing_applied_still_raises_deployment_failed(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform()
    w, tq = worker(ts_env, fake)
    async with w:
        await deployment_result(await start(ts_env, "v1", tq))
        fake.fail_apply = True
        h = await start(ts_env, "v2", tq)
        with pytest.raises(WorkflowFailureError) as info:
            await deployment_result(h)  # not a result: nothing was changed, as before
        await lane_closed(ts_env, tq)
    err = failure(info)
    assert err.type == DEPLOYMENT_FAILED and err.non_retryable
    assert deploy_result_from_failure(info.value) is None
    carried = DeployResult.model_validate(err.details[0])  # for the Web UI's failure view
    assert carried.outcome == "failed" and carried.version == "v2"


def _load(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())


def test_committed_histories_pin_both_shapes() -> None:
    """The pre-patch rolled-back canary COMPLETED; the ``_red`` one records the patch
    marker and FAILED with the result; both replay (tests/workflows/test_replay.py)."""
    old = _load("deployment_canary_rolled_back_lanes").events[-1]
    assert old.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    red = _load("deployment_canary_rolled_back_red")
    assert red.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    markers = [
        p.data
        for e in red.events
        if e.HasField("marker_recorded_event_attributes")
        for d in e.marker_recorded_event_attributes.details.values()
        for p in d.payloads
    ]
    assert any(b"not-promoted-fails" in m for m in markers), markers
    failed = red.events[-1].workflow_execution_failed_event_attributes.failure
    assert failed.application_failure_info.type == DEPLOYMENT_NOT_PROMOTED
    assert b"rolled_back" in failed.application_failure_info.details.payloads[0].data
