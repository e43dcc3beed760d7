"""Approve racing abort, and duplicate approvals, on the time-skipping server.

- approve and abort delivered together (both in one workflow task, the worker
  being away when they arrive; and an approve whose audit is still in flight when
  the abort lands): abort wins — the deployment is aborted and rolled back, the
  approve reports it was not applied — both are audited, and the history replays;
- a duplicate approve: the same update id twice is one approval (the server
  dedups it); two approvals of one gate (a double click) count once and never
  leak into the next gate, whose approval is still awaited."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from code_foundation.names import A, W
from tests.waiting import wait_until_async
from tests.workflows.fakes import FakePlatform
from workflows.client import data_converter, deployment_result
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.models import ApproveInput, ControlInput, DeployInput, DeployResult, DeployStatus
from workflows.rollback import RollbackWorkflow
from workflows.slo import AuditInput, AuditResult
from workflows.spec import DeploymentSpec, parse_spec

TWO_GATES = """
      - set_weight: 30
      - pause: {until_approved: true, timeout: 4h}
      - set_weight: 60
      - pause: {until_approved: true, timeout: 4h}
"""


def spec(version: str, steps: str = "", **extra: str) -> DeploymentSpec:
    more = "".join(f"{k}: {v}\n" for k, v in extra.items())
    strategy = (
        f"strategy:\n  type: canary\n  canary:\n    steps:\n{steps}"
        if steps
        else "strategy: {type: rolling}\n"
    )
    return parse_spec(
        f"service: shop\nenvironment: prod\nversion: {version}\n"
        f'artifact: {{command: ["{{python}}", "svc.py"]}}\n{more}{strategy}'
    )


async def status_when(handle: WorkflowHandle[Any, Any], cond: Any, what: str) -> DeployStatus:
    async def probe() -> DeployStatus | None:
        st: DeployStatus = await handle.query(DeploymentWorkflow.status)
        return st if cond(st) else None

    return await wait_until_async(cast(Callable[[], Awaitable[DeployStatus]], probe), 10, what)


class Audits:
    """The audit activity, held at a gate the test opens (an audit write in flight)."""

    def __init__(self, fake: FakePlatform) -> None:
        self.fake = fake
        self.hold: set[str] = set()  # actions, or "action:actor"
        self.arrived: dict[str, asyncio.Event] = {}
        self.release = asyncio.Event()

    async def wait_arrived(self, what: str) -> None:
        await asyncio.wait_for(self.arrived.setdefault(what, asyncio.Event()).wait(), 10)

    def activities(self) -> list[Any]:
        @activity.defn(name=A.AUDIT)
        async def audit(inp: AuditInput) -> AuditResult:
            for what in (inp.action, f"{inp.action}:{inp.actor}"):
                self.arrived.setdefault(what, asyncio.Event()).set()
            if {inp.action, f"{inp.action}:{inp.actor}"} & self.hold:
                await self.release.wait()
            self.fake.audits.append(inp)
            return AuditResult(seq=len(self.fake.audits) - 1, hash="0" * 64)

        others = [
            a
            for a in self.fake.activities()
            if activity._Definition.must_from_callable(a).name != A.AUDIT
        ]
        return [*others, audit]


def worker(env: WorkflowEnvironment, audits: Audits, tq: str) -> Worker:
    return Worker(
        env.client,
        task_queue=tq,
        workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
        activities=audits.activities(),
        max_cached_workflows=0,  # no sticky queue: a stopped worker strands no task
    )


async def start(env: WorkflowEnvironment, tq: str, steps: str) -> WorkflowHandle[Any, Any]:
    s = spec("v2", steps, approvals="{approvers: [alice, bob]}")
    return await env.client.start_workflow(
        DeploymentWorkflow.run,
        DeployInput(spec=s, actor="tester", set_search_attributes=False),
        id=f"deploy-{uuid.uuid4()}",
        task_queue=tq,
    )


async def first_release(env: WorkflowEnvironment, tq: str) -> None:
    handle = await env.client.start_workflow(
        W.DEPLOYMENT,
        DeployInput(spec=spec("v1"), actor="tester", set_search_attributes=False),
        id=f"deploy-{uuid.uuid4()}",
        task_queue=tq,
        result_type=DeployResult,
    )
    res = await deployment_result(handle)
    assert res.outcome == "promoted"


async def replays(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]) -> None:
    history = await handle.fetch_history()
    await Replayer(
        workflows=[DeploymentWorkflow, RollbackWorkflow], data_converter=data_converter()
    ).replay_workflow(history)


def actions(fake: FakePlatform) -> list[tuple[str, str]]:
    return [(a.action, a.actor) for a in fake.audits if a.action != "deployment.override"]


async def test_approve_and_abort_in_one_task_abort_wins(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform()
    audits = Audits(fake)
    tq = f"tq-{uuid.uuid4()}"
    async with worker(ts_env, audits, tq):
        await first_release(ts_env, tq)
        handle = await start(ts_env, tq, TWO_GATES)
        await status_when(handle, lambda st: st.waiting_for_approval, "the first gate")
    # the worker is away: both arrive before any workflow task runs
    await handle.signal(DeploymentWorkflow.abort, ControlInput(identity="alice", reason="no"))
    approve = asyncio.create_task(
        handle.execute_update(DeploymentWorkflow.approve, ApproveInput(identity="bob"))
    )
    await asyncio.sleep(0.5)
    async with worker(ts_env, audits, tq):
        ok = await approve
        res: DeployResult = await deployment_result(handle)
        status = await handle.query(DeploymentWorkflow.status)
    assert res.outcome == "aborted" and "alice" in res.reason
    assert not ok.accepted and "abort" in ok.message
    assert fake.weights == {"v1": 100} and set(fake.running) == {"v1"}
    assert ("deployment.approve", "bob") in actions(fake)
    assert ("deployment.abort", "alice") in actions(fake)
    assert "bob" not in status.approvals
    await replays(ts_env, handle)


async def test_abort_while_approve_is_audited_abort_wins(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform()
    audits = Audits(fake)
    audits.hold.add("deployment.approve")
    tq = f"tq-{uuid.uuid4()}"
    async with worker(ts_env, audits, tq):
        await first_release(ts_env, tq)
        handle = await start(ts_env, tq, TWO_GATES)
        await status_when(handle, lambda st: st.waiting_for_approval, "the first gate")
        approve = asyncio.create_task(
            handle.execute_update(DeploymentWorkflow.approve, ApproveInput(identity="bob"))
        )
        await asyncio.wait_for(
            audits.arrived.setdefault("deployment.approve", asyncio.Event()).wait(), 10
        )
        await handle.signal(DeploymentWorkflow.abort, ControlInput(identity="alice", reason="no"))
        await status_when(handle, lambda st: "abort" in st.reason, "the abort noted")
        audits.release.set()
        ok = await approve
        res: DeployResult = await deployment_result(handle)
    assert res.outcome == "aborted"
    assert not ok.accepted and "abort" in ok.message
    assert fake.weights == {"v1": 100}
    assert actions(fake).count(("deployment.approve", "bob")) == 1
    assert ("deployment.abort", "alice") in actions(fake)
    await replays(ts_env, handle)


async def test_duplicate_approve_counts_once_and_never_passes_the_next_gate(
    ts_env: WorkflowEnvironment,
) -> None:
    fake = FakePlatform()
    audits = Audits(fake)
    tq = f"tq-{uuid.uuid4()}"
    async with worker(ts_env, audits, tq):
        await first_release(ts_env, tq)
        handle = await start(ts_env, tq, TWO_GATES)
        await status_when(handle, lambda st: st.waiting_for_approval, "the first gate")
        # a client retry: the same update id twice is one approval
        same = [
            handle.execute_update(
                DeploymentWorkflow.approve, ApproveInput(identity="bob"), id="approve-gate-1"
            )
            for _ in range(2)
        ]
        a, b = await asyncio.gather(*same)
        assert a.accepted and b.accepted and a.message == b.message
        st = await status_when(
            handle, lambda st: st.waiting_for_approval and st.weights.get("v2") == 60, "gate 2"
        )
        assert st.approvals == ["bob"]
    assert actions(fake).count(("deployment.approve", "bob")) == 1

    # a double click at gate 2 (two update ids, one activation): counted once
    audits.hold.add("deployment.approve")
    audits.release.clear()
    first = asyncio.create_task(
        handle.execute_update(DeploymentWorkflow.approve, ApproveInput(identity="alice"))
    )
    second = asyncio.create_task(
        handle.execute_update(DeploymentWorkflow.approve, ApproveInput(identity="alice"))
    )
    await asyncio.sleep(0.5)
    async with worker(ts_env, audits, tq):
        await asyncio.sleep(0.5)
        audits.release.set()
        results = await asyncio.gather(first, second)
        res: DeployResult = await deployment_result(handle)
        status = await handle.query(DeploymentWorkflow.status)
    assert sorted(r.accepted for r in results) == [False, True]
    assert "already approved" in next(r.message for r in results if not r.accepted)
    assert res.outcome == "promoted"
    assert [s.outcome for s in res.steps if s.kind == "pause"] == [
        "approved by bob",
        "approved by alice",
    ]
    assert status.approvals == ["bob", "alice"]
    await replays(ts_env, handle)


async def test_late_approval_never_passes_the_next_gate(ts_env: WorkflowEnvironment) -> None:
    """Two approvers at gate 1; the slower one's approval lands after gate 1 passed and
    gate 2 waits: it is not applied, and gate 2 still waits for its own approval."""
    fake = FakePlatform()
    audits = Audits(fake)
    audits.hold.add("deployment.approve:alice")
    tq = f"tq-{uuid.uuid4()}"
    async with worker(ts_env, audits, tq):
        await first_release(ts_env, tq)
        handle = await start(ts_env, tq, TWO_GATES)
        await status_when(handle, lambda st: st.waiting_for_approval, "the first gate")
        alice = asyncio.create_task(
            handle.execute_update(DeploymentWorkflow.approve, ApproveInput(identity="alice"))
        )
        await audits.wait_arrived("deployment.approve:alice")
        ok = await handle.execute_update(DeploymentWorkflow.approve, ApproveInput(identity="bob"))
        assert ok.accepted
        await status_when(
            handle, lambda st: st.waiting_for_approval and st.weights.get("v2") == 60, "gate 2"
        )
        audits.release.set()
        late = await alice
        assert not late.accepted and "already approved by bob" in late.message
        st = await handle.query(DeploymentWorkflow.status)
        assert st.waiting_for_approval and st.approvals == ["bob"]
        audits.hold.clear()
        again = await handle.execute_update(
            DeploymentWorkflow.approve, ApproveInput(identity="alice")
        )
        assert again.accepted
        res: DeployResult = await deployment_result(handle)
    assert res.outcome == "promoted"
    assert [s.outcome for s in res.steps if s.kind == "pause"] == [
        "approved by bob",
        "approved by alice",
    ]
    await replays(ts_env, handle)
