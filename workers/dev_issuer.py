"""The dev stack's local OIDC issuer (``oidc-provider-mock`` on loopback): started by
``codectl dev`` only in identity dev mode (``CODE_IDENTITY_DEV=true``; the settings then
default the issuer to ``http://127.0.0.1:8290``, the audience to ``codectl`` and the policy
to ``<state>/identity/policy.yaml``, written from ``deploy/examples/policies/default.yaml``
when missing). A running issuer on that port is reused. The worker the stack starts
inherits the same settings, so it enforces identity; ``codectl login --as NAME`` mints
tokens from this issuer."""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from code_foundation import targets
from code_foundation.errors import ServerUnavailable

EXAMPLE_POLICY = Path(__file__).resolve().parents[1] / "deploy/examples/policies/default.yaml"
TOKEN_MAX_AGE = 3600  # seconds a dev token lives


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def ensure(stack: Any, logs: Path, record: dict[str, int], kit: Any) -> None:
    """Start (or reuse) the dev issuer as one more component of ``stack``; ``kit`` is the
    dev stack's module (its ``Component``, ``Spec``, ``_spawn``, ``_wait``)."""
    devstack = kit
    settings = stack.settings
    if not settings.identity_dev or not settings.identity_issuer:
        return
    problem = targets.loopback_problem(settings.identity_issuer)
    if problem:
        raise ServerUnavailable(f"the dev issuer must be on loopback: {problem}")
    policy = settings.identity_policy
    if policy is not None and not Path(policy).exists() and EXAMPLE_POLICY.exists():
        Path(policy).parent.mkdir(parents=True, exist_ok=True)
        Path(policy).write_text(EXAMPLE_POLICY.read_text())
    url = urlparse(settings.identity_issuer)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    if _port_open(host, port):
        stack.components.append(devstack.Component("oidc", settings.identity_issuer, "reused"))
        return
    exe = shutil.which("oidc-provider-mock") or str(
        Path(sys.executable).parent / "oidc-provider-mock"
    )
    argv = [exe, "-H", host, "-p", str(port), "-e", str(TOKEN_MAX_AGE)]
    log = logs / "oidc.log"
    proc = devstack._spawn(argv, log)
    devstack._wait(lambda: _port_open(host, port), "dev OIDC issuer", proc, log)
    stack.procs.append(proc)
    stack.specs["oidc"] = devstack.Spec(argv, log, {}, lambda: _port_open(host, port))
    record["oidc"] = proc.pid
    stack.components.append(
        devstack.Component("oidc", settings.identity_issuer, "started", proc.pid, log)
    )
