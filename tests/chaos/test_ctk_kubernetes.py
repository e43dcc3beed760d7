"""Chaos Toolkit ``chaosk8s`` experiments (deploy/examples/experiments/ctk/12-, 13-)
imported and run by ``ChaosExperimentWorkflow`` on the kubernetes platform against
kmock's emulator (real HTTP on loopback, the real ``kubernetes`` client, a real
Temporal dev server, the real chaos activities). kmock has no controllers: a deleted
pod is not recreated, so the Deployment status is what the test wrote."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.chaos import ChaosActivities
from activities.faults.kubernetes import SAVED_REPLICAS, KubernetesFaults
from activities.interceptor import ErrorInterceptor
from activities.settings import Settings
from chaos.k8s_probes import probe_url
from chaos.messages import ChaosResult, ChaosRunInput, ProbeInput
from chaos.model import HttpProbe, load_experiment
from tests.servers import KubeServer, kmock_server  # noqa: F401
from workflows.chaos import ChaosExperimentWorkflow

pytestmark = pytest.mark.integration

CTK = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "experiments" / "ctk"
NS = "staging"
LABELS = {"app": "checkout", "version": "v1"}


def _pod(name: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": LABELS},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": phase},
    }


@pytest.fixture
def cluster(kmock_server: KubeServer) -> Iterator[Any]:  # noqa: F811
    from kubernetes import client

    api = kmock_server.api_client()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    apps.create_namespaced_deployment(
        NS,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "checkout-v1", "namespace": NS, "labels": LABELS},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": LABELS},
                "template": {
                    "metadata": {"labels": LABELS},
                    "spec": {"containers": [{"name": "c", "image": "x"}]},
                },
            },
            "status": {"replicas": 3, "availableReplicas": 3},
        },
    )
    for i in range(3):
        core.create_namespaced_pod(NS, _pod(f"checkout-v1-{i}"))
    yield api, core, apps
    for p in core.list_namespaced_pod(NS).items:
        core.delete_namespaced_pod(p.metadata.name, NS)
    apps.delete_namespaced_deployment("checkout-v1", NS)


def _acts(api: Any, tmp_path: Path) -> ChaosActivities:
    faults = KubernetesFaults(api_client=api)

    class K8sActs(ChaosActivities):
        def _platform(self, name: str) -> Any:
            assert name == "kubernetes"
            return faults

    return K8sActs(Settings(agent_url="http://127.0.0.1:1", state_dir=tmp_path))


def _short(name: str) -> Any:
    exp = load_experiment(CTK / name, environ={})
    controls = exp.controls.model_copy(
        update={"duration": timedelta(seconds=2), "probe_interval": timedelta(seconds=1)}
    )
    return exp.model_copy(update={"controls": controls})


async def _run(env: WorkflowEnvironment, acts: ChaosActivities, exp: Any) -> ChaosResult:
    tq = f"ctk-k8s-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=tq,
        workflows=[ChaosExperimentWorkflow],
        activities=[
            acts.discover,
            acts.inject,
            acts.revert,
            acts.rollback,
            acts.probe,
            acts.probe_batch,
            acts.report,
        ],
        interceptors=[ErrorInterceptor()],
    ):
        return await env.client.execute_workflow(
            ChaosExperimentWorkflow.run,
            ChaosRunInput(experiment=exp, actor="pytest", set_search_attributes=False),
            id=f"ctk-k8s-{uuid.uuid4()}",
            task_queue=tq,
        )


async def test_k8s_probes_hold_and_fail(cluster: Any, tmp_path: Path) -> None:
    api, core, apps = cluster
    acts = _acts(api, tmp_path)

    async def probe(check: str, **args: str) -> Any:
        p = HttpProbe(name=check, url=probe_url(check, NS, args))
        return (
            await ActivityEnvironment().run(acts.probe, ProbeInput(probe=p, phase="before"))
        ).record

    assert (await probe("deployment_available_and_healthy", name="checkout-v1")).ok
    assert (await probe("pods_in_phase", label_selector="app=checkout")).ok
    assert (await probe("all_pods_healthy")).ok
    missing = await probe("deployment_available_and_healthy", name="nope")
    assert not missing.ok and missing.status == 503
    assert not (await probe("pods_in_phase", label_selector="app=other")).ok
    core.create_namespaced_pod(NS, _pod("checkout-v1-pending", phase="Pending"))
    assert not (await probe("all_pods_healthy")).ok
    assert not (await probe("pods_in_phase", label_selector="app=checkout")).ok


async def test_ctk_terminate_pods_runs_on_kmock(
    dev_env: WorkflowEnvironment, cluster: Any, tmp_path: Path
) -> None:
    api, core, _ = cluster
    res = await _run(dev_env, _acts(api, tmp_path), _short("12-chaosk8s-terminate-pods.json"))
    assert res.status == "completed" and not res.deviated, res.reason
    [fault] = res.journal.faults
    assert fault.fault == "delete_pod" and fault.reverted_at is not None
    left = sorted(p.metadata.name for p in core.list_namespaced_pod(NS).items)
    assert len(left) == 2 and fault.target.name not in left  # exactly one pod terminated
    names = {p.name for p in res.journal.probes}
    assert {"checkout-available", "checkout-pods-running", "no-pod-failed"} <= names
    assert all(p.ok for p in res.journal.probes)
    # the run exported as a Chaos Toolkit journal beside CODE's own
    import json

    from activities.artifacts import LocalArtifactStore

    store = LocalArtifactStore(tmp_path / "artifacts")
    ctk = json.loads(store.get(f"chaos/{res.workflow_id}/ctk/journal.json"))
    assert ctk["status"] == "completed" and ctk["steady_states"]["before"]["steady_state_met"]
    assert [r["activity"]["provider"]["func"] for r in ctk["run"]] == ["delete_pod"]


async def _play_controller(apps: Any, stop: asyncio.Event) -> None:
    """kmock has no Deployment controller: make available replicas follow the spec."""
    while not stop.is_set():
        dep = await asyncio.to_thread(apps.read_namespaced_deployment, "checkout-v1", NS)
        if (dep.status.available_replicas or 0) != dep.spec.replicas:
            body = {
                "status": {"replicas": dep.spec.replicas, "availableReplicas": dep.spec.replicas}
            }
            await asyncio.to_thread(
                apps.patch_namespaced_deployment_status, "checkout-v1", NS, body
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


async def test_ctk_scale_deployment_runs_on_kmock_and_is_reverted(
    dev_env: WorkflowEnvironment, cluster: Any, tmp_path: Path
) -> None:
    api, _, apps = cluster
    stop = asyncio.Event()
    controller = asyncio.create_task(_play_controller(apps, stop))
    try:
        exp = _short("13-chaosk8s-scale-deployment.yaml")
        res = await _run(dev_env, _acts(api, tmp_path), exp)
    finally:
        stop.set()
        await controller
    assert res.status == "completed", [(p.name, p.phase, p.detail) for p in res.journal.probes]
    [fault] = res.journal.faults
    assert fault.fault == "scale_down" and fault.reverted_at is not None
    settled = [p for p in res.journal.probes if p.name == "checkout-settled-at-one"]
    assert settled and all(p.ok for p in settled)
    dep = apps.read_namespaced_deployment("checkout-v1", NS)
    assert dep.spec.replicas == 3  # scaled back by CODE's revert (the CTK rollback's intent)
    assert SAVED_REPLICAS not in (dep.metadata.annotations or {})
