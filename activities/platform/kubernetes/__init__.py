"""``KubernetesPlatform``: the :class:`~activities.platform.base.Platform` on a cluster.

Contract (same async interface and errors as ``LocalPlatform``; the blocking
``kubernetes`` client runs in threads):

* ``apply_version``: resolve the spec's secrets (``SecretResolver``; a bad reference fails
  here, before anything is rendered or applied), render Deployment ``<service>-<version>``
  + Services (``k8s_manifests``), validate them with ``rust_core.validate_manifests``
  (violations -> non-retryable ``ManifestRejected``, nothing applied), archive the YAML in
  the artifact store (Secret values are never rendered into the archive), then
  create-or-patch each object and poll the rollout like ``kubectl rollout status``
  (observedGeneration, updated/available replicas, ``ProgressDeadlineExceeded``) until
  done or ``progressDeadlineSeconds`` (+ grace) passes -> ``UnhealthyVersion``.
* Create-or-patch is idempotent: each object carries ``code.dev/spec-hash``; an equal hash
  means nothing to do (``changed=False``); otherwise a JSON merge patch (lists replaced,
  never merged) is sent. ``initial_weight`` routes that share to the new version at once.
* ``set_traffic``: ``traffic_mode="gateway"`` (default) writes the weights into a Gateway
  API ``HTTPRoute <service>`` (one weighted backendRef per version Service).
  ``traffic_mode="replicas"`` is the fallback without a Gateway: it scales each version
  to ``round(replicas * weight / 100)`` (at least 1 when weight > 0) behind the shared
  ``<service>`` Service, so the split is APPROXIMATE (the Service annotation
  ``code.dev/traffic-mode`` says so). Weights must sum to 100 and name applied versions.
* ``retire_version`` refuses a version that still has traffic (unless ``force``: its share
  is first moved to the other versions pro rata), then deletes its Deployment, Service
  and Secret (already gone -> ``changed=False``).
* ``describe`` reads Deployments (filtered client-side by labels: kmock has no label
  selectors and this stays correct on real clusters) and the recorded weights.
* Errors: unreachable API / 5xx / 429 -> ``PlatformUnavailable`` (retryable); 401/403,
  404 namespace or missing Gateway API CRDs, 409/422 -> non-retryable errors.
Namespace: the input's, else the spec's, else ``default_namespace``, else the environment.

Modules: :mod:`.transport` (API calls with error mapping, create-or-patch),
:mod:`.traffic` (the ``TrafficRouter`` interface: Gateway API weights or replica ratio),
:mod:`.platform` (``KubernetesPlatform``).
"""

from activities.platform.base import SecretResolutionFailed
from activities.platform.kubernetes.platform import (
    KubernetesPlatform,
    ManifestRejected,
    platform_from_settings,
    render_manifests,
)
from activities.platform.kubernetes.traffic import (
    GatewayTraffic,
    ReplicaRatioTraffic,
    TrafficRouter,
)
from activities.platform.kubernetes.transport import KubeApi, ObjectNotFound

__all__ = [
    "GatewayTraffic",
    "KubeApi",
    "KubernetesPlatform",
    "ManifestRejected",
    "ObjectNotFound",
    "ReplicaRatioTraffic",
    "SecretResolutionFailed",
    "TrafficRouter",
    "platform_from_settings",
    "render_manifests",
]
