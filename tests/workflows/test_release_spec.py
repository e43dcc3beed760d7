"""PipelineSpec: the demo pipeline loads; a bad pipeline is refused with every problem
named (unknown cluster, empty wave, duplicate target and stage, unknown and cyclic stage
dependencies, a window that never opens, an approval without approvers); deploy windows
in a time zone with blackouts; each target's DeploymentSpec has its own id and lane."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from code_foundation.errors import SpecError
from workflows.pipeline_spec import load_pipeline, parse_pipeline, pipeline_json_schema
from workflows.release_window import DeployWindow

DEMO = Path(__file__).resolve().parents[2] / "deploy/examples/pipelines/demo.yaml"
CLUSTERS = ["local", "eu-canary", "eu-1", "us-1"]

BAD = """
service: shop
deployment: {artifact: {command: [x]}}
stages:
  - name: dev
    depends_on: [prod]
    targets: [{environment: dev, cluster: mars-1}, {environment: dev, cluster: local}]
    waves:
      - targets: []
      - targets: [local, nowhere]
  - name: dev
    targets: [{environment: dev}]
  - name: prod
    depends_on: [dev, ghost]
    gates:
      - {type: approval, approvers: []}
      - type: window
        window: {timezone: Europe/Berlin, allowed: [{days: [mon]}], blackout: [{date: 2026-01-01, until: 2099-12-31}]}
    targets: [{environment: prod, cluster: eu-1}, {name: eu-1, environment: prod, cluster: us-1}]
"""


def test_the_demo_pipeline_loads_in_dependency_order() -> None:
    p = load_pipeline(DEMO, clusters=CLUSTERS, now=datetime.now(UTC))
    assert [s.name for s in p.order()] == ["dev", "staging", "prod"]
    prod = p.stages[2]
    assert [w.targets for w in prod.effective_waves()] == [["eu-canary"], ["eu-1", "us-1"]]
    spec = p.target_spec(prod, prod.target("eu-1"), "v2")
    assert spec.workflow_id() == "deploy-demo-prod-eu-1-v2"
    assert spec.lane_id() == "lane-demo-prod-local_eu-1" and spec.replicas == 2
    dev = p.target_spec(p.stages[0], p.stages[0].targets[0], "v2")
    assert dev.cluster is None and dev.lane_id() == "lane-demo-dev-local"  # as today
    assert dev.strategy.type == "rolling"  # the named strategy override
    assert "PipelineSpec" in str(pipeline_json_schema().get("title"))


def test_every_problem_is_named_and_nothing_else_passes() -> None:
    with pytest.raises(SpecError) as exc:
        parse_pipeline(BAD, "bad.yaml", clusters=CLUSTERS, now=datetime.now(UTC))
    text = "\n".join(exc.value.problems)
    for needle in (
        "stage 'dev' is defined twice",
        "unknown cluster 'mars-1' (configured: eu-1, eu-canary, local, us-1)",
        "waves[0]: an empty wave",
        "unknown target 'nowhere'",
        "target 'eu-1' is defined twice",
        "depends_on: unknown stage 'ghost'",
        "an approval gate needs at least one approver",
        "never opens",
    ):
        assert needle in text, (needle, text)


def test_a_dependency_cycle_is_refused() -> None:
    doc = """
service: shop
deployment: {artifact: {command: [x]}}
stages:
  - {name: a, depends_on: [b], targets: [{environment: a}]}
  - {name: b, depends_on: [a], targets: [{environment: b}]}
"""
    with pytest.raises(SpecError) as exc:
        parse_pipeline(doc, now=datetime.now(UTC))
    assert any("forms a cycle" in p for p in exc.value.problems), exc.value.problems


def test_a_field_error_is_named_by_its_path() -> None:
    doc = """
service: shop
deployment: {artifact: {command: [x]}}
stages:
  - name: a
    targets: [{environment: a}]
    gates: [{type: bake}, {type: window, window: {timezone: Mars/Olympus}}]
"""
    with pytest.raises(SpecError) as exc:
        parse_pipeline(doc, now=datetime.now(UTC))
    text = "\n".join(exc.value.problems)
    assert "stages.0.gates.0.bake.duration: is required" in text, text
    assert "unknown time zone 'Mars/Olympus'" in text, text


def test_window_in_a_time_zone_with_blackouts() -> None:
    w = DeployWindow.model_validate(
        {
            "timezone": "Europe/Berlin",
            "allowed": [{"days": ["mon", "tue", "wed", "thu"], "start": "09:00", "end": "16:00"}],
            "blackout": [{"date": "2026-12-24"}],
        }
    )
    # Thursday 2026-12-24 is blacked out, Fri-Sun are not allowed: Monday 09:00 CET
    at = w.next_open(datetime(2026, 12, 23, 15, 30, tzinfo=UTC))  # Wed 16:30 Berlin: closed
    assert at == datetime(2026, 12, 28, 8, 0, tzinfo=UTC)
    inside = datetime(2026, 12, 22, 9, 0, tzinfo=UTC)  # Tue 10:00 Berlin
    assert w.next_open(inside) == inside
    overnight = DeployWindow.model_validate({"allowed": [{"start": "22:00", "end": "02:00"}]})
    assert overnight.next_open(datetime(2026, 1, 1, 1, 0, tzinfo=UTC)) == datetime(
        2026, 1, 1, 1, 0, tzinfo=UTC
    )
    assert overnight.next_open(datetime(2026, 1, 1, 3, 0, tzinfo=UTC)) == datetime(
        2026, 1, 1, 22, 0, tzinfo=UTC
    )
