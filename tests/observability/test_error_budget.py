"""Error-budget policy and approvals with authority (time-skipping server, fake
platform, the real audit activity on a SQLite ledger): a spent budget makes the
deployment wait for an override; non-approvers are rejected by the Update validator
and the rejection is audited; accepted approvals/overrides are audited by the
workflow; the hash chain verifies."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from activities.settings import Settings
from activities.slo import SloActivities, budget_from_series
from code_foundation.names import A
from tests.observability.helpers import canary_spec, fake_worker
from tests.workflows.fakes import FakePlatform
from workers.cli.approvals import approve
from workflows.client import deployment_result, execute_deployment
from workflows.deployment import DeploymentWorkflow
from workflows.models import DeployInput, DeployResult, DeployStatus
from workflows.slo import BudgetInput, BudgetResult

POLICY = """error_budget:
  slo: shop-availability
  objective: 0.99
  override_approvers: [sre-lead]
  override_timeout: 6h
approvals:
  approvers: [alice]
"""
PAUSE = """
      - set_weight: 20
      - pause: {until_approved: true, timeout: 3h}
      - set_weight: 60
"""


def budget_fake(remaining: float) -> object:
    @activity.defn(name=A.BUDGET)
    async def error_budget(inp: BudgetInput) -> BudgetResult:
        return BudgetResult(
            slo=inp.slo, remaining=remaining, firing=["3600s/300s 14.4x"], source="fake"
        )

    return error_budget


async def _wait_status(handle, pred, timeout: float = 20.0) -> DeployStatus:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        st = await handle.query(DeploymentWorkflow.status)
        if pred(st):
            return st
        assert asyncio.get_running_loop().time() < deadline, st
        await asyncio.sleep(0.1)


async def test_spent_budget_waits_for_audited_override(
    ts_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path)
    ledger = Ledger(settings.effective_ledger_url())
    slo_acts = SloActivities(settings, ledger=ledger)
    fake = FakePlatform()
    w, tq = fake_worker(ts_env.client, fake, extra=[budget_fake(-0.25), slo_acts.audit])
    client = ts_env.client
    async with w:
        first = await execute_deployment(
            client,
            DeploymentWorkflow.run,
            DeployInput(spec=canary_spec("v1"), actor="dev", set_search_attributes=False),
            id=f"eb-{uuid.uuid4()}",
            task_queue=tq,
            result_type=DeployResult,
        )
        assert first.outcome == "promoted"
        spec = canary_spec("v2", extra=POLICY, steps=PAUSE)
        handle = await client.start_workflow(
            DeploymentWorkflow.run,
            DeployInput(spec=spec, actor="dev", set_search_attributes=False),
            id=f"eb-{uuid.uuid4()}",
            task_queue=tq,
            result_type=DeployResult,
        )
        st = await _wait_status(handle, lambda s: s.waiting_for_override)
        assert st.error_budget_remaining == -0.25 and "error budget" in st.reason
        assert ("apply", "v2") not in fake.ops  # nothing applied while the budget is spent

        ok, msg = await approve(client, settings, handle.id, "mallory", "ship it", override=True)
        assert not ok and "may not override" in msg
        ok, msg = await approve(
            client, settings, handle.id, "alice", override=True
        )  # approver, not an overrider
        assert not ok and "may not override" in msg
        ok, msg = await approve(
            client, settings, handle.id, "sre-lead", "hotfix for INC-42", override=True
        )
        assert ok, msg
        st = await _wait_status(handle, lambda s: s.waiting_for_approval)
        ok, msg = await approve(client, settings, handle.id, "mallory")
        assert not ok and "may not approve" in msg
        ok, msg = await approve(client, settings, handle.id, "alice", "looks good")
        assert ok, msg
        res = await deployment_result(handle)
    assert res.outcome == "promoted", res.reason
    gate = next(s for s in res.steps if s.kind == "error_budget")
    assert gate.outcome == "overridden by sre-lead"

    records = ledger.audit_records()
    actions = [(r.actor, r.action) for r in records]
    assert actions == [
        ("mallory", "deployment.override_rejected"),
        ("alice", "deployment.override_rejected"),
        ("sre-lead", "deployment.override"),
        ("mallory", "deployment.approval_rejected"),
        ("alice", "deployment.approve"),
    ]
    assert "INC-42" in records[2].detail_json and handle.id in records[2].detail_json
    assert records[2].subject == "shop/prod@v2"
    assert ledger.verify_audit() is None


async def test_budget_gate_passes_or_times_out(ts_env: WorkflowEnvironment) -> None:
    for remaining, expect in ((0.6, "promoted"), (0.0, "timeout")):
        fake = FakePlatform()
        w, tq = fake_worker(ts_env.client, fake, extra=[budget_fake(remaining)])
        async with w:
            await execute_deployment(
                ts_env.client,
                DeploymentWorkflow.run,
                DeployInput(spec=canary_spec("v1"), set_search_attributes=False),
                id=f"eb-{uuid.uuid4()}",
                task_queue=tq,
                result_type=DeployResult,
            )
            run = execute_deployment(
                ts_env.client,
                DeploymentWorkflow.run,
                DeployInput(spec=canary_spec("v2", extra=POLICY), set_search_attributes=False),
                id=f"eb-{uuid.uuid4()}",
                task_queue=tq,
                result_type=DeployResult,
            )
            if expect == "promoted":
                res = await run
                assert res.outcome == "promoted"
                assert next(s for s in res.steps if s.kind == "error_budget").outcome == "ok"
            else:  # 6h pass in seconds; nothing was applied, so the run fails
                with pytest.raises(WorkflowFailureError) as err:
                    await run
                assert "no override arrived" in str(err.value.cause)
                assert ("apply", "v2") not in fake.ops


def test_budget_from_series_uses_burn_rates() -> None:
    now = 1_000_000.0
    ts = [now - 3600 * i for i in range(48)]
    # 5% errors everywhere against a 99% objective: 5x burn, budget overspent 4x
    res = budget_from_series("s", 0.99, 30 * 86400, ts, [950.0] * 48, [1000.0] * 48, now=now)
    assert res.remaining == pytest.approx(-4.0)
    assert any("86400s/7200s" in f for f in res.firing)  # 1d/2h 3x fires
    assert not any("3600s/300s" in f for f in res.firing)  # 1h/5m 14.4x does not
    healthy = budget_from_series("s", 0.99, 30 * 86400, ts, [999.5] * 48, [1000.0] * 48, now=now)
    assert healthy.remaining == pytest.approx(0.95) and healthy.firing == []


async def test_error_budget_activity_from_router_counts(tmp_path: Path) -> None:
    class Sample:
        def __init__(self, count: int, errors: int) -> None:
            self.count, self.errors = count, errors

    class Router:
        async def fetch_samples(self, service, env, since, until):  # type: ignore[no-untyped-def]
            assert until - since == pytest.approx(86400)
            return {"v1": Sample(900, 18), "v2": Sample(100, 2)}

    acts = SloActivities(Settings(state_dir=tmp_path), platform=Router())
    from temporalio.testing import ActivityEnvironment

    res = await ActivityEnvironment().run(
        acts.error_budget,
        BudgetInput(
            service="shop", environment="prod", slo="x", objective=0.99, window_seconds=86400
        ),
    )
    assert res.source == "router" and res.events == 1000
    assert res.remaining == pytest.approx(1 - 0.02 / 0.01)
    from activities.observability import METRICS

    assert METRICS.error_budget.labels(
        service="shop", environment="prod", slo="x"
    )._value.get() == pytest.approx(-1.0)
