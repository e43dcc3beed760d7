"""A release's history stays bounded: a pipeline of 12 stages × 2 targets (plain rolling
deployments on the in-memory fake, time-skipping server) with ``max_history_events``
continues as new at stage boundaries, carrying the matrix, so no run's history grows
past the threshold by more than one stage; the chain of runs ends released with every
cell promoted and every stage done once. Without the threshold the same release is one
run whose history is longer than the threshold: the bound is what kept the runs short."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from tests.workflows.release_fakes import MultiFake
from tests.workflows.test_release import pipeline, worker
from workflows.release import ReleaseWorkflow
from workflows.release_client import release_result
from workflows.release_models import ReleaseInput, ReleaseResult

STAGES = 12
LIMIT = 60


def many_stages() -> Any:
    stages = "".join(
        f"""
  - name: s{i:02d}
    targets: [{{environment: e{i:02d}, cluster: eu-1}}, {{environment: e{i:02d}, cluster: us-1}}]
"""
        for i in range(STAGES)
    )
    return pipeline(stages, deployment="")


async def run_chain(env: WorkflowEnvironment, limit: int | None) -> tuple[ReleaseResult, list[int]]:
    """The release's result and the event count of each run of its chain."""
    w, tq = worker(env, MultiFake())
    async with w:
        h = await env.client.start_workflow(
            ReleaseWorkflow.run,
            ReleaseInput(
                pipeline=many_stages(),
                version="v2",
                actor="t",
                set_search_attributes=False,
                max_history_events=limit,
            ),
            id=f"release-shop-v2-{uuid.uuid4().hex[:8]}",
            task_queue=tq,
        )
        res = await release_result(h)
    sizes: list[int] = []
    run_id: str | None = h.result_run_id
    while run_id:
        history = await env.client.get_workflow_handle(h.id, run_id=run_id).fetch_history()
        sizes.append(len(history.events))
        last = history.events[-1]
        run_id = None
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return res, sizes


async def test_many_stages_continue_as_new_and_stay_bounded(ts_env: WorkflowEnvironment) -> None:
    res, sizes = await run_chain(ts_env, LIMIT)
    assert res.outcome == "promoted", res.reason
    assert len(res.cells) == 2 * STAGES and {c.phase for c in res.cells} == {"promoted"}
    assert len(sizes) > 2, sizes  # it did continue as new, more than once
    whole, single = await run_chain(ts_env, None)
    assert whole.outcome == "promoted" and len(single) == 1, single
    per_stage = single[0] / STAGES
    assert single[0] > LIMIT, single  # unbounded, the one run passes the threshold
    assert max(sizes) <= LIMIT + 2 * per_stage, (sizes, per_stage)
