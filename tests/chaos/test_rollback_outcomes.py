"""Honest rollback reports: a revert or rollback that finds nothing in place (the
fault was never injected, or is already gone) is ``nothing_to_revert``, not a
failure; "faults may still be in place" appears only when an injected fault could
not be reverted, and names it.

Workflow side on the time-skipping server (in-memory activities registered under the
real names); activity side against a real local agent running the demo service."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.chaos import ChaosActivities
from activities.faults import NothingToRevert
from activities.faults.local import LocalFaults
from activities.settings import Settings
from chaos.blast import Target
from chaos.messages import ChaosRunInput, Journal, RevertInput, RevertResult, RollbackInput
from chaos.model import RollbackAction, parse_experiment
from code_foundation.names import CA
from tests.chaos.conftest import ENV, SVC
from tests.chaos.fakes import FakeChaos
from workflows.chaos import ChaosExperimentWorkflow


def experiment(rollback_version: str | None = None) -> Any:
    target: dict[str, Any] = {"service": "demo", "environment": "dev"}
    if rollback_version:
        target["version"] = rollback_version
    return parse_experiment(
        {
            "title": "kill one demo instance",
            "steady_state": {"probes": [{"name": "demo-up", "url": "http://127.0.0.1:9/"}]},
            "method": [
                {
                    "action": {
                        "name": "kill",
                        "fault": "kill_instance",
                        "target": {"service": "demo", "environment": "dev", "mode": "one"},
                    }
                }
            ],
            "rollbacks": [{"name": "restore-demo", "action": "restore", "target": target}],
            "controls": {"duration": "20s", "probe_interval": "10s", "rollback_attempts": 2},
        },
        "test",
    )


def with_outcomes(
    fake: FakeChaos, revert: str = "reverted", rollback: str = "reverted", failing: str = ""
) -> list[Any]:
    """The fake's activities with revert/rollback answering the given outcomes
    (``failing``: "revert" or "rollback" always raises instead)."""

    @activity.defn(name=CA.REVERT)
    async def revert_act(inp: RevertInput) -> RevertResult:
        fake.revert_attempts += 1
        if failing == "revert":
            raise ApplicationError("agent unreachable", type="PlatformUnavailable")
        fake.active.discard(inp.key)
        return RevertResult(detail="instance already running", outcome=revert)  # type: ignore[arg-type]

    @activity.defn(name=CA.ROLLBACK)
    async def rollback_act(inp: RollbackInput) -> RevertResult:
        if failing == "rollback":
            raise ApplicationError("restore timed out", type="PlatformUnavailable")
        return RevertResult(detail="demo/dev v1 is not deployed", outcome=rollback)  # type: ignore[arg-type]

    keep = [a for a in fake.activities() if a.__name__ not in ("revert", "rollback")]
    return [*keep, revert_act, rollback_act]


async def run(env: WorkflowEnvironment, acts: list[Any], exp: Any) -> Any:
    tq = str(uuid.uuid4())
    async with Worker(
        env.client, task_queue=tq, workflows=[ChaosExperimentWorkflow], activities=acts
    ):
        h = await env.client.start_workflow(
            ChaosExperimentWorkflow.run,
            ChaosRunInput(experiment=exp, actor="pytest", set_search_attributes=False),
            id=f"chaos-{uuid.uuid4()}",
            task_queue=tq,
        )
        try:
            return await h.result(), None
        except WorkflowFailureError as e:
            journal: Journal = await h.query("status", result_type=Journal)
            return journal, e.cause


async def test_nothing_to_revert_is_not_a_failure(ts_env: WorkflowEnvironment) -> None:
    fake = FakeChaos()
    res, failure = await run(
        ts_env,
        with_outcomes(fake, revert="nothing_to_revert", rollback="nothing_to_revert"),
        experiment("v1"),
    )
    assert failure is None and res.status == "completed" and not res.journal.rollback_failed
    kinds = [e.kind for e in res.journal.rollbacks]
    assert kinds == ["nothing-to-revert", "nothing-to-revert"]
    assert "restore-demo: nothing to revert" in res.journal.rollbacks[1].message
    [f] = res.journal.faults
    assert f.revert_outcome == "nothing_to_revert" and f.reverted_at and not f.revert_error


async def test_a_reverted_fault_is_recorded_as_reverted(ts_env: WorkflowEnvironment) -> None:
    res, failure = await run(ts_env, with_outcomes(FakeChaos()), experiment())
    assert failure is None and res.status == "completed"
    assert [e.kind for e in res.journal.rollbacks] == ["revert", "rollback"]
    assert res.journal.faults[0].revert_outcome == "reverted"


async def test_a_fault_never_injected_is_nothing_to_revert(ts_env: WorkflowEnvironment) -> None:
    """The inject fails: the run fails for that reason, the revert of the fault that
    never landed is nothing to revert, and no rollback failure is claimed."""
    fake = FakeChaos(inject_error="instance not found")
    res, failure = await run(ts_env, with_outcomes(fake, revert="nothing_to_revert"), experiment())
    assert failure is None  # the run ends failed (the inject's reason), not RollbackFailed
    j = res.journal
    assert j.status == "failed" and not j.rollback_failed and "instance not found" in j.reason
    assert j.rollbacks[0].kind == "nothing-to-revert"
    assert j.faults[0].inject_error and j.faults[0].revert_outcome == "nothing_to_revert"


async def test_an_injected_fault_not_reverted_is_named(ts_env: WorkflowEnvironment) -> None:
    journal, failure = await run(ts_env, with_outcomes(FakeChaos(), failing="revert"), experiment())
    assert isinstance(failure, ApplicationError) and failure.type == "RollbackFailed"
    [f] = journal.faults
    msg = str(failure)
    assert f"faults may still be in place: kill_instance on {f.target.id}" in msg
    assert "agent unreachable" in msg
    assert f"codectl chaos report {journal.workflow_id}" in msg


async def test_a_failed_explicit_rollback_does_not_claim_faults_in_place(
    ts_env: WorkflowEnvironment,
) -> None:
    journal, failure = await run(
        ts_env, with_outcomes(FakeChaos(), failing="rollback"), experiment()
    )
    assert isinstance(failure, ApplicationError) and failure.type == "RollbackFailed"
    msg = str(failure)
    assert "may still be in place" not in msg
    assert "every injected fault was reverted" in msg and "restore-demo" in msg
    assert journal.rollback_failed and journal.faults[0].revert_outcome == "reverted"


# ------------------------------------------------------------------ real agent
@pytest.mark.integration
async def test_real_restore_of_a_version_not_running_is_nothing_to_revert(
    agent: dict[str, Any],
) -> None:
    faults = LocalFaults(agent["url"], agent["state"])
    got = await faults.restore(SVC, ENV, "v9", "k-restore")
    assert isinstance(got, NothingToRevert) and "v9 is not deployed" in got
    assert isinstance(await faults.restore("no-such-svc", ENV, None, "k2"), NothingToRevert)
    assert isinstance(await faults.restore(SVC, ENV, None, "k3"), NothingToRevert)  # all running
    v1 = Target(service=SVC, environment=ENV, version="v1", index=0)
    assert isinstance(await faults.revert("k4", "kill_instance", v1, {}), NothingToRevert)
    gone = Target(service=SVC, environment=ENV, version="v7", index=0)
    assert isinstance(await faults.revert("k5", "kill_instance", gone, {}), NothingToRevert)
    route = Target(unit="route", service=SVC, environment=ENV)
    assert isinstance(await faults.revert("k6", "latency", route, {}), NothingToRevert)


@pytest.mark.integration
async def test_real_rollback_activity_reports_nothing_to_revert(agent: dict[str, Any]) -> None:
    """Through the chaos activity (the workflow's view): the outcome field; and a killed
    instance restored is ``reverted``."""
    import os
    import signal

    import httpx

    acts = ChaosActivities(Settings(agent_url=agent["url"], state_dir=agent["state"]))
    rb = RollbackAction.model_validate(
        {"name": "r", "action": "restore", "target": {"service": SVC, "environment": ENV}}
    )
    from temporalio.testing import ActivityEnvironment

    aenv = ActivityEnvironment()
    res = await aenv.run(acts.rollback, RollbackInput(rollback=rb))
    assert res.outcome == "nothing_to_revert" and "already running" in res.detail
    async with httpx.AsyncClient() as c:
        data = (await c.get(f"{agent['url']}/v1/services/{SVC}/{ENV}")).json()
    os.kill(int(data["versions"]["v1"]["instances"][0]["pid"]), signal.SIGKILL)
    v1 = Target(service=SVC, environment=ENV, version="v1", index=0)
    inp = RevertInput(key="k-kill", fault="kill_instance", target=v1)
    res = await aenv.run(acts.revert, inp)
    assert res.outcome == "reverted" and "restored" in res.detail, res.detail
