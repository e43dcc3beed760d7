"""Pure rendering of the Kubernetes objects CODE manages for one service version.

Contract: no I/O. Given a ``DeploymentSpec`` (and a namespace), render plain dicts:

* ``Deployment <service>-<version>``: labels ``app``, ``version``,
  ``app.kubernetes.io/managed-by=code``, ``code.dev/environment`` plus ``spec.labels``;
  selector ``{app, version}``; readiness and liveness HTTP probes from ``health_check``;
  resource requests/limits; ``runAsNonRoot``; ``progressDeadlineSeconds`` from
  ``health_check.timeout``; secrets as ``secretKeyRef``s into ``<service>-<version>-secrets``.
* ``Service <service>-<version>`` (one version: the HTTPRoute backend) and
  ``Service <service>`` (all versions of the app: used by the replica-ratio fallback).
* ``HTTPRoute <service>`` (Gateway API v1) with one weighted backendRef per version.
* ``Secret <service>-<version>-secrets`` (``stringData``): never archived or logged.

Also pure: ``rust_validate`` (``rust_core.validate_manifests`` as messages) and
``rollout_state`` (kubectl's rollout-status logic over a V1Deployment).

Versions may contain characters Kubernetes names/labels refuse (``+``, ``_``, upper
case); :func:`k8s_name` and :func:`label_value` map them deterministically and the
original version is kept in the ``code.dev/version`` annotation.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

import yaml

from workflows.spec import DeploymentSpec

MANAGED_BY = "app.kubernetes.io/managed-by"
ENV_LABEL = "code.dev/environment"
A_VERSION = "code.dev/version"
A_SPEC_HASH = "code.dev/spec-hash"
A_WEIGHTS = "code.dev/weights"
A_TRAFFIC_MODE = "code.dev/traffic-mode"
SERVICE_PORT = 80
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "500m", "memory": "256Mi"},
}


def _digest(text: str, n: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def k8s_name(*parts: str, max_len: int = 63) -> str:
    """A DNS-1035 label (valid for Deployments, Services and Secrets) from the parts."""
    raw = "-".join(parts)
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"v-{name}".rstrip("-")
    if name != raw or len(name) > max_len:
        name = f"{name[: max_len - 7].rstrip('-')}-{_digest(raw)}"
    return name


def label_value(value: str) -> str:
    v = re.sub(r"[^A-Za-z0-9_.-]+", "_", value)[:63].strip("_.-")
    return v or "none"


def version_labels(spec: DeploymentSpec) -> dict[str, str]:
    return {
        **spec.labels,
        "app": spec.service,
        "version": label_value(spec.version),
        MANAGED_BY: "code",
        ENV_LABEL: spec.environment,
    }


def service_labels(service: str, environment: str) -> dict[str, str]:
    return {"app": service, MANAGED_BY: "code", ENV_LABEL: environment}


def secret_name(service: str, version: str) -> str:
    return k8s_name(service, version, "secrets")


def _probe(spec: DeploymentSpec, *, liveness: bool) -> dict[str, Any]:
    hc = spec.health_check
    period = max(1, round(hc.interval.total_seconds()))
    probe: dict[str, Any] = {
        "httpGet": {"path": hc.path, "port": spec.artifact.port},
        "periodSeconds": period if not liveness else max(period, 10),
        "timeoutSeconds": max(1, min(period, 5)),
        "failureThreshold": 3 if not liveness else 6,
    }
    if liveness:  # give the readiness window before liveness may restart the container
        probe["initialDelaySeconds"] = max(1, round(hc.timeout.total_seconds()))
    return probe


def render_deployment(
    spec: DeploymentSpec,
    namespace: str,
    *,
    secret_keys: list[str] | None = None,
    secret_versions: dict[str, str] | None = None,
    resources: dict[str, dict[str, str]] | None = None,
    replicas: int | None = None,
) -> dict[str, Any]:
    """``secret_versions`` go into a pod-template annotation, so rotating a secret (new
    vault version) changes the template and rolls the pods."""
    if not spec.artifact.image:
        raise ValueError(
            f"{spec.service} {spec.version}: the kubernetes platform runs artifact.image; "
            "this spec has only a command"
        )
    name = k8s_name(spec.service, spec.version)
    labels = version_labels(spec)
    selector = {"app": spec.service, "version": labels["version"]}
    env: list[dict[str, Any]] = [
        {"name": k, "value": v} for k, v in sorted(spec.artifact.env.items())
    ]
    env.append({"name": "PORT", "value": str(spec.artifact.port)})
    for key in sorted(secret_keys or []):
        env.append(
            {
                "name": key,
                "valueFrom": {
                    "secretKeyRef": {"name": secret_name(spec.service, spec.version), "key": key}
                },
            }
        )
    container = {
        "name": k8s_name(spec.service),
        "image": spec.artifact.image,
        "ports": [{"name": "http", "containerPort": spec.artifact.port}],
        "env": env,
        "readinessProbe": _probe(spec, liveness=False),
        "livenessProbe": _probe(spec, liveness=True),
        "resources": resources or DEFAULT_RESOURCES,
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
        },
    }
    deadline = max(10, round(spec.health_check.timeout.total_seconds()))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {A_VERSION: spec.version},
        },
        "spec": {
            "replicas": spec.replicas if replicas is None else replicas,
            "progressDeadlineSeconds": deadline,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        A_VERSION: spec.version,
                        **(
                            {
                                "code.dev/secret-versions": json.dumps(
                                    secret_versions, sort_keys=True
                                )
                            }
                            if secret_versions
                            else {}
                        ),
                    },
                },
                "spec": {
                    "securityContext": {"runAsNonRoot": True},
                    "containers": [container],
                },
            },
        },
    }


def render_service(
    name: str,
    namespace: str,
    selector: dict[str, str],
    labels: dict[str, str],
    target_port: int,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations or {},
        },
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": target_port}],
        },
    }


def render_version_services(spec: DeploymentSpec, namespace: str) -> list[dict[str, Any]]:
    labels = version_labels(spec)
    return [
        render_service(
            k8s_name(spec.service, spec.version),
            namespace,
            {"app": spec.service, "version": labels["version"]},
            labels,
            spec.artifact.port,
            {A_VERSION: spec.version},
        ),
        render_service(
            k8s_name(spec.service),
            namespace,
            {"app": spec.service},
            {**spec.labels, **service_labels(spec.service, spec.environment)},
            spec.artifact.port,
        ),
    ]


def render_httproute(
    service: str,
    environment: str,
    namespace: str,
    weights: dict[str, int],
    parent_refs: list[dict[str, Any]],
) -> dict[str, Any]:
    backends = [
        {"name": k8s_name(service, version), "port": SERVICE_PORT, "weight": int(weight)}
        for version, weight in sorted(weights.items())
    ]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": k8s_name(service),
            "namespace": namespace,
            "labels": service_labels(service, environment),
            "annotations": {A_WEIGHTS: json.dumps(weights, sort_keys=True)},
        },
        "spec": {"parentRefs": parent_refs, "rules": [{"backendRefs": backends}]},
    }


def render_secret(
    spec: DeploymentSpec, namespace: str, values: dict[str, str], versions: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name(spec.service, spec.version),
            "namespace": namespace,
            "labels": version_labels(spec),
            # versions only (vault-vN / sha256 prefix), never values
            "annotations": {"code.dev/secret-versions": json.dumps(versions, sort_keys=True)},
        },
        "stringData": dict(values),
    }


def to_yaml(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def content_hash(doc: dict[str, Any]) -> str:
    """Hash of what we manage in an object (labels, annotations we set, spec/data)."""
    body = {k: v for k, v in doc.items() if k != "metadata"}
    meta = doc.get("metadata", {})
    body["labels"] = meta.get("labels", {})
    body["annotations"] = {k: v for k, v in meta.get("annotations", {}).items() if k != A_SPEC_HASH}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- policy and status
def rust_validate(text: str, required_labels: list[str]) -> list[str]:
    """``rust_core.validate_manifests`` as messages."""
    import rust_core

    found = rust_core.validate_manifests(text, required_labels=required_labels)
    out = []
    for v in found:
        get = v.get if isinstance(v, dict) else lambda k, _v=v: getattr(_v, k, "")
        where = "/".join(str(x) for x in (get("kind"), get("name")) if x)
        out.append(f"{get('rule_id')} {where} {get('path')}: {get('message')}".strip())
    return out


def rollout_state(dep: Any) -> tuple[Literal["done", "waiting", "failed"], str]:
    """kubectl's rollout-status logic over a V1Deployment."""
    st, gen = dep.status, dep.metadata.generation
    if st is None:
        return "waiting", "no status yet"
    if gen is not None and (st.observed_generation or 0) < gen:
        return "waiting", f"waiting for the controller to observe generation {gen}"
    for c in st.conditions or []:
        if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded":
            return "failed", f"ProgressDeadlineExceeded: {c.message or 'no progress'}"
    want = dep.spec.replicas if dep.spec.replicas is not None else 1
    updated, total = st.updated_replicas or 0, st.replicas or 0
    available = st.available_replicas or 0
    if updated < want:
        return "waiting", f"{updated} of {want} replicas updated"
    if total > updated:
        return "waiting", f"{total - updated} old replicas pending termination"
    if available < updated:
        return "waiting", f"{available} of {updated} updated replicas available"
    return "done", f"{available} replicas available"
