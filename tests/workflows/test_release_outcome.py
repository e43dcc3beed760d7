"""A release that is not released ends as a FAILED workflow execution carrying its
``ReleaseResult`` (the ``release-not-promoted-fails`` patch), red in the Web UI:

- on the time-skipping server: a spent error budget before prod rolls staging back; the
  run FAILED with a non-retryable ``ReleaseNotPromoted`` whose ``details[0]`` is the
  result, and :func:`workflows.release_client.release_result` gives it back typed (a
  released run is COMPLETED and gives the same type);
- on the real dev server (search attributes registered): ``CodeOutcome`` is set when
  the release ends, so the Web UI's list filters released and rolled-back releases
  (``CodeKind="release" AND CodeOutcome="rolled_back"``), and the Failures filter
  (``ExecutionStatus="Failed"``) lists the rolled-back one only;
- the committed ``release_rolled_back_red`` history pins the new shape (the marker,
  FAILED with the result); the older histories still end COMPLETED and replay
  (tests/workflows/test_release_replay.py)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from code_foundation.error_types import RELEASE_NOT_PROMOTED
from tests.waiting import wait_until_async
from tests.workflows.release_fakes import MultiFake
from tests.workflows.test_release import pipeline, worker
from workflows.pipeline_spec import PipelineSpec
from workflows.release import ReleaseWorkflow
from workflows.release_client import release_result, release_result_from_failure
from workflows.release_models import ReleaseInput, ReleaseResult

HISTORIES = Path(__file__).resolve().parent / "histories"

BUDGET_BEFORE_PROD = """
  - name: staging
    targets: [{environment: staging}]
  - name: prod
    gates:
      - type: error_budget
        slo: {slo: shop-availability, objective: 0.99, min_remaining: 0.5}
    targets: [{environment: prod}]
"""


def budget_pipeline() -> PipelineSpec:
    return pipeline(BUDGET_BEFORE_PROD, deployment="")


def fake(spent: bool) -> MultiFake:
    f = MultiFake(breach_after=1 if spent else None)
    f.seed("staging", None, "v1")
    f.seed("prod", None, "v1")
    return f


async def start(
    env: WorkflowEnvironment, version: str, tq: str, attrs: bool = False
) -> WorkflowHandle[Any, ReleaseResult]:
    return await env.client.start_workflow(
        ReleaseWorkflow.run,
        ReleaseInput(
            pipeline=budget_pipeline(), version=version, actor="tester", set_search_attributes=attrs
        ),
        id=f"release-shop-{version}-{uuid.uuid4().hex[:6]}",
        task_queue=tq,
    )


async def test_a_rolled_back_release_fails_red_and_carries_its_result(
    ts_env: WorkflowEnvironment,
) -> None:
    f = fake(spent=True)
    w, tq = worker(ts_env, f)
    async with w:
        h = await start(ts_env, "v2", tq)
        with pytest.raises(WorkflowFailureError) as info:
            await h.result()
        typed = await release_result(h)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == RELEASE_NOT_PROMOTED, cause
    assert cause.non_retryable and "spent" in cause.message, cause.message
    carried = release_result_from_failure(info.value)
    assert carried is not None and carried.outcome == "rolled_back", carried
    assert {c.stage: c.phase for c in carried.cells} == {"staging": "restored", "prod": "pending"}
    assert typed == carried
    assert (await h.describe()).status == WorkflowExecutionStatus.FAILED
    assert f.clusters["staging/local"].weights == {"v1": 100}  # the policy still ran
    assert f.clusters["prod/local"].journal == []


async def test_a_released_release_completes_with_the_same_typed_result(
    ts_env: WorkflowEnvironment,
) -> None:
    w, tq = worker(ts_env, fake(spent=False))
    async with w:
        h = await start(ts_env, "v2", tq)
        res = await release_result(h)
    assert res.outcome == "promoted", res.reason
    assert (await h.describe()).status == WorkflowExecutionStatus.COMPLETED


@pytest.mark.integration
async def test_outcome_search_attribute_filters_releases(dev_env: WorkflowEnvironment) -> None:
    tag = uuid.uuid4().hex[:8]
    results: dict[str, str] = {}
    for spent in (False, True):
        version = f"{'bad' if spent else 'good'}-{tag}"
        w, tq = worker(dev_env, fake(spent))
        async with w:
            h = await start(dev_env, version, tq, attrs=True)
            res = await release_result(h)
        results[res.outcome] = h.id
    assert set(results) == {"promoted", "rolled_back"}, results
    client = dev_env.client
    ours = (
        f'CodeKind="release" AND CodeService="shop" AND CodeVersion IN ("good-{tag}", "bad-{tag}")'
    )

    async def listed(query: str) -> list[str]:
        return sorted([x.id async for x in client.list_workflows(f"{ours} AND {query}")])

    async def indexed() -> bool:  # the visibility store is eventually consistent
        return len(await listed('CodeOutcome IN ("promoted", "rolled_back")')) == 2

    await wait_until_async(indexed, 30, "both releases indexed")  # type: ignore[arg-type]
    assert await listed('CodeOutcome="rolled_back"') == [results["rolled_back"]]
    assert await listed('CodeOutcome="promoted"') == [results["promoted"]]
    assert await listed('ExecutionStatus="Failed"') == [results["rolled_back"]]
    assert await listed('ExecutionStatus="Completed"') == [results["promoted"]]


def test_the_committed_red_history_pins_the_failed_shape() -> None:
    def load(name: str) -> WorkflowHistory:
        return WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())

    old = load("release_promoted").events[-1]
    assert old.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    red = load("release_rolled_back_red")
    assert red.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    markers = [
        p.data
        for e in red.events
        if e.HasField("marker_recorded_event_attributes")
        for d in e.marker_recorded_event_attributes.details.values()
        for p in d.payloads
    ]
    assert any(b"release-not-promoted-fails" in m for m in markers), markers
    failed = red.events[-1].workflow_execution_failed_event_attributes.failure
    assert failed.application_failure_info.type == RELEASE_NOT_PROMOTED
    assert b"rolled_back" in failed.application_failure_info.details.payloads[0].data
