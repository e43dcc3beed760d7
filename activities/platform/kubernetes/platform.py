"""``KubernetesPlatform``: the :class:`~activities.platform.base.Platform` on a cluster
(the contract is in :mod:`activities.platform.kubernetes`). API calls go through
:class:`~activities.platform.kubernetes.transport.KubeApi`; traffic through the
:class:`~activities.platform.kubernetes.traffic.TrafficRouter` of the traffic mode."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from temporalio import activity

from activities.artifacts import ArtifactStore
from activities.platform import k8s_manifests as m
from activities.platform.base import (
    PlatformConflict,
    PlatformError,
    PlatformUnavailable,
    SecretResolutionFailed,
    UnhealthyVersion,
    WindowSample,
)
from activities.platform.k8s_manifests import rollout_state, rust_validate
from activities.platform.kubernetes.traffic import (
    GatewayTraffic,
    ReplicaRatioTraffic,
    TrafficRouter,
)
from activities.platform.kubernetes.transport import KubeApi, annotations_of
from activities.secrets import SecretError, SecretSource, SecretStoreUnavailable
from code_foundation.errors import ConfigError, SpecError
from workflows.models import (
    ApplyVersionInput,
    ApplyVersionResult,
    DescribeInput,
    DescribeResult,
    RetireVersionInput,
    RetireVersionResult,
    SetTrafficInput,
    SetTrafficResult,
)
from workflows.spec import DeploymentSpec, slug

if TYPE_CHECKING:
    from activities.settings import Settings

log = logging.getLogger(__name__)


class ManifestRejected(PlatformError):
    """Rendered manifests violate the policy (rust_core); nothing was applied."""

    retryable = False


class KubernetesPlatform:
    def __init__(
        self,
        api_client: Any,
        *,
        artifacts: ArtifactStore | None = None,
        secrets: SecretSource | None = None,
        traffic_mode: Literal["gateway", "replicas"] = "gateway",
        gateway: dict[str, Any] | None = None,
        default_namespace: str | None = None,
        resources: dict[str, dict[str, str]] | None = None,
        required_labels: tuple[str, ...] = ("app", "version"),
        validator: Callable[[str, list[str]], list[str]] = rust_validate,
        poll_interval: float = 1.0,
        rollout_grace: float = 15.0,
    ) -> None:
        self.api = KubeApi(api_client)
        self.artifacts = artifacts
        self.secrets = secrets
        self.traffic_mode = traffic_mode
        self.traffic: TrafficRouter = (
            GatewayTraffic(self.api, [gateway or {"name": "code-gateway"}], self._publish)
            if traffic_mode == "gateway"
            else ReplicaRatioTraffic(self.api, self._wait_rollout)
        )
        self.default_namespace = default_namespace
        self.resources = resources
        self.required_labels = list(required_labels)
        self.validator = validator
        self.poll_interval = poll_interval
        self.rollout_grace = rollout_grace

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> KubernetesPlatform:
        """Kubeconfig (``CODE_KUBE_CONTEXT``) or in-cluster config; artifacts, secrets,
        traffic mode, namespace and Gateway (``CODE_KUBE_*``) from the settings unless given."""
        from kubernetes import client, config

        from activities.artifacts import store_from_settings
        from activities.secrets import SecretResolver

        try:
            api = config.new_client_from_config(
                config_file=os.environ.get("KUBECONFIG"), context=settings.kube_context
            )
        except Exception as kube_exc:  # noqa: BLE001 - fall back to the pod's service account
            if settings.kube_context:  # a named context is that API server, never the pod's
                raise ConfigError(
                    f"kube context {settings.kube_context!r} cannot be used: {kube_exc}"
                ) from None
            try:
                config.load_incluster_config()
            except config.ConfigException:
                raise ConfigError(
                    f"no Kubernetes configuration: kubeconfig failed ({kube_exc}) and this is "
                    "not a pod; set KUBECONFIG / CODE_KUBE_CONTEXT"
                ) from None
            api = client.ApiClient()
        kw.setdefault("artifacts", store_from_settings(settings))
        kw.setdefault("secrets", SecretResolver.from_settings(settings))
        kw.setdefault("traffic_mode", settings.kube_traffic_mode)
        kw.setdefault("default_namespace", settings.kube_namespace)
        gateway = {"name": settings.kube_gateway_name}
        if settings.kube_gateway_namespace:
            gateway["namespace"] = settings.kube_gateway_namespace
        kw.setdefault("gateway", gateway)
        return cls(api, **kw)

    # ------------------------------------------------------------ helpers
    async def _delete(self, kind: str, name: str, ns: str) -> bool:
        return await self.api.delete(kind, name, ns)

    def _ns(self, service: str, env: str, explicit: str | None = None) -> str:
        return explicit or self.default_namespace or env

    async def _archive(self, key: str, text: str) -> None:
        if self.artifacts is None:
            log.warning("no artifact store configured: manifests for %s not archived", key)
            return
        try:
            await asyncio.to_thread(self.artifacts.put, key, text.encode(), "application/yaml")
        except Exception as exc:  # noqa: BLE001 - whatever the store says, apply nothing yet
            raise PlatformUnavailable(f"archive manifests {key}: {exc}") from None

    def _validate(self, what: str, docs: list[dict[str, Any]], shared: int = 0) -> str:
        """Validate all docs (the last ``shared`` ones, not tied to a version, need only the
        ``app`` label); return the YAML of all of them."""
        own, common = docs[: len(docs) - shared], docs[len(docs) - shared :]
        problems = self.validator(m.to_yaml(own), self.required_labels) if own else []
        if common:
            problems += self.validator(m.to_yaml(common), ["app"])
        text = m.to_yaml(docs)
        if problems:
            raise ManifestRejected(
                f"{what}: manifests violate policy, nothing applied:\n"
                + "\n".join(f"  - {p}" for p in problems)
            )
        return text

    async def _publish(self, what: str, docs: list[dict[str, Any]], key: str) -> None:
        """Validate service-wide docs (only the ``app`` label required) and archive them."""
        await self._archive(key, self._validate(what, docs, shared=len(docs)))

    # ------------------------------------------------------------ Platform
    async def apply_version(self, inp: ApplyVersionInput) -> ApplyVersionResult:
        spec = inp.spec
        ns = self._ns(spec.service, spec.environment, spec.namespace)
        what = f"apply {spec.service}/{spec.environment} version {spec.version}"
        values, versions = await self._resolve_secrets(spec, what)
        try:
            dep = m.render_deployment(
                spec,
                ns,
                secret_keys=list(values),
                secret_versions=versions,
                resources=self.resources,
            )
        except ValueError as exc:
            raise PlatformConflict(f"{what}: {exc}") from None
        dep["metadata"]["annotations"]["code.dev/replicas"] = str(spec.replicas)
        docs = [dep, *m.render_version_services(spec, ns)]
        text = self._validate(what, docs, shared=1)
        key = f"releases/{spec.service}/{spec.environment}/{slug(spec.version) or 'v'}"
        await self._archive(f"{key}/{slug(inp.idempotency_key)}/manifests.yaml", text)
        changed = False
        if values:
            changed |= await self.api.create_or_patch(m.render_secret(spec, ns, values, versions))
        for doc in docs[1:]:
            changed |= await self.api.create_or_patch(doc)
        changed |= await self.api.create_or_patch(dep, keep_replicas=self.traffic.owns_replicas)
        final = await self._wait_rollout(ns, dep["metadata"]["name"], what)
        if inp.initial_weight is not None:
            current = await self.describe(
                DescribeInput(service=spec.service, environment=spec.environment, namespace=ns)
            )
            if not current.weights:
                weights = {spec.version: 100}
                await self._set_weights(
                    spec.service, spec.environment, ns, weights, inp.idempotency_key
                )
        return ApplyVersionResult(
            service=spec.service,
            environment=spec.environment,
            version=spec.version,
            changed=changed,
            endpoint=f"http://{m.k8s_name(spec.service)}.{ns}.svc:{m.SERVICE_PORT}",
            instances=final.status.available_replicas or 0,
            secret_versions=versions,
        )

    async def _resolve_secrets(
        self, spec: DeploymentSpec, what: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        if not spec.artifact.secrets:
            return {}, {}
        if self.secrets is None:
            raise SecretResolutionFailed(
                f"{what}: the spec references secrets but no secret "
                "resolver is configured (CODE_VAULT_URL ...)"
            )
        try:
            return await self.secrets.aresolve(dict(spec.artifact.secrets))
        except SecretError as exc:
            raise SecretResolutionFailed(
                f"{what}: {type(exc).__name__}: {exc}",
                retryable=isinstance(exc, SecretStoreUnavailable),
            ) from None

    async def _wait_rollout(self, ns: str, name: str, what: str) -> Any:
        start = time.monotonic()
        while True:
            dep = await self.api.call(
                f"{what}: read rollout", self.api.apps.read_namespaced_deployment_status, name, ns
            )
            state, msg = rollout_state(dep)
            if state == "done":
                return dep
            if state == "failed":
                raise UnhealthyVersion(f"{what}: rollout failed: {msg}")
            limit = (dep.spec.progress_deadline_seconds or 600) + self.rollout_grace
            if time.monotonic() - start > limit:
                raise UnhealthyVersion(
                    f"{what}: rollout not complete within progressDeadlineSeconds="
                    f"{dep.spec.progress_deadline_seconds} (+{self.rollout_grace:.0f}s): {msg}"
                )
            if activity.in_activity():
                activity.heartbeat(msg)
            await asyncio.sleep(self.poll_interval)

    async def _deployments(self, service: str, env: str, ns: str) -> dict[str, Any]:
        """version -> V1Deployment of this service/environment (client-side label filter)."""
        found = await self.api.call(
            f"list Deployments in {ns}", self.api.apps.list_namespaced_deployment, ns
        )
        out = {}
        for d in found.items or []:
            labels = d.metadata.labels or {}
            if (labels.get("app"), labels.get(m.ENV_LABEL), labels.get(m.MANAGED_BY)) == (
                service,
                env,
                "code",
            ):
                out[annotations_of(d).get(m.A_VERSION) or labels.get("version", "")] = d
        return out

    async def set_traffic(self, inp: SetTrafficInput) -> SetTrafficResult:
        ns = self._ns(inp.service, inp.environment, inp.namespace)
        changed = await self._set_weights(
            inp.service, inp.environment, ns, inp.weights, inp.idempotency_key
        )
        return SetTrafficResult(weights=dict(inp.weights), changed=changed)

    async def _set_weights(
        self, service: str, env: str, ns: str, weights: dict[str, int], key: str
    ) -> bool:
        what = f"set traffic of {service}/{env} to {weights}"
        if any(w < 0 for w in weights.values()) or sum(weights.values()) != 100:
            raise PlatformConflict(f"{what}: weights must be >= 0 and sum to 100")
        deps = await self._deployments(service, env, ns)
        missing = sorted(v for v, w in weights.items() if w > 0 and v not in deps)
        if missing:
            raise PlatformConflict(f"{what}: version(s) {', '.join(missing)} not applied in {ns}")
        archive_key = f"releases/{service}/{env}/traffic/{slug(key)}"
        return await self.traffic.route(what, service, env, ns, weights, deps, archive_key)

    async def retire_version(self, inp: RetireVersionInput) -> RetireVersionResult:
        ns = self._ns(inp.service, inp.environment, inp.namespace)
        what = f"retire {inp.service}/{inp.environment} version {inp.version}"
        weights = await self.traffic.weights(inp.service, ns)
        share = weights.get(inp.version, 0)
        rest = {v: w for v, w in weights.items() if v != inp.version}
        if share > 0 and inp.force and sum(rest.values()) > 0:
            # forced: first move its share to the remaining versions, proportionally
            total = sum(rest.values())
            moved = {v: w * 100 // total for v, w in rest.items()}
            top = max(moved, key=lambda v: moved[v])
            moved[top] += 100 - sum(moved.values())
            await self._set_weights(inp.service, inp.environment, ns, moved, inp.idempotency_key)
        elif share > 0 and not inp.force:
            raise PlatformConflict(
                f"{what}: it still receives {share}% of traffic; move traffic away first"
            )
        name = m.k8s_name(inp.service, inp.version)
        changed = await self.api.delete("Deployment", name, ns)
        changed |= await self.api.delete("Service", name, ns)
        changed |= await self.api.delete("Secret", m.secret_name(inp.service, inp.version), ns)
        return RetireVersionResult(version=inp.version, changed=changed)

    async def fetch_samples(
        self, service: str, env: str, since: float, until: float
    ) -> dict[str, WindowSample]:
        """Kubernetes has no CODE router to read request samples from: canary analysis on
        this platform needs the Prometheus metrics backend."""
        raise PlatformError(
            f"analyse {service}/{env}: the kubernetes platform keeps no request samples; set "
            "CODE_METRICS_BACKEND=prometheus (and CODE_PROMETHEUS_URL) for canary analysis"
        )

    async def describe(self, inp: DescribeInput) -> DescribeResult:
        ns = self._ns(inp.service, inp.environment, inp.namespace)
        deps = await self._deployments(inp.service, inp.environment, ns)
        if not deps:
            return DescribeResult(exists=False)
        return DescribeResult(
            exists=True,
            weights=await self.traffic.weights(inp.service, ns),
            versions=sorted(deps),
            healthy={
                v: rollout_state(d)[0] == "done" and (d.spec.replicas or 0) > 0
                for v, d in deps.items()
            },
            endpoint=f"http://{m.k8s_name(inp.service)}.{ns}.svc:{m.SERVICE_PORT}",
        )


def platform_from_settings(settings: Settings) -> KubernetesPlatform:
    """The worker's Kubernetes platform (see :meth:`KubernetesPlatform.from_settings`)."""
    return KubernetesPlatform.from_settings(settings)


def render_manifests(spec: DeploymentSpec, namespace: str | None = None) -> str:
    """The YAML ``apply_version`` would validate and apply for ``spec`` (Deployment and
    Services; secrets appear only as ``secretKeyRef``s), for spec validation and dry runs."""
    ns = namespace or spec.namespace or spec.environment
    if not spec.artifact.image:
        raise SpecError(
            spec.workflow_id(), ["artifact.image: the kubernetes platform runs a container image"]
        )
    dep = m.render_deployment(spec, ns, secret_keys=list(spec.artifact.secrets))
    return m.to_yaml([dep, *m.render_version_services(spec, ns)])
