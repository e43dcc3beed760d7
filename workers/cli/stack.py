"""The stack commands of ``codectl``: ``dev`` (start or reuse the embedded stack:
Temporal dev server + Web UI, agent, worker; loopback only; supervised, see
:mod:`workers.supervisor`), ``dev status`` (components, restarts, last exits),
``down`` (stop a detached stack) and ``worker`` (a worker in the foreground). Plain functions, registered on the
root app by :mod:`workers.cli.root`; the processes themselves live in
:mod:`workers.devstack` and :mod:`workers.worker`."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from activities.settings import Settings
from code_foundation.errors import CodeError
from workers.cli.common import console, fail
from workers.cli.output import DEV_STATUS_SCHEMA, emit


def dev(
    action: str = typer.Argument("up", help="up: start or reuse the stack; status: its state"),
    detach: bool = typer.Option(False, help="leave the stack running in the background"),
    no_worker: bool = typer.Option(False, help="do not start a worker"),
    output: str = typer.Option("text", "--output", "-o", help="status: text or json"),
    clusters: str = typer.Option(
        "", "--clusters", help="named clusters, one local agent each: eu-1,us-1,eu-canary"
    ),
) -> None:
    """Start (or reuse) the embedded stack: Temporal dev server + Web UI, agent, worker,
    supervised (a crashed agent or worker restarts by itself); `dev status` shows restarts."""
    import signal

    from workers.clusters import cluster_status, parse_clusters, start_stack
    from workers.supervisor import Supervisor, render_status, status

    settings = Settings()
    if action == "status":
        doc = status(settings)
        doc["clusters"] = cluster_status(settings, doc)
        if output == "json":
            emit(DEV_STATUS_SCHEMA, doc)
        else:
            console.print(render_status(doc))
        return
    if action != "up":
        raise typer.BadParameter(f"unknown action {action!r}; use up or status")
    try:
        names = parse_clusters(clusters)
        stack = start_stack(settings, names, detach, with_worker=not no_worker)
    except CodeError as exc:
        raise fail(exc) from None
    table = Table(title="CODE dev stack (loopback only)")
    for col in ("component", "address", "state", "pid"):
        table.add_column(col)
    for c in stack.components:
        table.add_row(c.name, c.url, c.state, str(c.pid or ""))
    console.print(table)
    console.print(f"Web UI: {settings.temporal_ui_url}   state: {settings.state_dir}")
    if detach or not stack.procs:
        if not stack.procs and not detach:
            console.print("everything was already running; nothing to supervise")
        return
    console.print("Ctrl-C stops what this command started.")
    stopping = False

    def _stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        Supervisor(stack, out=lambda m: console.print(m, markup=False, highlight=False)).run(
            lambda: stopping
        )
    finally:
        console.print("stopping…")
        stack.stop()
        console.print("stopped")


def down() -> None:
    """Stop a stack started with `codectl dev --detach` or `codectl demo`."""
    from workers.clusters import stop_clusters
    from workers.devstack import down as stack_down

    settings = Settings()
    stopped = stack_down(settings)
    stopped += stop_clusters(settings)
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


def worker() -> None:
    """Run a CODE worker against the configured Temporal (foreground)."""
    from workers.worker import main as worker_main

    worker_main()
