"""Supervision of the embedded dev stack: the stack heals without a user.

- :class:`Supervisor` watches the processes a :class:`~workers.devstack.Stack`
  started (Temporal dev server, agent, worker, cluster agents; never what it reused). One that
  exits without being asked is started again with the same argv, env and log
  after a bounded exponential backoff (1 s, doubling, at most 30 s; back to 1 s
  once it has run 60 s), and every exit and restart is logged (stdout and
  ``logs/supervisor.log``). A restarted agent re-adopts the running data plane
  (:mod:`workers.agent.reconcile`). New pids go to ``stack.json``.
- Its state is ``supervisor.json`` (atomic): per component pid, state
  (``starting`` / ``running`` / ``backoff``), restarts, last exit and backoff.
  :func:`status` merges it with liveness for ``codectl dev status``.
- ``python -m workers.supervisor --detached`` is the supervisor of
  ``codectl dev --detach``: it runs ``ensure`` itself (so the components are its
  children), reports ready in ``supervisor.json`` and supervises until
  SIGTERM/SIGINT, then stops the stack (``codectl down``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from activities.settings import Settings
from code_foundation.errors import CodeError
from workers.devstack import (
    Spec,
    Stack,
    _pid_alive,
    _spawn,
    load_status,
    status_path,
    update_record,
)


@dataclass
class Watched:
    name: str
    spec: Spec
    proc: subprocess.Popen[bytes]
    url: str = ""
    state: str = "running"  # starting | running | backoff
    restarts: int = 0
    backoff: float = 1.0
    spawned: float = field(default_factory=time.monotonic)
    next_start: float = 0.0
    last_exit: dict[str, Any] | None = None


def _describe_exit(rc: int) -> dict[str, Any]:
    if rc < 0:
        try:
            sig = signal.Signals(-rc).name
        except ValueError:
            sig = str(-rc)
        return {"code": None, "signal": sig, "at": time.time()}
    return {"code": rc, "signal": None, "at": time.time()}


class Supervisor:
    def __init__(
        self,
        stack: Stack,
        *,
        mode: str = "attached",
        min_backoff: float = 1.0,
        max_backoff: float = 30.0,
        stable_after: float = 60.0,
        start_timeout: float = 90.0,
        out: Callable[[str], None] = print,
    ) -> None:
        self.stack, self.mode = stack, mode
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.stable_after, self.start_timeout = stable_after, start_timeout
        self._out = out
        self.started_at = time.time()
        self.error: str | None = None
        urls = {c.name: c.url for c in stack.components}
        procs = {p.pid: p for p in stack.procs}
        self.watched: dict[str, Watched] = {}
        for c in stack.components:
            spec = stack.specs.get(c.name)
            if spec is not None and c.pid in procs:
                w = Watched(c.name, spec, procs[c.pid], urls.get(c.name, ""))
                w.backoff = min_backoff
                self.watched[c.name] = w
        self._log = stack.settings.state_dir / "logs" / "supervisor.log"

    def log(self, msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} supervisor: {msg}"
        self._out(line)
        try:
            self._log.parent.mkdir(parents=True, exist_ok=True)
            with open(self._log, "a") as f:
                f.write(line + "\n")
        except OSError as exc:
            self._out(f"supervisor: cannot write {self._log}: {exc.strerror}")

    # ------------------------------------------------------------ the loop
    def step(self) -> bool:
        """One look at every component; True when something changed."""
        now = time.monotonic()
        changed = False
        for w in self.watched.values():
            if w.state in ("starting", "running"):
                rc = w.proc.poll()
                if rc is not None:
                    w.last_exit = _describe_exit(rc)
                    w.state, w.next_start = "backoff", now + w.backoff
                    how = w.last_exit["signal"] or f"code {rc}"
                    self.log(
                        f"{w.name} (pid {w.proc.pid}) exited ({how}); restart "
                        f"#{w.restarts + 1} in {w.backoff:g}s"
                    )
                    w.backoff = min(w.backoff * 2, self.max_backoff)
                    changed = True
                elif w.state == "starting" and w.spec.ready():
                    w.state = "running"
                    self.log(f"{w.name} is up again (pid {w.proc.pid})")
                    changed = True
                elif w.state == "starting" and now - w.spawned > self.start_timeout:
                    self.log(f"{w.name} (pid {w.proc.pid}) did not come up; killing it")
                    w.proc.kill()
                elif (
                    w.state == "running"
                    and w.backoff > self.min_backoff
                    and now - w.spawned > self.stable_after
                ):
                    w.backoff = self.min_backoff
            elif w.state == "backoff" and now >= w.next_start:
                old = w.proc
                w.proc = _spawn(w.spec.argv, w.spec.log, w.spec.env)
                w.restarts += 1
                w.spawned, w.state = now, "starting"
                self.stack.procs = [w.proc if p is old else p for p in self.stack.procs]
                update_record(self.stack.settings, **{w.name: w.proc.pid})
                self.log(f"{w.name} restarted (pid {w.proc.pid}, restart #{w.restarts})")
                changed = True
        return changed

    def run(self, should_stop: Callable[[], bool], interval: float = 0.25) -> None:
        self.write_status()
        while not should_stop():
            if self.step():
                self.write_status()
            time.sleep(interval)

    # ------------------------------------------------------------ status file
    def status_doc(self) -> dict[str, Any]:
        comps: dict[str, Any] = {}
        for c in self.stack.components:
            w = self.watched.get(c.name)
            comps[c.name] = {
                "url": c.url,
                "origin": c.state,
                "supervised": w is not None,
                "pid": w.proc.pid if w else c.pid,
                "state": w.state if w else c.state,
                "restarts": w.restarts if w else 0,
                "last_exit": w.last_exit if w else None,
                "backoff_s": w.backoff if w else None,
                "log": str(c.log) if c.log else None,
            }
        return {
            "pid": os.getpid(),
            "mode": self.mode,
            "started_at": self.started_at,
            "updated_at": time.time(),
            "ready": self.error is None,
            "error": self.error,
            "components": comps,
        }

    def write_status(self) -> None:
        path = status_path(self.stack.settings)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self.status_doc(), indent=1))
            os.replace(tmp, path)
        except OSError as exc:
            self.log(f"cannot write {path}: {exc.strerror}")


def status(settings: Settings) -> dict[str, Any]:
    """What ``codectl dev status`` shows: the supervisor's view plus liveness now."""
    doc = load_status(settings)
    sup_pid = doc.get("pid")
    out: dict[str, Any] = {
        "supervisor": {
            "pid": sup_pid,
            "mode": doc.get("mode"),
            "alive": _pid_alive(sup_pid),
            "started_at": doc.get("started_at"),
        },
        "components": {},
    }
    for name, c in (doc.get("components") or {}).items():
        out["components"][name] = {**c, "alive": _pid_alive(c.get("pid"))}
    try:
        rec = httpx.get(f"{settings.agent_url}/v1/reconcile", timeout=1.0).json()
        out["agent_last_start"] = {
            "routers_adopted": len(rec["routers"]["adopted"]),
            "routers_restarted": len(rec["routers"]["restarted"]),
            "instances_adopted": len(rec["instances"]["adopted"]),
            "instances_restarted": len(rec["instances"]["restarted"]),
            "needs_reapply": len(rec["instances"]["needs_reapply"]),
            "orphans_stopped": len(rec["orphans_stopped"]),
        }
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        out["agent_last_start"] = None
    return out


def render_status(doc: dict[str, Any]) -> Any:
    """``codectl dev status`` as a rich table."""
    from rich.table import Table

    sup = doc["supervisor"]
    who = f"pid {sup['pid']}, {sup['mode']}" if sup.get("pid") else "none recorded"
    title = f"CODE dev stack — supervisor {who} ({'alive' if sup['alive'] else 'not running'})"
    table = Table(title=title)
    for col in ("component", "pid", "alive", "state", "restarts", "last exit", "address"):
        table.add_column(col)
    for name, c in doc["components"].items():
        last = c.get("last_exit") or {}
        exit_text = (last.get("signal") or f"code {last.get('code')}") if last else ""
        if last:
            exit_text += time.strftime(" at %H:%M:%S", time.localtime(last["at"]))
        state = c["state"] if c.get("supervised") else f"{c['state']} (not supervised)"
        alive = "yes" if c["alive"] else "no"
        table.add_row(
            name, str(c.get("pid") or ""), alive, state, str(c["restarts"]), exit_text, c["url"]
        )
    return table


# ---------------------------------------------------------------------- detached
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workers.supervisor")
    p.add_argument("--detached", action="store_true", help="run as codectl dev --detach")
    p.add_argument("--no-worker", action="store_true")
    p.add_argument("--ui-port", type=int, default=None)
    p.add_argument("--clusters", default=os.environ.get("CODE_DEV_CLUSTERS", ""))
    args = p.parse_args(argv)
    from workers.clusters import ensure_supervised

    settings = Settings()
    stopping = False

    def _stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    update_record(settings, supervisor=os.getpid())
    try:
        stack = ensure_supervised(settings, not args.no_worker, args.ui_port, args.clusters)
    except CodeError as exc:
        sup = Supervisor(Stack(settings), mode="detached")
        sup.error = str(exc)
        sup.write_status()
        update_record(settings, supervisor=None)
        return exc.exit_code
    sup = Supervisor(stack, mode="detached" if args.detached else "attached")
    try:
        if sup.watched:
            sup.run(lambda: stopping)
        else:
            sup.write_status()
            sup.log("everything was already running; nothing to supervise")
    finally:
        if stack.procs:
            sup.log("stopping the stack")
        stack.stop()
        update_record(settings, supervisor=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
