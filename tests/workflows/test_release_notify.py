"""Notification events of a release, delivered by ``NotifyWorkflow`` children and the
real ``notify.deliver`` activity to a real HTTP receiver on loopback (platform: the
in-memory multi-cluster fake), on the dev server (real time: abandoned NotifyWorkflows
outlive their parent, which stops the time-skipping server from skipping).

A released pipeline of two stages sends, in order and each once, ``release.started``,
``release.stage_started`` / ``release.stage_finished`` (passed) per stage and
``release.finished`` (promoted), signed (HMAC-SHA256, verified here with the secret),
with stable ids ``<release id>/<run id>/<kind>/<seq>`` that are also in the release's
status. A release stopped by a spent error budget before prod: the prod stage finishes
``failed`` and the release ``rolled_back``; prod never gets a ``stage_started`` of a
deployment that ran (its cell stays pending)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.interceptor import ErrorInterceptor
from activities.notify import NotifyActivities
from activities.settings import Settings
from tests.receiver import Receiver
from tests.workflows.release_fakes import MultiFake
from tests.workflows.test_notify import KEY, arrived, verified
from tests.workflows.test_release import pipeline
from tests.workflows.test_release_outcome import BUDGET_BEFORE_PROD, fake
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.notify import NotifyWorkflow
from workflows.release import ReleaseWorkflow
from workflows.release_client import release_result
from workflows.release_models import ReleaseInput, ReleaseResult, ReleaseStatus
from workflows.rollback import RollbackWorkflow

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def notifying(url: str) -> Any:
    sinks = f"""
notifications:
  delivery: {{attempts: 2, backoff: 1s}}
  sinks:
    - {{name: hook, kind: webhook, url: "{url}/release", secret: "env:NOTIFY_TEST_KEY"}}
"""
    p = pipeline(BUDGET_BEFORE_PROD, deployment=sinks)
    return p


def worker(env: WorkflowEnvironment, f: MultiFake) -> tuple[Worker, str]:
    tq = f"tq-{uuid.uuid4()}"
    return (
        Worker(
            env.client,
            task_queue=tq,
            workflows=[
                ReleaseWorkflow,
                DeploymentWorkflow,
                RollbackWorkflow,
                ReleaseLaneWorkflow,
                NotifyWorkflow,
            ],
            activities=[*f.activities(), NotifyActivities(Settings()).deliver],
            interceptors=[ErrorInterceptor()],
        ),
        tq,
    )


async def run(env: WorkflowEnvironment, r: Receiver, spent: bool) -> tuple[Any, ReleaseResult]:
    w, tq = worker(env, fake(spent))
    async with w:
        h = await env.client.start_workflow(
            ReleaseWorkflow.run,
            ReleaseInput(
                pipeline=notifying(r.url), version="v2", actor="t", set_search_attributes=False
            ),
            id=f"release-shop-v2-{uuid.uuid4().hex[:8]}",
            task_queue=tq,
        )
        res = await release_result(h)
        st: ReleaseStatus = await h.query(ReleaseWorkflow.status)
        n = len(st.notifications)
        events = [verified(c) for c in await arrived(r, "/release", n)]
    ids = [rec.id for rec in st.notifications]
    run_id = (await h.describe()).run_id
    assert ids == [f"{h.id}/{run_id}/{e['kind']}/{i}" for i, e in enumerate(events, 1)], (
        ids,
        events,
    )
    assert [e["id"] for e in events] == ids  # in order, each once, the ids of the status
    return events, res


def shape(events: list[dict]) -> list[tuple[str, str | None, str]]:
    return [(e["kind"], e["outcome"], e["environment"]) for e in events]


async def test_a_released_pipeline_notifies_every_stage_with_stable_ids(
    dev_env: WorkflowEnvironment, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_TEST_KEY", KEY)
    events, res = await run(dev_env, receiver, spent=False)
    assert res.outcome == "promoted", res.reason
    assert shape(events) == [
        ("release.started", None, "*"),
        ("release.stage_started", None, "staging"),
        ("release.stage_finished", "passed", "staging"),
        ("release.stage_started", None, "prod"),
        ("release.stage_finished", "passed", "prod"),
        ("release.finished", "promoted", "*"),
    ]
    assert all(e["workflow_id"] == res.release_id and e["version"] == "v2" for e in events)


async def test_a_rolled_back_release_notifies_the_failed_stage_and_its_outcome(
    dev_env: WorkflowEnvironment, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_TEST_KEY", KEY)
    events, res = await run(dev_env, receiver, spent=True)
    assert res.outcome == "rolled_back", res.reason
    assert shape(events) == [
        ("release.started", None, "*"),
        ("release.stage_started", None, "staging"),
        ("release.stage_finished", "passed", "staging"),
        ("release.stage_started", None, "prod"),
        ("release.stage_finished", "failed", "prod"),
        ("release.finished", "rolled_back", "*"),
    ]
    assert "spent" in events[4]["reason"] and events[4]["reason"].startswith("stage prod")
