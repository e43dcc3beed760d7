"""ChaosExperimentWorkflow orchestration on the time-skipping server with
in-memory activities: rollbacks run after success, deviation, abort,
activity failure and cancellation; a failing rollback is retried and then
fails the run loudly."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from chaos.messages import AbortRequest, ChaosResult, ChaosRunInput, Journal
from chaos.model import parse_experiment
from tests.chaos.fakes import FakeChaos
from tests.waiting import wait_until_async
from workflows.chaos import ChaosExperimentWorkflow


def experiment(**controls: Any) -> Any:
    doc: dict[str, Any] = {
        "title": "kill two demo instances",
        "steady_state": {"probes": [{"name": "demo-up", "url": "http://127.0.0.1:9/"}]},
        "method": [
            {
                "action": {
                    "name": "kill",
                    "fault": "kill_instance",
                    "target": {"service": "demo", "environment": "dev", "mode": "fixed(2)"},
                }
            }
        ],
        "rollbacks": [
            {
                "name": "restore-demo",
                "action": "restore",
                "target": {"service": "demo", "environment": "dev"},
            }
        ],
        "controls": {"duration": "2m", "probe_interval": "10s", **controls},
    }
    return parse_experiment(doc, "test")


async def start(env: WorkflowEnvironment, tq: str, exp: Any, **kw: Any) -> WorkflowHandle:
    return await env.client.start_workflow(
        ChaosExperimentWorkflow.run,
        ChaosRunInput(experiment=exp, actor="pytest", set_search_attributes=False, **kw),
        id=f"chaos-{uuid.uuid4()}",
        task_queue=tq,
    )


async def run_with(env: WorkflowEnvironment, fake: FakeChaos, exp: Any, **kw: Any) -> ChaosResult:
    tq = str(uuid.uuid4())
    async with Worker(
        env.client, task_queue=tq, workflows=[ChaosExperimentWorkflow], activities=fake.activities()
    ):
        h = await start(env, tq, exp, **kw)
        return await h.result()


async def in_timer(handle: WorkflowHandle) -> bool:
    """The run waits on a timer and nothing else: no activity, no workflow task pending."""
    from temporalio.api.enums.v1 import EventType

    raw = (await handle.describe()).raw_description
    if raw.pending_activities or raw.HasField("pending_workflow_task"):
        return False
    started: set[str] = set()
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            started.add(e.timer_started_event_attributes.timer_id)
        elif e.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            started.discard(e.timer_fired_event_attributes.timer_id)
        elif e.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
            started.discard(e.timer_canceled_event_attributes.timer_id)
    return bool(started)


async def wait_for(cond: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_success_reverts_every_fault_then_explicit_rollbacks(
    ts_env: WorkflowEnvironment,
) -> None:
    fake = FakeChaos()
    res = await run_with(ts_env, fake, experiment())
    assert res.status == "completed" and not res.deviated
    assert fake.active == set()
    injects = [x for x in fake.log if x.startswith("inject")]
    reverts = [x for x in fake.log if x.startswith("revert")]
    assert len(injects) == 2 and len(reverts) == 2
    assert fake.log[-1] == "rollback restore-demo"  # explicit rollbacks after the reverts
    phases = [p.phase for p in res.journal.probes]
    assert phases[0] == "before" and phases[-1] == "after"
    assert phases.count("during") == 13  # 2 minutes every 10 s, both ends included
    assert res.report_md_key == f"chaos/{res.workflow_id}/report.md"
    assert all(f.reverted_at is not None for f in res.journal.faults)


async def test_deviation_aborts_and_rolls_back(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos(probe_ok=lambda phase, n: phase != "during" or n < 4)
    res = await run_with(ts_env, fake, experiment())
    assert res.status == "aborted" and res.deviated
    assert "out of tolerance" in res.reason
    assert fake.active == set()


async def test_deviation_without_abort_completes_deviated(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos(probe_ok=lambda phase, n: phase != "during")
    res = await run_with(ts_env, fake, experiment(abort_on_probe_failure=False))
    assert res.status == "completed" and res.deviated
    assert fake.active == set()


async def test_burn_rate_abort_condition(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos(probe_ok=lambda phase, n: phase != "during")
    res = await run_with(
        ts_env, fake, experiment(abort_on_probe_failure=False, abort_burn_rate=10, burn_window=3)
    )
    assert res.status == "aborted" and "burn" in res.reason
    assert fake.active == set()


async def test_steady_state_not_met_before_injects_nothing(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos(probe_ok=lambda phase, n: False)
    res = await run_with(ts_env, fake, experiment())
    assert res.status == "aborted" and "nothing was injected" in res.reason
    assert not any(x.startswith("inject") for x in fake.log)


async def test_protected_target_injects_nothing(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos()
    res = await run_with(
        ts_env, fake, experiment(), protected={"services": ["demo"], "environments": []}
    )
    assert res.status == "failed" and "protected" in res.reason
    assert not any(x.startswith("inject") for x in fake.log)


async def test_inject_failure_still_reverts_the_attempt(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos(inject_error="agent said no")
    res = await run_with(ts_env, fake, experiment())
    assert res.status == "failed" and "agent said no" in res.reason
    # the attempted injection (outcome unknown in general) is reverted by key
    first = res.journal.faults[0].target.id
    assert [x for x in fake.log if x.startswith("revert")] == [f"revert kill_instance {first}"]
    assert len(res.journal.faults) == 1  # the second target was never attempted
    assert res.journal.faults[0].inject_error


async def test_manual_abort_update_runs_rollbacks(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos()
    tq = str(uuid.uuid4())
    async with Worker(
        ts_env.client,
        task_queue=tq,
        workflows=[ChaosExperimentWorkflow],
        activities=fake.activities(),
    ):
        h = await start(ts_env, tq, experiment(duration="1h"))
        await wait_for(lambda: len(fake.active) == 2)
        msg = await h.execute_update(
            ChaosExperimentWorkflow.abort,
            AbortRequest(identity="alice@example", reason="pager went off"),
        )
        assert "alice@example" in msg
        res = await h.result()
    assert res.status == "aborted" and res.journal.aborted_by == "alice@example"
    assert fake.active == set()


async def test_cancel_runs_rollbacks_then_reports_interrupted(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos()
    tq = str(uuid.uuid4())
    async with Worker(
        ts_env.client,
        task_queue=tq,
        workflows=[ChaosExperimentWorkflow],
        activities=fake.activities(),
    ):
        h = await start(ts_env, tq, experiment(duration="1h"))
        await wait_for(lambda: len(fake.active) == 2 and fake.probes >= 2)
        # cancelled while waiting in the probe-interval timer (time is not skipped here)
        await wait_until_async(lambda: in_timer(h), 10, "the probe-interval timer")
        await h.cancel()
        with pytest.raises(WorkflowFailureError) as ei:
            # wait_for: a bare result() right after cancel() hangs on the test server's long poll
            await asyncio.wait_for(h.result(), 60)
        assert isinstance(ei.value.cause, CancelledError)
        journal = await h.query(ChaosExperimentWorkflow.status)
    assert fake.active == set()
    assert journal.status == "interrupted"
    assert fake.reports and fake.reports[-1].journal.status == "interrupted"


async def test_flaky_rollback_is_retried_until_it_succeeds(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos(revert_failures=3)
    res = await run_with(ts_env, fake, experiment(rollback_attempts=5))
    assert res.status == "completed" and fake.active == set()
    assert fake.revert_attempts == 5  # 3 failures + 2 reverts


async def test_failing_rollback_fails_the_run_loudly(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos(revert_failures=1000)
    tq = str(uuid.uuid4())
    async with Worker(
        ts_env.client,
        task_queue=tq,
        workflows=[ChaosExperimentWorkflow],
        activities=fake.activities(),
    ):
        h = await start(ts_env, tq, experiment(rollback_attempts=3))
        with pytest.raises(WorkflowFailureError) as ei:
            await h.result()
        journal: Journal = await h.query(ChaosExperimentWorkflow.status)
    cause = ei.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "RollbackFailed"
    assert fake.revert_attempts == 6  # both faults tried 3 times each, none skipped
    assert journal.status == "failed" and journal.rollback_failed
    assert all(f.revert_error for f in journal.faults)
    assert fake.reports[-1].journal.rollback_failed


async def test_cancel_during_the_rollbacks_does_not_skip_them(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos(revert_delay=1.0)
    tq = str(uuid.uuid4())
    async with Worker(
        ts_env.client,
        task_queue=tq,
        workflows=[ChaosExperimentWorkflow],
        activities=fake.activities(),
    ):
        h = await start(ts_env, tq, experiment(duration="0s"))
        await wait_for(lambda: fake.reverting)
        await h.cancel()  # arrives while the first revert runs
        with pytest.raises(WorkflowFailureError) as ei:
            await asyncio.wait_for(h.result(), 60)
        assert isinstance(ei.value.cause, CancelledError)
        journal: Journal = await h.query(ChaosExperimentWorkflow.status)
    assert fake.active == set() and fake.log[-1] == "rollback restore-demo"
    assert journal.status == "interrupted"
    assert all(f.reverted_at for f in journal.faults)
    assert any("during the rollbacks" in e.message for e in journal.events)
