"""The Kubernetes API as the platform uses it: blocking ``kubernetes`` client calls run
in threads, every failure mapped to a platform error, and idempotent create-or-patch.

Error mapping (:meth:`KubeApi.call`): no status, 429 or 5xx from the API server and
transport errors (urllib3, sockets) -> :class:`PlatformUnavailable` (retryable);
401/403 -> :class:`PlatformError` (fix RBAC); 404 -> :class:`ObjectNotFound`; any other
refusal (409, 422, ...) -> :class:`PlatformConflict`. Messages name the operation.

Create-or-patch (:meth:`KubeApi.create_or_patch`): each object carries
``code.dev/spec-hash``; an equal hash means nothing to do (``False``); otherwise a JSON
merge patch (lists replaced, never merged) is sent. A lost create race (409) patches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from activities.platform import k8s_manifests as m
from activities.platform.base import PlatformConflict, PlatformError, PlatformUnavailable

MERGE_PATCH = "application/merge-patch+json"
GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")

Op = Callable[..., Any]


class ObjectNotFound(PlatformConflict):
    """The API server answered 404 (object, namespace or resource type missing)."""


def annotations_of(obj: Any) -> dict[str, str]:
    """The annotations of an API object (a dict or a client model), ``{}`` for None."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return dict(obj.get("metadata", {}).get("annotations") or {})
    return dict(getattr(obj.metadata, "annotations", None) or {})


class KubeApi:
    """The typed API groups of one ``kubernetes.client.ApiClient``, called with error mapping."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.client = api_client
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    async def call(self, what: str, fn: Op, *args: Any, **kw: Any) -> Any:
        """``fn(*args, **kw)`` in a thread; failures mapped (see the module docstring)."""
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

    async def get(self, what: str, fn: Op, *args: Any) -> Any | None:
        """Like :meth:`call`, but a missing object is ``None``."""
        try:
            return await self.call(what, fn, *args)
        except ObjectNotFound:
            return None

    def ops(self, kind: str) -> tuple[Op, Op, Op, Op]:
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
        patch = getattr(api, f"patch_namespaced_{suffix}")
        return (
            getattr(api, f"read_namespaced_{suffix}"),
            getattr(api, f"create_namespaced_{suffix}"),
            lambda n, ns, b: patch(n, ns, b, _content_type=MERGE_PATCH),
            getattr(api, f"delete_namespaced_{suffix}"),
        )

    async def create_or_patch(self, doc: dict[str, Any], keep_replicas: bool = False) -> bool:
        """Make the object ``doc`` describes exist as described; ``True`` when it changed.
        ``keep_replicas``: a Deployment's ``.replicas`` is owned by someone else (the
        replica-ratio traffic split) and left alone on patch."""
        kind, meta = doc["kind"], doc["metadata"]
        name, ns = meta["name"], meta["namespace"]
        h = m.content_hash(doc)
        meta.setdefault("annotations", {})[m.A_SPEC_HASH] = h
        read, create, patch, _ = self.ops(kind)
        what = f"{kind} {ns}/{name}"
        current = await self.get(f"read {what}", read, name, ns)
        if current is None:
            try:
                await self.call(f"create {what}", create, ns, doc)
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
        elif annotations_of(current).get(m.A_SPEC_HASH) == h:
            return False
        elif keep_replicas and kind == "Deployment":
            doc = {**doc, "spec": {k: v for k, v in doc["spec"].items() if k != "replicas"}}
        await self.call(f"patch {what}", patch, name, ns, doc)
        return True

    async def delete(self, kind: str, name: str, ns: str) -> bool:
        """Delete the object; ``False`` when it was already gone."""
        delete = self.ops(kind)[3]
        try:
            await self.call(f"delete {kind} {ns}/{name}", delete, name, ns)
            return True
        except ObjectNotFound:
            return False
