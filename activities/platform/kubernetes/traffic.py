"""How traffic is split between the versions of a service on Kubernetes: one
:class:`TrafficRouter` interface, two implementations.

* :class:`GatewayTraffic` (``traffic_mode="gateway"``, the default): the weights go into a
  Gateway API ``HTTPRoute <service>`` with one weighted backendRef per version Service;
  the route is validated against policy and archived before it is applied. Exact.
* :class:`ReplicaRatioTraffic` (``traffic_mode="replicas"``, without a Gateway): each
  version is scaled to ``round(replicas * weight / 100)`` (at least 1 when weight > 0)
  behind the shared ``<service>`` Service, so the split is APPROXIMATE (the Service
  annotation ``code.dev/traffic-mode`` says so). This router owns ``.replicas``.

Both record the weights in a ``code.dev/weights`` annotation (on the route or the shared
Service) and read them back from there. The caller has checked the weights (>= 0, sum
100, only applied versions); ``versions`` maps each applied version to its Deployment.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from activities.platform import k8s_manifests as m
from activities.platform.kubernetes.transport import MERGE_PATCH, KubeApi, annotations_of

log = logging.getLogger(__name__)

Publish = Callable[[str, list[dict[str, Any]], str], Awaitable[None]]
"""``publish(what, docs, archive_key)``: validate service-wide docs against policy and
archive their YAML (raises ``ManifestRejected``)."""
WaitRollout = Callable[[str, str, str], Awaitable[object]]
"""``wait_rollout(namespace, deployment, what)``: until the rollout is done."""


class TrafficRouter(Protocol):
    mode: Literal["gateway", "replicas"]
    owns_replicas: bool
    """The router scales Deployments: applying a version must not reset ``.replicas``."""

    async def route(
        self,
        what: str,
        service: str,
        env: str,
        ns: str,
        weights: dict[str, int],
        versions: dict[str, Any],
        archive_key: str,
    ) -> bool:
        """Send ``weights`` (version -> percent) to the versions; ``True`` when it changed."""
        ...

    async def weights(self, service: str, ns: str) -> dict[str, int]:
        """The weights last routed (``{}`` before the first)."""
        ...


def _recorded(obj: Any) -> dict[str, int]:
    raw = annotations_of(obj).get(m.A_WEIGHTS) if obj is not None else None
    return {k: int(v) for k, v in json.loads(raw).items()} if raw else {}


class GatewayTraffic:
    mode: Literal["gateway", "replicas"] = "gateway"
    owns_replicas = False

    def __init__(self, api: KubeApi, parent_refs: list[dict[str, Any]], publish: Publish) -> None:
        self.api = api
        self.parent_refs = parent_refs
        self.publish = publish

    async def route(
        self,
        what: str,
        service: str,
        env: str,
        ns: str,
        weights: dict[str, int],
        versions: dict[str, Any],
        archive_key: str,
    ) -> bool:
        route = m.render_httproute(service, env, ns, weights, self.parent_refs)
        await self.publish(what, [route], f"{archive_key}/httproute.yaml")
        return await self.api.create_or_patch(route)

    async def weights(self, service: str, ns: str) -> dict[str, int]:
        read = self.api.ops("HTTPRoute")[0]
        return _recorded(
            await self.api.get(f"read HTTPRoute {ns}/{service}", read, m.k8s_name(service), ns)
        )


class ReplicaRatioTraffic:
    mode: Literal["gateway", "replicas"] = "replicas"
    owns_replicas = True

    def __init__(self, api: KubeApi, wait_rollout: WaitRollout) -> None:
        self.api = api
        self.wait_rollout = wait_rollout

    async def route(
        self,
        what: str,
        service: str,
        env: str,
        ns: str,
        weights: dict[str, int],
        versions: dict[str, Any],
        archive_key: str,
    ) -> bool:
        log.warning("%s: replica-ratio traffic split is approximate", what)
        changed = False
        for version, dep in versions.items():
            full = int(annotations_of(dep).get("code.dev/replicas", dep.spec.replicas or 1))
            w = weights.get(version, 0)
            want = 0 if w == 0 else max(1, round(full * w / 100))
            if dep.spec.replicas != want:
                changed = True
                await self.api.call(
                    f"{what}: scale {dep.metadata.name}",
                    self.api.apps.patch_namespaced_deployment,
                    dep.metadata.name,
                    ns,
                    {"spec": {"replicas": want}},
                    _content_type=MERGE_PATCH,
                )
                if want:
                    await self.wait_rollout(ns, dep.metadata.name, what)
        note = {
            m.A_WEIGHTS: json.dumps(weights, sort_keys=True),
            m.A_TRAFFIC_MODE: "replica-ratio (approximate)",
        }
        await self.api.call(
            f"{what}: record weights",
            self.api.core.patch_namespaced_service,
            m.k8s_name(service),
            ns,
            {"metadata": {"annotations": note}},
            _content_type=MERGE_PATCH,
        )
        return changed

    async def weights(self, service: str, ns: str) -> dict[str, int]:
        return _recorded(
            await self.api.get(
                f"read Service {ns}/{service}",
                self.api.core.read_namespaced_service,
                m.k8s_name(service),
                ns,
            )
        )
