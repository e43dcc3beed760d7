"""One crash-matrix stack: what ``codectl dev --detach`` starts (``workers.devstack.ensure``,
run in-process with the stack's settings), on free loopback ports with its own state dir (Temporal dev server with ``--db-filename``, local platform agent, worker, all
supervised), SIGKILL of one component, the supervisor bringing it back, ``codectl down``
and the orphan check.

Contract: :meth:`CrashStack.up` returns once every component answers;
:meth:`CrashStack.kill` SIGKILLs the named component (``worker`` and ``temporal``: their
whole process group; ``agent``: the agent process only, its data plane must outlive it)
and :meth:`CrashStack.wait_back` returns once the supervisor's replacement answers on the
same address. :meth:`CrashStack.down` runs what ``codectl down`` runs and returns the processes
still labelled with this stack's state dir (the orphans; an empty list is a pass), after
killing them so nothing outlives a trial."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.servers import free_port
from tests.temporal_env import worker_polling

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ("worker", "agent", "temporal")
_ENV_LOCK = threading.Lock()


def _port_pair(taken: set[int]) -> int:
    """A free port whose successor is free too (the worker's metrics use two), both
    away from the ``taken`` ports chosen for the other components."""
    for _ in range(50):
        port = free_port()
        near = {port - 1, port, port + 1} & taken
        with socket.socket() as s:
            if not near and port < 65535 and s.connect_ex(("127.0.0.1", port + 1)) != 0:
                return port
    raise RuntimeError("no free port pair")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass
class CrashStack:
    state: Path
    env: dict[str, str] = field(default_factory=dict)
    kills: list[tuple[str, int, float]] = field(default_factory=list)  # (name, pid, t)
    _client: Any = None

    def __post_init__(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        temporal, agent, ui = ports = {free_port(), free_port(), free_port()}
        if len(ports) < 3:
            temporal, agent, ui = free_port(), free_port(), free_port()
        self.env = {
            **os.environ,
            "CODE_STATE_DIR": str(self.state),
            "CODE_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}",
            "CODE_AGENT_URL": f"http://127.0.0.1:{agent}",
            "CODE_TEMPORAL_UI_URL": f"http://127.0.0.1:{ui}",
            "CODE_TASK_QUEUE": f"crash-{uuid.uuid4().hex[:6]}",
            "CODE_METRICS_PORT": str(_port_pair({temporal, agent, ui})),
            "COLUMNS": "200",
        }

    @property
    def address(self) -> str:
        return self.env["CODE_TEMPORAL_ADDRESS"]

    @property
    def agent_url(self) -> str:
        return self.env["CODE_AGENT_URL"]

    @property
    def task_queue(self) -> str:
        return self.env["CODE_TASK_QUEUE"]

    @property
    def agent_state(self) -> Path:
        return self.state / "agent"

    def record(self) -> dict[str, int]:
        try:
            return {
                k: int(v) for k, v in json.loads((self.state / "stack.json").read_text()).items()
            }
        except (OSError, ValueError):
            return {}

    def _ensure(self) -> None:
        """What ``codectl dev --detach`` runs, with this stack's environment: the
        supervisor process inherits ``os.environ`` (the worker's metrics port), so stacks
        are started one at a time."""
        from workers.devstack import ensure

        with _ENV_LOCK:
            saved = os.environ.get("CODE_METRICS_PORT")
            os.environ["CODE_METRICS_PORT"] = self.env["CODE_METRICS_PORT"]
            try:
                ui = int(self.env["CODE_TEMPORAL_UI_URL"].rsplit(":", 1)[1])
                ensure(self.settings(), detach=True, ui_port=ui)
            finally:
                if saved is None:
                    os.environ.pop("CODE_METRICS_PORT", None)
                else:
                    os.environ["CODE_METRICS_PORT"] = saved

    async def up(self) -> None:
        await asyncio.to_thread(self._ensure)
        await self.wait_ready(PROCESSES, timeout=120)

    async def _ready(self, name: str) -> bool:
        if name == "agent":
            try:
                async with httpx.AsyncClient(timeout=0.5) as c:
                    return (await c.get(self.agent_url + "/healthz")).status_code == 200
            except httpx.HTTPError:
                return False
        if name == "temporal":
            host, _, port = self.address.rpartition(":")
            try:
                _, w = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 0.5)
            except (OSError, TimeoutError):
                return False
            w.close()
            return True
        return await self._worker_polls()

    async def client(self) -> Any:
        """A Temporal client for this stack (it reconnects after a server restart)."""
        if self._client is None:
            from workflows.client import connect

            self._client = await asyncio.wait_for(connect(self.address), 10)
        return self._client

    async def _worker_polls(self) -> bool:
        pid = self.record().get("worker")
        if not _alive(pid):
            return False
        try:
            client = await self.client()
            return await asyncio.wait_for(worker_polling(client, self.task_queue, pid), 3)
        except Exception:  # noqa: BLE001 - the server may be restarting: not ready yet
            return False

    async def wait_ready(self, names: tuple[str, ...], timeout: float = 90) -> float:
        deadline = time.monotonic() + timeout
        for name in names:
            while not await self._ready(name):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready within {timeout}s ({self.state})")
                await asyncio.sleep(0.1)
        return time.time()

    def kill(self, name: str) -> float:
        pid = self.record()[name]
        t = time.time()
        if name == "agent":
            os.kill(pid, signal.SIGKILL)
        else:
            os.killpg(pid, signal.SIGKILL)
        self.kills.append((name, pid, t))
        return t

    async def wait_back(self, name: str, timeout: float = 90) -> float:
        """Wait for the supervisor's replacement of the killed ``name``; its ready time."""
        old = self.kills[-1][1]
        deadline = time.monotonic() + timeout
        while not (self.record().get(name) not in (None, old) and _alive(self.record()[name])):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} was not restarted within {timeout}s")
            await asyncio.sleep(0.1)
        names = (name,) if name != "temporal" else ("temporal", "worker")
        return await self.wait_ready(names, max(5.0, deadline - time.monotonic()))

    def labelled(self) -> list[psutil.Process]:
        """Processes started for this stack (the env names its state dir, or argv does)."""
        mine, state = [], str(self.state)
        for p in psutil.process_iter(["pid", "cmdline"]):
            if p.pid == os.getpid():
                continue
            with contextlib.suppress(psutil.Error):
                if p.status() == psutil.STATUS_ZOMBIE:
                    continue
                env = p.environ()
                if (
                    env.get("CODE_STATE_DIR") == state
                    or env.get("CODE_AGENT_STATE", "").startswith(state)
                    or any(state in a for a in p.info["cmdline"] or [])
                ):
                    mine.append(p)
        return mine

    async def down(self) -> list[str]:
        """What ``codectl down`` runs; then the orphans (killed, and returned)."""
        from workers.devstack import down

        await asyncio.to_thread(down, self.settings())
        await asyncio.sleep(0.5)
        orphans = self.labelled()
        names = [f"{p.pid}:{' '.join(p.cmdline()[:3])}" for p in orphans if p.is_running()]
        for p in orphans:
            with contextlib.suppress(psutil.Error):
                p.kill()
        return names

    def settings(self) -> Any:
        from activities.settings import Settings

        return Settings(
            state_dir=self.state,
            temporal_address=self.address,
            temporal_ui_url=self.env["CODE_TEMPORAL_UI_URL"],
            agent_url=self.agent_url,
            task_queue=self.task_queue,
        )

    async def describe(self, service: str, environment: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as c:
            r = await c.get(f"{self.agent_url}/v1/services/{service}/{environment}")
            r.raise_for_status()
            doc: dict[str, Any] = r.json()
            return doc

    async def endpoint(self, service: str, environment: str) -> str:
        return str((await self.describe(service, environment))["endpoint"]).rstrip("/")
