"""Resource trend from a Prometheus query (real Prometheus, real load, real dev server):
the RSS of real demo-service processes, scraped by Prometheus, judged against a real
limit; a leaking service fails the check, a healthy one passes."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.interceptor import ErrorInterceptor
from activities.settings import Settings
from activities.soak import SoakActivities
from loadtest.scenario import parse_scenario
from loadtest.soak_models import CheckOutcome, SoakInput, SoakPlan, SoakResult
from tests.servers import wait_until
from tests.soak.conftest import RssExporter, demo_process
from workflows.soak import SoakTestWorkflow

LIMIT_MB_PER_H = 100.0  # what test_soak_real allows a healthy demo service too


def plan(name: str, url: str) -> SoakPlan:
    return SoakPlan.model_validate(
        {
            "name": f"prom-{name}",
            "target": {"url": url},
            "scenario": parse_scenario({"targets": [{"name": "home"}]}),
            "rate": 20,
            "duration": "8s",
            "slice": "4s",
            "checks": {
                "resources": {
                    "prometheus_query": (
                        f'process_resident_memory_bytes{{job="rss",service="{name}"}}'
                    ),
                    "sample_every": "1s",
                    "warmup": "2s",
                    "min_points": 4,
                    "max_rss_slope_mb_per_hour": LIMIT_MB_PER_H,
                }
            },
        }
    )


def rss_outcome(res: SoakResult) -> CheckOutcome:
    assert res.last_check is not None
    return next(o for o in res.last_check.outcomes if o.name == "rss trend")


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_resource_trend_from_prometheus_query(
    dev_env: WorkflowEnvironment, rss_prometheus: tuple[str, RssExporter], tmp_path: Path
) -> None:
    """Two demo services under load, their RSS scraped by Prometheus: the healthy one
    stays under the limit and passes, the one leaking 1 MB/s (3,600 MB/h) is flagged."""
    prometheus_url, exporter = rss_prometheus
    with (
        demo_process() as (healthy, healthy_url),
        demo_process(DEMO_LEAK_KB_PER_S="1024") as (leaky, leaky_url),
    ):
        exporter.pids.update(healthy=healthy.pid, leaky=leaky.pid)
        q = {"query": 'process_resident_memory_bytes{job="rss"}'}
        await asyncio.to_thread(
            wait_until,
            lambda: len(httpx.get(prometheus_url + "/api/v1/query", params=q).json()["data"]
                        ["result"]) == 2,
            30,
            "both services scraped",
        )  # fmt: skip
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
            good, bad = await asyncio.gather(
                *(
                    dev_env.client.execute_workflow(
                        SoakTestWorkflow.run,
                        SoakInput(plan=plan(name, url)),
                        id=f"soak-prom-{name}-{uuid.uuid4()}",
                        task_queue=tq,
                    )
                    for name, url in (("healthy", healthy_url), ("leaky", leaky_url))
                )
            )
    for res in (good, bad):  # the trend points are the services' RSS, read via PromQL
        assert len(res.trend) >= 6
        assert all(p.rss_mb > 1 for p in res.trend)
    ok = rss_outcome(good)
    print(f"healthy: {ok.detail}; leaky: {rss_outcome(bad).detail}")
    assert good.verdict == "pass", good.reason
    assert ok.ok and ok.value is not None and ok.value < LIMIT_MB_PER_H
    assert bad.verdict == "fail" and bad.reason.startswith("rss trend"), bad.reason
    flagged = rss_outcome(bad)
    assert not flagged.ok and flagged.value is not None and flagged.value > 10 * LIMIT_MB_PER_H
