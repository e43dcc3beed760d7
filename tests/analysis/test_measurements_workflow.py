"""Measurements in a canary's analysis step on the time-skipping server: the real
``analysis.measure`` activity reads a real loopback HTTP receiver. A web measurement
that fails rolls the canary back; the same measurement with ``dry_run: true`` lets it
promote with the failed verdicts recorded in the step detail. (``analysis.run`` is the
scripted pass of ``test_workflow_rules``; the comparison is not under test there.)
A judged metric with ``dry_run`` that fails (the real judge) does not fail the run."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.analysis import analyse_interval
from activities.analysis.measure import MeasureActivities
from activities.artifacts import ArtifactStore, LocalArtifactStore
from activities.settings import Settings
from code_foundation.names import A
from tests.analysis.test_provenance import FakeProvider, deploy_spec, slow_canary
from tests.analysis.test_workflow_rules import Scripted, analysis_step
from tests.receiver import Receiver
from tests.workflows.fakes import FakePlatform
from workflows.client import deployment_result, execute_deployment
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.models import AnalyseInput, AnalysisResult, DeployInput, DeployResult
from workflows.rollback import RollbackWorkflow
from workflows.spec import AnalysisSpec, DeploymentSpec


def spec(version: str, url: str, **measurement: Any) -> DeploymentSpec:
    m = {
        "name": "upstream-errors",
        "provider": {"web": {"url": url, "json_path": "$.data.ratio", "timeout": "2s"}},
        "success": {"max": 0.05},
        **measurement,
    }
    a = {"interval": "10m", "count": 3, "measurements": [m]}
    return DeploymentSpec.model_validate(
        {
            "service": "shop",
            "environment": "prod",
            "version": version,
            "artifact": {"command": ["{python}", "svc.py"]},
            "strategy": {
                "type": "canary",
                "canary": {"steps": [{"set_weight": 20}, {"analysis": a}]},
            },
        }
    )


@pytest.fixture
def receiver() -> Any:
    ratio = {"value": 0.01}
    r = Receiver(lambda _c: (200, json.dumps({"data": {"ratio": ratio["value"]}})))
    r.ratio = ratio  # type: ignore[attr-defined]
    yield r
    r.stop()


async def deploy(
    env: WorkflowEnvironment,
    receiver: Receiver,
    ratio: float,
    store: ArtifactStore,
    seen: dict[str, Any] | None = None,
    **measurement: Any,
) -> DeployResult:
    """v1 (a first deploy: no canary), then v2 with the ratio; ``seen`` gets v2's
    workflow id and final status."""
    fake = FakePlatform()
    acts = [a for a in fake.activities() if a.__temporal_activity_definition.name != A.ANALYSE]  # type: ignore[attr-defined]
    tq = f"tq-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=tq,
        workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
        activities=[
            *acts,
            Scripted(["pass"]).activity(),
            MeasureActivities(Settings(), store=store).measure,
        ],
    ):
        receiver.ratio["value"] = 0.01  # type: ignore[attr-defined]
        first = await execute_deployment(
            env.client,
            DeploymentWorkflow.run,
            DeployInput(spec=spec("v1", receiver.url + "/ratio"), set_search_attributes=False),
            id=f"deploy-{uuid.uuid4()}",
            task_queue=tq,
            result_type=DeployResult,
        )
        assert first.outcome == "promoted", first.reason
        receiver.ratio["value"] = ratio  # type: ignore[attr-defined]
        h = await env.client.start_workflow(
            DeploymentWorkflow.run,
            DeployInput(
                spec=spec("v2", receiver.url + "/ratio", **measurement),
                set_search_attributes=False,
            ),
            id=f"deploy-{uuid.uuid4()}",
            task_queue=tq,
            result_type=DeployResult,
        )
        res = await deployment_result(h)
        if seen is not None:
            seen["id"], seen["status"] = h.id, await h.query(DeploymentWorkflow.status)
        return res


async def test_failing_web_measurement_rolls_the_canary_back(
    ts_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path
) -> None:
    res = await deploy(ts_env, receiver, 0.4, LocalArtifactStore(tmp_path))
    assert res.outcome == "rolled_back", res.reason
    assert "measurement upstream-errors failed 1 time(s)" in res.reason
    assert "value 0.4 > max 0.05" in res.reason
    assert analysis_step(res).outcome == "failed"
    assert len(receiver.calls) == 1  # (v1 is a first deploy: no canary) v2 stops at once


async def test_failure_limit_tolerates_earlier_failures(
    ts_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path
) -> None:
    res = await deploy(ts_env, receiver, 0.4, LocalArtifactStore(tmp_path), failure_limit=2)
    assert res.outcome == "rolled_back"
    assert "failed 3 time(s) (failure_limit 2)" in res.reason


async def test_dry_run_measurement_records_the_failure_and_promotes(
    ts_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path
) -> None:
    res = await deploy(ts_env, receiver, 0.4, LocalArtifactStore(tmp_path), dry_run=True)
    assert res.outcome == "promoted", res.reason
    detail = analysis_step(res).detail
    assert "upstream-errors (dry run) 0/3 passed" in detail, detail
    assert "value 0.4 > max 0.05" in detail


async def test_measurements_are_evidence_in_the_status_and_the_artifact_store(
    ts_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path
) -> None:
    """Every measurement's value and verdict is a structured field of the status Query,
    and each interval's evidence is stored beside the run's analysis records (where
    ``codectl rejudge`` reads them: it skips the evidence)."""
    from workers.cli.analysis import _load_runs
    from workflows.models import DeployStatus

    store = LocalArtifactStore(tmp_path)
    seen: dict[str, Any] = {}
    res = await deploy(ts_env, receiver, 0.4, store, seen, dry_run=True)
    assert res.outcome == "promoted", res.reason
    st: DeployStatus = seen["status"]
    got = [(m.name, m.step_index, m.interval_index, m.status, m.value) for m in st.measurements]
    assert got == [("upstream-errors", 1, n, "failed", 0.4) for n in range(3)]
    assert all(m.dry_run and m.message == "value 0.4 > max 0.05" for m in st.measurements)
    keys = sorted(k for k in store.list(f"analysis/{seen['id']}/") if k.endswith(".json"))
    assert keys == [m.artifact_key for m in st.measurements]
    for n, key in enumerate(keys):
        assert key.endswith(f"/step01-interval{n:03d}.measurements.json")
        doc = json.loads(store.get(key))
        assert doc["schema"] == "code.measurements/v1" and doc["workflow_id"] == seen["id"]
        assert (doc["step_index"], doc["interval_index"], doc["version"]) == (1, n, "v2")
        assert doc["measurements"][0]["provider"]["web"]["json_path"] == "$.data.ratio"
        (r,) = doc["results"]
        assert (r["status"], r["value"], r["dry_run"]) == ("failed", 0.4, True)
    assert _load_runs(store, seen["id"]) == {}  # evidence only: no judged interval


# ---------------------------------------------------------------- dry-run judged metric
def judged_spec(version: str, latency_dry_run: bool) -> DeploymentSpec:
    a = AnalysisSpec.model_validate(
        {
            "interval": "10m",
            "count": 2,
            "groups": {"latency": 50, "errors": 50},
            "metrics": [
                {"name": "latency", "query": "lat{version='{version}'}", "group": "latency",
                 "allowed_increase": 1.1, "dry_run": latency_dry_run},
                {"name": "errors", "query": "err{version='{version}'}", "group": "errors"},
            ],
        }
    )  # fmt: skip
    return deploy_spec(a).model_copy(update={"version": version})


@pytest.mark.parametrize("dry_run", [True, False])
async def test_dry_run_judged_metric_that_fails_does_not_fail_the_run(
    ts_env: WorkflowEnvironment, tmp_path: Path, dry_run: bool
) -> None:
    """The real judge (``analyse_interval`` over a fixed 40%-slower canary series) as
    ``analysis.run``: with ``latency`` dry-run the canary promotes and the interval's
    reasons keep ``dry-run latency [fail]``; without it the same data rolls back."""
    store = LocalArtifactStore(tmp_path)

    @activity.defn(name=A.ANALYSE)
    async def analyse(inp: AnalyseInput) -> AnalysisResult:
        return await analyse_interval(
            inp,
            settings=None,
            platform=None,
            store=store,
            workflow_id=activity.info().workflow_id,
            provider=FakeProvider(slow_canary()),
        )

    fake = FakePlatform()
    acts = [a for a in fake.activities() if a.__temporal_activity_definition.name != A.ANALYSE]  # type: ignore[attr-defined]
    tq = f"tq-{uuid.uuid4()}"
    async with Worker(
        ts_env.client,
        task_queue=tq,
        workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
        activities=[*acts, analyse],
    ):
        for version in ("v1", "v2"):
            h = await ts_env.client.start_workflow(
                DeploymentWorkflow.run,
                DeployInput(spec=judged_spec(version, dry_run), set_search_attributes=False),
                id=f"deploy-{uuid.uuid4()}",
                task_queue=tq,
                result_type=DeployResult,
            )
            res = await deployment_result(h)
            st = await h.query(DeploymentWorkflow.status)
    if dry_run:
        assert res.outcome == "promoted", res.reason
        assert st.last_analysis is not None and st.last_analysis.verdict == "pass"
        assert any(r.startswith("dry-run latency [fail]") for r in st.last_analysis.reasons)
    else:
        assert res.outcome == "rolled_back"
        assert "analysis failed" in res.reason
