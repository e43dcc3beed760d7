"""Kubernetes faults against kmock's emulator (real HTTP, the real ``kubernetes``
client). kmock has no controllers: pod re-creation after ``delete_pod`` is not
exercised (the revert only waits for the Deployment's available replicas)."""

from __future__ import annotations

from typing import Any

import pytest

from activities.faults.kubernetes import SAVED_REPLICAS, KubernetesFaults
from chaos.blast import select_targets
from chaos.model import Selector
from tests.servers import KubeServer, kmock_server  # noqa: F401

NS = "staging"


@pytest.fixture
def cluster(kmock_server: KubeServer) -> Any:  # noqa: F811
    from kubernetes import client

    api = kmock_server.api_client()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    labels = {"app": "checkout", "version": "v1"}
    apps.create_namespaced_deployment(
        NS,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "checkout-v1", "namespace": NS, "labels": labels},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "x"}]},
                },
            },
            "status": {"replicas": 3, "availableReplicas": 3},
        },
    )
    for i in range(3):
        core.create_namespaced_pod(
            NS,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"checkout-v1-{i}", "namespace": NS, "labels": labels},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        )
    core.create_namespaced_pod(
        NS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "other-0", "namespace": NS, "labels": {"app": "other"}},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    yield api, core, apps
    for i in range(3):
        try:
            core.delete_namespaced_pod(f"checkout-v1-{i}", NS)
        except Exception:  # noqa: BLE001
            pass
    core.delete_namespaced_pod("other-0", NS)
    apps.delete_namespaced_deployment("checkout-v1", NS)


async def test_delete_pod_and_scale_down(cluster: Any) -> None:
    api, core, apps = cluster
    faults = KubernetesFaults(api_client=api)
    cands = await faults.candidates("checkout", NS)
    assert [c.name for c in cands] == [
        "checkout-v1-0",
        "checkout-v1-1",
        "checkout-v1-2",
    ]  # 'other' filtered
    sel = Selector(platform="kubernetes", service="checkout", environment=NS, mode="one")
    [target] = select_targets("instance", sel, cands, seed=5, salt="delete")
    handle = await faults.inject("k1", "delete_pod", target, {})
    names = {p.metadata.name for p in core.list_namespaced_pod(NS).items}
    assert target.name not in names and len(names) == 3
    await faults.inject("k1", "delete_pod", target, {})  # idempotent: already gone is fine
    assert "3 available" in await faults.revert("k1", "delete_pod", target, handle)

    route = target.model_copy(update={"unit": "route", "name": None, "index": None})
    handle = await faults.inject("k2", "scale_down", route, {"replicas": 1})
    dep = apps.read_namespaced_deployment("checkout-v1", NS)
    assert dep.spec.replicas == 1 and dep.metadata.annotations[SAVED_REPLICAS] == "3"
    again = await faults.inject("k2", "scale_down", route, {"replicas": 1})
    assert again["replicas"] == 3  # a retried inject keeps the original count
    assert "scaled back to 3" in await faults.revert(
        "k2", "scale_down", route, {}
    )  # handle lost: annotation
    assert apps.read_namespaced_deployment("checkout-v1", NS).spec.replicas == 3
