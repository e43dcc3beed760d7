"""Temporal codec server (``codectl codec-server``): lets the Web UI / ``temporal``
CLI show decrypted payloads to those holding the shared token.

Protocol (Temporal remote codec): ``POST /encode`` and ``POST /decode`` with a JSON
``{"payloads": [{"metadata": {k: base64}, "data": base64}]}`` body (the protobuf JSON
form of ``temporal.api.common.v1.Payloads``), answered in the same shape; the
``X-Namespace`` header is accepted. CORS: preflight ``OPTIONS`` and responses allow
exactly the configured Web UI origin with credentials.

Auth: ``Authorization: Bearer <token>`` (or the bare token) compared in constant time
with the token file's content: no header → 401, a wrong token → 403, nothing decoded.
With identity configured, :func:`oidc_authorizer` replaces the shared token: the bearer is
an OIDC token verified against the issuer's keys (re-fetched once on an unknown key) and
must give the ``viewer`` role (any binding reaching ``*`` environments): no or invalid
token → 401, a valid one without the role → 403, a viewer → 200.
"""

from __future__ import annotations

import asyncio
import hmac
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

ALLOW_HEADERS = "Authorization, Content-Type, X-Namespace"


def read_token(path: Path) -> str:
    token = Path(path).read_text().strip()
    if len(token) < 16:
        raise ValueError(f"{path}: the shared token must be at least 16 characters")
    return token


Authorizer = Callable[[str], Awaitable[tuple[int, str] | None]]


def oidc_authorizer(source: Any) -> Authorizer:
    """Bearer tokens checked like the workflows check them (``source``: an
    :class:`activities.identity.IdentitySource`); None when the caller is a viewer."""
    from workflows.identity import TokenRejected, verify
    from workflows.policy import decide

    pinned = {"cfg": source.config()}

    async def check(bearer: str) -> tuple[int, str] | None:
        cfg = pinned["cfg"]
        try:
            try:
                who = verify(bearer, cfg, datetime.now(UTC))
            except TokenRejected as exc:
                if not exc.unknown_key:
                    raise
                fresh = await asyncio.to_thread(source.config, True)  # a rotated key
                pinned["cfg"] = cfg = cfg.merged(fresh)
                who = verify(bearer, cfg, datetime.now(UTC))
        except TokenRejected as exc:
            return 401, f"token refused: {exc.reason}"
        decision = decide(cfg.policy, who, "view", "*", "*")
        return None if decision.allowed else (403, decision.reason)

    return check


def build_app(codec: PayloadCodec, token: str | Authorizer, origins: list[str]) -> web.Application:
    allowed = set(origins)

    def cors(req: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        origin = req.headers.get("Origin")
        if origin and origin in allowed:
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Access-Control-Allow-Credentials"] = "true"
            resp.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            resp.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            resp.headers["Vary"] = "Origin"
        return resp

    async def authorised(req: web.Request) -> web.Response | None:
        header = req.headers.get("Authorization", "")
        if not header:
            return web.json_response({"error": "missing Authorization header"}, status=401)
        given = header.removeprefix("Bearer ").strip()
        if callable(token):
            refused = await token(given)
            if refused is not None:
                return web.json_response({"error": refused[1]}, status=refused[0])
            return None
        if not hmac.compare_digest(given.encode(), token.encode()):
            return web.json_response({"error": "invalid token"}, status=403)
        return None

    def handler(decode: bool):
        async def handle(req: web.Request) -> web.StreamResponse:
            denied = await authorised(req)
            if denied is not None:
                return cors(req, denied)
            try:
                payloads = json_format.Parse(await req.read(), Payloads())
            except json_format.ParseError as exc:
                return cors(req, web.json_response({"error": f"bad payloads: {exc}"}, status=400))
            fn = codec.decode if decode else codec.encode
            try:
                out = Payloads(payloads=await fn(payloads.payloads))
            except Exception as exc:  # noqa: BLE001 - tell the caller, keep serving
                return cors(req, web.json_response({"error": str(exc)}, status=400))
            return cors(
                req,
                web.Response(text=json_format.MessageToJson(out), content_type="application/json"),
            )

        return handle

    async def preflight(req: web.Request) -> web.StreamResponse:
        return cors(req, web.Response(status=204))

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/encode", handler(decode=False))
    app.router.add_post("/decode", handler(decode=True))
    app.router.add_route("OPTIONS", "/encode", preflight)
    app.router.add_route("OPTIONS", "/decode", preflight)
    return app


async def serve(
    codec: PayloadCodec,
    token: str | Authorizer,
    origins: list[str],
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
) -> web.AppRunner:
    """Start serving (HTTPS with ``ssl_context``: :func:`workers.tls.server_context`)."""
    runner = web.AppRunner(build_app(codec, token, origins))
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    return runner
