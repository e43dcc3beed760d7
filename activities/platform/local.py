"""``LocalPlatform``: the :class:`~activities.platform.base.Platform` of the
embedded local agent (``python -m workers.agent``), over its HTTP control API.

Besides the protocol it offers what analysis, chaos and soak code need:
``fetch_samples`` (per-version request windows from the router),
``inject_fault`` / ``remove_fault`` (router faults), ``signal_instance``,
``restore_version`` and ``resources``. Errors: cannot connect / 5xx ->
:class:`PlatformUnavailable` (retryable); 422 unhealthy -> :class:`UnhealthyVersion`;
409 and 400 -> :class:`PlatformConflict` (also a key reused for another request,
and ``needs_reapply``: a version whose secrets a restarted agent no longer holds);
507 (the agent could not persist its desired state; nothing was recorded) ->
:class:`PlatformUnavailable`; each message names the service/version and what to do.
``artifact.workdir`` is sent as given (the CLI makes it absolute).

Idempotency: every mutation carries a key (a call without one gets a fresh key,
so it is journaled but never replayed); the agent journals every call and answers
a key already done with the first result (``changed=False``). ``journal`` reads
that journal, ``reconcile_report`` what the agent re-adopted at its last start."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import httpx

from activities.platform.base import (
    PlatformConflict,
    PlatformUnavailable,
    SecretResolutionFailed,
    UnhealthyVersion,
    WindowSample,
)
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
from workflows.spec import DeploymentSpec

if TYPE_CHECKING:
    from activities.secrets import SecretSource


class LocalPlatform:
    """Secrets referenced by a spec are resolved here, at apply time, and handed to
    the agent for the process environment only; results carry their versions."""

    def __init__(
        self,
        agent_url: str = "http://127.0.0.1:8270",
        timeout: float = 30.0,
        secrets: SecretSource | None = None,
    ) -> None:
        self.agent_url = agent_url.rstrip("/")
        self.timeout = timeout
        self.secrets = secrets

    async def _resolve_secrets(
        self, spec: DeploymentSpec, what: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        if not spec.artifact.secrets:
            return {}, {}
        from activities.secrets import SecretError, SecretStoreUnavailable

        if self.secrets is None:
            raise SecretResolutionFailed(
                f"{what}: the spec references secrets but no secret store is configured "
                "(set CODE_SECRET_STORE=vault and CODE_VAULT_URL)"
            )
        try:
            values, versions = await self.secrets.aresolve(dict(spec.artifact.secrets))
        except SecretError as exc:
            raise SecretResolutionFailed(
                f"{what}: {type(exc).__name__}: {exc}",
                retryable=isinstance(exc, SecretStoreUnavailable),
            ) from None
        return values, versions

    # ------------------------------------------------------------ transport
    async def _call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpx's request timeout
        allow_404: bool = False,
    ) -> Any:
        try:
            async with httpx.AsyncClient(
                base_url=self.agent_url, timeout=timeout or self.timeout
            ) as client:
                resp = await client.request(method, path, json=json, params=params)
        except httpx.TransportError as exc:
            raise PlatformUnavailable(
                f"{what}: the local agent at {self.agent_url} is unreachable "
                f"({type(exc).__name__}: {exc}); start it with `codectl dev` or "
                "`python -m workers.agent`, or set CODE_AGENT_URL"
            ) from None
        if resp.status_code == 404 and allow_404:
            return None
        try:
            body = resp.json()
        except ValueError:
            body = {"error": "http", "detail": resp.text[:300]}
        if resp.status_code < 400:
            return body
        if isinstance(body, dict):
            detail = body.get("detail") or body.get("error") or resp.text[:300]
        else:
            detail = str(body)
        code = resp.status_code
        if code == 422:
            raise UnhealthyVersion(f"{what}: {detail}")
        if code in (400, 404, 409):
            raise PlatformConflict(f"{what}: {detail}")
        raise PlatformUnavailable(f"{what}: the agent answered {code}: {detail}")

    @staticmethod
    def _svc(service: str, env: str) -> str:
        return f"/v1/services/{service}/{env}"

    @staticmethod
    def _key(key: str | None) -> str:
        return key or f"local-{uuid.uuid4().hex[:16]}"

    # ------------------------------------------------------------ Platform
    async def apply_version(self, inp: ApplyVersionInput) -> ApplyVersionResult:
        spec = inp.spec
        if not spec.artifact.command:
            raise PlatformConflict(
                f"apply {spec.service}/{spec.environment} {spec.version}: the local platform "
                "runs artifact.command; this spec has only an image"
            )
        health_timeout = spec.health_check.timeout.total_seconds()
        what = f"apply {spec.service}/{spec.environment} version {spec.version}"
        secret_env, secret_versions = await self._resolve_secrets(spec, what)
        body = {
            "secret_env": secret_env,
            "secret_versions": secret_versions,
            "command": spec.artifact.command,
            "workdir": spec.artifact.workdir,
            "env": dict(spec.artifact.env),
            "replicas": spec.replicas,
            "health_path": spec.health_check.path,
            "health_timeout_s": health_timeout,
            "idempotency_key": inp.idempotency_key,
            "initial_weight": inp.initial_weight,
        }
        what = f"apply {spec.service}/{spec.environment} version {spec.version}"
        data = await self._call(
            "PUT",
            f"{self._svc(spec.service, spec.environment)}/versions/{spec.version}",
            what,
            json=body,
            timeout=health_timeout + 30.0,
        )
        ver = data["versions"].get(spec.version, {})
        return ApplyVersionResult(
            service=spec.service,
            environment=spec.environment,
            version=spec.version,
            changed=bool(data["changed"]),
            endpoint=data["endpoint"],
            instances=len(ver.get("instances", [])),
            secret_versions=secret_versions,
        )

    async def set_traffic(self, inp: SetTrafficInput) -> SetTrafficResult:
        what = f"set traffic of {inp.service}/{inp.environment} to {inp.weights}"
        data = await self._call(
            "PUT",
            f"{self._svc(inp.service, inp.environment)}/traffic",
            what,
            json={"weights": inp.weights, "idempotency_key": inp.idempotency_key},
        )
        return SetTrafficResult(weights=data["weights"], changed=bool(data["changed"]))

    async def retire_version(self, inp: RetireVersionInput) -> RetireVersionResult:
        what = f"retire {inp.service}/{inp.environment} version {inp.version}"
        data = await self._call(
            "DELETE",
            f"{self._svc(inp.service, inp.environment)}/versions/{inp.version}",
            what,
            params={
                "idempotency_key": inp.idempotency_key,
                **({"force": "1"} if inp.force else {}),
            },
        )
        return RetireVersionResult(version=inp.version, changed=bool(data["changed"]))

    async def describe(self, inp: DescribeInput) -> DescribeResult:
        data = await self._call(
            "GET",
            self._svc(inp.service, inp.environment),
            f"describe {inp.service}/{inp.environment}",
            allow_404=True,
        )
        if data is None:
            return DescribeResult(exists=False)
        versions = data.get("versions", {})
        return DescribeResult(
            exists=True,
            weights={k: int(v) for k, v in data.get("weights", {}).items()},
            versions=sorted(versions),
            healthy={k: v.get("status") == "running" for k, v in versions.items()},
            endpoint=data.get("endpoint", ""),
        )

    # ------------------------------------------------------------ analysis / chaos / soak
    async def describe_raw(self, service: str, env: str) -> dict[str, Any] | None:
        """The agent's full view of a service (instances with pids and ports), or None."""
        return await self._call(
            "GET",
            self._svc(service, env),
            f"describe {service}/{env}",
            allow_404=True,
        )

    async def fetch_samples(
        self, service: str, env: str, since: float, until: float
    ) -> dict[str, WindowSample]:
        data = await self._call(
            "GET",
            f"{self._svc(service, env)}/samples",
            f"read samples of {service}/{env}",
            params={"since": since, "until": until},
        )
        return {v: WindowSample.model_validate(w) for v, w in data["versions"].items()}

    async def inject_fault(
        self,
        service: str,
        env: str,
        kind: str,
        *,
        fraction: float = 1.0,
        latency_ms: float = 0.0,
        status: int | None = None,
        route_prefix: str = "/",
        version: str | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Add a router fault; returns its id (the same id again for the same key)."""
        body: dict[str, Any] = {
            "kind": kind,
            "fraction": fraction,
            "latency_ms": latency_ms,
            "route_prefix": route_prefix,
            "version": version,
            "idempotency_key": self._key(idempotency_key),
        }
        if status is not None:
            body["status"] = status
        data = await self._call(
            "POST",
            f"{self._svc(service, env)}/faults",
            f"inject {kind} fault into {service}/{env}",
            json=body,
        )
        return str(data["id"])

    async def list_faults(self, service: str, env: str) -> list[dict[str, Any]]:
        return await self._call(
            "GET",
            f"{self._svc(service, env)}/faults",
            f"list faults of {service}/{env}",
        )

    async def remove_fault(
        self, service: str, env: str, fault_id: str, idempotency_key: str | None = None
    ) -> bool:
        """Remove a router fault; False when it was already gone."""
        data = await self._call(
            "DELETE",
            f"{self._svc(service, env)}/faults/{fault_id}",
            f"remove fault {fault_id} from {service}/{env}",
            params={"idempotency_key": self._key(idempotency_key)},
        )
        return bool(data["changed"])

    async def signal_instance(
        self,
        service: str,
        env: str,
        version: str,
        index: int,
        signal: str,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        return await self._call(
            "POST",
            f"{self._svc(service, env)}/versions/{version}/instances/{index}/signal",
            f"send SIG{signal.upper().removeprefix('SIG')} to {service}/{env} {version} instance {index}",
            json={"signal": signal, "idempotency_key": self._key(idempotency_key)},
        )

    async def restore_version(
        self,
        service: str,
        env: str,
        version: str,
        idempotency_key: str | None = None,
        timeout: float = 120.0,  # noqa: ASYNC109 - httpx's request timeout
    ) -> dict[str, Any]:
        """Restart dead and resume stopped instances, wait for health."""
        return await self._call(
            "POST",
            f"{self._svc(service, env)}/versions/{version}/restore",
            f"restore {service}/{env} version {version}",
            json={"idempotency_key": self._key(idempotency_key)},
            timeout=timeout,
        )

    async def resources(self, service: str, env: str, version: str) -> list[dict[str, Any]]:
        """Per instance: index, pid, port, rss_bytes, cpu_percent, cpu_seconds, alive, status."""
        data = await self._call(
            "GET",
            f"{self._svc(service, env)}/versions/{version}/resources",
            f"read resources of {service}/{env} {version}",
        )
        return list(data["instances"])

    async def journal(self, idempotency_key: str | None = None) -> list[dict[str, Any]]:
        """The agent's op journal: one entry per call (``outcome``, ``changed``, key)."""
        params = {"idempotency_key": idempotency_key} if idempotency_key else None
        return list(await self._call("GET", "/v1/ops", "read the op journal", params=params))

    async def reconcile_report(self) -> dict[str, Any]:
        """What the agent re-adopted, restarted or stopped when it last started."""
        return dict(await self._call("GET", "/v1/reconcile", "read the reconcile report"))

    async def healthy(self) -> bool:
        try:
            await self._call("GET", "/healthz", "agent health", timeout=2.0)
        except PlatformUnavailable:
            return False
        return True
