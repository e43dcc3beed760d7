"""Several named clusters on the embedded default: ``codectl dev --clusters eu-1,us-1``
runs one local platform agent per cluster, each with its own state dir
(``<state>/clusters/<name>/agent``), its own loopback port (kept in
``<state>/clusters.json`` so a second ``codectl dev`` reuses it) and therefore its own
routers and instances. The default agent (``CODE_AGENT_URL``) stays the ``local``
cluster. Started agents join the stack, so the supervisor restarts them like the rest.
Platform activities find a cluster's agent with ``activities.platform.clusters``."""

from __future__ import annotations

import re
import socket
import sys

from activities.platform.clusters import DEFAULT, read_clusters, write_clusters
from code_foundation.errors import ConfigError
from workers.devstack import Component, Spec, Stack, _agent_up, _spawn, _wait, settings_env

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
        out[name] = url
    write_clusters(state, {**known, **out})
    return out
