"""Bad soak plans are refused with every problem named, and nothing starts."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.settings import Settings
from code_foundation.errors import ServerUnavailable, SpecError
from loadtest.soak_models import load_plan, parse_plan
from tests.servers import free_port
from workers.cli.soak import start_soak

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "soak"
SC = "{targets: [{name: home}]}"


def test_example_plans_parse() -> None:
    plans = list(EXAMPLES.glob("*.yaml"))
    assert plans
    for p in plans:
        plan = load_plan(p)
        assert plan.scenario.targets


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("rate: 0", "rate"),
        ("rate: -3", "rate"),
        ("rate: 5\nduration: 1m\nslice: 5m", "slice (0:05:00) is longer than duration"),
        ("rate: 5\nduration: 0s", "duration must be positive"),
        ("rate: 5\nchecks: {slo: {objective: 1.5}}", "checks.slo.objective"),
        ("rate: 5\ncolour: red", "colour: is not a known field"),
    ],
)
def test_bad_plan_fields(body: str, needle: str) -> None:
    text = f"target: {{url: 'http://127.0.0.1:8080'}}\nscenario: {SC}\n{body}\n"
    with pytest.raises(SpecError) as err:
        parse_plan(text, "plan.yaml")
    assert needle in str(err.value), str(err.value)


@pytest.mark.parametrize("url", ["http://10.1.2.3:80", "http://example.com", "https://10.1.2.3"])
def test_non_loopback_target_refused(url: str) -> None:
    with pytest.raises(SpecError, match="target"):
        parse_plan(f"target: {{url: '{url}'}}\nscenario: {SC}\nrate: 1\n", "p")


def test_target_needs_one_kind() -> None:
    with pytest.raises(SpecError, match="service and environment"):
        parse_plan(f"target: {{service: demo}}\nscenario: {SC}\nrate: 1\n", "p")
    with pytest.raises(SpecError, match="either url or service"):
        parse_plan(
            f"target: {{service: a, environment: b, url: 'http://127.0.0.1:1'}}\nscenario: {SC}\nrate: 1\n",
            "p",
        )


def test_missing_scenario_file(tmp_path: Path) -> None:
    p = tmp_path / "plan.yaml"
    p.write_text("target: {url: 'http://127.0.0.1:1'}\nscenario: nope.yaml\nrate: 1\n")
    with pytest.raises(SpecError, match="cannot read"):
        load_plan(p)


async def _nothing_started(env: WorkflowEnvironment, wid: str) -> None:
    with pytest.raises(RPCError):
        await env.client.get_workflow_handle(wid).describe()


async def test_unknown_target_starts_nothing(ts_env: WorkflowEnvironment, agent_url: str) -> None:
    plan = parse_plan(
        f"target: {{service: no-such-svc, environment: dev}}\nscenario: {SC}\nrate: 1\n", "p"
    )
    wid = f"soak-{uuid.uuid4()}"
    with pytest.raises(SpecError, match="unknown service/environment no-such-svc/dev"):
        await start_soak(ts_env.client, plan, Settings(agent_url=agent_url), workflow_id=wid)
    await _nothing_started(ts_env, wid)


async def test_agent_down_starts_nothing(ts_env: WorkflowEnvironment) -> None:
    plan = parse_plan(
        f"target: {{service: demo, environment: dev}}\nscenario: {SC}\nrate: 1\n", "p"
    )
    wid = f"soak-{uuid.uuid4()}"
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnavailable):
        await start_soak(ts_env.client, plan, Settings(agent_url=dead), workflow_id=wid)
    await _nothing_started(ts_env, wid)
