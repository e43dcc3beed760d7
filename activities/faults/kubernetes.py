"""Kubernetes faults (``delete_pod``, ``scale_down``) with the official client.

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

Tested against kmock's emulator only (no controllers there: pod re-creation is not
exercised); never against a real cluster."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from chaos.blast import Target

NAME_LABEL = "app"
VERSION_LABEL = "version"
SAVED_REPLICAS = "code.dev/chaos-saved-replicas"


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
        _, apps = self._apis()
        name = handle.get("deployment") or self._deployment(target)
        if fault == "scale_down":
            dep = apps.read_namespaced_deployment(name, target.environment)
            ann = dict(dep.metadata.annotations or {})
            replicas = handle.get("replicas", ann.get(SAVED_REPLICAS))
            if replicas is None:
                return f"{name}: no saved replica count (never scaled down)"
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
