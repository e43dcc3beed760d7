"""The starter check of a release, on the real dev server with the real local OIDC
issuer and real tokens, from a raw SDK client: the starter needs ``deployer`` on the
service in *every* environment the pipeline touches, checked one environment at a time
before anything is applied.

A starter who holds the role in staging only, one without any role, one with a forged
token and one with none: each release fails ``IdentityDenied`` and no child deployment
was ever started (its history has no child start); every decision is a record of the
audit chain (the staging-only starter: ``allowed`` for staging, then ``denied`` for
prod). A starter allowed everywhere passes (one ``allowed`` record per environment) and
the release goes on to start its first child deployment, where the test stops it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.identity import identity_activities
from activities.slo import SloActivities
from tests.identity.issuer import Issuer, identity_settings
from tests.identity.test_identity_workflow import Stack, forged
from tests.waiting import wait_until_async
from workflows import identity_gate
from workflows.pipeline_spec import parse_pipeline
from workflows.release import ReleaseWorkflow
from workflows.release_models import ReleaseInput

pytestmark = pytest.mark.integration

POLICY = """
version: 1
bindings:
  - {role: deployer, groups: [sre], environments: [staging, prod]}
  - {role: deployer, groups: [devs], environments: [staging]}
  - {role: viewer, groups: [viewers], environments: ["*"]}
"""
PIPELINE = """
service: shop
deployment:
  artifact: {command: ["{python}", "svc.py"]}
stages:
  - name: staging
    targets: [{environment: staging}]
  - name: prod
    targets: [{environment: prod, cluster: eu-1}, {environment: prod, cluster: us-1}]
"""


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    iss = Issuer(tmp_path_factory.mktemp("oidc-release")).start()
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
            workflows=[ReleaseWorkflow],  # no deployment: a child that started would hang
            activities=[slo.audit, *identity_activities(settings)],
        ):
            yield Stack(dev_env, issuer, settings, None, tq)  # type: ignore[arg-type]
    finally:
        identity_gate.enforce(False)


async def start(s: Stack, token: str | None) -> WorkflowHandle[Any, Any]:
    return await s.env.client.start_workflow(
        ReleaseWorkflow.run,
        ReleaseInput(
            pipeline=parse_pipeline(PIPELINE, now=datetime.now(UTC)),
            version="v2",
            actor="self-asserted",
            token=token,
            set_search_attributes=False,
        ),
        id=f"release-shop-v2-{uuid.uuid4().hex[:8]}",
        task_queue=s.tq,
    )


async def children(handle: WorkflowHandle[Any, Any]) -> list[str]:
    history = await handle.fetch_history()
    return [
        e.start_child_workflow_execution_initiated_event_attributes.workflow_id
        for e in history.events
        if e.HasField("start_child_workflow_execution_initiated_event_attributes")
    ]


async def refused(handle: WorkflowHandle[Any, Any]) -> str:
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert getattr(info.value.cause, "type", None) == "IdentityDenied", info.value.cause
    assert await children(handle) == []  # nothing started
    return str(info.value.cause)


async def test_a_release_checks_its_starter_in_every_environment(stack: Stack) -> None:
    s = stack
    sre = s.issuer.token("alice", ["sre"])
    for token, why in [
        (s.issuer.token("dan", ["devs"]), "dan@example.com lacks role deployer for shop in prod"),
        (
            s.issuer.token("carol", ["viewers"]),
            "carol@example.com lacks role deployer for shop in staging",
        ),
        (None, "no token"),
        (forged(sre), "signature does not verify"),
    ]:
        assert why in await refused(await start(s, token)), why
    decisions = [(d[0], d[1], d[2]) for d in s.decisions()]
    assert decisions == [
        ("dan@example.com", "identity.release", "allowed"),  # staging
        ("dan@example.com", "identity.release", "denied"),  # prod: the release stops here
        ("carol@example.com", "identity.release", "denied"),
        ("unverified", "identity.release", "denied"),
        ("unverified", "identity.release", "denied"),
    ], decisions

    h = await start(s, sre)

    async def started() -> list[str] | None:
        return await children(h) or None

    try:
        first: list[str] = await wait_until_async(started, 30, "first child started")  # type: ignore[arg-type]
    finally:
        await h.terminate("test: the starter check passed; no worker runs deployments")
    assert first == ["deploy-shop-staging-v2"], first
    for wid in first:  # the child never ran (no worker for it): stop it too
        await s.env.client.get_workflow_handle(wid).terminate("test over")
    allowed = [(d[0], d[1], d[2]) for d in s.decisions()][5:]
    assert allowed == [("alice@example.com", "identity.release", "allowed")] * 2, (
        allowed
    )  # staging, prod
    assert s.ledger().verify_audit() is None  # the chain still verifies
