"""Process management for one service version's instances (the data plane).

Contract:
- :func:`start_instance` starts ``command`` (``{python}`` -> ``sys.executable``)
  in its own session (process group = pid, apart from the agent's) with ``PORT``
  and ``SERVICE_VERSION`` set, stdout/stderr appended to a log file. The child is
  started through a tiny launcher that ``exec``s the command (same pid) and
  reports a command that cannot run. No shell, ever. Instances do NOT die with
  the agent: a crashed agent re-adopts them on start.
- Every process carries two labels in its environment: ``CODE_AGENT_STATE`` (the
  agent's state dir) and ``CODE_AGENT_OBJ`` (what it is, with a per-start nonce),
  so a restarted agent can find processes it started but never recorded.
- Identity is ``pid`` + process start time (``create_time``), never a pid alone;
  :func:`listening` adds the port check (the process tree listens on the port).
- :func:`stop_instance` sends SIGTERM to the process group, SIGKILL after
  ``grace`` seconds; safe to call on a dead or re-adopted instance.
- :func:`wait_healthy` polls ``GET health_path`` until 200, the process exits,
  or the deadline passes.
- Only 127.0.0.1 ports are used (:func:`free_port`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

# Execs argv[1:] (same pid, so pid + start time identify the service process).
_LAUNCHER = (
    "import os,sys\n"
    "try:\n"
    "    os.execvp(sys.argv[1], sys.argv[1:])\n"
    "except OSError as exc:\n"
    "    print(f'cannot run {sys.argv[1]!r}: {exc.strerror}', file=sys.stderr)\n"
    "    sys.exit(127)\n"
)

SIGNALS = {
    "KILL": signal.SIGKILL,
    "STOP": signal.SIGSTOP,
    "CONT": signal.SIGCONT,
    "TERM": signal.SIGTERM,
}
STATE_LABEL = "CODE_AGENT_STATE"
OBJ_LABEL = "CODE_AGENT_OBJ"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def create_time(pid: int) -> float:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


def same_process(pid: int, started: float) -> psutil.Process | None:
    """The live (non-zombie) process ``pid`` if it started at ``started``, else None."""
    try:
        p = psutil.Process(pid)
        if abs(p.create_time() - started) > 0.05 or p.status() == psutil.STATUS_ZOMBIE:
            return None
        return p
    except psutil.Error:
        return None


def listening(pid: int, started: float, port: int) -> bool:
    """The process (or one of its descendants) listens on 127.0.0.1:``port``."""
    p = same_process(pid, started)
    if p is None:
        return False
    try:
        for proc in [p, *p.children(recursive=True)]:
            for c in proc.net_connections(kind="tcp"):
                if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port:
                    return True
        return False
    except psutil.AccessDenied:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", port)) == 0
    except psutil.Error:
        return False


def labels(state_dir: Path, obj: str) -> dict[str, str]:
    return {STATE_LABEL: str(state_dir), OBJ_LABEL: obj}


def labelled(state_dir: Path) -> list[tuple[psutil.Process, str]]:
    """Every live process carrying this state dir's label, with its object label."""
    out = []
    want = str(state_dir)
    for p in psutil.process_iter(["pid"]):
        try:
            env = p.environ()
            if env.get(STATE_LABEL) == want and p.status() != psutil.STATUS_ZOMBIE:
                out.append((p, env.get(OBJ_LABEL, "")))
        except psutil.Error:
            continue
    return out


@dataclass
class Instance:
    index: int
    port: int
    pid: int
    started: float  # process create_time: pid + start time is the identity
    log_path: Path
    obj: str  # the CODE_AGENT_OBJ label (includes a per-start nonce)
    log_offset: int = 0
    healthy: bool = False
    needs_reapply: bool = False  # dead, and its secrets are not kept: re-apply to restart
    proc: asyncio.subprocess.Process | None = None  # set when this agent started it
    started_at: float = field(default_factory=time.time)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ps(self) -> psutil.Process | None:
        if self.proc is not None and self.proc.returncode is not None:
            return None
        return same_process(self.pid, self.started)

    def status(self) -> str:
        """psutil status: running/sleeping/stopped/..., or 'dead'."""
        p = self.ps()
        if p is None:
            return "dead"
        try:
            return str(p.status())
        except psutil.Error:
            return "dead"

    @property
    def alive(self) -> bool:
        return self.status() not in ("dead", psutil.STATUS_ZOMBIE)

    @property
    def stopped(self) -> bool:
        return self.status() == psutil.STATUS_STOPPED

    async def wait_exit(self, limit_s: float) -> bool:
        """True when the process is gone within ``limit_s`` seconds."""
        if self.proc is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), limit_s)
            return self.proc.returncode is not None
        return await until(lambda: not self.alive, limit_s)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    def resources(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "pid": self.pid,
            "port": self.port,
            "rss_bytes": 0,
            "cpu_percent": 0.0,
            "cpu_seconds": 0.0,
            "alive": self.alive,
            "status": self.status(),
            "healthy": self.healthy,
        }
        p = self.ps()
        if p is not None and out["alive"]:
            try:
                with p.oneshot():
                    out["rss_bytes"] = int(p.memory_info().rss)
                    t = p.cpu_times()
                    out["cpu_seconds"] = round(t.user + t.system, 3)
                    out["cpu_percent"] = p.cpu_percent(interval=None)
            except psutil.Error:
                pass
        return out

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "pid": self.pid,
            "port": self.port,
            "healthy": self.healthy,
            "alive": self.alive,
            "status": self.status(),
        }
        if self.needs_reapply:
            out["needs_reapply"] = True
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "port": self.port,
            "pid": self.pid,
            "create_time": self.started,
            "log": str(self.log_path),
            "log_offset": self.log_offset,
            "obj": self.obj,
            "needs_reapply": self.needs_reapply,
        }

    @classmethod
    def from_state(cls, rec: dict[str, Any]) -> Instance:
        return cls(
            index=int(rec["index"]),
            port=int(rec["port"]),
            pid=int(rec["pid"]),
            started=float(rec["create_time"]),
            log_path=Path(rec["log"]),
            obj=str(rec.get("obj", "")),
            log_offset=int(rec.get("log_offset", 0)),
            needs_reapply=bool(rec.get("needs_reapply", False)),
        )


async def until(check: Any, limit_s: float, every: float = 0.05) -> bool:
    """Poll ``check()`` until it is true (True) or ``limit_s`` passes (False)."""
    for _ in range(max(1, int(limit_s / every))):
        if check():
            return True
        await asyncio.sleep(every)
    return bool(check())


def open_log(log_dir: Path, name: str) -> Any:
    log_dir.mkdir(parents=True, exist_ok=True)
    return open(log_dir / name, "ab")


def resolve_command(command: list[str]) -> list[str]:
    return [
        sys.executable if part == "{python}" else part.replace("{python}", sys.executable)
        for part in command
    ]


async def start_instance(
    *,
    index: int,
    command: list[str],
    workdir: str | None,
    env: dict[str, str],
    version: str,
    log_dir: Path,
    log_name: str,
    state_dir: Path,
    obj: str,
    port: int | None = None,
) -> Instance:
    port = port or free_port()
    log_path = log_dir / f"{log_name}-{index}.log"
    obj = f"{obj}#{uuid.uuid4().hex[:8]}"
    child_env = dict(os.environ)
    child_env.update({k: str(v) for k, v in env.items()})
    child_env.update(labels(state_dir, obj))
    child_env["PORT"] = str(port)
    child_env["SERVICE_VERSION"] = version
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    argv = [sys.executable, "-c", _LAUNCHER, *resolve_command(command)]
    with open_log(log_dir, log_path.name) as log:
        offset = log.tell()
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=workdir or None,
            env=child_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    return Instance(
        index=index,
        port=port,
        pid=int(proc.pid),
        started=create_time(proc.pid) or time.time(),
        log_path=log_path,
        obj=obj,
        proc=proc,
        log_offset=offset,
    )


def send_signal(inst: Instance, name: str) -> None:
    sig = SIGNALS[name]
    if inst.ps() is None:  # dead, or the pid now belongs to another process
        return
    try:
        os.killpg(inst.pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(inst.pid, sig)


async def stop_instance(inst: Instance, grace: float = 5.0) -> None:
    if inst.alive:
        if inst.stopped:
            send_signal(inst, "CONT")
        send_signal(inst, "TERM")
        if not await inst.wait_exit(grace):
            send_signal(inst, "KILL")
            await inst.wait_exit(5.0)
    elif inst.proc is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(inst.proc.wait(), 1.0)  # reap
    # anything left in the process group (grandchildren); only ever our own group
    if inst.proc is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(inst.pid, signal.SIGKILL)
    inst.healthy = False


async def stop_pid(pid: int, started: float, grace: float = 5.0) -> bool:
    """Stop a process we did not start (an orphan): TERM its group, KILL after ``grace``."""
    if same_process(pid, started) is None:
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if await until(lambda: same_process(pid, started) is None, wait):
            return True
    return False


async def probe(session: aiohttp.ClientSession, inst: Any, path: str, limit_s: float) -> bool:
    try:
        async with session.get(
            inst.url + path, timeout=aiohttp.ClientTimeout(total=limit_s)
        ) as resp:
            await resp.read()
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


def log_tail(inst: Instance, limit: int = 600) -> str:
    try:
        data = inst.log_path.read_bytes()[inst.log_offset :][-limit:]
    except OSError:
        return ""
    return data.decode(errors="replace").strip()


async def wait_healthy(
    session: aiohttp.ClientSession, inst: Instance, path: str, deadline: float
) -> str | None:
    """None when healthy, else a reason (exited / timed out)."""
    while True:
        if not inst.alive:
            if inst.proc is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(inst.proc.wait(), 0.5)
            tail = log_tail(inst)
            code = inst.returncode
            return (
                f"instance {inst.index} exited"
                + (f" with code {code}" if code is not None else "")
                + (f"; log tail: {tail}" if tail else "")
            )
        if await probe(session, inst, path, 1.0):
            inst.healthy = True
            return None
        if time.monotonic() >= deadline:
            return f"instance {inst.index} (port {inst.port}) did not answer 200 on {path} in time"
        await asyncio.sleep(0.2)
