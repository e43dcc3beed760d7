"""Process management for one service version's instances.

Contract:
- :func:`start_instance` starts ``command`` (``{python}`` -> ``sys.executable``)
  in its own session (process group = pid) with ``PORT`` and ``SERVICE_VERSION``
  set, stdout/stderr appended to a log file. The child is started through a tiny
  launcher that sets ``PR_SET_PDEATHSIG=SIGKILL`` and then ``exec``s the command,
  so the child dies even if the agent itself is SIGKILLed. No shell, ever.
- :func:`stop_instance` sends SIGTERM to the process group, SIGKILL after
  ``grace`` seconds; safe to call on a dead instance.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

# Sets PDEATHSIG, checks the agent is still there, then execs argv[1:].
_LAUNCHER = (
    "import ctypes,os,signal,sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "except Exception:\n"
    "    pass\n"
    "if os.getppid() != int(os.environ.pop('CODE_AGENT_PID', '') or os.getppid()):\n"
    "    sys.exit(1)\n"
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Instance:
    index: int
    port: int
    proc: asyncio.subprocess.Process
    log_path: Path
    log_offset: int = 0
    healthy: bool = False
    started_at: float = field(default_factory=time.time)
    _ps: psutil.Process | None = None

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ps(self) -> psutil.Process | None:
        if self._ps is None:
            with contextlib.suppress(psutil.Error):
                self._ps = psutil.Process(self.pid)
        return self._ps

    def status(self) -> str:
        """psutil status: running/sleeping/stopped/zombie/..., or 'dead'."""
        if self.proc.returncode is not None:
            return "dead"
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
        return {
            "index": self.index,
            "pid": self.pid,
            "port": self.port,
            "healthy": self.healthy,
            "alive": self.alive,
            "status": self.status(),
        }


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
    port: int | None = None,
) -> Instance:
    port = port or free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{log_name}-{index}.log"
    child_env = dict(os.environ)
    child_env.update({k: str(v) for k, v in env.items()})
    child_env["PORT"] = str(port)
    child_env["SERVICE_VERSION"] = version
    child_env["CODE_AGENT_PID"] = str(os.getpid())
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    argv = [sys.executable, "-c", _LAUNCHER, *resolve_command(command)]
    with open(log_path, "ab") as log:
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
    return Instance(index=index, port=port, proc=proc, log_path=log_path, log_offset=offset)


def send_signal(inst: Instance, name: str) -> None:
    sig = SIGNALS[name]
    if inst.proc.returncode is not None:
        return
    try:
        os.killpg(inst.pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(inst.pid, sig)


async def stop_instance(inst: Instance, grace: float = 5.0) -> None:
    if inst.proc.returncode is None:
        if inst.stopped:
            send_signal(inst, "CONT")
        send_signal(inst, "TERM")
        try:
            await asyncio.wait_for(inst.proc.wait(), grace)
        except TimeoutError:
            send_signal(inst, "KILL")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(inst.proc.wait(), 5.0)
    # anything left in the process group (grandchildren)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(inst.pid, signal.SIGKILL)
    inst.healthy = False


async def probe(session: aiohttp.ClientSession, inst: Instance, path: str, timeout: float) -> bool:
    try:
        async with session.get(
            inst.url + path, timeout=aiohttp.ClientTimeout(total=timeout)
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
        if inst.proc.returncode is not None:
            tail = log_tail(inst)
            return f"instance {inst.index} exited with code {inst.proc.returncode}" + (
                f"; log tail: {tail}" if tail else ""
            )
        if await probe(session, inst, path, timeout=1.0):
            inst.healthy = True
            return None
        if time.monotonic() >= deadline:
            return f"instance {inst.index} (port {inst.port}) did not answer 200 on {path} in time"
        await asyncio.sleep(0.2)
