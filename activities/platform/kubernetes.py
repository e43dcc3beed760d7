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
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any, Literal

from temporalio import activity

from activities.artifacts import ArtifactStore
from activities.platform import k8s_manifests as m
from activities.platform.base import (
    PlatformConflict,
    PlatformError,
    PlatformUnavailable,
    SecretResolutionFailed,
    UnhealthyVersion,
)
from activities.platform.k8s_manifests import rollout_state, rust_validate
from activities.secrets import SecretError, SecretResolver, SecretStoreUnavailable
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

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"
GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")


class ManifestRejected(PlatformError):
    """Rendered manifests violate the policy (rust_core); nothing was applied."""

    retryable = False


class ObjectNotFound(PlatformConflict):
    """The API server answered 404 (object, namespace or resource type missing)."""


class KubernetesPlatform:
    def __init__(
        self,
        api_client: Any,
        *,
        artifacts: ArtifactStore | None = None,
        secrets: SecretResolver | None = None,
        traffic_mode: Literal["gateway", "replicas"] = "gateway",
        gateway: dict[str, Any] | None = None,
        default_namespace: str | None = None,
        resources: dict[str, dict[str, str]] | None = None,
        required_labels: tuple[str, ...] = ("app", "version"),
        validator: Callable[[str, list[str]], list[str]] = rust_validate,
        poll_interval: float = 1.0,
        rollout_grace: float = 15.0,
    ) -> None:
        from kubernetes import client

        self.api = api_client
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.artifacts = artifacts
        self.secrets = secrets
        self.traffic_mode = traffic_mode
        self.parent_refs = [gateway or {"name": "code-gateway"}]
        self.default_namespace = default_namespace
        self.resources = resources
        self.required_labels = list(required_labels)
        self.validator = validator
        self.poll_interval = poll_interval
        self.rollout_grace = rollout_grace

    @classmethod
    def from_settings(cls, settings: Any, **kw: Any) -> KubernetesPlatform:
        """Kubeconfig (``CODE_KUBE_CONTEXT``) or in-cluster config; artifacts, secrets,
        traffic mode, namespace and Gateway (``CODE_KUBE_*``) from the settings unless given."""
        from kubernetes import client, config

        from activities.artifacts import store_from_settings

        try:
            api = config.new_client_from_config(
                config_file=os.environ.get("KUBECONFIG"), context=settings.kube_context
            )
        except Exception as kube_exc:  # noqa: BLE001 - fall back to the pod's service account
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

    # ------------------------------------------------------------ transport
    async def _api(self, what: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return await asyncio.to_thread(fn, *args, **kw)
        except ApiException as exc:
            code = exc.status or 0
            reason = exc.reason or ""
            if code in (0, 429) or code >= 500:
                raise PlatformUnavailable(f"{what}: API server answered {code} {reason}") from None
            if code in (401, 403):
                raise PlatformError(
                    f"{what}: {code} {reason}: the credentials lack permission (check RBAC)"
                ) from None
            if code == 404:
                raise ObjectNotFound(f"{what}: not found (404)") from None
            raise PlatformConflict(f"{what}: refused ({code} {reason})") from None
        except (HTTPError, OSError) as exc:
            raise PlatformUnavailable(
                f"{what}: Kubernetes API server unreachable ({type(exc).__name__})"
            ) from None

    async def _get(self, what: str, fn: Callable[..., Any], *args: Any) -> Any | None:
        try:
            return await self._api(what, fn, *args)
        except ObjectNotFound:
            return None

    def _ops(self, kind: str) -> tuple[Callable[..., Any], ...]:
        """(read(name, ns), create(ns, body), patch(name, ns, body), delete(name, ns))."""
        if kind == "HTTPRoute":
            g, v, p = GATEWAY
            c = self.custom
            return (
                lambda n, ns: c.get_namespaced_custom_object(g, v, ns, p, n),
                lambda ns, b: c.create_namespaced_custom_object(g, v, ns, p, b),
                lambda n, ns, b: c.patch_namespaced_custom_object(
                    g, v, ns, p, n, b, _content_type=MERGE_PATCH
                ),
                lambda n, ns: c.delete_namespaced_custom_object(g, v, ns, p, n),
            )
        api, suffix = {
            "Deployment": (self.apps, "deployment"),
            "Service": (self.core, "service"),
            "Secret": (self.core, "secret"),
        }[kind]
        read = getattr(api, f"read_namespaced_{suffix}")
        create = getattr(api, f"create_namespaced_{suffix}")
        patch = getattr(api, f"patch_namespaced_{suffix}")
        return (
            read,
            create,
            lambda n, ns, b: patch(n, ns, b, _content_type=MERGE_PATCH),
            getattr(api, f"delete_namespaced_{suffix}"),
        )

    async def _create_or_patch(self, doc: dict[str, Any], keep_replicas: bool = False) -> bool:
        kind, meta = doc["kind"], doc["metadata"]
        name, ns = meta["name"], meta["namespace"]
        h = m.content_hash(doc)
        meta.setdefault("annotations", {})[m.A_SPEC_HASH] = h
        read, create, patch, _ = self._ops(kind)
        what = f"{kind} {ns}/{name}"
        current = await self._get(f"read {what}", read, name, ns)
        if current is None:
            try:
                await self._api(f"create {what}", create, ns, doc)
                return True
            except ObjectNotFound:
                if kind == "HTTPRoute":
                    raise ObjectNotFound(
                        f"create {what}: the Gateway API CRDs are not installed; install "
                        "them or use traffic_mode='replicas' (approximate split)"
                    ) from None
                raise
            except PlatformConflict as exc:
                if "409" not in str(exc):  # 409 AlreadyExists: lost a race, patch instead
                    raise
        elif _annotations(current).get(m.A_SPEC_HASH) == h:
            return False
        elif keep_replicas and kind == "Deployment":  # replica-ratio split owns .replicas
            doc = {**doc, "spec": {k: v for k, v in doc["spec"].items() if k != "replicas"}}
        await self._api(f"patch {what}", patch, name, ns, doc)
        return True

    async def _delete(self, kind: str, name: str, ns: str) -> bool:
        _, _, _, delete = self._ops(kind)
        try:
            await self._api(f"delete {kind} {ns}/{name}", delete, name, ns)
            return True
        except ObjectNotFound:
            return False

    def _ns(self, service: str, env: str, explicit: str | None = None) -> str:
        return explicit or self.default_namespace or env

    async def _archive(self, key: str, text: str) -> None:
        if self.artifacts is None:
            log.warning("no artifact store configured: manifests for %s not archived", key)
            return
        try:
            await asyncio.to_thread(self.artifacts.put, key, text.encode(), "application/yaml")
        except Exception as exc:
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
            changed |= await self._create_or_patch(m.render_secret(spec, ns, values, versions))
        for doc in docs[1:]:
            changed |= await self._create_or_patch(doc)
        changed |= await self._create_or_patch(dep, keep_replicas=self.traffic_mode == "replicas")
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
            dep = await self._api(
                f"{what}: read rollout", self.apps.read_namespaced_deployment_status, name, ns
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
        found = await self._api(
            f"list Deployments in {ns}", self.apps.list_namespaced_deployment, ns
        )
        out = {}
        for d in found.items or []:
            labels = d.metadata.labels or {}
            if (labels.get("app"), labels.get(m.ENV_LABEL), labels.get(m.MANAGED_BY)) == (
                service,
                env,
                "code",
            ):
                out[_annotations(d).get(m.A_VERSION) or labels.get("version", "")] = d
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
        if self.traffic_mode == "gateway":
            route = m.render_httproute(service, env, ns, weights, self.parent_refs)
            text = self._validate(what, [route], shared=1)
            await self._archive(f"{archive_key}/httproute.yaml", text)
            return await self._create_or_patch(route)
        # fallback: replica ratio behind the shared Service -- APPROXIMATE by construction
        log.warning("%s: replica-ratio traffic split is approximate", what)
        changed = False
        for version, dep in deps.items():
            full = int(_annotations(dep).get("code.dev/replicas", dep.spec.replicas or 1))
            w = weights.get(version, 0)
            want = 0 if w == 0 else max(1, round(full * w / 100))
            if dep.spec.replicas != want:
                changed = True
                await self._api(
                    f"{what}: scale {dep.metadata.name}",
                    self.apps.patch_namespaced_deployment,
                    dep.metadata.name,
                    ns,
                    {"spec": {"replicas": want}},
                    _content_type=MERGE_PATCH,
                )
                if want:
                    await self._wait_rollout(ns, dep.metadata.name, what)
        note = {
            m.A_WEIGHTS: json.dumps(weights, sort_keys=True),
            m.A_TRAFFIC_MODE: "replica-ratio (approximate)",
        }
        await self._api(
            f"{what}: record weights",
            self.core.patch_namespaced_service,
            m.k8s_name(service),
            ns,
            {"metadata": {"annotations": note}},
            _content_type=MERGE_PATCH,
        )
        return changed

    async def _weights(self, service: str, ns: str) -> dict[str, int]:
        if self.traffic_mode == "gateway":
            read = self._ops("HTTPRoute")[0]
            obj = await self._get(f"read HTTPRoute {ns}/{service}", read, m.k8s_name(service), ns)
        else:
            obj = await self._get(
                f"read Service {ns}/{service}",
                self.core.read_namespaced_service,
                m.k8s_name(service),
                ns,
            )
        raw = _annotations(obj).get(m.A_WEIGHTS) if obj is not None else None
        return {k: int(v) for k, v in json.loads(raw).items()} if raw else {}

    async def retire_version(self, inp: RetireVersionInput) -> RetireVersionResult:
        ns = self._ns(inp.service, inp.environment, inp.namespace)
        what = f"retire {inp.service}/{inp.environment} version {inp.version}"
        weights = await self._weights(inp.service, ns)
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
        changed = await self._delete("Deployment", name, ns)
        changed |= await self._delete("Service", name, ns)
        changed |= await self._delete("Secret", m.secret_name(inp.service, inp.version), ns)
        return RetireVersionResult(version=inp.version, changed=changed)

    async def fetch_samples(self, service: str, env: str, since: float, until: float) -> Any:
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
            weights=await self._weights(inp.service, ns),
            versions=sorted(deps),
            healthy={
                v: rollout_state(d)[0] == "done" and (d.spec.replicas or 0) > 0
                for v, d in deps.items()
            },
            endpoint=f"http://{m.k8s_name(inp.service)}.{ns}.svc:{m.SERVICE_PORT}",
        )


def _annotations(obj: Any) -> dict[str, str]:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return dict(obj.get("metadata", {}).get("annotations") or {})
    return dict(getattr(obj.metadata, "annotations", None) or {})


def platform_from_settings(settings: Any) -> KubernetesPlatform:
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
