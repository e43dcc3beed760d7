"""Several named clusters on the embedded default: ``codectl dev --clusters eu-1,us-1``
runs one local platform agent per cluster, each with its own state dir
(``<state>/clusters/<name>/agent``), its own loopback port (kept in
``<state>/clusters.json`` so a second ``codectl dev`` reuses it) and therefore its own
routers and instances. The default agent (``CODE_AGENT_URL``) stays the ``local``
cluster. Started agents join the stack, so the supervisor restarts them like the rest.
Platform activities find a cluster's agent with ``activities.platform.clusters``.

Detached (``codectl dev --clusters eu-1,us-1 --detach``) the supervisor process starts
the cluster agents itself (``CODE_DEV_CLUSTERS``, see :func:`start_stack`), so they are
its children: supervised, listed by ``codectl dev status`` (``clusters``), recorded in
``stack.json`` as ``agent-<name>`` and stopped by ``codectl down`` (:func:`stop_clusters`).
A running detached stack without the named clusters is refused with the command that
gives it them (nothing is started half-supervised)."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
from collections.abc import Iterator
from typing import Any

from activities.platform.clusters import DEFAULT, read_clusters, write_clusters
from activities.settings import Settings
from code_foundation.errors import ConfigError
from workers.devstack import (
    Component,
    Spec,
    Stack,
    _agent_up,
    _load_record,
    _pid_alive,
    _spawn,
    _terminate,
    _wait,
    ensure,
    settings_env,
    update_record,
)

ENV = "CODE_DEV_CLUSTERS"  # the clusters a detached supervisor starts (or config)

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def parse_clusters(text: str | None) -> list[str]:
    """``eu-1,us-1`` → names (``local`` is always there; not repeated)."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    bad = [n for n in names if not _NAME.match(n) or len(n) > 30]
    if bad:
        raise ConfigError(f"--clusters: not a cluster name: {', '.join(bad)} (a-z, 0-9, -)")
    out: list[str] = []
    for n in names:
        if n != DEFAULT and n not in out:
            out.append(n)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_clusters(stack: Stack, names: list[str]) -> dict[str, str]:
    """Start (or reuse) one agent per named cluster; record them; name → agent URL."""
    settings = stack.settings
    state = settings.state_dir
    known = read_clusters(state)
    env = settings_env(settings)
    out: dict[str, str] = {}
    for name in names:
        url = known.get(name)
        if url and _agent_up(url):
            stack.components.append(Component(f"agent-{name}", url, "reused"))
            out[name] = url
            continue
        port = int(url.rsplit(":", 1)[1]) if url else _free_port()
        url = f"http://127.0.0.1:{port}"
        log = state / "logs" / f"agent-{name}.log"
        argv = [
            sys.executable,
            "-m",
            "workers.agent",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--state-dir",
            str(state / "clusters" / name / "agent"),
        ]
        proc = _spawn(argv, log, env)
        _wait(lambda u=url: _agent_up(u), f"agent of cluster {name}", proc, log)  # type: ignore[misc]
        stack.procs.append(proc)
        stack.specs[f"agent-{name}"] = Spec(argv, log, env, lambda u=url: _agent_up(u))  # type: ignore[misc]
        stack.components.append(Component(f"agent-{name}", url, "started", proc.pid, log))
        update_record(settings, **{f"agent-{name}": proc.pid})
        out[name] = url
    write_clusters(state, {**known, **out})
    return out


@contextlib.contextmanager
def _env(key: str, value: str) -> Iterator[None]:
    old = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def start_stack(settings: Settings, names: list[str], detach: bool, with_worker: bool) -> Stack:
    """``codectl dev [--clusters ...] [--detach]``: the stack with one agent per cluster.
    Detached, the supervisor starts them (it reads ``CODE_DEV_CLUSTERS``)."""
    if not detach:
        stack = ensure(settings, detach=False, with_worker=with_worker)
        try:
            ensure_clusters(stack, names)
        except BaseException:
            stack.stop()
            raise
        return stack
    with _env(ENV, ",".join(names)):
        stack = ensure(settings, detach=True, with_worker=with_worker)
    have = {c.name for c in stack.components}
    missing = [n for n in names if f"agent-{n}" not in have]
    if missing:
        raise ConfigError(
            f"--clusters: the running detached stack has no cluster {', '.join(missing)}; "
            f"run `codectl down` and then `codectl dev --clusters {','.join(names)} --detach`"
        )
    return stack


def ensure_supervised(
    settings: Settings, with_worker: bool, ui_port: int | None, clusters: str
) -> Stack:
    """What the detached supervisor starts: the stack, then the cluster agents (all its
    children); a failure stops what was started."""
    names = parse_clusters(clusters)
    stack = ensure(settings, detach=False, with_worker=with_worker, ui_port=ui_port)
    if not names:
        return stack
    try:
        ensure_clusters(stack, names)
    except BaseException:
        stack.stop()
        raise
    return stack


def cluster_status(settings: Settings, doc: dict[str, Any]) -> dict[str, Any]:
    """Each named cluster's agent for ``codectl dev status``: url, pid, alive, restarts."""
    comps = doc.get("components") or {}
    try:
        known = read_clusters(settings.state_dir)
    except ConfigError:
        known = {}
    out: dict[str, Any] = {}
    for name, url in sorted(known.items()):
        c = comps.get(f"agent-{name}") or {}
        out[name] = {
            "url": url,
            "pid": c.get("pid"),
            "alive": _agent_up(url),
            "supervised": bool(c.get("supervised")),
            "state": c.get("state"),
            "restarts": c.get("restarts", 0),
        }
    return out


def stop_clusters(settings: Settings) -> list[str]:
    """``codectl down``: stop every cluster agent still recorded (the supervisor has
    already stopped its own); a clean stop tears each agent's data plane down too."""
    stopped = []
    for key, pid in sorted(_load_record(settings).items()):
        if key.startswith("agent-"):
            if _pid_alive(pid):
                _terminate(pid)
                stopped.append(key)
            update_record(settings, **{key: None})
    return stopped
