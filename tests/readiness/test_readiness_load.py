"""The suite's load-test step on the real embedded stack (Temporal dev server, agent, demo
processes, worker process): ``ReadinessWorkflow`` runs the suite's load plan as its child
``<id>-load`` at the highest rate the declared targets name (not the plan's own rate),
named ``load-...``; the certificate's Performance figures (p50/p95/p99, achieved rate, the
target's outcome) equal what this test recomputes from the child's own input and result,
and the load run counts for Performance only (Soak stays "not measured")."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from loadtest.soak_models import SoakInput, SoakResult
from tests.integration.stack import LiveStack
from tests.integration.test_deploy_local import deploy, endpoint, example
from tests.readiness.test_certify_stack import soak_plan
from workers.cli.certify import run_certification
from workflows.client import connect
from workflows.readiness_categories import RATE_TOLERANCE
from workflows.readiness_models import ReadinessInput, Rules, Suite

pytestmark = pytest.mark.integration
TARGET = "p95 < 5000ms at 30 rps"


async def test_suite_load_test_feeds_performance(live_stack: LiveStack) -> None:
    s = live_stack.settings
    client = await connect(s.temporal_address)
    svc = f"rl{uuid.uuid4().hex[:6]}"
    assert (await deploy(client, live_stack, example("demo-v1.yaml", svc))).outcome == "promoted"
    url = await endpoint(live_stack, svc)
    plan = soak_plan(svc, url)  # rate 20, 20 s: the targets' 30 rps replaces the rate
    suite = Suite(load=plan, rules=Rules(required={"performance": 1.0}, targets=[TARGET]))
    inp = ReadinessInput(
        service=svc, environment="dev", window=timedelta(days=1), suite=suite, crash_matrix=None
    )
    res = await run_certification(client, s, inp)
    cert = res.certificate

    # the child: <id>-load, named load-..., run at the target's rate
    load_id = f"{res.workflow_id}-load"
    (run,) = cert.suite
    assert (run.kind, run.workflow_id, run.name) == ("load", load_id, "load-rdy")
    handle = client.get_workflow_handle(load_id, result_type=SoakResult)
    history = await handle.fetch_history()
    first = history.events[0].workflow_execution_started_event_attributes
    (child_in,) = await client.data_converter.decode(first.input.payloads, [SoakInput])
    assert child_in.plan.rate == 30 and child_in.plan.name == "load-rdy"
    assert history.events[0].workflow_execution_started_event_attributes.parent_workflow_execution
    child = await handle.result()
    assert run.outcome == child.verdict

    # Performance: recomputed from the child's own result
    stats = child.stats
    assert stats.completed > 0
    h = stats.histogram()
    for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        fig = cert.figure(f"performance.{q}_ms")
        assert fig is not None and fig.value == pytest.approx(h.quantile(v)), q
        assert fig.formula.endswith(f"load {load_id}")
        assert any(e.kind == "workflow" and e.ref == load_id for e in fig.evidence)
    rate = cert.figure("performance.achieved_rate")
    assert rate is not None and rate.value == pytest.approx(stats.achieved_rate())
    assert rate.detail == "planned 30 rps"
    met = h.quantile(0.95) < 5000 and stats.achieved_rate() >= RATE_TOLERANCE * 30
    target = cert.figure("performance.target_1")
    assert target is not None and target.ok is met and target.label == f"target: {TARGET}"
    perf = cert.category("performance")
    assert perf.score == (1.0 if met else 0.0)
    assert perf.summary == f"{int(met)} of 1 targets met by load {load_id}"
    # a load test is not a soak
    assert cert.category("soak").score is None
    # the rules: the suite load passes, and performance >= 1.0
    rules = {r.rule: r.passed for r in cert.rules}
    assert rules["suite load load-rdy passes"] is (child.verdict == "pass")
    assert rules["performance >= 1"] is met
