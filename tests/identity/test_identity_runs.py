"""The starter check of chaos experiments and soak tests, on the real dev server with the
real local OIDC issuer and real tokens, from a raw SDK client (no codectl).

A starter without ``chaos-operator`` (or ``soak-operator``) on the service/environment,
with a forged token, or with none, fails the run before anything runs: the worker has no
chaos or soak activity registered at all, so a run that slipped past the check could not
even discover a target; each denial is a ``denied`` record in the audit chain. An allowed
starter is recorded ``allowed`` and the run goes on to its first real step (discovery /
target resolution), where the test stops it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.identity import identity_activities
from activities.slo import SloActivities
from chaos.messages import ChaosRunInput
from chaos.model import Experiment, parse_experiment
from loadtest.soak_models import SoakInput, SoakPlan, SoakTarget, load_plan
from tests.identity.issuer import Issuer, identity_settings
from tests.identity.test_identity_workflow import Stack, forged
from tests.waiting import wait_until_async
from workflows import identity_gate
from workflows.chaos import ChaosExperimentWorkflow
from workflows.soak import SoakTestWorkflow

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
POLICY = """
version: 1
protected_environments: [staging]
bindings:
  - {role: chaos-operator, groups: [sre], environments: [staging]}
  - {role: soak-operator, groups: [sre], environments: [staging]}
  - {role: viewer, groups: [viewers], environments: ["*", staging]}
"""
EXPERIMENT = """
title: kill one shop instance
steady_state:
  title: shop answers
  probes:
    - {name: shop, url: "http://127.0.0.1:9/work", tolerance: {type: status, status: [200]}}
method:
  - action:
      name: kill-one
      fault: kill_instance
      target: {service: shop, environment: staging, mode: one}
"""


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    iss = Issuer(tmp_path_factory.mktemp("oidc-runs")).start()
    try:
        yield iss
    finally:
        iss.stop()


@pytest_asyncio.fixture
async def stack(
    dev_env: WorkflowEnvironment, issuer: Issuer, tmp_path: Path
) -> AsyncIterator[Stack]:
    settings = identity_settings(tmp_path, issuer, POLICY)
    slo = SloActivities(settings)
    tq = f"tq-{uuid.uuid4()}"
    try:
        async with Worker(
            dev_env.client,
            task_queue=tq,
            workflows=[ChaosExperimentWorkflow, SoakTestWorkflow],
            activities=[slo.audit, *identity_activities(settings)],  # nothing else
        ):
            yield Stack(dev_env, issuer, settings, None, tq)  # type: ignore[arg-type]
    finally:
        identity_gate.enforce(False)


def plan() -> SoakPlan:
    demo = load_plan(EXAMPLES / "soak" / "demo-45s.yaml")
    return demo.model_copy(
        update={"name": "shop-soak", "target": SoakTarget(service="shop", environment="staging")}
    )


def experiment() -> Experiment:
    return parse_experiment(yaml.safe_load(EXPERIMENT))


async def start_chaos(s: Stack, token: str | None) -> WorkflowHandle[Any, Any]:
    return await s.env.client.start_workflow(
        ChaosExperimentWorkflow.run,
        ChaosRunInput(
            experiment=experiment(),
            actor="self-asserted",
            token=token,
            set_search_attributes=False,
        ),
        id=f"chaos-{uuid.uuid4()}",
        task_queue=s.tq,
    )


async def start_soak(s: Stack, token: str | None) -> WorkflowHandle[Any, Any]:
    return await s.env.client.start_workflow(
        SoakTestWorkflow.run,
        SoakInput(plan=plan(), actor="self-asserted", token=token),
        id=f"soak-{uuid.uuid4()}",
        task_queue=s.tq,
    )


async def refused(handle: WorkflowHandle[Any, Any]) -> str:
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert getattr(info.value.cause, "type", None) == "IdentityDenied", info.value.cause
    return str(info.value.cause)


async def reaches(handle: WorkflowHandle[Any, Any], activity_type: str) -> None:
    """The run got past its starter check: it scheduled ``activity_type`` (which no worker
    here serves); then it is stopped."""

    async def scheduled() -> bool:
        history = await handle.fetch_history()
        return any(
            e.activity_task_scheduled_event_attributes.activity_type.name == activity_type
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        )

    try:
        await wait_until_async(scheduled, 30, f"{activity_type} scheduled")
    finally:
        await handle.terminate("test: the starter check passed; nothing serves the next step")


@pytest.mark.parametrize("kind", ["chaos", "soak"])
async def test_chaos_and_soak_check_their_starter(stack: Stack, kind: str) -> None:
    s = stack
    start = start_chaos if kind == "chaos" else start_soak
    role = "chaos-operator" if kind == "chaos" else "soak-operator"
    sre = s.issuer.token("alice", ["sre"])
    for token, why in [
        (s.issuer.token("carol", ["viewers"]), f"lacks role {role}"),
        (None, "no token"),
        (forged(sre), "signature does not verify"),
    ]:
        assert why in await refused(await start(s, token)), why
    from code_foundation.names import CA, SoakA

    await reaches(await start(s, sre), CA.DISCOVER if kind == "chaos" else SoakA.RESOLVE)
    decisions = [(d[1], d[2]) for d in s.decisions()]
    assert decisions == [(f"identity.{kind}", "denied")] * 3 + [(f"identity.{kind}", "allowed")]
    assert s.ledger().verify_audit() is None  # the chain still verifies


def test_the_cli_sends_the_callers_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.cli.chaos_runs import run_input

    monkeypatch.setenv("CODE_TOKEN", "header.payload.signature")
    inp = run_input(experiment(), "alice")
    assert inp.token == "header.payload.signature"
    assert "header.payload" not in repr(inp)  # never in a log line or an exception
