"""The agent's handle on router processes (:mod:`workers.agent.routerd`).

- :func:`spawn` writes the router's config file (from the desired state; no
  secrets in it) and starts ``python -m workers.agent.routerd`` in its own
  session with the agent's labels, then waits until its admin API answers with
  the token it was given. A busy data port raises :class:`PortBusy`.
- :func:`identify` is the re-adoption check: pid + process start time, the admin
  API answering with the recorded token, service and environment, and the data
  port listening. Never a pid alone.
- :func:`push` replaces the router's config (``PUT /config``); :func:`admin_get`
  reads samples, metrics or fault hits. Failures raise :class:`AgentError` 503
  ``router_unavailable``.
- :func:`stop` SIGTERMs the router (SIGKILL after a grace period)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from workers.agent import instances as im
from workers.agent.model import AgentError
from workers.agent.state import atomic_write_json


class PortBusy(Exception):
    pass


@dataclass
class RouterProc:
    service: str
    environment: str
    port: int
    admin_port: int
    token: str
    pid: int = 0
    started: float = 0.0
    log_path: Path | None = None
    proc: asyncio.subprocess.Process | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def obj(self) -> str:
        return f"router:{self.service}/{self.environment}#{self.token}"

    @property
    def alive(self) -> bool:
        if self.proc is not None and self.proc.returncode is not None:
            return False
        return im.same_process(self.pid, self.started) is not None

    def to_state(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "admin_port": self.admin_port,
            "token": self.token,
            "pid": self.pid,
            "create_time": self.started,
            "log": str(self.log_path) if self.log_path else None,
        }

    @classmethod
    def from_state(cls, service: str, env: str, rec: dict[str, Any]) -> RouterProc:
        return cls(
            service=service,
            environment=env,
            port=int(rec["port"]),
            admin_port=int(rec.get("admin_port", 0)),
            token=str(rec.get("token", "")),
            pid=int(rec.get("pid", 0)),
            started=float(rec.get("create_time", 0.0)),
            log_path=Path(rec["log"]) if rec.get("log") else None,
        )


def _slug(service: str, env: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{service}~{env}")


async def spawn(
    state_dir: Path,
    service: str,
    env: str,
    port: int,
    config: dict[str, Any],
    upstream_timeout: float,
    session: aiohttp.ClientSession,
    start_timeout: float = 20.0,
) -> RouterProc:
    rdir = state_dir / "routers"
    await asyncio.to_thread(rdir.mkdir, parents=True, exist_ok=True)
    cfg_path = rdir / f"{_slug(service, env)}.json"
    await asyncio.to_thread(atomic_write_json, cfg_path, config)
    r = RouterProc(service, env, port, im.free_port(), uuid.uuid4().hex[:12])
    r.log_path = state_dir / "logs" / f"router-{_slug(service, env)}.log"
    # fmt: off
    argv = [
        sys.executable, "-m", "workers.agent.routerd",
        "--service", service, "--environment", env,
        "--port", str(port), "--admin-port", str(r.admin_port),
        "--token", r.token, "--config", str(cfg_path),
        "--upstream-timeout", str(upstream_timeout),
    ]
    # fmt: on
    child_env = {**os.environ, **im.labels(state_dir, r.obj)}
    with im.open_log(r.log_path.parent, r.log_path.name) as log:
        r.proc = await asyncio.create_subprocess_exec(
            *argv,
            env=child_env,
            cwd=str(state_dir),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    r.pid = int(r.proc.pid)
    r.started = im.create_time(r.pid) or time.time()
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        if r.proc.returncode is not None:
            if r.proc.returncode in (97, 98):
                raise PortBusy(port)
            raise AgentError(
                503,
                "router_unavailable",
                f"the router of {service}/{env} exited with code {r.proc.returncode} at "
                f"start; see {r.log_path}",
            )
        if await _healthz(r, session) is not None:
            return r
        await asyncio.sleep(0.05)
    await stop(r)
    raise AgentError(
        503, "router_unavailable", f"the router of {service}/{env} did not start; see {r.log_path}"
    )


async def _healthz(r: RouterProc, session: aiohttp.ClientSession) -> dict[str, Any] | None:
    try:
        async with session.get(
            r.admin_url + "/healthz", timeout=aiohttp.ClientTimeout(total=1.0)
        ) as resp:
            if resp.status != 200:
                return None
            data = await resp.json()
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
        return None
    if data.get("token") != r.token:
        return None
    return data if isinstance(data, dict) else None


async def identify(r: RouterProc, session: aiohttp.ClientSession) -> bool:
    """Is the recorded router alive and really ours (pid + start time + token + port)?"""
    if not r.pid or not r.alive:
        return False
    data = await _healthz(r, session)
    if data is None or (data.get("service"), data.get("environment")) != (
        r.service,
        r.environment,
    ):
        return False
    return await asyncio.to_thread(im.listening, r.pid, r.started, r.port)


async def push(r: RouterProc, session: aiohttp.ClientSession, config: dict[str, Any]) -> None:
    try:
        async with session.put(
            r.admin_url + "/config", json=config, timeout=aiohttp.ClientTimeout(total=5.0)
        ) as resp:
            if resp.status == 200:
                return
            detail = (await resp.text())[:300]
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
    raise AgentError(
        503,
        "router_unavailable",
        f"the router of {r.service}/{r.environment} (pid {r.pid}) did not take its config: "
        f"{detail}; the agent restarts dead routers by itself, retry",
    )


async def admin_get(
    r: RouterProc,
    session: aiohttp.ClientSession,
    path: str,
    params: dict[str, Any] | None = None,
    text: bool = False,
) -> Any:
    try:
        async with session.get(
            r.admin_url + path, params=params, timeout=aiohttp.ClientTimeout(total=5.0)
        ) as resp:
            if resp.status == 200:
                return await (resp.text() if text else resp.json())
            detail = f"answered {resp.status}"
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        detail = f"{type(exc).__name__}"
    raise AgentError(
        503,
        "router_unavailable",
        f"the router of {r.service}/{r.environment} cannot be read ({path}: {detail}); "
        "the agent restarts dead routers by itself, retry",
    )


async def stop(r: RouterProc, grace: float = 5.0) -> None:
    if r.proc is not None:
        if r.proc.returncode is None:
            r.proc.terminate()
            try:
                await asyncio.wait_for(r.proc.wait(), grace)
            except TimeoutError:
                r.proc.kill()
                await asyncio.wait_for(r.proc.wait(), 5.0)
        return
    await im.stop_pid(r.pid, r.started, grace)
