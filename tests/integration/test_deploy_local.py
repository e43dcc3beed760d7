"""End to end on the real embedded stack: real Temporal dev server, real agent
and demo-service processes, real HTTP traffic through the router, a worker in
its own process.

- a good canary is promoted, a bad one is rolled back, and the stable version
  keeps serving throughout (failures seen by a live client are counted by the
  version that served them);
- killing the worker while a canary waits for approval loses nothing and applies
  nothing twice;
- bad input is refused by ``codectl`` with exit 2 and no workflow is started."""

from __future__ import annotations

import asyncio
import collections
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.stack import EXAMPLES, LiveStack
from tests.waiting import wait_until_async
from workflows.client import connect, deployment_result, start_deployment
from workflows.models import ApproveInput, DeployResult, DeployStatus
from workflows.spec import DeploymentSpec, parse_spec

pytestmark = pytest.mark.integration


def example(name: str, service: str, **changes: Any) -> DeploymentSpec:
    spec = parse_spec((EXAMPLES / name).read_text(), name)
    art = spec.artifact.model_copy(update={"workdir": str(EXAMPLES)})
    return spec.model_copy(update={"service": service, "artifact": art, **changes})


class Client:
    """A live client through the router: failures counted by the version that served them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.served: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.events: list[tuple[float, str, int]] = []
        self.stop = asyncio.Event()

    def after(self, t: float) -> list[tuple[float, str, int]]:
        """The requests answered after unix time ``t``."""
        return [e for e in self.events if e[0] > t]

    async def run(self, rate: float = 50, max_seconds: float = 240) -> None:
        end = time.monotonic() + max_seconds
        async with httpx.AsyncClient(timeout=5) as c:
            while not self.stop.is_set() and time.monotonic() < end:
                t = time.monotonic()
                try:
                    r = await c.get(self.url + "/work")
                    v, code = r.headers.get("x-code-version", "?"), r.status_code
                except httpx.HTTPError:
                    v, code = "unreachable", 599
                self.served[v] += 1
                if code >= 500:
                    self.failed[v] += 1
                self.events.append((time.time(), v, code))
                await asyncio.sleep(max(0, 1 / rate - (time.monotonic() - t)))


async def endpoint(stack: LiveStack, service: str) -> str:
    async with httpx.AsyncClient() as c:
        r = await c.get(f"{stack.settings.agent_url}/v1/services/{service}/dev")
        return str(r.json()["endpoint"]).rstrip("/")


async def deploy(client: Any, stack: LiveStack, spec: DeploymentSpec) -> DeployResult:
    h = await start_deployment(client, spec, "it", stack.settings.task_queue)
    return await deployment_result(client.get_workflow_handle(h.id, result_type=DeployResult))


async def test_good_canary_promoted_bad_rolled_back_stable_serves(live_stack: LiveStack) -> None:
    client = await connect(live_stack.settings.temporal_address)
    svc = f"it{uuid.uuid4().hex[:6]}"
    first = await deploy(client, live_stack, example("demo-v1.yaml", svc))
    assert first.outcome == "promoted", first.reason
    traffic = Client(await endpoint(live_stack, svc))
    task = asyncio.create_task(traffic.run())
    try:
        good = await deploy(client, live_stack, example("demo-v2.yaml", svc))
        assert good.outcome == "promoted", good.reason
        bad = await deploy(client, live_stack, example("demo-v3-bad.yaml", svc))
        rollback_done = time.time()
        # keep the live client going until it has seen 50 requests after the rollback
        await wait_until_async(
            lambda: len(traffic.after(rollback_done + 0.5)) >= 50, 60, "traffic after rollback"
        )
    finally:
        traffic.stop.set()
        await task
    assert bad.outcome == "rolled_back", bad.reason
    assert "analysis failed" in bad.reason
    # the stable versions never failed a request; only v3 (while it held canary weight) did
    assert traffic.failed["v1"] == 0 and traffic.failed["v2"] == 0, traffic.failed
    assert traffic.failed["unreachable"] == 0
    assert traffic.failed["v3"] > 0 and traffic.served["v3"] < traffic.served["v2"]
    after = traffic.after(rollback_done + 0.5)
    assert after and all(v == "v2" and code < 500 for _, v, code in after)
    # the platform serves v2 only and the ledger agrees
    async with httpx.AsyncClient() as c:
        state = (await c.get(f"{live_stack.settings.agent_url}/v1/services/{svc}/dev")).json()
    assert state["weights"] == {"v2": 100}
    assert set(state["versions"]) == {"v2"}
    hist = live_stack.cli("history", svc, "--env", "dev")
    assert hist.returncode == 0, hist.stderr
    assert "rolled_back" in hist.stdout and "promoted" in hist.stdout
    # readable ids and search attributes: "all failed canaries of service X"
    query = f'CodeService="{svc}" AND CodeOutcome="rolled_back"'
    found = sorted([w.id async for w in client.list_workflows(query)])
    # the failed canary and its compensating rollback, found by the same filter
    assert found == [f"deploy-{svc}-dev-v3", f"rollback-{svc}-dev-from-v3"]
    kinds = [w.id async for w in client.list_workflows(query + ' AND CodeKind="deployment"')]
    assert kinds == [f"deploy-{svc}-dev-v3"]


async def test_worker_killed_while_paused_finishes_and_applies_nothing_twice(
    live_stack: LiveStack,
) -> None:
    client = await connect(live_stack.settings.temporal_address)
    svc = f"cr{uuid.uuid4().hex[:6]}"
    assert (await deploy(client, live_stack, example("demo-v1.yaml", svc))).outcome == "promoted"
    spec = example("demo-v2.yaml", svc)
    steps = [
        {"set_weight": 30},
        {"pause": {"until_approved": True, "timeout": "10m"}},
        {"set_weight": 60},
    ]
    spec = DeploymentSpec.model_validate(
        {**spec.model_dump(mode="json"), "strategy": {"type": "canary", "canary": {"steps": steps}}}
    )
    h = await start_deployment(client, spec, "it", live_stack.settings.task_queue)
    for _ in range(200):
        st = await h.query("status", result_type=DeployStatus)
        if st.waiting_for_approval:
            break
        await asyncio.sleep(0.2)
    assert st.waiting_for_approval and st.weights == {"v1": 70, "v2": 30}
    live_stack.kill_worker()
    live_stack.start_worker()
    await h.execute_update("approve", ApproveInput(identity="oncall"))
    res = await deployment_result(client.get_workflow_handle(h.id, result_type=DeployResult))
    assert res.outcome == "promoted", res.reason
    async with httpx.AsyncClient() as c:
        ops = (await c.get(f"{live_stack.settings.agent_url}/v1/ops")).json()
    ops = ops["ops"] if isinstance(ops, dict) else ops
    mine = [o for o in ops if o.get("service") == svc]
    applied = collections.Counter(o["idempotency_key"] for o in mine if o.get("changed"))
    assert applied and max(applied.values()) == 1, applied
    starts = [
        o
        for o in mine
        if o.get("changed") and o["op"].startswith("apply") and o.get("version") == "v2"
    ]
    assert len(starts) == 1


BAD = {
    "malformed.yaml": ("service: demo\nenvironment: [dev\n", ["malformed YAML"]),
    "unknown-strategy.yaml": (
        "service: demo\nenvironment: dev\nversion: v9\nartifact: {command: ['{python}', 'demo_service.py'], workdir: '%s'}\n"
        "strategy: {type: linear}\n",
        ["strategy.type"],
    ),
    "negative-weight.yaml": (
        "service: demo\nenvironment: dev\nversion: v9\nartifact: {command: ['{python}', 'demo_service.py'], workdir: '%s'}\n"
        "strategy: {type: canary, canary: {steps: [{set_weight: -10}]}}\n",
        ["strategy.canary.steps.0.set_weight"],
    ),
    "missing-service.yaml": (
        "environment: dev\nversion: v9\nartifact: {command: ['{python}', 'demo_service.py'], workdir: '%s'}\n",
        ["service: is required"],
    ),
    "missing-program.yaml": (
        "service: demo\nenvironment: dev\nversion: v9\nartifact: {command: ['{python}', 'nope.py'], workdir: '%s'}\n",
        ["nope.py not found"],
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
async def test_bad_input_exit_2_and_no_workflow(
    live_stack: LiveStack, tmp_path: Path, name: str
) -> None:
    text, expected = BAD[name]
    path = tmp_path / name
    path.write_text(text.replace("%s", str(EXAMPLES)) if "%s" in text else text)
    proc = live_stack.cli("deploy", str(path))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    for fragment in expected:
        assert fragment in proc.stderr, proc.stderr
    client = await connect(live_stack.settings.temporal_address)
    ids = [w.id async for w in client.list_workflows('WorkflowId="deploy-demo-dev-v9"')]
    assert ids == []


async def test_manual_rollback_cli_restores_previous(live_stack: LiveStack) -> None:
    client = await connect(live_stack.settings.temporal_address)
    svc = f"rb{uuid.uuid4().hex[:6]}"
    assert (await deploy(client, live_stack, example("demo-v1.yaml", svc))).outcome == "promoted"
    v2 = example(
        "demo-v2.yaml", svc, strategy=parse_spec((EXAMPLES / "demo-v1.yaml").read_text()).strategy
    )
    assert (await deploy(client, live_stack, v2)).outcome == "promoted"
    proc = live_stack.cli("rollback", svc, "--env", "dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "restored v1" in proc.stdout
    async with httpx.AsyncClient() as c:
        state = (await c.get(f"{live_stack.settings.agent_url}/v1/services/{svc}/dev")).json()
        assert state["weights"] == {"v1": 100}
        r = await c.get(state["endpoint"].rstrip("/") + "/work")
        assert r.headers["x-code-version"] == "v1"


def test_schema_and_status_commands(live_stack: LiveStack) -> None:
    proc = live_stack.cli("schema")
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    assert "strategy" in schema["properties"] and "service" in schema["required"]
