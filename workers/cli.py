"""``codectl``: the command line of CODE. Wiring only: parse arguments, load and
validate files (refusing bad input with exit 2 before anything starts), call
Temporal through the typed client helpers, render with rich.

Exit codes: 0 success, 1 the run did not succeed (rolled back, failed),
2 invalid input, 3 a server could not be reached."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.table import Table

from activities.settings import Settings
from code_foundation.errors import CodeError, SpecError
from workers.cli_common import client_for, console, err, identity, run_async, ui_link
from workflows.spec import DeploymentSpec, parse_spec, spec_json_schema

app = typer.Typer(
    help="CODE: durable deployments, rollbacks, chaos and soak tests on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def load_spec_file(path: Path) -> DeploymentSpec:
    """Read, parse and locally validate a spec; relative workdirs resolve against the file."""
    from activities.deploy import validate_spec

    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    spec = parse_spec(text, str(path))
    if spec.artifact.command is not None:
        workdir = Path(spec.artifact.workdir or ".")
        if not workdir.is_absolute():
            workdir = (path.parent / workdir).resolve()
        spec = spec.model_copy(
            update={"artifact": spec.artifact.model_copy(update={"workdir": str(workdir)})}
        )
    problems, _ = validate_spec(spec)
    if problems:
        raise SpecError(str(path), problems)
    return spec


# ---------------------------------------------------------------------- stack
@app.command()
def dev(
    detach: bool = typer.Option(False, help="leave the stack running in the background"),
    no_worker: bool = typer.Option(False, help="do not start a worker"),
) -> None:
    """Start (or reuse) the embedded stack: Temporal dev server + Web UI, agent, worker."""
    import signal
    import time

    from workers.devstack import ensure

    settings = Settings()
    try:
        stack = ensure(settings, detach=detach, with_worker=not no_worker)
    except CodeError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(exc.exit_code) from None
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
        while not stopping:
            dead = [p for p in stack.procs if p.poll() is not None]
            if dead:
                err.print(f"[red]a component exited (pid {dead[0].pid}); stopping the stack[/red]")
                break
            time.sleep(0.5)
    finally:
        console.print("stopping…")
        stack.stop()
        console.print("stopped")


@app.command()
def down() -> None:
    """Stop a stack started with `codectl dev --detach` or `codectl demo`."""
    from workers.devstack import down as stack_down

    stopped = stack_down(Settings())
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def worker() -> None:
    """Run a CODE worker against the configured Temporal (foreground)."""
    from workers.worker import main as worker_main

    worker_main()


# ---------------------------------------------------------------------- deploy
@app.command()
def schema(output: Path | None = typer.Option(None, "--output", "-o")) -> None:
    """Print the JSON Schema of DeploymentSpec."""
    text = json.dumps(spec_json_schema(), indent=2)
    if output:
        output.write_text(text + "\n")
        console.print(f"wrote {output}")
    else:
        sys.stdout.write(text + "\n")


@app.command()
def validate(spec_file: Path) -> None:
    """Validate a spec file without deploying it."""
    try:
        spec = load_spec_file(spec_file)
    except CodeError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(exc.exit_code) from None
    console.print(
        f"[green]valid[/green]: {spec.service} {spec.version} → {spec.environment} ({spec.strategy.type})"
    )


@app.command()
def deploy(
    spec_file: Path,
    wait: bool = typer.Option(True, help="follow progress until done"),
    actor: str = typer.Option(None, help="identity recorded in the ledger"),
) -> None:
    """Start a deployment from a spec file (refused with exit 2 if invalid)."""
    try:
        spec = load_spec_file(spec_file)
    except CodeError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(exc.exit_code) from None
    code = run_async(_deploy(spec, wait, actor or identity()))
    raise typer.Exit(code)


async def _deploy(spec: DeploymentSpec, wait: bool, actor: str) -> int:
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from workflows.client import start_deployment

    settings = Settings()
    client = await client_for(settings)
    try:
        handle = await start_deployment(client, spec, actor, settings.task_queue)
    except WorkflowAlreadyStartedError:
        err.print(
            f"[red]error:[/red] {spec.workflow_id()} is already running; "
            f"follow it with `codectl status {spec.workflow_id()} --watch`"
        )
        return 1
    console.print(f"started [bold]{handle.id}[/bold]  {ui_link(settings, handle.id)}")
    if not wait:
        return 0
    return await follow(client, handle.id, settings)


async def follow(client: Any, workflow_id: str, settings: Settings) -> int:
    from temporalio.client import WorkflowFailureError

    from workers.progress import render_status
    from workflows.models import DeployResult, DeployStatus

    handle = client.get_workflow_handle(workflow_id, result_type=DeployResult)
    result_task = asyncio.ensure_future(handle.result())
    link = ui_link(settings, workflow_id)
    last: DeployStatus | None = None
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while not result_task.done():
            try:
                last = await handle.query("status", result_type=DeployStatus)
                live.update(render_status(last, link))
            except Exception:  # noqa: BLE001 - the query may race the workflow's end
                pass
            await asyncio.wait([result_task], timeout=0.5)
        try:
            res = result_task.result()
        except WorkflowFailureError as exc:
            if last is not None:
                live.update(render_status(last, link))
            err.print(f"[red]deployment failed:[/red] {exc.cause}")
            return 1
        if last is not None:
            last.outcome = res.outcome
            last.reason = res.reason
            last.steps = res.steps
            last.phase = "done"
            live.update(render_status(last, link))
    style = "green" if res.outcome == "promoted" else "yellow"
    console.print(f"[{style}]{res.outcome}[/{style}]: {res.reason}")
    return 0 if res.outcome == "promoted" else 1


@app.command()
def status(workflow_id: str, watch: bool = typer.Option(False, help="follow until done")) -> None:
    """Show the status of a deployment."""
    raise typer.Exit(run_async(_status(workflow_id, watch)))


async def _status(workflow_id: str, watch: bool) -> int:
    from workers.progress import render_status
    from workflows.models import DeployStatus

    settings = Settings()
    client = await client_for(settings)
    if watch:
        return await follow(client, workflow_id, settings)
    handle = client.get_workflow_handle(workflow_id)
    try:
        st = await handle.query("status", result_type=DeployStatus)
    except Exception as exc:  # noqa: BLE001
        err.print(f"[red]error:[/red] cannot query {workflow_id}: {exc}")
        return 1
    console.print(render_status(st, ui_link(settings, workflow_id)))
    return 0


def _signal_cmd(name: str, doc: str) -> Callable[..., None]:
    def cmd(
        workflow_id: str,
        reason: str = typer.Option("", help="why"),
        actor: str = typer.Option(None, help="your identity"),
    ) -> None:
        raise typer.Exit(run_async(_signal(workflow_id, name, reason, actor or identity())))

    cmd.__doc__ = doc
    return cmd


async def _signal(workflow_id: str, name: str, reason: str, actor: str) -> int:
    from temporalio.service import RPCError

    from workflows.models import ControlInput

    client = await client_for(Settings())
    try:
        await client.get_workflow_handle(workflow_id).signal(
            name, ControlInput(identity=actor, reason=reason)
        )
    except RPCError as exc:
        err.print(f"[red]error:[/red] {workflow_id}: {exc}")
        return 1
    console.print(f"{name} sent to {workflow_id} as {actor}")
    return 0


app.command("pause")(_signal_cmd("pause", "Hold a deployment at its next step."))
app.command("resume")(_signal_cmd("resume", "Resume a paused deployment."))
app.command("abort")(
    _signal_cmd("abort", "Abort a deployment; it rolls back to the last known good.")
)


@app.command()
def approve(
    workflow_id: str,
    comment: str = "",
    override: bool = typer.Option(False, "--override", help="override a spent error budget"),
    actor: str = typer.Option(None),
) -> None:
    """Approve a deployment waiting at an approval gate (rejections are audited)."""
    raise typer.Exit(run_async(_approve(workflow_id, comment, actor or identity(), override)))


async def _approve(workflow_id: str, comment: str, actor: str, override: bool) -> int:
    from temporalio.service import RPCError

    from workers.cli_ops import approve as send_approval

    settings = Settings()
    client = await client_for(settings)
    try:
        ok, msg = await send_approval(
            client, settings, workflow_id, actor, comment, override=override
        )
    except RPCError as exc:
        err.print(f"[red]error:[/red] {workflow_id}: {exc}")
        return 1
    if not ok:
        err.print(f"[red]approval rejected:[/red] {msg}")
        return 1
    console.print(f"[green]approved[/green] {workflow_id} as {actor}" + (f": {msg}" if msg else ""))
    return 0


@app.command()
def rollback(
    service: str,
    env: str = typer.Option(..., "--env", "-e"),
    to: str | None = typer.Option(None, "--to", help="version (default: last known good)"),
    wait: bool = True,
    actor: str = typer.Option(None),
) -> None:
    """Roll a service back to its last known good version (or --to VERSION)."""
    raise typer.Exit(run_async(_rollback(service, env, to, wait, actor or identity())))


async def _rollback(service: str, env: str, to: str | None, wait: bool, actor: str) -> int:
    from workflows.client import start_rollback
    from workflows.models import RollbackResult

    settings = Settings()
    client = await client_for(settings)
    handle = await start_rollback(
        client, service, env, to, actor, settings.task_queue, request_id=uuid.uuid4().hex[:6]
    )
    console.print(f"started [bold]{handle.id}[/bold]  {ui_link(settings, handle.id)}")
    if not wait:
        return 0
    with console.status("rolling back…"):
        res = await client.get_workflow_handle(handle.id, result_type=RollbackResult).result()
    console.print(
        f"{res.outcome}: restored {res.restored_version or '-'}, retired {res.retired_version or '-'}"
    )
    return 0 if res.outcome in ("rolled_back", "nothing_to_do") else 1


@app.command()
def history(
    service: str, env: str | None = typer.Option(None, "--env", "-e"), limit: int = 20
) -> None:
    """Release history of a service from the ledger."""
    from activities.ledger import Ledger

    settings = Settings()
    rows = Ledger(settings.effective_ledger_url()).history(service, env, limit=limit)
    table = Table(title=f"releases of {service}")
    for col in ("when", "env", "version", "status", "actor", "strategy", "workflow"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r.updated_at)[:19],
            r.environment,
            r.version,
            r.status,
            r.actor,
            r.strategy,
            r.workflow_id,
        )
    console.print(table)


@app.command()
def demo(state_dir: Path | None = typer.Option(None, help="defaults to CODE_STATE_DIR")) -> None:
    """Start the stack if needed, then: deploy v1, canary a good v2, canary a bad v3 (rolled back)."""
    from workers.demo import run_demo

    if state_dir is not None:
        os.environ["CODE_STATE_DIR"] = str(state_dir)
    raise typer.Exit(run_async(run_demo(Settings(), console)))


def _mount() -> None:
    """Mount the feature sub-apps (each lives in its own module)."""
    from workers.cli_analysis import analyse, rejudge
    from workers.cli_audit import audit_app, config_app
    from workers.cli_chaos import chaos_app
    from workers.cli_ops import codec_app, codec_server, slo_app
    from workers.cli_soak import load, soak_app

    for sub, name in (
        (audit_app, "audit"),
        (config_app, "config"),
        (chaos_app, "chaos"),
        (soak_app, "soak"),
        (slo_app, "slo"),
        (codec_app, "codec"),
    ):
        app.add_typer(sub, name=name)
    app.command("load")(load)
    app.command("rejudge")(rejudge)
    app.command("analyse")(analyse)
    app.command("codec-server")(codec_server)


_mount()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
