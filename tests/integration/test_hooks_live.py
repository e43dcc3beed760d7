"""Hooks and notifications end to end on the real embedded stack (Temporal dev server,
local platform agent and demo-service processes, a worker in its own process) with a
real HTTP receiver on loopback started and read by the test:

- a canary with every hook kind: the receiver sees the calls in order with the run's
  fields, a command job hook (argv, no shell) passes on its exit code, the
  ``confirm_promotion`` gate holds the run until the receiver answers 200, and a
  signed webhook notification arrives for every event (HMAC checked with the key);
- a canary whose ``rollout`` check fails is rolled back by the platform, the
  ``rollback`` hook runs, and the rolled-back event arrives signed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.stack import EXAMPLES, LiveStack
from tests.receiver import Call, Receiver
from tests.waiting import wait_until_async
from tests.workflows.test_hooks import result
from workflows.client import connect, start_deployment
from workflows.models import DeployResult, DeployStatus
from workflows.notify_spec import signature
from workflows.spec import DeploymentSpec, parse_spec

pytestmark = pytest.mark.integration


def example(name: str, service: str, version: str, extra: dict[str, Any]) -> DeploymentSpec:
    spec = parse_spec((EXAMPLES / name).read_text(), name)
    data = spec.model_dump(mode="json", exclude_none=True)
    data.update(service=service, version=version, strategy=STEPS, **extra)
    data["artifact"]["workdir"] = str(EXAMPLES)
    return DeploymentSpec.model_validate(data)


# no analysis steps: the hooks are under test here, not the judge (which needs live traffic)
STEPS = {
    "type": "canary",
    "canary": {"steps": [{"set_weight": 20}, {"pause": {"duration": "1s"}}, {"set_weight": 50}]},
}


def http(name: str, at: str, url: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "at": at, "http": {"url": f"{url}/{name}"}, **more}


async def begin(client: Any, spec: DeploymentSpec, tq: str) -> Any:
    h = await start_deployment(client, spec, "it", tq)
    return client.get_workflow_handle(h.id, result_type=DeployResult)


def signed_events(r: Receiver, key: str) -> list[dict[str, Any]]:
    out = []
    for c in r.to("/events"):
        ts = c.headers["X-Code-Timestamp"]
        assert c.headers["X-Code-Signature"] == signature(key.encode(), ts, c.body)
        out.append(c.json())
    return out


async def test_canary_with_every_hook_kind_and_signed_notifications(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    key = f"k-{uuid.uuid4().hex}"
    key_file = tmp_path / "notify.key"
    key_file.write_text(key + "\n")
    ready = {"ok": False}

    def respond(c: Call) -> tuple[int, str]:
        if c.path == "/promote-ok" and not ready["ok"]:
            return 503, '{"qa": "pending"}'
        if c.path == "/tests" and c.json()["step"] == 1:
            return 500, '{"failed": 2}'
        return 200, '{"ok": true}'

    r = Receiver(respond)
    marker = tmp_path / "job.json"
    job = (
        "import json, os, sys; open(sys.argv[1], 'w').write(json.dumps("
        "{'argv': sys.argv[2:], 'version': os.environ['CODE_HOOK_VERSION']}))"
    )
    u = r.url
    notifications = {
        "sinks": [{"name": "ops", "url": f"{u}/events", "secret": f"file:{key_file}"}],
        "delivery": {"attempts": 3, "backoff": "500ms"},
    }
    hooks = [
        http("confirm_rollout", "confirm_rollout", u),
        {
            "name": "smoke-job",
            "at": "pre_rollout",
            "command": {"argv": ["{python}", "-c", job, str(marker), "$PATH", "a;b"]},
        },
        http("rollout", "rollout", u),
        http("confirm_traffic_increase", "confirm_traffic_increase", u),
        http("promote-ok", "confirm_promotion", u, interval="500ms", deadline="2m"),
        http("post_rollout", "post_rollout", u),
    ]
    svc = f"hk{uuid.uuid4().hex[:6]}"
    client = await connect(live_stack.settings.temporal_address)
    tq = live_stack.settings.task_queue
    try:
        v1 = await begin(client, example("demo-v1.yaml", svc, "v1", {}), tq)
        assert (await result(v1)).outcome == "promoted"
        spec = example("demo-v2.yaml", svc, "v2", {"hooks": hooks, "notifications": notifications})
        h = await begin(client, spec, tq)

        async def gate_polled() -> DeployStatus | None:
            st: DeployStatus = await h.query("status", result_type=DeployStatus)
            gate = [x for x in st.hooks if x.name == "promote-ok"]
            return st if gate and gate[0].attempts >= 3 else None

        st = await wait_until_async(gate_polled, 120, "the confirm_promotion gate polling")
        assert st.outcome == "running" and st.weights.get("v2") == 50
        ready["ok"] = True
        res = await result(h)
        assert res.outcome == "promoted", res.reason
        points = [c.json()["point"] for c in r.calls if c.path != "/events"]
        assert points[:2] == ["confirm_rollout", "confirm_traffic_increase"]
        assert points[-1] == "post_rollout" and set(points) == {
            "confirm_rollout",
            "confirm_traffic_increase",
            "rollout",
            "confirm_promotion",
            "post_rollout",
        }
        assert points.count("rollout") == 3  # after each of the 3 steps
        assert json.loads(marker.read_text()) == {"argv": ["$PATH", "a;b"], "version": "v2"}
        st = await h.query("status", result_type=DeployStatus)
        job_result = next(x for x in st.hooks if x.name == "smoke-job")
        assert job_result.status == "passed" and job_result.code == 0
        async with httpx.AsyncClient() as c:
            state = (await c.get(f"{live_stack.settings.agent_url}/v1/services/{svc}/dev")).json()
        assert state["weights"] == {"v2": 100}

        # a failing rollout check (the receiver answers 500 after step 1) rolls v3 back
        bad_hooks = [http("tests", "rollout", u), http("rollback", "rollback", u)]
        bad = example(
            "demo-v2.yaml", svc, "v3", {"hooks": bad_hooks, "notifications": notifications}
        )
        h3 = await begin(client, bad, tq)
        res3 = await result(h3)
        assert res3.outcome == "rolled_back", res3.reason
        assert "hook tests (rollout) failed" in res3.reason
        assert [c.path for c in r.calls if c.path in ("/tests", "/rollback")] == [
            "/tests",
            "/tests",
            "/rollback",
        ]
        async with httpx.AsyncClient() as c:
            state = (await c.get(f"{live_stack.settings.agent_url}/v1/services/{svc}/dev")).json()
        assert state["weights"] == {"v2": 100}

        async def all_events() -> list[dict[str, Any]] | None:
            ev = signed_events(r, key)
            kinds = {e["kind"] for e in ev}
            return ev if {"deployment.promoted", "deployment.rolled_back"} <= kinds else None

        events = await wait_until_async(all_events, 60, "the promoted and rolled-back events")
        ids = [e["id"] for e in events]
        assert len(ids) == len(set(ids))
        seq = sorted(
            (int(e["id"].rsplit("/", 1)[1]), e["kind"]) for e in events if e["version"] == "v2"
        )
        v2 = [kind for _, kind in seq]
        assert v2[0] == "deployment.started" and v2.count("deployment.step_finished") == 3
    finally:
        r.stop()
