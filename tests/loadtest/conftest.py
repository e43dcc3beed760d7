"""Fixtures for load engine tests: an in-process aiohttp target on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp import web


class Target:
    def __init__(self, url: str) -> None:
        self.url = url
        self.hits = 0
        self.stall_s = 0.0


@pytest_asyncio.fixture
async def target() -> AsyncIterator[Target]:
    app = web.Application()
    holder: dict[str, Target] = {}

    async def ok(request: web.Request) -> web.Response:
        t = holder["t"]
        t.hits += 1
        if t.stall_s:
            stall, t.stall_s = t.stall_s, 0.0
            await asyncio.sleep(stall)
        return web.Response(text="ok")

    async def slow(request: web.Request) -> web.Response:
        holder["t"].hits += 1
        await asyncio.sleep(float(request.query.get("s", "0.2")))
        return web.Response(text="slow")

    async def echo(request: web.Request) -> web.Response:
        holder["t"].hits += 1
        body = await request.read()
        return web.Response(
            body=body, status=201, headers={"X-Got": request.headers.get("X-Test", "")}
        )

    async def chunked(request: web.Request) -> web.StreamResponse:
        holder["t"].hits += 1
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"abc")
        await resp.write(b"defgh")
        await resp.write_eof()
        return resp

    async def fail(request: web.Request) -> web.Response:
        holder["t"].hits += 1
        return web.Response(status=500, text="boom")

    app.router.add_get("/", ok)
    app.router.add_get("/slow", slow)
    app.router.add_post("/echo", echo)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/fail", fail)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    holder["t"] = Target(f"http://127.0.0.1:{port}")
    try:
        yield holder["t"]
    finally:
        await runner.cleanup()
