"""The deployment commands of ``codectl``: ``schema``, ``validate``, ``deploy``,
``status``, ``pause`` / ``resume`` / ``abort`` (signals), ``approve``, ``rollback`` and
``history``. Plain functions, registered on the root app by :mod:`workers.cli.root`.

A spec is read through :func:`~workers.cli.common.load_spec_file` and refused with
exit 2 before anything starts. Exit codes: 0 success (deploy: promoted), 1 the run did
not succeed, 2 invalid input, 3 Temporal could not be reached."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import typer
from rich.table import Table

from activities.settings import Settings
from code_foundation.errors import CodeError
from workers.cli.approvals import approve as send_approval
from workers.cli.common import (
    client_for,
    console,
    err,
    fail,
    identity,
    load_spec_file,
    run_async,
    ui_link,
)
from workers.cli.progress import follow, render_status
from workflows.spec import DeploymentSpec, spec_json_schema


def schema(output: Path | None = typer.Option(None, "--output", "-o")) -> None:
    """Print the JSON Schema of DeploymentSpec."""
    text = json.dumps(spec_json_schema(), indent=2)
    if output:
        output.write_text(text + "\n")
        console.print(f"wrote {output}")
    else:
        sys.stdout.write(text + "\n")


def validate(spec_file: Path) -> None:
    """Validate a spec file without deploying it."""
    try:
        spec = load_spec_file(spec_file)
    except CodeError as exc:
        raise fail(exc) from None
    console.print(
        f"[green]valid[/green]: {spec.service} {spec.version} → {spec.environment} ({spec.strategy.type})"
    )


def deploy(
    spec_file: Path,
    wait: bool = typer.Option(True, help="follow progress until done"),
    actor: str = typer.Option(None, help="identity recorded in the ledger"),
) -> None:
    """Start a deployment from a spec file (refused with exit 2 if invalid)."""
    try:
        spec = load_spec_file(spec_file)
    except CodeError as exc:
        raise fail(exc) from None
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
        raise fail(
            f"{spec.workflow_id()} is already running; "
            f"follow it with `codectl status {spec.workflow_id()} --watch`"
        ) from None
    console.print(f"started [bold]{handle.id}[/bold]  {ui_link(settings, handle.id)}")
    if not wait:
        return 0
    return await follow(client, handle.id, settings)


def status(workflow_id: str, watch: bool = typer.Option(False, help="follow until done")) -> None:
    """Show the status of a deployment."""
    raise typer.Exit(run_async(_status(workflow_id, watch)))


async def _status(workflow_id: str, watch: bool) -> int:
    from workflows.models import DeployStatus

    settings = Settings()
    client = await client_for(settings)
    if watch:
        return await follow(client, workflow_id, settings)
    handle = client.get_workflow_handle(workflow_id)
    try:
        st = await handle.query("status", result_type=DeployStatus)
    except Exception as exc:  # noqa: BLE001 - any failure to query is reported the same way
        raise fail(f"cannot query {workflow_id}: {exc}") from None
    console.print(render_status(st, ui_link(settings, workflow_id)))
    return 0


def signal_command(name: str, doc: str) -> Callable[..., None]:
    """A command that sends the ``name`` signal (pause, resume, abort) with your identity."""

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
        raise fail(f"{workflow_id}: {exc}") from None
    console.print(f"{name} sent to {workflow_id} as {actor}")
    return 0


pause = signal_command("pause", "Hold a deployment at its next step.")
resume = signal_command("resume", "Resume a paused deployment.")
abort = signal_command("abort", "Abort a deployment; it rolls back to the last known good.")


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

    settings = Settings()
    client = await client_for(settings)
    try:
        ok, msg = await send_approval(
            client, settings, workflow_id, actor, comment, override=override
        )
    except RPCError as exc:
        raise fail(f"{workflow_id}: {exc}") from None
    if not ok:
        err.print(f"[red]approval rejected:[/red] {msg}")
        return 1
    console.print(f"[green]approved[/green] {workflow_id} as {actor}" + (f": {msg}" if msg else ""))
    return 0


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
