"""Helpers for crash tests of the local agent: the agent as a real process in its
own session on a fixed port (so a restarted agent answers on the same URL), a
steady open-model HTTP client (fixed request rate, every outcome recorded), and
the outside check of the op journal (no idempotency key applied twice)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.servers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "examples"


class AgentProc:
    """``python -m workers.agent`` on one port and state dir, started and killed at will."""

    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.state_dir = state_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> AgentProc:
        self.starts += 1
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = (self.state_dir.parent / f"agent-{self.port}-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers.agent", "--port", str(self.port)]
            + ["--state-dir", str(self.state_dir)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            lambda: httpx.get(self.url + "/healthz", timeout=1).status_code == 200,
            timeout,
            "agent",
            self.proc,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.proc.wait(15)

    def stop(self) -> None:
        """Clean stop (SIGTERM): the agent tears its data plane down."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def state(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "state.json").read_text())

    def ops(self, **params: str) -> list[dict[str, Any]]:
        return httpx.get(self.url + "/v1/ops", params=params, timeout=5).json()


def sweep(state_dir: Path) -> list[int]:
    """Kill every process labelled with ``state_dir`` (a test's last resort cleanup)."""
    killed = []
    for p in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if p.environ().get("CODE_AGENT_STATE") == str(state_dir):
                p.kill()
                killed.append(p.pid)
    return killed


def journal_lines(state_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (state_dir / "ops.jsonl").read_text().splitlines() if x]


def keys_applied_twice(entries: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The outside check: per (op, key), the calls whose outcome is ``done``; more than
    one, or a second call that *changed* something without being a ``repaired``, is a
    key applied twice. Entries are ``GET /v1/ops`` items or ``end`` lines of ops.jsonl."""
    done: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    changed: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for e in entries:
        if e.get("phase", "end") != "end" or not e.get("idempotency_key"):
            continue
        k = (str(e["op"]), str(e["idempotency_key"]))
        if e.get("outcome") == "done":
            done[k].append(e["call"])
        if e.get("changed") and e.get("outcome") != "repaired":
            changed[k].append(e["call"])
    bad = {f"{op}:{key}": calls for (op, key), calls in done.items() if len(calls) > 1}
    bad |= {f"{op}:{key}": calls for (op, key), calls in changed.items() if len(calls) > 1}
    return bad


@dataclass
class Traffic:
    """An open-model client: one request every ``1/rate`` seconds, whatever the answers."""

    endpoint: str
    rate: float = 40.0
    path: str = "/work"
    results: list[tuple[float, int, str]] = field(default_factory=list)  # (t, status, version)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.endpoint, timeout=5.0) as client:
            tasks: set[asyncio.Task[None]] = set()
            t0 = time.monotonic()
            n = 0
            while not self._stop.is_set():
                task = asyncio.create_task(self._one(client))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
                delay = t0 + n / self.rate - time.monotonic()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), delay)
            if tasks:
                await asyncio.gather(*tasks)

    async def _one(self, client: httpx.AsyncClient) -> None:
        t = time.time()
        try:
            r = await client.get(self.path)
            self.results.append((t, r.status_code, r.headers.get("x-code-version", "-")))
        except httpx.HTTPError as exc:
            self.results.append((t, 0, type(exc).__name__))

    def stop(self) -> None:
        self._stop.set()

    def between(self, since: float, until: float) -> list[tuple[float, int, str]]:
        return [r for r in self.results if since <= r[0] <= until]

    @staticmethod
    def failed(results: list[tuple[float, int, str]]) -> list[tuple[float, int, str]]:
        return [r for r in results if r[1] == 0 or r[1] >= 500]


def demo_body(key: str, replicas: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "command": ["{python}", "demo_service.py"],
        "workdir": str(EXAMPLES),
        "replicas": replicas,
        "health_timeout_s": 15,
        "idempotency_key": key,
        **extra,
    }
