"""Notification events of chaos experiments and soak tests, delivered by
``NotifyWorkflow`` children and the real ``notify.deliver`` activity to a real HTTP
receiver on loopback, through sinks defined in the ``notify_sinks`` setting and named by
the experiment / plan. Dev server, real time (an abandoned child outlives its parent,
which stops the time-skipping server from skipping); chaos activities are the
in-memory fakes, the soak's slices the synthetic ones.

- a deviated chaos run: ``chaos.started``, ``chaos.deviated`` (once, though every
  probe of the window deviates), ``chaos.finished`` (outcome completed), each signed
  (HMAC verified here with the key) with id ``<workflow id>/<run id>/<kind>/<seq>``;
- a chaos run whose rollback fails: ``chaos.rollback_failed`` (critical) instead of
  ``chaos.finished``, and the run still fails with ``RollbackFailed``;
- a sink that is down: the experiment completes anyway;
- a short soak: ``soak.check_breached`` then ``soak.finished`` (outcome fail); a soak
  filtering ``events`` gets only what it asked for."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.interceptor import ErrorInterceptor
from activities.notify import NotifyActivities
from activities.settings import Settings
from activities.soak import SoakActivities
from chaos.messages import ChaosResult, ChaosRunInput
from code_foundation.notify_ref import NotifyRef
from loadtest.soak_models import SoakInput, SoakPlan, SoakResult
from tests.chaos.fakes import FakeChaos
from tests.chaos.test_workflow import experiment
from tests.receiver import Call, Receiver
from tests.servers import free_port
from tests.soak.synthetic import make_slice_activity
from tests.soak.test_soak_timeskip import plan as soak_plan
from tests.waiting import wait_until_async
from workflows.chaos import ChaosExperimentWorkflow
from workflows.notify import NotifyWorkflow
from workflows.notify_spec import Sink, signature
from workflows.soak import SoakTestWorkflow

KEY = f"k-{uuid.uuid4().hex}"


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def settings(tmp_path: Path, url: str) -> Settings:
    return Settings(
        state_dir=tmp_path,
        artifact_dir=tmp_path / "artifacts",
        notify_sinks=[
            Sink(name="ops", url=f"{url}/ops", secret="env:RUN_NOTIFY_KEY"),
            Sink(
                name="down", url=f"http://127.0.0.1:{free_port()}/x", timeout=timedelta(seconds=1)
            ),
        ],
    )


def verified(c: Call) -> dict[str, Any]:
    ts = c.headers["X-Code-Timestamp"]
    assert abs(time.time() - int(ts)) < 300
    assert c.headers["X-Code-Signature"] == signature(KEY.encode(), ts, c.body)
    event: dict[str, Any] = c.json()
    assert c.headers["X-Code-Event-Id"] == event["id"]
    assert c.headers["X-Code-Event"] == event["kind"]
    return event


async def events_at(r: Receiver, n: int) -> list[dict[str, Any]]:
    async def enough() -> list[Call]:
        got = r.to("/ops")
        return got if len(got) >= n else []

    calls: list[Call] = await wait_until_async(enough, 60, f"{n} events at /ops")
    return [verified(c) for c in calls]


def check_ids(events: list[dict[str, Any]], wid: str, run_id: str) -> None:
    for seq, e in enumerate(events, 1):
        assert e["id"] == f"{wid}/{run_id}/{e['kind']}/{seq}"
        assert e["workflow_id"] == wid
    assert len({e["id"] for e in events}) == len(events)


Arrivals = Callable[[], Awaitable[list[dict[str, Any]]]]


async def nothing() -> list[dict[str, Any]]:
    return []


async def run_chaos(
    env: WorkflowEnvironment, s: Settings, fake: FakeChaos, exp: Any, arrivals: Arrivals = nothing
) -> tuple[str, str, Any, list[dict[str, Any]]]:
    """Run the experiment, then wait for the events while the worker (which delivers
    them) still runs."""
    tq = f"chaos-notify-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=tq,
        workflows=[ChaosExperimentWorkflow, NotifyWorkflow],
        activities=[*fake.activities(), NotifyActivities(s).deliver],
        interceptors=[ErrorInterceptor()],
    ):
        h = await env.client.start_workflow(
            ChaosExperimentWorkflow.run,
            ChaosRunInput(experiment=exp, actor="pytest", set_search_attributes=False),
            id=f"chaos-{uuid.uuid4()}",
            task_queue=tq,
        )
        try:
            out: Any = await h.result()
        except WorkflowFailureError as exc:
            out = exc
        run_id = (await h.describe()).run_id
        return h.id, run_id, out, await arrivals()


def with_sinks(exp: Any, *sinks: str, events: list[str] | None = None) -> Any:
    ref = NotifyRef.model_validate({"sinks": list(sinks), "events": events or []})
    return exp.model_copy(update={"notifications": ref})


async def test_deviated_chaos_run_notifies_started_deviated_finished(
    dev_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("RUN_NOTIFY_KEY", KEY)
    s = settings(tmp_path, receiver.url)
    fake = FakeChaos(probe_ok=lambda phase, n: phase != "during")
    exp = experiment(duration="3s", probe_interval="1s", abort_on_probe_failure=False)
    wid, run_id, res, events = await run_chaos(
        dev_env, s, fake, with_sinks(exp, "ops"), lambda: events_at(receiver, 3)
    )
    assert isinstance(res, ChaosResult) and res.status == "completed" and res.deviated
    assert [e["kind"] for e in events] == ["chaos.started", "chaos.deviated", "chaos.finished"]
    check_ids(events, wid, run_id)
    assert events[0]["service"] == "demo" and events[0]["environment"] == "dev"
    assert "started by pytest" in events[0]["reason"]
    assert events[2]["outcome"] == "completed"
    # nothing else arrives: the deviation was notified once
    assert len(receiver.to("/ops")) == 3


async def test_failed_rollback_notifies_rollback_failed(
    dev_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("RUN_NOTIFY_KEY", KEY)
    s = settings(tmp_path, receiver.url)
    fake = FakeChaos(revert_failures=1000)
    exp = experiment(duration="1s", probe_interval="1s", rollback_attempts=1)
    wid, run_id, res, events = await run_chaos(
        dev_env, s, fake, with_sinks(exp, "ops"), lambda: events_at(receiver, 2)
    )
    assert isinstance(res, WorkflowFailureError)
    assert isinstance(res.cause, ApplicationError) and res.cause.type == "RollbackFailed"
    assert [e["kind"] for e in events] == ["chaos.started", "chaos.rollback_failed"]
    check_ids(events, wid, run_id)
    assert events[1]["outcome"] == "failed"


async def test_a_sink_that_is_down_does_not_fail_the_experiment(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    s = settings(tmp_path, "http://127.0.0.1:9")
    exp = experiment(duration="1s", probe_interval="1s")
    _, _, res, _ = await run_chaos(dev_env, s, FakeChaos(), with_sinks(exp, "down"))
    assert isinstance(res, ChaosResult) and res.status == "completed" and not res.deviated


async def run_soak(
    env: WorkflowEnvironment, s: Settings, p: SoakPlan, arrivals: Arrivals, **fake: Any
) -> tuple[str, str, SoakResult, list[dict[str, Any]]]:
    tq = f"soak-notify-{uuid.uuid4()}"
    acts = SoakActivities(s)
    async with Worker(
        env.client,
        task_queue=tq,
        workflows=[SoakTestWorkflow, NotifyWorkflow],
        activities=[
            acts.resolve_target,
            acts.report,
            make_slice_activity(**fake),
            NotifyActivities(s).deliver,
        ],
        interceptors=[ErrorInterceptor()],
    ):
        h = await env.client.start_workflow(
            SoakTestWorkflow.run, SoakInput(plan=p), id=f"soak-{uuid.uuid4()}", task_queue=tq
        )
        res = await h.result()
        return h.id, (await h.describe()).run_id, res, await arrivals()


def short_soak(**notifications: Any) -> SoakPlan:
    return soak_plan(
        duration="3s",
        slice="1s",
        rate=400.0,  # synthetic slices: 400 requests each, 5% errors from slice 1
        baseline="1s",
        checks={
            "slo": None,
            "p99_drift": None,
            "error_creep": {"max_increase": 0.01},
            "resources": None,
        },
        notifications=notifications,
    )


async def test_short_soak_notifies_breach_and_finish(
    dev_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("RUN_NOTIFY_KEY", KEY)
    s = settings(tmp_path, receiver.url)
    wid, run_id, res, events = await run_soak(
        dev_env, s, short_soak(sinks=["ops"]), lambda: events_at(receiver, 2), errors_from=1
    )
    assert res.verdict == "fail" and res.reason.startswith("error creep")
    assert [e["kind"] for e in events] == ["soak.check_breached", "soak.finished"]
    check_ids(events, wid, run_id)
    assert all(e["outcome"] == "fail" for e in events)
    assert events[0]["reason"] == res.reason
    assert events[0]["service"] == "http://127.0.0.1:9"


async def test_soak_event_filter(
    dev_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("RUN_NOTIFY_KEY", KEY)
    s = settings(tmp_path, receiver.url)
    p = short_soak(sinks=["ops"], events=["soak.finished"])
    wid, run_id, res, got = await run_soak(dev_env, s, p, lambda: events_at(receiver, 1))
    assert res.verdict == "pass"
    (event,) = got
    assert event["kind"] == "soak.finished" and event["outcome"] == "pass"
    check_ids([event], wid, run_id)


@pytest.mark.parametrize("bad", [{"sinks": ["no spaces"]}, {"events": ["chaos.exploded"]}])
def test_bad_notifications_are_refused_naming_the_field(bad: dict[str, Any]) -> None:
    from code_foundation.errors import SpecError
    from loadtest.soak_models import parse_plan

    doc = {"target": {"url": "http://127.0.0.1:9"}, "scenario": {"targets": [{"name": "h"}]}}
    with pytest.raises(SpecError, match="notifications"):
        parse_plan(json.dumps({**doc, "rate": 1, "notifications": bad}))
