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
from typing import Any

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
    token,
    ui_link,
)
from workers.cli.lanes import busy_reason, lane_state, lane_workflow_id
from workers.cli.output import OUTPUT_HELP, check_output, emit
from workers.cli.progress import follow, lane_busy, render_status
from workflows.pipeline_spec import pipeline_json_schema
from workflows.spec import DeploymentSpec, spec_json_schema


def schema(
    output: Path | None = typer.Option(None, "--output", "-o"),
    kind: str = typer.Option("deployment", "--kind", help="deployment | pipeline"),
) -> None:
    """Print the JSON Schema of DeploymentSpec (or, with --kind pipeline, PipelineSpec)."""
    if kind not in ("deployment", "pipeline"):
        raise fail(f"--kind must be deployment or pipeline, not {kind!r}", 2)
    text = json.dumps(
        pipeline_json_schema() if kind == "pipeline" else spec_json_schema(), indent=2
    )
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
    if spec.concurrency == "reject":
        lane = lane_workflow_id(
            spec.service, spec.environment, settings.task_queue, spec.platform, spec.namespace
        )
        busy = busy_reason(await lane_state(client, lane))
        if busy:
            raise fail(busy, 2)
    try:
        handle = await start_deployment(client, spec, actor, settings.task_queue, token=token())
    except WorkflowAlreadyStartedError:
        raise fail(
            f"{spec.workflow_id()} is already running; "
            f"follow it with `codectl status {spec.workflow_id()} --watch`"
        ) from None
    console.print(f"started [bold]{handle.id}[/bold]  {ui_link(settings, handle.id)}")
    if not wait:
        return 0
    return await follow(client, handle.id, settings)


def status(
    workflow_id: str,
    watch: bool = typer.Option(False, help="follow until done"),
    output: str = typer.Option("text", "--output", "-o", help="text or json"),
) -> None:
    """Show the status of a deployment (while queued: who holds its release lane)."""
    if output not in ("text", "json"):
        raise fail(f"--output must be text or json, not {output!r}", 2)
    raise typer.Exit(run_async(_status(workflow_id, watch, output)))


async def _status(workflow_id: str, watch: bool, output: str = "text") -> int:
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
    if output == "json":
        emit("code.status/v1", json.loads(st.model_dump_json()))
    else:
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
    """A deployment gets the Update (a refusal is an error, exit 1; nothing changed);
    other workflows (releases) get the Signal."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError

    from code_foundation.names import W
    from workflows.deployment.control import ControlResult
    from workflows.models import ControlInput

    client = await client_for(Settings())
    handle = client.get_workflow_handle(workflow_id)
    arg = ControlInput(identity=actor, reason=reason, token=token())
    try:
        if (await handle.describe()).workflow_type == W.DEPLOYMENT:
            res = await handle.execute_update(name, arg, result_type=ControlResult)
            console.print(f"{name} {workflow_id} as {res.identity}: {res.message}")
            return 0 if res.accepted else 1
        await handle.signal(name, arg)
    except WorkflowUpdateFailedError as exc:
        raise fail(f"{workflow_id}: {exc.cause or exc}") from None
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
    concurrency: str = typer.Option(
        "queue",
        "--concurrency",
        help="when the service's release lane is held: queue (wait), supersede (abort the "
        "holder, which rolls back, then go) or reject (refuse now)",
    ),
) -> None:
    """Roll a service back to its last known good version (or --to VERSION)."""
    if concurrency not in ("queue", "supersede", "reject"):
        raise fail(f"--concurrency must be queue, supersede or reject, not {concurrency!r}", 2)
    code = run_async(_rollback(service, env, to, wait, actor or identity(), concurrency))
    raise typer.Exit(code)


async def _rollback(
    service: str, env: str, to: str | None, wait: bool, actor: str, concurrency: str = "queue"
) -> int:
    from temporalio.client import WorkflowFailureError

    from workflows.models import RollbackResult

    settings = Settings()
    client = await client_for(settings)
    if concurrency == "reject":
        lane = lane_workflow_id(service, env, settings.task_queue)
        busy = busy_reason(await lane_state(client, lane))
        if busy:
            raise fail(busy, 2)
    handle = await start_manual_rollback(client, settings, service, env, to, actor, concurrency)
    console.print(f"started [bold]{handle.id}[/bold]  {ui_link(settings, handle.id)}")
    if not wait:
        return 0
    try:
        with console.status("rolling back…"):
            res = await client.get_workflow_handle(handle.id, result_type=RollbackResult).result()
    except WorkflowFailureError as exc:
        busy = lane_busy(exc)
        raise fail(busy or f"rollback failed: {exc.cause}", 2 if busy else 1) from None
    console.print(
        f"{res.outcome}: restored {res.restored_version or '-'}, retired {res.retired_version or '-'}"
    )
    return 0 if res.outcome in ("rolled_back", "nothing_to_do") else 1


async def start_manual_rollback(
    client: Any,
    settings: Settings,
    service: str,
    env: str,
    to: str | None,
    actor: str,
    concurrency: str,
) -> Any:
    """Start RollbackWorkflow as ``workflows.client.start_rollback`` does (same id, search
    attributes and summary), with the lane policy the caller chose."""
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    from code_foundation import names
    from workflows.models import RollbackInput

    target = to or "last-known-good"
    return await client.start_workflow(
        names.W.ROLLBACK,
        RollbackInput(
            service=service,
            environment=env,
            to_version=to,
            reason="manual rollback",
            actor=actor,
            concurrency=concurrency,  # type: ignore[arg-type]  # checked by the command
            token=token(),
        ),
        id=f"rollback-{service}-{env}-to-{target}-{uuid.uuid4().hex[:6]}",
        task_queue=settings.task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(names.SA_SERVICE, service),
                SearchAttributePair(names.SA_ENVIRONMENT, env),
                SearchAttributePair(names.SA_KIND, "rollback"),
                SearchAttributePair(names.SA_OUTCOME, "running"),
            ]
        ),
        static_summary=f"rollback {service} in {env} to {target}",
    )


def history(
    service: str,
    env: str | None = typer.Option(None, "--env", "-e"),
    limit: int = 20,
    output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
) -> None:
    """Release history of a service from the ledger."""
    from activities.ledger import Ledger
    from workers.cli.release_links import releases_of

    check_output(output)
    settings = Settings()
    rows = Ledger(settings.effective_ledger_url()).history(service, env, limit=limit)
    release = releases_of(settings, (r.workflow_id for r in rows))
    if output == "json":
        releases = [
            {
                "when": r.updated_at,
                "environment": r.environment,
                "version": r.version,
                "status": r.status,
                "actor": r.actor,
                "strategy": r.strategy,
                "workflow_id": r.workflow_id,
                "release_id": release.get(r.workflow_id),
            }
            for r in rows
        ]
        emit("code.history/v1", {"service": service, "environment": env, "releases": releases})
        return
    table = Table(title=f"releases of {service}")
    for col in ("when", "env", "version", "status", "actor", "strategy", "workflow", "release"):
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
            release.get(r.workflow_id) or "",
        )
    console.print(table)
