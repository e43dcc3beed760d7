"""ReleaseLaneWorkflow on the time-skipping server: FIFO queueing, reject, supersede,
a lane freed when its holder is terminated, a malformed request that changes
nothing, and continue-as-new keeping the lane's history small."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.lane import lane_activities
from code_foundation.names import W
from tests.workflows.lane_holders import HoldInput, HoldResult, LaneTestHolder
from workflows.lane import ReleaseLaneWorkflow
from workflows.lane_models import LaneState


def _worker(env: WorkflowEnvironment) -> tuple[Worker, str]:
    tq = f"lane-{uuid.uuid4()}"
    return (
        Worker(
            env.client,
            task_queue=tq,
            workflows=[ReleaseLaneWorkflow, LaneTestHolder],
            activities=lane_activities(),
        ),
        tq,
    )


async def _start(env: WorkflowEnvironment, tq: str, lane: str, name: str, **kw: object):
    return await env.client.start_workflow(
        LaneTestHolder.run,
        HoldInput(lane=lane, **kw),  # type: ignore[arg-type]
        id=f"{name}-{uuid.uuid4().hex[:6]}",
        task_queue=tq,
        result_type=HoldResult,
    )


async def _final_state(env: WorkflowEnvironment, lane: str) -> LaneState:
    """The lane's state when it ended (it ends once nothing holds or waits for it).
    ``lane`` is the lane's workflow id: the requested name and ``@<task queue>``."""
    return await env.client.get_workflow_handle(lane, result_type=LaneState).result()


async def _lane_state(env: WorkflowEnvironment, lane: str) -> LaneState:
    return await env.client.get_workflow_handle(lane).query(
        ReleaseLaneWorkflow.state, result_type=LaneState
    )


async def _until(pred, what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await pred():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_queue_serialises_holders_in_order(ts_env: WorkflowEnvironment) -> None:
    w, tq = _worker(ts_env)
    lane = f"lane-{uuid.uuid4().hex[:8]}"
    async with w:
        a = await _start(ts_env, tq, lane, "a", hold_s=600)
        await _until(lambda: _in(a, "granted"), "a to hold the lane")
        b = await _start(ts_env, tq, lane, "b", hold_s=600)
        await _until(lambda: _in(b, "queued"), "b queued")
        c = await _start(ts_env, tq, lane, "c", hold_s=600)
        await _until(lambda: _in(c, "queued"), "c queued")
        assert await c.query("waiting") == f"queued behind {a.id} (position 2)"
        ra, rb, rc = await a.result(), await b.result(), await c.result()
        state = await _final_state(ts_env, f"{lane}@{tq}")
    assert ra.state == rb.state == rc.state == "granted"
    assert ra.released_at is not None and rb.granted_at is not None and rb.released_at is not None
    assert rc.granted_at is not None
    assert ra.released_at <= rb.granted_at and rb.released_at <= rc.granted_at
    assert rb.queued_behind == a.id and rc.queued_behind == a.id
    assert state.holder is None and state.queue == [] and state.granted_total == 3


async def test_reject_names_the_holder(ts_env: WorkflowEnvironment) -> None:
    w, tq = _worker(ts_env)
    lane = f"lane-{uuid.uuid4().hex[:8]}"
    async with w:
        a = await _start(ts_env, tq, lane, "a", hold_s=600)
        await _until(lambda: _in(a, "granted"), "a holds")
        r = await (await _start(ts_env, tq, lane, "r", policy="reject")).result()
        assert r.state == "rejected" and r.queued_behind == a.id
        assert (await _lane_state(ts_env, f"{lane}@{tq}")).holder.holder_id == a.id  # type: ignore[union-attr]
        await a.result()


async def _in(handle, state: str) -> bool:
    """Whether a holder's lane answer is ``state`` (queried on the holder, which exists)."""
    return await handle.query("lane_state") == state


async def test_supersede_aborts_the_holder_and_goes_first(ts_env: WorkflowEnvironment) -> None:
    w, tq = _worker(ts_env)
    lane = f"lane-{uuid.uuid4().hex[:8]}"
    async with w:
        a = await _start(ts_env, tq, lane, "a", hold_s=3600)
        await _until(lambda: _in(a, "granted"), "a holds")
        b = await _start(ts_env, tq, lane, "b", hold_s=300)
        await _until(lambda: _in(b, "queued"), "b queued")
        s = await _start(ts_env, tq, lane, "s", policy="supersede", hold_s=1)
        ra = await a.result()
        assert ra.aborted_by == f"lane:{s.id}"
        rs = await s.result()
        rb = await b.result()
    assert rs.granted_at is not None and rb.granted_at is not None
    assert rs.granted_at <= rb.granted_at, "the superseding run goes before the queue"


async def test_terminated_holder_never_leaks_the_lane(ts_env: WorkflowEnvironment) -> None:
    w, tq = _worker(ts_env)
    lane = f"lane-{uuid.uuid4().hex[:8]}"
    async with w:
        a = await _start(ts_env, tq, lane, "a", hold_s=36000)
        await _until(lambda: _in(a, "granted"), "a holds")
        b = await _start(ts_env, tq, lane, "b", hold_s=1)
        await _until(lambda: _in(b, "queued"), "b queued")
        await a.terminate("test: a holder that dies without releasing")
        rb = await b.result()
    assert rb.state == "granted"
    assert (await a.describe()).status == WorkflowExecutionStatus.TERMINATED


async def test_malformed_acquire_changes_nothing(ts_env: WorkflowEnvironment) -> None:
    w, tq = _worker(ts_env)
    lane = f"lane-{uuid.uuid4().hex[:8]}"
    async with w:
        a = await _start(ts_env, tq, lane, "a", hold_s=600)
        await _until(lambda: _in(a, "granted"), "a holds")
        handle = ts_env.client.get_workflow_handle(f"{lane}@{tq}")
        await handle.signal("acquire", {"lane": lane, "policy": "teleport"})
        await handle.signal("acquire", "not even an object")

        async def logged() -> bool:
            st = await _lane_state(ts_env, f"{lane}@{tq}")
            return sum("malformed" in e.what for e in st.recent) == 2

        await _until(logged, "both malformed requests logged")
        st = await _lane_state(ts_env, f"{lane}@{tq}")
        assert st.holder is not None and st.holder.holder_id == a.id and st.queue == []
        await a.result()


async def test_lane_continues_as_new_and_keeps_its_history_small(
    ts_env: WorkflowEnvironment,
) -> None:
    w, tq = _worker(ts_env)
    lane = f"lane-{uuid.uuid4().hex[:8]}"
    async with w:
        from workflows.lane_models import LaneInput

        lid = f"{lane}@{tq}"  # a lane per task queue: the test's own
        first = await ts_env.client.start_workflow(
            W.LANE,
            LaneInput(lane=lid, max_grants_per_run=3, idle_timeout_s=5),
            id=lid,
            task_queue=tq,
        )
        holders = [await _start(ts_env, tq, lane, f"h{i}", hold_s=1) for i in range(8)]
        for h in holders:
            assert (await h.result()).state == "granted"
        st = await _final_state(ts_env, f"{lane}@{tq}")
        assert st.granted_total == 8, "the count carried over every continue-as-new"
        latest = ts_env.client.get_workflow_handle(lid)
        desc = await latest.describe()
        events = [e async for e in latest.fetch_history_events()]
        first_events = [
            e
            async for e in ts_env.client.get_workflow_handle(
                lid, run_id=first.result_run_id
            ).fetch_history_events()
        ]
    assert desc.run_id != first.result_run_id, "the lane continued as new"
    assert first_events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    # 3 grants per run: a run's history is bounded by that, not by the lane's lifetime
    assert len(events) < 120 and len(first_events) < 120, (len(events), len(first_events))
