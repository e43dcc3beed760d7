"""DeploymentWorkflow / RollbackWorkflow orchestration on the time-skipping
server: hours of pauses pass in seconds, abort compensates, approval gates wait
and time out per spec, failures roll back, validation failures apply nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from code_foundation.errors import SpecError
from tests.waiting import wait_until_async
from tests.workflows.fakes import FakePlatform
from workflows.client import deployment_result
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.models import ApproveInput, ControlInput, DeployInput, DeployResult, DeployStatus
from workflows.rollback import RollbackWorkflow
from workflows.spec import parse_spec


def spec(version: str, steps: str = "", **extra: str) -> object:
    steps = (
        steps
        or """
      - set_weight: 20
      - pause: {duration: 2h}
      - analysis: {interval: 10m, count: 3}
      - set_weight: 60
      - pause: {duration: 6h}
"""
    )
    more = "".join(f"{k}: {v}\n" for k, v in extra.items())
    return parse_spec(
        f"""
service: shop
environment: prod
version: {version}
artifact: {{command: ["{{python}}", "svc.py"]}}
{more}strategy:
  type: canary
  canary:
    steps:
{steps}
"""
    )


async def run_deploy(
    env: WorkflowEnvironment, fake: FakePlatform, s, tq: str, **kw
) -> DeployResult:
    handle = await env.client.start_workflow(
        DeploymentWorkflow.run,
        DeployInput(spec=s, actor="tester", set_search_attributes=False),
        id=f"deploy-{uuid.uuid4()}",
        task_queue=tq,
        result_type=DeployResult,
        **kw,
    )
    return await deployment_result(handle)


async def status_when(
    handle: WorkflowHandle, cond: Callable[[DeployStatus], bool], what: str, timeout: float = 10
) -> DeployStatus:
    """Query the status until ``cond`` holds (queries do not skip time: the run stays put)."""

    async def probe() -> DeployStatus | None:
        st: DeployStatus = await handle.query(DeploymentWorkflow.status)
        return st if cond(st) else None

    return await wait_until_async(probe, timeout, what)


def worker(env: WorkflowEnvironment, fake: FakePlatform) -> tuple[Worker, str]:
    tq = f"tq-{uuid.uuid4()}"
    return (
        Worker(
            env.client,
            task_queue=tq,
            workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
            activities=fake.activities(),
        ),
        tq,
    )


async def test_first_release_then_canary_with_hours_of_pauses(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform()
    w, tq = worker(ts_env, fake)
    async with w:
        first = await run_deploy(ts_env, fake, spec("v1"), tq)
        assert first.outcome == "promoted" and first.previous_version is None
        assert fake.weights == {"v1": 100}
        # 8h30m of pauses and analysis windows: the time-skipping server fires the timers
        res = await run_deploy(ts_env, fake, spec("v2"), tq)
    assert res.outcome == "promoted", res.reason
    assert res.previous_version == "v1"
    assert fake.weights == {"v2": 100}
    assert "v1" not in fake.running
    assert fake.analysis_calls == 3
    traffic = [op for op in fake.ops if op[0] == "traffic"]
    assert ("traffic", repr([("v1", 80), ("v2", 20)])) in traffic
    assert ("traffic", repr([("v1", 40), ("v2", 60)])) in traffic
    assert [r.status for r in fake.releases if r.version == "v2"] == [
        "intent",
        "in_progress",
        "promoted",
    ]


async def test_bad_canary_rolls_back_to_stable(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform(bad_versions={"v3"})
    w, tq = worker(ts_env, fake)
    async with w:
        await run_deploy(ts_env, fake, spec("v1"), tq)
        res = await run_deploy(ts_env, fake, spec("v3"), tq)
    assert res.outcome == "rolled_back"
    assert "analysis failed" in res.reason
    assert res.rollback_workflow_id == "rollback-shop-prod-from-v3"
    assert fake.weights == {"v1": 100}
    assert set(fake.running) == {"v1"}
    assert [r.status for r in fake.releases if r.version == "v3"][-1] == "rolled_back"
    st = [s for s in res.steps if s.kind == "analysis"][0]
    assert st.outcome == "failed"


async def test_abort_mid_pause_compensates(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform()
    w, tq = worker(ts_env, fake)
    async with w:
        await run_deploy(ts_env, fake, spec("v1"), tq)
        handle = await ts_env.client.start_workflow(
            DeploymentWorkflow.run,
            DeployInput(spec=spec("v2"), actor="tester", set_search_attributes=False),
            id=f"deploy-{uuid.uuid4()}",
            task_queue=tq,
        )
        # wait until the canary holds 20% and the 2h pause is running
        st = await status_when(handle, lambda st: st.phase == "pause", "the 2h pause")
        assert st.weights == {"v1": 80, "v2": 20}
        await handle.signal(
            DeploymentWorkflow.abort, ControlInput(identity="alice", reason="looks wrong")
        )
        res = await deployment_result(handle)
    assert res.outcome == "aborted"
    assert "alice" in res.reason
    assert fake.weights == {"v1": 100}
    assert set(fake.running) == {"v1"}
    # the abort and who asked for it land in the hash-chained audit log
    aborts = [a for a in fake.audits if a.action == "deployment.abort"]
    assert len(aborts) == 1 and aborts[0].actor == "alice"
    assert aborts[0].detail["reason"] == "looks wrong"


async def test_approval_gate_waits_records_who_and_rejects_strangers(
    ts_env: WorkflowEnvironment,
) -> None:
    fake = FakePlatform()
    w, tq = worker(ts_env, fake)
    steps = """
      - set_weight: 50
      - pause: {timeout: 4h}
"""
    s = spec("v2", steps, approvals="{approvers: [alice, bob]}")
    async with w:
        await run_deploy(ts_env, fake, spec("v1"), tq)
        handle = await ts_env.client.start_workflow(
            DeploymentWorkflow.run,
            DeployInput(spec=s, actor="tester", set_search_attributes=False),
            id=f"deploy-{uuid.uuid4()}",
            task_queue=tq,
        )
        st = await status_when(handle, lambda st: st.waiting_for_approval, "the approval gate")
        assert st.weights == {"v1": 50, "v2": 50}
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(
                DeploymentWorkflow.approve, ApproveInput(identity="mallory")
            )
        assert "may not approve" in str(err.value.cause)
        ok = await handle.execute_update(DeploymentWorkflow.approve, ApproveInput(identity="bob"))
        assert ok.accepted
        res = await deployment_result(handle)
    assert res.outcome == "promoted"
    pause = [x for x in res.steps if x.kind == "pause"][0]
    assert pause.outcome == "approved by bob"


async def test_approval_timeout_rolls_back(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform()
    w, tq = worker(ts_env, fake)
    steps = """
      - set_weight: 10
      - pause: {until_approved: true, timeout: 3h}
"""
    async with w:
        await run_deploy(ts_env, fake, spec("v1"), tq)
        res = await run_deploy(ts_env, fake, spec("v2", steps), tq)
    assert res.outcome == "rolled_back"
    assert "no approval" in res.reason
    assert fake.weights == {"v1": 100}


async def test_pause_and_resume_hold_the_rollout(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform()
    w, tq = worker(ts_env, fake)
    steps = """
      - set_weight: 10
      - pause: {duration: 1m}
      - set_weight: 50
"""
    async with w:
        await run_deploy(ts_env, fake, spec("v1"), tq)
        handle = await ts_env.client.start_workflow(
            DeploymentWorkflow.run,
            DeployInput(spec=spec("v2", steps), actor="t", set_search_attributes=False),
            id=f"deploy-{uuid.uuid4()}",
            task_queue=tq,
        )
        await handle.signal(DeploymentWorkflow.pause, ControlInput(identity="carol"))
        await ts_env.sleep(timedelta(hours=5))
        st = await handle.query(DeploymentWorkflow.status)
        assert st.outcome == "running" and st.paused
        await handle.signal(DeploymentWorkflow.resume, ControlInput(identity="carol"))
        res = await deployment_result(handle)
    assert res.outcome == "promoted"


async def test_validation_failure_applies_nothing(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform()
    w, tq = worker(ts_env, fake)
    async with w:
        with pytest.raises(WorkflowFailureError) as err:
            await run_deploy(ts_env, fake, spec("v9", labels="{reject: 'yes'}"), tq)
    assert "validation failed" in str(err.value.cause)
    assert fake.ops == []


async def test_failed_apply_of_canary_rolls_back(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform()
    w, tq = worker(ts_env, fake)
    async with w:
        await run_deploy(ts_env, fake, spec("v1"), tq)
        fake.fail_apply = True
        with pytest.raises(WorkflowFailureError):
            await run_deploy(ts_env, fake, spec("v2"), tq)
    assert fake.weights == {"v1": 100}


async def test_cancel_mid_analysis_compensates(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform()
    w, tq = worker(ts_env, fake)
    async with w:
        await run_deploy(ts_env, fake, spec("v1"), tq)
        handle = await ts_env.client.start_workflow(
            DeploymentWorkflow.run,
            DeployInput(spec=spec("v2"), actor="t", set_search_attributes=False),
            id=f"deploy-{uuid.uuid4()}",
            task_queue=tq,
        )
        st = await status_when(handle, lambda st: st.phase == "pause", "the 2h pause")
        assert st.weights == {"v1": 80, "v2": 20} and fake.analysis_calls == 0
        # past the pause (2h) and the first analysis interval (10m), before the second
        await ts_env.sleep(timedelta(hours=2, minutes=15))
        st = await status_when(
            handle,
            lambda st: st.phase == "analysis" and st.last_analysis is not None,
            "the first analysis result",
        )
        assert fake.analysis_calls == 1 and st.weights == {"v1": 80, "v2": 20}
        await handle.cancel()
        res = await deployment_result(handle)
    assert res.outcome == "aborted"
    assert fake.analysis_calls == 1  # cancelled mid-analysis: no further interval ran
    assert fake.weights == {"v1": 100}


async def test_blue_green_and_rolling(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform()
    w, tq = worker(ts_env, fake)
    base = "service: shop\nenvironment: prod\nartifact: {command: [x]}\n"
    async with w:
        await run_deploy(ts_env, fake, parse_spec(base + "version: v1\n"), tq)
        bg = parse_spec(
            base
            + "version: v2\nstrategy: {type: blue_green, blue_green: {auto_promote_after: 1h}}\n"
        )
        r = await run_deploy(ts_env, fake, bg, tq)
        assert r.outcome == "promoted" and fake.weights == {"v2": 100}
        roll = parse_spec(
            base
            + "version: v3\nreplicas: 4\nstrategy: {type: rolling, rolling: {max_surge: 1, step_pause: 5m}}\n"
        )
        r = await run_deploy(ts_env, fake, roll, tq)
    assert r.outcome == "promoted" and fake.weights == {"v3": 100}
    weights = [op[1] for op in fake.ops if op[0] == "traffic"]
    assert repr([("v2", 75), ("v3", 25)]) in weights


async def test_a_long_deployment_keeps_its_history_bounded(ts_env: WorkflowEnvironment) -> None:
    """The longest canary a spec allows (100 steps: set_weight and hour-long pauses, 49 h of
    timers) stays far below Temporal's 10,240-event warning; a 101st step is refused."""
    steps = "".join(
        f"      - set_weight: {1 + i % 98}\n      - pause: {{duration: 1h}}\n" for i in range(50)
    )
    fake = FakePlatform()
    w, tq = worker(ts_env, fake)
    async with w:
        await run_deploy(ts_env, fake, spec("v1"), tq)
        wid = f"deploy-{uuid.uuid4()}"
        handle = await ts_env.client.start_workflow(
            DeploymentWorkflow.run,
            DeployInput(spec=spec("v2", steps), actor="tester", set_search_attributes=False),
            id=wid,
            task_queue=tq,
            result_type=DeployResult,
        )
        res = await deployment_result(handle)
        events = [e async for e in ts_env.client.get_workflow_handle(wid).fetch_history_events()]
    assert res.outcome == "promoted"
    assert len(events) < 10_240 / 4, len(events)
    with pytest.raises(SpecError, match="steps"):
        spec("v3", steps + "      - set_weight: 99\n")
