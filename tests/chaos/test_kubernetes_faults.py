"""Kubernetes faults against kmock's emulator (real HTTP, the real ``kubernetes``
client). kmock has no controllers: pod re-creation after ``delete_pod`` is not
exercised (the revert only waits for the Deployment's available replicas).
kmock has no CNI either: a NetworkPolicy is stored, never enforced, so the
``network_partition`` tests check the API object (selector, policyTypes, no rules),
which is what a real cluster's CNI acts on."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.chaos import ChaosActivities
from activities.faults.kubernetes import (
    CHAOS_MANAGER,
    MANAGED_BY,
    SAVED_REPLICAS,
    KubernetesFaults,
    policy_name,
)
from activities.interceptor import mapped
from activities.settings import Settings
from chaos.blast import select_targets
from chaos.messages import InjectInput, RollbackInput
from chaos.model import Action, RollbackAction, Selector
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
        with contextlib.suppress(Exception):  # a test may have deleted it already
            core.delete_namespaced_pod(f"checkout-v1-{i}", NS)
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


# ------------------------------------------------------------ network_partition
# kmock does not enforce NetworkPolicies (no CNI): these tests check the API objects.
def _policies(api: Any, ns: str = NS) -> dict[str, Any]:
    from kubernetes import client

    items: list[Any] = client.NetworkingV1Api(api).list_namespaced_network_policy(ns).items
    return {p.metadata.name: p for p in items}


def _route(version: str | None = "v1", **labels: str) -> Any:
    sel = Selector(
        platform="kubernetes",
        service="checkout",
        environment=NS,
        version=version,
        labels=labels,
        mode="one",
    )
    [target] = select_targets("route", sel, [], seed=0, salt="partition")
    return target


async def test_network_partition_inject_and_revert_are_idempotent(
    kmock_server: KubeServer,  # noqa: F811
) -> None:
    api = kmock_server.api_client()
    faults = KubernetesFaults(api_client=api)
    target, key = _route(tier="web"), "chaos-wf-1:partition:kubernetes:checkout/staging/v1"
    handle = await faults.inject(key, "network_partition", target, {"direction": "both"})
    name = policy_name(key)
    assert handle == {"policy": name, "namespace": NS, "created": True}
    assert name.startswith("code-chaos-")
    pol = _policies(api)[name]
    assert pol.spec.pod_selector.match_labels == {"app": "checkout", "version": "v1", "tier": "web"}
    assert pol.spec.policy_types == ["Ingress", "Egress"]
    assert not pol.spec.ingress and not pol.spec.egress  # no rules: everything denied
    assert pol.metadata.labels[MANAGED_BY] == CHAOS_MANAGER
    assert pol.metadata.labels["code.dev/chaos-experiment"] == "chaos-wf-1"
    assert pol.metadata.annotations["code.dev/chaos-key"] == key

    again = await faults.inject(key, "network_partition", target, {"direction": "both"})
    assert again["created"] is False and list(_policies(api)) == [name]  # 409: a no-op

    assert "deleted" in await faults.revert(key, "network_partition", target, handle)
    assert _policies(api) == {}
    # second revert, and a revert with the handle lost: both find it gone
    assert "already gone" in await faults.revert(key, "network_partition", target, handle)
    assert "already gone" in await faults.revert(key, "network_partition", target, {})


async def test_network_partition_defaults_to_ingress_for_all_versions(
    kmock_server: KubeServer,  # noqa: F811
) -> None:
    api = kmock_server.api_client()
    faults = KubernetesFaults(api_client=api)
    target = _route(version=None)
    await faults.inject("k-default", "network_partition", target, {})
    pol = _policies(api)[policy_name("k-default")]
    assert pol.spec.pod_selector.match_labels == {"app": "checkout"}
    assert pol.spec.policy_types == ["Ingress"]
    await faults.revert("k-default", "network_partition", target, {})
    assert _policies(api) == {}


async def test_sweep_removes_only_chaos_policies_of_the_service(
    kmock_server: KubeServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    from kubernetes import client

    api = kmock_server.api_client()
    net = client.NetworkingV1Api(api)
    faults = KubernetesFaults(api_client=api)
    await faults.inject("a", "network_partition", _route(), {})
    await faults.inject("b", "network_partition", _route(version="v2"), {"direction": "egress"})
    other = _route().model_copy(update={"service": "other"})
    await faults.inject("c", "network_partition", other, {})
    theirs: Any = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "team-owned"},
        "spec": {"podSelector": {}},
    }
    net.create_namespaced_network_policy(NS, theirs)
    try:

        class K8sActs(ChaosActivities):
            def _platform(self, name: str) -> Any:
                return faults

        acts = K8sActs(Settings(agent_url="http://127.0.0.1:1", state_dir=tmp_path))
        rb = RollbackAction(
            name="sweep",
            action="remove_faults",
            target=Selector(platform="kubernetes", service="checkout", environment=NS, mode="all"),
        )
        res = await ActivityEnvironment().run(acts.rollback, RollbackInput(rollback=rb))
        assert "removed 2" in res.detail
        assert sorted(_policies(api)) == sorted(["team-owned", policy_name("c")])
        assert await faults.sweep(NS) == [policy_name("c")]  # whole namespace
        assert await faults.sweep(NS) == []  # idempotent
        assert list(_policies(api)) == ["team-owned"]  # never touches policies not ours
    finally:
        net.delete_namespaced_network_policy("team-owned", NS)


@pytest.mark.parametrize(
    ("env", "service", "why"),
    [
        ("production", "checkout", "environment 'production' is protected"),
        (NS, "payments", "service 'payments' is protected"),
    ],
)
async def test_network_partition_on_protected_target_is_refused(
    kmock_server: KubeServer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: str,
    service: str,
    why: str,
) -> None:
    monkeypatch.delenv("CODE_CHAOS_PROTECTED_ENVIRONMENTS", raising=False)
    monkeypatch.setenv("CODE_CHAOS_PROTECTED_SERVICES", "payments")
    api = kmock_server.api_client()

    class K8sActs(ChaosActivities):
        def _platform(self, name: str) -> Any:
            return KubernetesFaults(api_client=api)

    sel = Selector.model_construct(
        platform="kubernetes",
        service=service,
        environment=env,
        version=None,
        labels={},
        mode="one",
    )
    action = Action.model_construct(
        name="p", fault="network_partition", target=sel, params={"direction": "both"}
    )
    target = select_targets("route", sel, [], seed=0, salt="p")[0]
    acts = K8sActs(Settings(agent_url="http://127.0.0.1:1", state_dir=tmp_path))
    with pytest.raises(ApplicationError, match=why) as ei:
        await ActivityEnvironment().run(
            mapped(acts.inject), InjectInput(key="p", action=action, target=target)
        )
    assert ei.value.type == "ProtectedTarget" and ei.value.non_retryable
    assert _policies(api, env) == {}  # nothing created
