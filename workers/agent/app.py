"""Control API of the local platform agent (JSON over HTTP, 127.0.0.1 only).

    GET    /healthz
    GET    /metrics                                         Prometheus text
    GET    /v1/ops[?idempotency_key=K]                      journal: one entry per call
    GET    /v1/reconcile                                    what the last start re-adopted/restarted
    GET    /v1/services                                     [{service, environment}]
    GET    /v1/services/{s}/{e}                             endpoint, weights, versions
    PUT    /v1/services/{s}/{e}/versions/{v}                apply (start + wait healthy)
    DELETE /v1/services/{s}/{e}/versions/{v}[?force=1]      retire
    PUT    /v1/services/{s}/{e}/traffic                     {weights, idempotency_key}
    GET    /v1/services/{s}/{e}/samples?since=&until=       per-version count/errors/latencies
    POST   /v1/services/{s}/{e}/faults                      router fault -> {id}
    GET    /v1/services/{s}/{e}/faults
    DELETE /v1/services/{s}/{e}/faults/{id}
    POST   /v1/services/{s}/{e}/versions/{v}/instances/{i}/signal   {signal}
    POST   /v1/services/{s}/{e}/versions/{v}/restore
    GET    /v1/services/{s}/{e}/versions/{v}/resources

Errors are ``{"error": code, "detail": text}`` with 400 (bad request), 404
(unknown service/version), 409 (conflict: traffic on a version, unknown
version, a key reused for another request, ``needs_reapply``), 422 (``unhealthy``:
the version did not pass its health check), 503 (``router_unavailable``) and 507
(``state_not_persisted``: the desired state could not be written; nothing was
recorded). Mutations take an ``idempotency_key`` (body, or query for DELETE); a
second call with a key already done returns the first result with
``changed: false, replayed: true`` (see :mod:`workers.agent.state`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from workers.agent import chaosops, ops, reconcile
from workers.agent import routers as rt
from workers.agent.core import Agent, AgentError, VersionSpec
from workers.agent.faults import FaultSpec

AGENT = web.AppKey("agent", Agent)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AgentError as exc:
        return web.json_response({"error": exc.error, "detail": exc.detail}, status=exc.status)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return web.json_response({"error": "bad_request", "detail": detail}, status=400)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise AgentError(400, "bad_request", "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise AgentError(400, "bad_request", "the body must be a JSON object")
    return data


def _se(request: web.Request) -> tuple[Agent, str, str]:
    return request.app[AGENT], request.match_info["s"], request.match_info["e"]


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "services": len(request.app[AGENT].services)})


async def metrics(request: web.Request) -> web.Response:
    agent = request.app[AGENT]
    agent.metrics.refresh(agent.services.values())
    texts = await asyncio.gather(
        *(
            rt.admin_get(s.router, agent.session, "/metrics", text=True)
            for s in agent.services.values()
        ),
        return_exceptions=True,
    )
    return web.Response(
        body=agent.metrics.render(t for t in texts if isinstance(t, str)),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def journal(request: web.Request) -> web.Response:
    key = request.query.get("idempotency_key")
    return web.json_response(request.app[AGENT].journal.list(key))


async def reconcile_report(request: web.Request) -> web.Response:
    return web.json_response(request.app[AGENT].report)


async def list_services(request: web.Request) -> web.Response:
    return web.json_response(
        [
            {"service": s.service, "environment": s.environment}
            for s in request.app[AGENT].services.values()
        ]
    )


async def get_service(request: web.Request) -> web.Response:
    agent, s, e = _se(request)
    return web.json_response(agent.get(s, e).describe())


def _version_spec(body: dict[str, Any]) -> VersionSpec:
    command = body.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        raise AgentError(400, "bad_request", "command must be a non-empty list of strings (argv)")
    env = body.get("env") or {}
    if not isinstance(env, dict):
        raise AgentError(400, "bad_request", "env must be a map of strings")
    replicas = body.get("replicas", 1)
    if not isinstance(replicas, int) or not 1 <= replicas <= 100:
        raise AgentError(400, "bad_request", "replicas must be an integer 1..100")
    path = str(body.get("health_path") or "/healthz")
    if not path.startswith("/"):
        raise AgentError(400, "bad_request", "health_path must start with /")
    secret_env = body.get("secret_env") or {}
    secret_versions = body.get("secret_versions") or {}
    if not isinstance(secret_env, dict) or not isinstance(secret_versions, dict):
        raise AgentError(
            400, "bad_request", "secret_env and secret_versions must be maps of strings"
        )
    return VersionSpec(
        command=command,
        workdir=body.get("workdir") or None,
        env={str(k): str(v) for k, v in env.items()},
        secret_env={str(k): str(v) for k, v in secret_env.items()},
        secret_versions={str(k): str(v) for k, v in secret_versions.items()},
        replicas=replicas,
        health_path=path,
        health_timeout_s=float(body.get("health_timeout_s") or 30.0),
    )


async def put_version(request: web.Request) -> web.Response:
    agent, s, e = _se(request)
    body = await _body(request)
    iw, rp = body.get("initial_weight"), body.get("router_port")
    if iw is not None and (not isinstance(iw, int) or not 0 <= iw <= 100):
        raise AgentError(400, "bad_request", "initial_weight must be an integer 0..100 or null")
    if rp is not None and (not isinstance(rp, int) or not 1 <= rp <= 65535):
        raise AgentError(400, "bad_request", "router_port must be a port number")
    result = await ops.apply(
        agent,
        s,
        e,
        request.match_info["v"],
        _version_spec(body),
        body.get("idempotency_key"),
        iw,
        rp,
    )
    return web.json_response(result)


async def delete_version(request: web.Request) -> web.Response:
    agent, s, e = _se(request)
    force = request.query.get("force", "") in ("1", "true", "yes")
    key = request.query.get("idempotency_key")
    return web.json_response(await ops.retire(agent, s, e, request.match_info["v"], force, key))


async def put_traffic(request: web.Request) -> web.Response:
    agent, s, e = _se(request)
    body = await _body(request)
    return web.json_response(
        await ops.set_traffic(agent, s, e, body.get("weights"), body.get("idempotency_key"))
    )


def _float_q(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise AgentError(400, "bad_request", f"{name} must be a UNIX timestamp") from None


async def samples(request: web.Request) -> web.Response:
    agent, s, e = _se(request)
    svc = agent.get(s, e)
    now = time.time()
    since = _float_q(request, "since", now - 60.0)
    until = _float_q(request, "until", now)
    window = await rt.admin_get(
        svc.router, agent.session, "/samples", {"since": since, "until": until}
    )
    return web.json_response({"now": now, "since": since, "until": until, "versions": window})


async def post_fault(request: web.Request) -> web.Response:
    agent, s, e = _se(request)
    spec = FaultSpec.model_validate(await _body(request))
    return web.json_response(await chaosops.add_fault(agent, s, e, spec))


async def get_faults(request: web.Request) -> web.Response:
    agent, s, e = _se(request)
    return web.json_response(await chaosops.list_faults(agent, s, e))


async def delete_fault(request: web.Request) -> web.Response:
    agent, s, e = _se(request)
    return web.json_response(
        await chaosops.remove_fault(
            agent, s, e, request.match_info["id"], request.query.get("idempotency_key")
        )
    )


async def post_signal(request: web.Request) -> web.Response:
    agent, s, e = _se(request)
    body = await _body(request)
    try:
        index = int(request.match_info["i"])
    except ValueError:
        raise AgentError(400, "bad_request", "instance index must be an integer") from None
    return web.json_response(
        await chaosops.signal_instance(
            agent,
            s,
            e,
            request.match_info["v"],
            index,
            str(body.get("signal", "")),
            body.get("idempotency_key"),
        )
    )


async def post_restore(request: web.Request) -> web.Response:
    agent, s, e = _se(request)
    body = await _body(request)
    return web.json_response(
        await chaosops.restore(agent, s, e, request.match_info["v"], body.get("idempotency_key"))
    )


async def get_resources(request: web.Request) -> web.Response:
    agent, s, e = _se(request)
    return web.json_response(chaosops.resources(agent, s, e, request.match_info["v"]))


def make_app(agent: Agent) -> web.Application:
    app = web.Application(middlewares=[errors])
    app[AGENT] = agent
    svc = "/v1/services/{s}/{e}"
    ver = svc + "/versions/{v}"
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/ops", journal)
    app.router.add_get("/v1/reconcile", reconcile_report)
    app.router.add_get("/v1/services", list_services)
    app.router.add_get(svc, get_service)
    app.router.add_put(ver, put_version)
    app.router.add_delete(ver, delete_version)
    app.router.add_put(svc + "/traffic", put_traffic)
    app.router.add_get(svc + "/samples", samples)
    app.router.add_post(svc + "/faults", post_fault)
    app.router.add_get(svc + "/faults", get_faults)
    app.router.add_delete(svc + "/faults/{id}", delete_fault)
    app.router.add_post(ver + "/instances/{i}/signal", post_signal)
    app.router.add_post(ver + "/restore", post_restore)
    app.router.add_get(ver + "/resources", get_resources)

    async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
        await agent.start(reconcile.reconcile)
        yield
        await agent.close()

    app.cleanup_ctx.append(_lifecycle)
    return app
