"""A chaos experiment's history stays bounded however long its fault window is: a 24 h
window probed every second (86,401 rounds) runs as probe batches on the time-skipping
server with in-memory activities (the fake batch returns its rounds at once, the workflow's
timers pace the window), every run of the chain stays under 10,240 events, and the journal
accounts for every probe. Also: abort conditions and manual aborts inside a batch, and
inputs that do not validate (run, update, signal)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from chaos.batch import BatchRun, batch_rounds, offsets, window_rounds
from chaos.messages import (
    AbortRequest,
    ChaosResult,
    ChaosRunInput,
    ProbeBatchInput,
    ProbeBatchResult,
    ProbeRecord,
)
from code_foundation.names import CA, W
from tests.chaos.fakes import FakeChaos
from tests.chaos.test_workflow import experiment
from workflows.chaos import ChaosExperimentWorkflow
from workflows.chaos_window import MAX_WINDOW_RECORDS

LIMIT = 10_240
DAY_ROUNDS = 24 * 3600 + 1  # a round every second, both ends included


async def chain_event_counts(env: WorkflowEnvironment, handle: WorkflowHandle) -> list[int]:
    """The number of history events of every run of ``handle``'s continue-as-new chain."""
    counts: list[int] = []
    run_id = handle.first_execution_run_id or handle.run_id
    while run_id:
        h = env.client.get_workflow_handle(handle.id, run_id=run_id)
        n, next_run = 0, None
        async for e in h.fetch_history_events():
            n += 1
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                next_run = e.workflow_execution_continued_as_new_event_attributes
                next_run = next_run.new_execution_run_id
        counts.append(n)
        run_id = next_run
    return counts


async def run_day(
    env: WorkflowEnvironment, fake: FakeChaos, acts: list[Any] | None = None, **controls: Any
) -> tuple[ChaosResult, list[int]]:
    tq = str(uuid.uuid4())
    exp = experiment(duration="24h", probe_interval="1s", **controls)
    async with Worker(
        env.client,
        task_queue=tq,
        workflows=[ChaosExperimentWorkflow],
        activities=acts or fake.activities(),
    ):
        h = await env.client.start_workflow(
            ChaosExperimentWorkflow.run,
            ChaosRunInput(experiment=exp, actor="pytest", set_search_attributes=False),
            id=f"chaos-day-{uuid.uuid4()}",
            task_queue=tq,
        )
        res = await asyncio.wait_for(h.result(), 300)
        return res, await chain_event_counts(env, h)


def test_batches_cover_the_same_rounds_as_the_probe_loop() -> None:
    assert window_rounds(120, 10) == 13 and window_rounds(125, 10) == 14
    assert window_rounds(0, 10) == 1 and window_rounds(86_400, 1) == DAY_ROUNDS
    assert batch_rounds(86_400, 1) == 600 and batch_rounds(3600, 3600) == 1
    assert batch_rounds(30 * 86_400, 1) * 500 >= window_rounds(30 * 86_400, 1)
    exp = experiment(duration="25s", probe_interval="10s")
    base = {"probes": exp.steady_state.probes, "controls": exp.controls, "start_ts": 0.0}
    assert offsets(ProbeBatchInput(**base, span_s=25, final=True)) == [0, 10, 20, 25]
    assert offsets(ProbeBatchInput(**base, span_s=20)) == [0, 10]
    assert offsets(ProbeBatchInput(**base, span_s=0, final=True)) == [0]


@pytest.mark.slow
async def test_a_day_of_one_second_probes_stays_bounded(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos()
    res, counts = await run_day(ts_env, fake)
    print(f"24h chaos window, 1 s probes: {len(counts)} run(s), events per run {counts}")
    assert all(n < LIMIT for n in counts), counts
    assert res.status == "completed" and not res.deviated
    j = res.journal
    assert j.during.rounds == DAY_ROUNDS and j.during.probes == DAY_ROUNDS
    assert j.during.requests == DAY_ROUNDS and j.during.out_of_tolerance == 0
    assert fake.probes == DAY_ROUNDS + 2  # + the steady state before and after
    during = [p for p in j.probes if p.phase == "during"]
    assert sum(p.requests for p in during) == DAY_ROUNDS  # every probe in a record
    assert len(during) <= MAX_WINDOW_RECORDS + 500
    assert (j.finished_at - j.started_at).total_seconds() >= 24 * 3600
    assert fake.active == set() and fake.log[-1] == "rollback restore-demo"
    assert fake.reports and fake.reports[-1].journal.during.rounds == DAY_ROUNDS


@pytest.mark.slow
async def test_a_deviation_late_in_the_day_aborts_and_rolls_back(
    ts_env: WorkflowEnvironment,
) -> None:
    bad_from = 50_000
    fake = FakeChaos(probe_ok=lambda phase, n: phase != "during" or n < bad_from)
    res, counts = await run_day(ts_env, fake)
    assert all(n < LIMIT for n in counts), counts
    assert res.status == "aborted" and res.deviated and "out of tolerance" in res.reason
    assert res.journal.during.rounds == bad_from - 1  # probe 1 was the steady state before
    during = [p for p in res.journal.probes if p.phase == "during"]
    assert any(not p.ok and p.detail.startswith("status 502") for p in during)  # kept in full
    assert fake.active == set()


@pytest.mark.slow
async def test_burn_rate_abort_spans_batches(ts_env: WorkflowEnvironment) -> None:
    # every 10th probe fails from probe 1,180 (round 1,179; batches end at rounds 600,
    # 1,200, ...): the 100-round burn over a 99% objective first exceeds 5.5 at the sixth
    # failure, round 1,229, because the burn series is carried over the batch boundary
    # (a batch judged alone would fire at round 1,209: 1 bad in 9)
    fake = FakeChaos(probe_ok=lambda phase, n: phase != "during" or n < 1180 or n % 10 != 0)
    res, _ = await run_day(
        ts_env, fake, abort_on_probe_failure=False, abort_burn_rate=5.5, burn_window=100
    )
    assert res.status == "aborted" and "burn" in res.reason
    assert res.journal.during.rounds == 1229
    assert fake.active == set()


def slow_batch(started: list[int]) -> Any:
    """A batch probing in real time (0.01 s a round) until cancelled: its rounds so far
    come back, as the real activity's do."""

    @activity.defn(name=CA.PROBE_BATCH)
    async def probe_batch(inp: ProbeBatchInput) -> ProbeBatchResult:
        run = BatchRun(inp)
        try:
            for off in offsets(inp):
                await asyncio.sleep(0.01)
                activity.heartbeat()
                now = datetime.now(UTC)
                started.append(1)
                rec = ProbeRecord(
                    name=inp.probes[0].name,
                    phase="during",
                    ok=True,
                    detail="ok",
                    started_at=now,
                    finished_at=now,
                    requests=1,
                )
                run.add([rec], inp.start_ts + off)
        except asyncio.CancelledError:
            return run.result(partial=True)
        return run.result()

    return probe_batch


async def test_manual_abort_cancels_the_batch_and_keeps_its_rounds(
    ts_env: WorkflowEnvironment,
) -> None:
    fake, started = FakeChaos(), []
    acts = [a for a in fake.activities() if a.__name__ != "probe_batch"] + [slow_batch(started)]
    tq = str(uuid.uuid4())
    async with Worker(
        ts_env.client, task_queue=tq, workflows=[ChaosExperimentWorkflow], activities=acts
    ):
        h = await ts_env.client.start_workflow(
            ChaosExperimentWorkflow.run,
            ChaosRunInput(
                experiment=experiment(duration="1h", probe_interval="1s"),
                actor="t",
                set_search_attributes=False,
            ),
            id=f"chaos-abort-{uuid.uuid4()}",
            task_queue=tq,
        )
        for _ in range(500):
            if len(started) >= 20:
                break
            await asyncio.sleep(0.02)
        await h.execute_update(ChaosExperimentWorkflow.abort, AbortRequest(identity="bob"))
        res = await asyncio.wait_for(h.result(), 60)
    assert res.status == "aborted" and res.journal.aborted_by == "bob"
    assert res.journal.during.rounds >= 20  # the batch's rounds so far were kept
    assert len([p for p in res.journal.probes if p.phase == "during"]) >= 20
    assert fake.active == set() and fake.log[-1] == "rollback restore-demo"


async def test_inputs_that_do_not_validate(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos()
    tq = str(uuid.uuid4())
    async with Worker(
        ts_env.client,
        task_queue=tq,
        workflows=[ChaosExperimentWorkflow],
        activities=fake.activities(),
    ):
        bad = await ts_env.client.start_workflow(
            W.CHAOS,
            {"experiment": {"title": 3}, "seed": "x"},
            id=f"chaos-bad-{uuid.uuid4()}",
            task_queue=tq,
        )
        with pytest.raises(WorkflowFailureError) as ei:
            await asyncio.wait_for(bad.result(), 30)
        cause = ei.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "SpecError"
        assert "seed" in cause.message and "experiment" in cause.message
        assert fake.log == []  # nothing was injected

        h = await ts_env.client.start_workflow(
            ChaosExperimentWorkflow.run,
            ChaosRunInput(experiment=experiment(duration="1h"), set_search_attributes=False),
            id=f"chaos-msgs-{uuid.uuid4()}",
            task_queue=tq,
        )
        for _ in range(500):
            if len(fake.active) == 2:
                break
            await asyncio.sleep(0.02)
        with pytest.raises(WorkflowUpdateFailedError):
            await h.execute_update("abort", {"who": "nobody"})
        await h.signal("abort_signal", {"reason": 5})
        journal = await h.query(ChaosExperimentWorkflow.status)
        for _ in range(100):
            journal = await h.query(ChaosExperimentWorkflow.status)
            if any(e.kind == "ignored" for e in journal.events):
                break
            await asyncio.sleep(0.02)
        assert any(e.kind == "ignored" and "identity" in e.message for e in journal.events)
        assert journal.status == "running"  # neither the update nor the signal aborted it
        await h.signal("abort_signal", {"identity": "carol", "reason": "done"})
        res = await asyncio.wait_for(h.result(), 60)
    assert res.status == "aborted" and res.journal.aborted_by == "carol"
    assert fake.active == set()
