"""Notifications of deployments, delivered by ``NotifyWorkflow`` children and the real
``notify.deliver`` activity to a real HTTP receiver on loopback (platform: the in-memory
fake). On the dev server (real time): the time-skipping test server stops skipping
time once a child outlives its parent, which an abandoned NotifyWorkflow does.

- a promoted and a rolled-back canary: every event reaches the webhook with a valid
  HMAC-SHA256 signature (verified here with the secret) and a stable id
  ``<workflow id>/<run>/<kind>/<seq>``, in order, each once; Slack and Alertmanager
  sinks get their payload shapes;
- a sink that is down: the run is not delayed (dev server, real time), every delivery
  gives up after its tries, the give-up is in the status (while the run goes on), in
  the NotifyWorkflow's result and in ``code_notifications_total{result="gave_up"}``."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from prometheus_client import REGISTRY
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.hooks import HookActivities
from activities.interceptor import ErrorInterceptor
from activities.notify import NotifyActivities
from activities.settings import Settings
from tests.receiver import Call, Receiver
from tests.servers import free_port
from tests.waiting import wait_until_async
from tests.workflows.fakes import FakePlatform
from tests.workflows.test_hooks import result
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.models import DeployInput, DeployResult, DeployStatus
from workflows.notify import NotifyWorkflow
from workflows.notify_spec import NotifyResult, signature
from workflows.rollback import RollbackWorkflow
from workflows.spec import DeploymentSpec, parse_spec

KEY = f"k-{uuid.uuid4().hex}"


def spec(version: str, sinks: str, steps: str, delivery: str = "{}") -> DeploymentSpec:
    return parse_spec(
        f"""
service: shop
environment: prod
version: {version}
artifact: {{command: ["{{python}}", "svc.py"]}}
strategy: {{type: canary, canary: {{steps: {steps}}}}}
notifications:
  delivery: {delivery}
  sinks:
{sinks}
"""
    )


CANARY = "[{set_weight: 20}, {pause: {duration: 1s}}, {analysis: {interval: 1s}}]"


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def worker(env: WorkflowEnvironment, fake: FakePlatform) -> tuple[Worker, str]:
    tq = f"tq-{uuid.uuid4()}"
    s = Settings()
    return (
        Worker(
            env.client,
            task_queue=tq,
            workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow, NotifyWorkflow],
            activities=[*fake.activities(), HookActivities(s).run, NotifyActivities(s).deliver],
            interceptors=[ErrorInterceptor()],
        ),
        tq,
    )


async def start(env: WorkflowEnvironment, s: DeploymentSpec, tq: str) -> WorkflowHandle:
    return await env.client.start_workflow(
        DeploymentWorkflow.run,
        DeployInput(spec=s, actor="tester", set_search_attributes=False),
        id=f"deploy-{uuid.uuid4()}",
        task_queue=tq,
        result_type=DeployResult,
    )


def verified(c: Call) -> dict:
    """The event of a signed webhook call, after checking its signature with the key."""
    ts = c.headers["X-Code-Timestamp"]
    assert abs(time.time() - int(ts)) < 300
    assert c.headers["X-Code-Signature"] == signature(KEY.encode(), ts, c.body)
    event = c.json()
    assert c.headers["X-Code-Event-Id"] == event["id"]
    return event


async def arrived(r: Receiver, path: str, n: int) -> list[Call]:
    async def enough() -> list[Call] | None:
        got = r.to(path)
        return got if len(got) >= n else None

    return await wait_until_async(enough, 30, f"{n} calls to {path}")


async def test_promoted_and_rolled_back_canaries_notify_signed_events_with_stable_ids(
    dev_env: WorkflowEnvironment, receiver: Receiver, monkeypatch
) -> None:
    monkeypatch.setenv("NOTIFY_TEST_KEY", KEY)
    u = receiver.url
    sinks = (
        f"    - {{name: hooks, url: '{u}/events', secret: 'env:NOTIFY_TEST_KEY'}}\n"
        f"    - {{name: chat, kind: slack, url: '{u}/slack', events: [deployment.rolled_back]}}\n"
        f"    - {{name: am, kind: alertmanager, url: '{u}/am', events: [deployment.rolled_back]}}\n"
    )
    fake = FakePlatform(bad_versions={"v3"})
    env = dev_env
    w, tq = worker(env, fake)
    async with w:
        assert (await result(await start(env, spec("v1", sinks, CANARY), tq))).outcome
        good = await start(env, spec("v2", sinks, CANARY), tq)
        assert (await result(good)).outcome == "promoted"
        bad = await start(env, spec("v3", sinks, CANARY), tq)
        assert (await result(bad)).outcome == "rolled_back"
        # v1 (first release: started, promoted), v2 (started, 3 steps, promoted), v3
        # (started, 2 steps, rolled back)
        events = [verified(c) for c in await arrived(receiver, "/events", 2 + 5 + 4)]
        slack = await arrived(receiver, "/slack", 1)
        alerts = await arrived(receiver, "/am/api/v2/alerts", 1)
        ids = [e["id"] for e in events]
        assert len(set(ids)) == len(ids)  # each event once
        for h, kinds in (
            (good, ["started", "step_finished", "step_finished", "step_finished", "promoted"]),
            (bad, ["started", "step_finished", "step_finished", "rolled_back"]),
        ):
            run = (await h.describe()).run_id
            mine = [e["id"] for e in events if e["workflow_id"] == h.id]
            want = [f"{h.id}/{run}/deployment.{k}/{i}" for i, k in enumerate(kinds, 1)]
            assert sorted(mine) == sorted(want)
            st: DeployStatus = await h.query(DeploymentWorkflow.status)
            assert [n.id for n in st.notifications] == want
    rolled = next(e for e in events if e["kind"] == "deployment.rolled_back")
    assert rolled["version"] == "v3" and rolled["previous_version"] == "v2"
    assert "analysis failed" in rolled["reason"] and rolled["outcome"] == "rolled_back"
    steps = [e["step"] for e in events if e["workflow_id"] == good.id and e["step"] is not None]
    assert sorted(steps) == [0, 1, 2]
    assert "X-Code-Signature" not in slack[0].headers  # only webhooks are signed
    assert slack[0].json()["text"] == "shop v3 in prod: rolled back"
    assert slack[0].json()["blocks"][1]["elements"][0]["text"] == f"`{rolled['id']}`"
    (alert,) = alerts[0].json()
    assert alert["labels"] == {
        "alertname": "CodeDeploymentRolledBack",
        "service": "shop",
        "environment": "prod",
        "version": "v3",
        "severity": "warning",
        "event_id": rolled["id"],
    }
    assert alert["annotations"]["summary"] == "shop v3 in prod: rolled back"
    assert alert["startsAt"] == rolled["time"]


def gave_up(sink: str) -> float:
    v = REGISTRY.get_sample_value(
        "code_notifications_total", {"sink": sink, "kind": "webhook", "result": "gave_up"}
    )
    return v or 0.0


async def test_a_sink_that_is_down_never_delays_the_run_and_its_give_up_is_recorded(
    dev_env: WorkflowEnvironment,
) -> None:
    down = f"http://127.0.0.1:{free_port()}/events"  # nothing listens there
    sink = f"down-{uuid.uuid4().hex[:6]}"
    sinks = f"    - {{name: {sink}, url: '{down}'}}\n"
    delivery = "{attempts: 3, backoff: 2s}"  # gives up after 2 s + 4 s of waiting
    fake = FakePlatform()
    w, tq = worker(dev_env, fake)
    async with w:
        first = await start(dev_env, spec("v1", sinks, "[{set_weight: 50}]", delivery), tq)
        await result(first)
        t0 = time.monotonic()
        h = await start(dev_env, spec("v2", sinks, "[{set_weight: 50}]", delivery), tq)
        res = await result(h)
        took = time.monotonic() - t0
        assert res.outcome == "promoted" and took < 5, took  # not held by the dead sink
        st: DeployStatus = await h.query(DeploymentWorkflow.status)
        assert [n.kind for n in st.notifications] == [
            "deployment.started",
            "deployment.step_finished",
            "deployment.promoted",
        ]
        results = []
        for n in st.notifications:
            child = dev_env.client.get_workflow_handle(f"notify/{n.id}", result_type=NotifyResult)
            results.append(await child.result())
    for r in results:
        (d,) = r.deliveries
        assert d.state == "failed" and d.attempts == 3 and "ConnectError" in d.message
    assert gave_up(sink) == 5  # 3 events of v2, 2 of v1 (a first release has no step)


async def test_give_up_is_in_the_status_while_the_run_goes_on(
    dev_env: WorkflowEnvironment,
) -> None:
    down = f"http://127.0.0.1:{free_port()}/events"
    sinks = f"    - {{name: gone, url: '{down}'}}\n"
    steps = "[{set_weight: 50}, {pause: {duration: 6s}}]"
    delivery = "{attempts: 3, backoff: 500ms}"  # gives up after 1.5 s of waiting
    fake = FakePlatform()
    w, tq = worker(dev_env, fake)
    async with w:
        await result(await start(dev_env, spec("v1", "    []\n", steps), tq))
        h = await start(dev_env, spec("v2", sinks, steps, delivery), tq)
        res = await result(h)
        st: DeployStatus = await h.query(DeploymentWorkflow.status)
    assert res.outcome == "promoted"
    first = st.notifications[0]
    assert first.kind == "deployment.started" and first.state == "gave up"
    assert "gone: failed after 3 try(ies)" in first.detail
