"""A 24 h soak's histories stay bounded: ``SoakTestWorkflow`` continues-as-new every
``slices_per_run`` slices, and every run of the chain (walked by run id through the
continued-as-new events) stays under 10,240 events, with every slice present in the
result. Also: inputs that do not validate (run input, abort signal). Time-skipping
server, synthetic slices (tests/soak/synthetic.py)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.interceptor import ErrorInterceptor
from activities.settings import Settings
from activities.soak import SoakActivities
from code_foundation.names import W
from loadtest.soak_models import SoakInput, SoakPlan, SoakResult
from tests.soak.synthetic import make_slice_activity
from tests.soak.test_soak_timeskip import plan
from workflows.soak import SoakTestWorkflow

LIMIT = 10_240


async def chain(env: WorkflowEnvironment, handle: WorkflowHandle) -> list[tuple[int, int]]:
    """(events, payload bytes of the run's input) for every run of the chain."""
    out: list[tuple[int, int]] = []
    run_id = handle.first_execution_run_id or handle.run_id
    while run_id:
        h = env.client.get_workflow_handle(handle.id, run_id=run_id)
        n, size, next_run = 0, 0, None
        async for e in h.fetch_history_events():
            n += 1
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                size = e.workflow_execution_started_event_attributes.input.ByteSize()
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                attrs = e.workflow_execution_continued_as_new_event_attributes
                next_run = attrs.new_execution_run_id
        out.append((n, size))
        run_id = next_run
    return out


def worker(env: WorkflowEnvironment, tmp_path: Path, tq: str, calls: list[int]) -> Worker:
    acts = SoakActivities(Settings(state_dir=tmp_path, artifact_dir=tmp_path / "artifacts"))
    return Worker(
        env.client,
        task_queue=tq,
        workflows=[SoakTestWorkflow],
        activities=[acts.resolve_target, acts.report, make_slice_activity(calls=calls)],
        interceptors=[ErrorInterceptor()],
    )


async def run_chain(
    env: WorkflowEnvironment, tmp_path: Path, p: SoakPlan
) -> tuple[SoakResult, list[tuple[int, int]], list[int]]:
    tq, calls = f"soak-{uuid.uuid4()}", []
    async with worker(env, tmp_path, tq, calls):
        h = await env.client.start_workflow(
            SoakTestWorkflow.run, SoakInput(plan=p), id=f"soak-b-{uuid.uuid4()}", task_queue=tq
        )
        res = await asyncio.wait_for(h.result(), 600)
        return res, await chain(env, h), calls


@pytest.mark.slow
@pytest.mark.parametrize(("slice_", "n"), [("5m", 288), ("1m", 1440)])
async def test_a_24h_soak_has_bounded_runs_and_every_slice(
    ts_env: WorkflowEnvironment, tmp_path: Path, slice_: str, n: int
) -> None:
    p = plan(slice=slice_)
    assert p.n_slices == n
    res, runs, calls = await run_chain(ts_env, tmp_path, p)
    events = [e for e, _ in runs]
    print(
        f"24h soak, {slice_} slices: {len(runs)} runs, events per run {events},"
        f" largest run input {max(s for _, s in runs)} bytes"
    )
    assert res.verdict == "pass", res.reason
    assert len(runs) == res.runs == -(-n // p.slices_per_run)
    assert all(e < LIMIT for e in events), events
    assert res.slices == n and [s.index for s in res.summaries] == list(range(n))
    assert sorted(calls) == list(range(n))  # each slice ran once
    assert res.summaries[-1].end_s == 24 * 3600


async def test_a_soak_input_that_does_not_validate_fails_at_once(
    ts_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    tq, calls = f"soak-{uuid.uuid4()}", []
    async with worker(ts_env, tmp_path, tq, calls):
        h = await ts_env.client.start_workflow(
            W.SOAK, {"plan": {"rate": -1}, "actor": 5}, id=f"soak-x-{uuid.uuid4()}", task_queue=tq
        )
        with pytest.raises(WorkflowFailureError) as ei:
            await asyncio.wait_for(h.result(), 30)
    cause = ei.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "SpecError"
    assert "plan" in cause.message and cause.non_retryable
    assert calls == []


async def test_a_malformed_abort_signal_is_ignored_and_noted(
    ts_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    tq, calls = f"soak-{uuid.uuid4()}", []
    async with worker(ts_env, tmp_path, tq, calls):
        h = await ts_env.client.start_workflow(
            SoakTestWorkflow.run,
            SoakInput(plan=plan(duration="1h")),
            id=f"soak-s-{uuid.uuid4()}",
            task_queue=tq,
        )
        await h.signal("abort", {"reason": ["not", "a", "string"]})
        st = None
        for _ in range(200):  # no time skipping while we only query
            st = await h.query(SoakTestWorkflow.status)
            if st is not None and st.notes and st.slices_done >= 1:
                break
            await asyncio.sleep(0.05)
        assert st is not None and st.verdict is None
        assert st.notes and "malformed abort signal" in st.notes[0]
        await h.signal(SoakTestWorkflow.abort, "enough")
        res = await asyncio.wait_for(h.result(), 60)
    assert res.verdict == "aborted" and res.reason == "enough"
