"""``codectl demo``: the two-minute tour. Starts the embedded stack if none is
running (detached, so the Web UI stays up afterwards), deploys demo v1, canaries
a good v2 to promotion and a bad v3 that analysis catches and rolls back, while
a client sends live traffic through the router and counts what it sees. Ends
with a summary table and the Web UI links of the three runs.

:func:`demo` is the command (registered on the root app by :mod:`workers.cli.root`);
:func:`run_demo` the tour itself, following each run with the progress view of
:mod:`workers.cli.progress`."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from activities.settings import Settings
from code_foundation.errors import ServerUnavailable
from workers.cli.common import client_for, console, load_spec_file, run_async, ui_link
from workers.cli.progress import follow

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"


def demo(state_dir: Path | None = typer.Option(None, help="defaults to CODE_STATE_DIR")) -> None:
    """Start the stack if needed, then: deploy v1, canary a good v2, canary a bad v3 (rolled back)."""
    if state_dir is not None:
        os.environ["CODE_STATE_DIR"] = str(state_dir)
    raise typer.Exit(run_async(run_demo(Settings(), console)))


@dataclass
class Traffic:
    """A bounded client loop against the router (loopback only)."""

    url: str
    rate: float = 40.0
    sent: int = 0
    failed: int = 0
    by_version: dict[str, int] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, max_seconds: float = 900.0) -> None:
        deadline = time.monotonic() + max_seconds
        import httpx

        async with httpx.AsyncClient(timeout=5.0) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                tick = time.monotonic()
                try:
                    r = await client.get(self.url + "/work")
                    v = r.headers.get("x-code-version", "?")
                    self.by_version[v] = self.by_version.get(v, 0) + 1
                    if r.status_code >= 500:
                        self.failed += 1
                except httpx.HTTPError:
                    self.failed += 1
                self.sent += 1
                await asyncio.sleep(max(0.0, 1.0 / self.rate - (time.monotonic() - tick)))

    def stop(self) -> None:
        self._stop.set()


async def router_endpoint(settings: Settings, service: str, env: str) -> str:
    import httpx

    async with httpx.AsyncClient(timeout=5.0) as c:
        r = await c.get(f"{settings.agent_url}/v1/services/{service}/{env}")
        r.raise_for_status()
        return str(r.json()["endpoint"]).rstrip("/")


async def run_demo(settings: Settings, console: Console) -> int:
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from workers.devstack import ensure
    from workflows.client import start_deployment

    console.rule("[bold]CODE demo")
    stack = await asyncio.to_thread(ensure, settings, True)
    for c in stack.components:
        console.print(f"  {c.name:9} {c.state:8} {c.url}")
    client = await client_for(settings)
    runs: list[dict[str, Any]] = []
    traffic: Traffic | None = None
    traffic_task: asyncio.Task[None] | None = None
    try:
        for name, title in (
            ("demo-v1.yaml", "v1: first release"),
            ("demo-v2.yaml", "v2: good canary"),
            ("demo-v3-bad.yaml", "v3: bad canary (30% errors)"),
        ):
            spec = load_spec_file(EXAMPLES / name)
            console.rule(title)
            started = time.monotonic()
            try:
                handle = await start_deployment(client, spec, "demo", settings.task_queue)
            except WorkflowAlreadyStartedError:
                console.print(f"{spec.workflow_id()} is already running; following it")
                handle = client.get_workflow_handle(spec.workflow_id())
            code = await follow(client, handle.id, settings)
            desc = await handle.describe()
            runs.append(
                {
                    "title": title,
                    "id": handle.id,
                    "version": spec.version,
                    "code": code,
                    "seconds": time.monotonic() - started,
                    "link": ui_link(settings, handle.id),
                    "status": desc.status.name if desc.status else "?",
                }
            )
            if traffic is None:
                endpoint = await router_endpoint(settings, spec.service, spec.environment)
                traffic = Traffic(endpoint)
                traffic_task = asyncio.create_task(traffic.run())
                console.print(f"sending live traffic to {endpoint} at {traffic.rate:.0f} req/s")
    except ServerUnavailable:
        raise
    finally:
        if traffic is not None and traffic_task is not None:
            traffic.stop()
            await traffic_task
    from workflows.models import DeployResult

    results = []
    for run in runs:
        res = await client.get_workflow_handle(run["id"], result_type=DeployResult).result()
        results.append(res)
    table = Table(title="CODE demo summary")
    for col in ("run", "version", "outcome", "seconds", "workflow id"):
        table.add_column(col)
    for run, res in zip(runs, results, strict=True):
        outcome = res.outcome if hasattr(res, "outcome") else str(res.get("outcome"))
        style = "green" if outcome == "promoted" else "yellow"
        table.add_row(
            run["title"],
            run["version"],
            f"[{style}]{outcome}[/{style}]",
            f"{run['seconds']:.0f}",
            run["id"],
        )
    console.print(table)
    console.print("Web UI links:")
    for run in runs:
        console.print(f"  {run['link']}", soft_wrap=True)
    if traffic is not None:
        seen = ", ".join(f"{v}: {n}" for v, n in sorted(traffic.by_version.items()))
        console.print(
            f"client traffic during v2/v3: {traffic.sent} requests, {traffic.failed} failed "
            f"(v3's injected errors while it held canary weight); served by {seen}"
        )
    console.print(f'Web UI: {settings.temporal_ui_url}  (filter: CodeService="demo")')
    console.print("The stack keeps running for the Web UI; stop it with `codectl down`.")
    outcomes = [getattr(r, "outcome", None) for r in results]
    ok = outcomes == ["promoted", "promoted", "rolled_back"] or (
        outcomes[1:] == ["promoted", "rolled_back"]
    )
    return 0 if ok else 1
