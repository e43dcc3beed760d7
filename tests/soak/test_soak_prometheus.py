"""Resource trend from a Prometheus query (real Prometheus, real load, real dev server)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.interceptor import ErrorInterceptor
from activities.settings import Settings
from activities.soak import SoakActivities
from loadtest.scenario import parse_scenario
from loadtest.soak_models import SoakInput, SoakPlan
from workflows.soak import SoakTestWorkflow


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_resource_trend_from_prometheus_query(
    dev_env: WorkflowEnvironment, fast_target: str, prometheus_url: str, tmp_path: Path
) -> None:
    plan = SoakPlan.model_validate(
        {
            "name": "prom",
            "target": {"url": fast_target},
            "scenario": parse_scenario({"targets": [{"name": "home"}]}),
            "rate": 20,
            "duration": "8s",
            "slice": "4s",
            "checks": {
                "resources": {
                    "prometheus_query": 'process_resident_memory_bytes{job="prometheus"}',
                    "sample_every": "1s",
                    "min_points": 4,
                    "max_rss_slope_mb_per_hour": 100000,
                }
            },
        }
    )
    tq = f"soak-prom-{uuid.uuid4()}"
    settings = Settings(
        state_dir=tmp_path, artifact_dir=tmp_path / "a", prometheus_url=prometheus_url
    )
    acts = SoakActivities(settings)
    async with Worker(
        dev_env.client,
        task_queue=tq,
        workflows=[SoakTestWorkflow],
        activities=[acts.resolve_target, acts.run_slice, acts.report],
        interceptors=[ErrorInterceptor()],
    ):
        res = await dev_env.client.execute_workflow(
            SoakTestWorkflow.run,
            SoakInput(plan=plan),
            id=f"soak-prom-{uuid.uuid4()}",
            task_queue=tq,
        )
    assert res.verdict == "pass", res.reason
    assert len(res.trend) >= 6
    assert all(p.rss_mb > 1 for p in res.trend)  # Prometheus' own RSS, in MB
    assert res.last_check is not None
    assert any(o.name == "rss trend" for o in res.last_check.outcomes)
