"""Kubernetes faults (``delete_pod``, ``scale_down``, ``network_partition``) with the
official client.

Conventions of ``activities/platform/k8s_manifests``: the namespace is the
environment; pods and Deployments of a service carry ``app=<service>`` and
``version=<label value of the version>``; the Deployment of a version is
``k8s_name(service, version)``. Pods are filtered client-side by label (kmock
has no label selectors; this stays correct on real clusters).

* ``delete_pod``: delete the chosen pod (grace 0). Revert waits until the
  Deployment's available replicas are back to its spec (the controller
  recreates the pod); idempotent.
* ``scale_down``: record the current replica count in the handle (and in a
  Deployment annotation, so a revert with an unknown handle still knows it),
  scale to ``replicas`` (default 0). Revert scales back; idempotent.
* ``network_partition``: create a ``networking.k8s.io/v1`` NetworkPolicy
  :func:`policy_name` (``code-chaos-...``, derived from the idempotency key) in the
  namespace whose ``podSelector`` is ``app=<service>`` (plus ``version`` and the
  selector's labels when given) and whose ``policyTypes`` are ``Ingress``, ``Egress``
  or both (param ``direction``: ``ingress`` (default) | ``egress`` | ``both``) with no
  rules: all such traffic of the selected pods is denied (``egress``/``both`` also cut
  DNS). Labelled ``app.kubernetes.io/managed-by=code-chaos`` plus fault/experiment/
  service labels; the full key is in an annotation. A second inject (409) is a no-op.
  Revert deletes the policy (404 = already reverted). :meth:`KubernetesFaults.sweep`
  deletes every ``code-chaos`` policy of a namespace (optionally one service's): the
  ``remove_faults`` rollback on the kubernetes platform. Only a CNI that enforces
  NetworkPolicies (Calico, Cilium, ...) turns the object into dropped packets.

Kubernetes probes (``k8s://`` URLs, :mod:`chaos.k8s_probes`, imported from
``chaosk8s`` probes): :meth:`KubernetesFaults.check` answers an
:class:`~chaos.tolerance.Observation` with status 200 when the check holds, 503 with
the reason when it does not (``deployment_available_and_healthy``: available ==
desired replicas; ``pods_in_phase``: at least one pod, all in ``phase``;
``all_pods_healthy``: none Failed, all Running or Succeeded).

Protected services/environments are checked by the inject activity
(:mod:`activities.chaos`) before any of this runs, as for every fault.

Tested against kmock's emulator only (no controllers there: pod re-creation is not
exercised; no CNI: NetworkPolicies are stored, not enforced); never against a real
cluster."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from activities.faults import NothingToRevert
from chaos.blast import Target
from chaos.k8s_probes import FAILS, HOLDS, parse_label_selector, parse_probe_url
from chaos.tolerance import Observation

NAME_LABEL = "app"
VERSION_LABEL = "version"
SAVED_REPLICAS = "code.dev/chaos-saved-replicas"
MANAGED_BY = "app.kubernetes.io/managed-by"
CHAOS_MANAGER = "code-chaos"
FAULT_LABEL = "code.dev/chaos-fault"
EXPERIMENT_LABEL = "code.dev/chaos-experiment"
SERVICE_LABEL = "code.dev/chaos-service"
KEY_ANNOTATION = "code.dev/chaos-key"
POLICY_TYPES = {"ingress": ["Ingress"], "egress": ["Egress"], "both": ["Ingress", "Egress"]}


def fault_id(key: str) -> str:
    """A short, label-safe id of one fault injection (its idempotency key's digest)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def policy_name(key: str) -> str:
    """The NetworkPolicy of the fault with idempotency ``key`` (a DNS-1123 name)."""
    return f"{CHAOS_MANAGER}-{fault_id(key)}"


def network_policy(key: str, target: Target, direction: str = "ingress") -> dict[str, Any]:
    """The deny-all NetworkPolicy body for ``target`` (pure)."""
    from activities.platform.k8s_manifests import label_value

    if direction not in POLICY_TYPES:
        raise ValueError(
            f"network_partition parameter 'direction' must be one of "
            f"{', '.join(POLICY_TYPES)} (got {direction!r})"
        )
    match = {**target.labels, NAME_LABEL: target.service}
    if target.version:
        match[VERSION_LABEL] = label_value(target.version)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": policy_name(key),
            "namespace": target.environment,
            "labels": {
                MANAGED_BY: CHAOS_MANAGER,
                FAULT_LABEL: fault_id(key),
                EXPERIMENT_LABEL: label_value(key.split(":", 1)[0]),
                SERVICE_LABEL: label_value(target.service),
            },
            "annotations": {KEY_ANNOTATION: key},
        },
        # policyTypes set and no rules: all traffic of those types is denied
        "spec": {"podSelector": {"matchLabels": match}, "policyTypes": POLICY_TYPES[direction]},
    }


class KubernetesFaults:
    def __init__(self, context: str | None = None, api_client: Any = None) -> None:
        self.context = context
        self.api_client = api_client

    def _apis(self) -> tuple[Any, Any]:
        from kubernetes import client, config

        if self.api_client is not None:
            return client.CoreV1Api(self.api_client), client.AppsV1Api(self.api_client)
        try:
            config.load_kube_config(context=self.context)
        except Exception:  # noqa: BLE001 - fall back to in-cluster
            config.load_incluster_config()
        return client.CoreV1Api(), client.AppsV1Api()

    def _net(self) -> Any:
        from kubernetes import client, config

        if self.api_client is not None:
            return client.NetworkingV1Api(self.api_client)
        try:
            config.load_kube_config(context=self.context)
        except Exception:  # noqa: BLE001 - fall back to in-cluster
            config.load_incluster_config()
        return client.NetworkingV1Api()

    def _partition(self, key: str, target: Target, params: dict[str, Any]) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        body = network_policy(key, target, str(params.get("direction", "ingress")))
        name = body["metadata"]["name"]
        created = True
        try:
            self._net().create_namespaced_network_policy(target.environment, body)
        except ApiException as e:
            if e.status != 409:
                raise
            created = False  # same key injected before: the policy is already in place
        return {"policy": name, "namespace": target.environment, "created": created}

    def _unpartition(self, key: str, target: Target, handle: dict[str, Any]) -> str:
        from kubernetes.client.exceptions import ApiException

        name = handle.get("policy") or policy_name(key)
        ns = handle.get("namespace") or target.environment
        try:
            self._net().delete_namespaced_network_policy(name, ns)
        except ApiException as e:
            if e.status != 404:
                raise
            return NothingToRevert(f"networkpolicy {ns}/{name} already gone")
        return f"networkpolicy {ns}/{name} deleted"

    def _sweep(self, namespace: str, service: str | None = None) -> list[str]:
        from kubernetes.client.exceptions import ApiException

        from activities.platform.k8s_manifests import label_value

        net = self._net()
        found = net.list_namespaced_network_policy(
            namespace, label_selector=f"{MANAGED_BY}={CHAOS_MANAGER}"
        )
        deleted = []
        for pol in found.items:  # filtered client-side too (kmock has no label selectors)
            labels = pol.metadata.labels or {}
            if labels.get(MANAGED_BY) != CHAOS_MANAGER:
                continue
            if service is not None and labels.get(SERVICE_LABEL) != label_value(service):
                continue
            try:
                net.delete_namespaced_network_policy(pol.metadata.name, namespace)
            except ApiException as e:
                if e.status != 404:
                    raise
            deleted.append(pol.metadata.name)
        return sorted(deleted)

    async def sweep(self, namespace: str, service: str | None = None) -> list[str]:
        """Delete every ``code-chaos`` NetworkPolicy of ``namespace`` (of ``service`` only
        when given); returns the names deleted. Idempotent."""
        return await asyncio.to_thread(self._sweep, namespace, service)

    def _candidates(self, service: str, env: str) -> list[Target]:
        core, _ = self._apis()
        pods = core.list_namespaced_pod(env, label_selector=f"{NAME_LABEL}={service}")
        mine = [p for p in pods.items if (p.metadata.labels or {}).get(NAME_LABEL) == service]
        out = []
        for i, pod in enumerate(sorted(mine, key=lambda p: p.metadata.name)):
            labels = dict(pod.metadata.labels or {})
            out.append(
                Target(
                    platform="kubernetes",
                    unit="instance",
                    service=service,
                    environment=env,
                    version=labels.get(VERSION_LABEL),
                    index=i,
                    labels=labels,
                    name=pod.metadata.name,
                )
            )
        return out

    async def candidates(self, service: str, env: str) -> list[Target]:
        return await asyncio.to_thread(self._candidates, service, env)

    def _deployment(self, target: Target) -> str:
        from activities.platform.k8s_manifests import k8s_name

        if not target.version:
            raise ValueError(f"{target.id}: name the version to act on its Deployment")
        return k8s_name(target.service, target.version)

    def _inject(
        self, key: str, fault: str, target: Target, params: dict[str, Any]
    ) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        if fault == "network_partition":
            return self._partition(key, target, params)
        core, apps = self._apis()
        if fault == "delete_pod":
            try:
                core.delete_namespaced_pod(target.name, target.environment, grace_period_seconds=0)
            except ApiException as e:
                if e.status != 404:
                    raise
            return {"pod": target.name, "deployment": self._deployment(target)}
        if fault == "scale_down":
            name = self._deployment(target)
            dep = apps.read_namespaced_deployment(name, target.environment)
            ann = dict(dep.metadata.annotations or {})
            saved = int(ann.get(SAVED_REPLICAS, dep.spec.replicas or 0))
            apps.patch_namespaced_deployment(
                name,
                target.environment,
                {
                    "metadata": {"annotations": {SAVED_REPLICAS: str(saved)}},
                    "spec": {"replicas": int(params.get("replicas", 0))},
                },
            )
            return {"deployment": name, "replicas": saved}
        raise ValueError(f"fault {fault!r} is not a kubernetes fault")

    def _revert(self, key: str, fault: str, target: Target, handle: dict[str, Any]) -> str:
        if fault == "network_partition":
            return self._unpartition(key, target, handle)
        _, apps = self._apis()
        name = handle.get("deployment") or self._deployment(target)
        if fault == "scale_down":
            dep = apps.read_namespaced_deployment(name, target.environment)
            ann = dict(dep.metadata.annotations or {})
            replicas = handle.get("replicas", ann.get(SAVED_REPLICAS))
            if replicas is None:
                return NothingToRevert(f"{name}: no saved replica count (never scaled down)")
            apps.patch_namespaced_deployment(
                name,
                target.environment,
                {
                    "metadata": {"annotations": {SAVED_REPLICAS: None}},
                    "spec": {"replicas": int(replicas)},
                },
            )
            return f"{name} scaled back to {replicas}"
        if fault == "delete_pod":
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                dep = apps.read_namespaced_deployment(name, target.environment)
                want = dep.spec.replicas or 0
                if (dep.status.available_replicas or 0) >= want:
                    return f"{name} has {want} available replica(s) again"
                time.sleep(1)
            raise TimeoutError(f"{name} did not get its replicas back within 120s")
        raise ValueError(f"fault {fault!r} is not a kubernetes fault")

    async def inject(
        self, key: str, fault: str, target: Target, params: dict[str, Any]
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self._inject, key, fault, target, params)

    async def revert(self, key: str, fault: str, target: Target, handle: dict[str, Any]) -> str:
        return await asyncio.to_thread(self._revert, key, fault, target, handle)


def _matches(labels: dict[str, str] | None, selector: str | None) -> bool:
    want = parse_label_selector(selector) if selector else {}
    if want is None:
        raise ValueError(f"label selector {selector!r}: only k=v[,k=v] is supported")
    have = labels or {}
    return all(have.get(k) == v for k, v in want.items())


def _check_sync(apps: Any, core: Any, url: str) -> tuple[bool, str]:
    from kubernetes.client.exceptions import ApiException

    check, ns, args = parse_probe_url(url)
    if check == "deployment_available_and_healthy":
        name = args["name"]
        try:
            dep = apps.read_namespaced_deployment(name, ns)
        except ApiException as e:
            if e.status == 404:
                return False, f"Deployment {ns}/{name} was not found"
            raise
        if not _matches(dep.metadata.labels, args.get("label_selector")):
            return False, f"Deployment {ns}/{name} does not match {args['label_selector']!r}"
        want, have = dep.spec.replicas or 0, (dep.status.available_replicas or 0)
        return have == want, f"Deployment {ns}/{name}: {have}/{want} replicas available"
    pods = core.list_namespaced_pod(ns).items
    if check == "pods_in_phase":
        phase = args.get("phase", "Running")
        mine = [p for p in pods if _matches(p.metadata.labels, args["label_selector"])]
        if not mine:
            return False, f"no pods {args['label_selector']!r} in {ns}"
        off = sorted(p.metadata.name for p in mine if (p.status and p.status.phase) != phase)
        if off:
            return False, f"pods not in phase {phase}: {', '.join(off)}"
        return True, f"{len(mine)} pod(s) {args['label_selector']!r} in phase {phase}"
    failed, not_ready = [], []
    for pod in pods:
        pod_phase = pod.status.phase if pod.status else None
        if pod_phase == "Failed":
            failed.append(pod.metadata.name)
        elif pod_phase not in ("Running", "Succeeded"):
            not_ready.append(pod.metadata.name)
    if failed or not_ready:
        return False, f"{ns}: failed {sorted(failed)}, not ready {sorted(not_ready)}"
    return True, f"{ns}: all {len(pods)} pod(s) healthy"


async def check(faults: KubernetesFaults, url: str) -> Observation:
    """Run the ``k8s://`` check ``url``; an API error is an observation, not a crash."""
    import json

    t0 = time.perf_counter()

    def run() -> tuple[bool, str]:
        core, apps = faults._apis()
        return _check_sync(apps, core, url)

    try:
        ok, detail = await asyncio.to_thread(run)
    except Exception as exc:  # noqa: BLE001 - reported as the probe's observation
        return Observation(
            status=None,
            error=f"{type(exc).__name__}: {exc}"[:300],
            latency_ms=(time.perf_counter() - t0) * 1000.0,
            requests=1,
            failures=1,
        )
    return Observation(
        status=HOLDS if ok else FAILS,
        body=json.dumps({"ok": ok, "detail": detail}),
        latency_ms=(time.perf_counter() - t0) * 1000.0,
        requests=1,
        failures=0 if ok else 1,
    )
