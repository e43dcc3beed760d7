"""``codectl chaos``: run, schedule and control chaos experiments (typer sub-app
``chaos_app``; mounted on ``codectl`` by :mod:`workers.cli.root`; planning, starting
and scheduling live in :mod:`workers.cli.chaos_runs`).

    codectl chaos run EXP [--dry-run] [--wait] [--seed N]
    codectl chaos schedule EXP --cron "0 3 * * *" [--pause-on-failure] [--overlap skip]
    codectl chaos list | pause ID | unpause ID | trigger ID | delete ID
    codectl chaos status WORKFLOW_ID [--output json] | cancel WORKFLOW_ID | abort WORKFLOW_ID
    codectl chaos report WORKFLOW_ID [--out DIR]

The experiment file is loaded and validated first (native or Chaos Toolkit
format); a bad file exits 2 with every problem named and nothing is started
or injected. ``--dry-run`` asks the platform for the candidates and prints the
exact targets the run would hit with that seed, injecting nothing.
Schedules are Temporal Schedules (overlap ``skip`` by default: a run never
starts while the previous one is still running).

There is deliberately no ``terminate``: terminating a workflow runs no code,
so the rollbacks would not run and faults could stay in place. ``cancel``
(rollbacks run, status ``interrupted``) and ``abort`` (rollbacks run, status
``aborted``, with your identity) are the ways to stop an experiment.

Exit codes: 0 ok, 1 the experiment did not complete (aborted/failed/deviated
with --wait), 2 invalid input, 3 a server could not be reached."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from activities.settings import Settings
from chaos.blast import Target
from chaos.messages import AbortRequest
from chaos.model import Experiment
from workers.cli.artifacts import get_command
from workers.cli.chaos_report import STATUS_SCHEMA, report_cmd
from workers.cli.chaos_runs import create_schedule, load, plan, protected_for, start_run
from workers.cli.common import client_for, console, err, identity, run_async, ui_link
from workers.cli.output import OUTPUT_HELP, check_output, emit

chaos_app = typer.Typer(
    help="Chaos experiments as durable workflows whose rollbacks always run.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_plan(exp: Experiment, targets: dict[str, list[Target]], seed: int) -> None:
    table = Table(title=f"dry run: {exp.title} (seed {seed}); nothing is injected")
    table.add_column("action")
    table.add_column("fault")
    table.add_column("mode")
    table.add_column("targets")
    for action in exp.actions():
        ts = targets.get(action.name, [])
        table.add_row(
            action.name,
            action.fault,
            action.target.mode,
            "\n".join(t.id for t in ts) or "[red]no target matches[/red]",
        )
    console.print(table)
    prot = protected_for(exp)
    console.print(
        f"protected services: {', '.join(prot['services']) or '-'}; "
        f"protected environments: {', '.join(prot['environments']) or '-'}"
    )


@chaos_app.command("run")
def run_cmd(
    experiment: Annotated[Path, typer.Argument(help="experiment file (native or Chaos Toolkit)")],
    dry_run: bool = typer.Option(
        False, "--dry-run", help="print the exact targets; inject nothing"
    ),
    wait: bool = typer.Option(False, "--wait", help="wait for the result"),
    seed: int | None = typer.Option(
        None, "--seed", help="blast-radius seed (default: the experiment's)"
    ),
    workflow_id: str | None = typer.Option(None, "--id"),
) -> None:
    """Run an experiment now (or --dry-run it)."""

    async def go() -> int:
        settings = Settings()
        exp = load(experiment)
        if dry_run:
            use = exp.seed if seed is None else seed
            targets = await plan(exp, settings, use)
            _print_plan(exp, targets, use)
            empty = [a for a, ts in targets.items() if not ts]
            if empty:
                err.print(
                    f"[red]no target matches[/red] {', '.join(empty)}: a run would fail (NoTargets)"
                )
                return 1
            return 0
        client = await client_for(settings)
        handle = await start_run(client, exp, settings.task_queue, identity(), seed, workflow_id)
        console.print(f"started [bold]{handle.id}[/bold]")
        console.print(f"  {ui_link(settings, handle.id)}")
        if not wait:
            return 0
        from temporalio.client import WorkflowFailureError

        try:
            res = await handle.result()
        except WorkflowFailureError as exc:
            err.print(f"[red]experiment failed:[/red] {exc.cause}")
            return 1
        console.print(f"status [bold]{res.status}[/bold], deviated: {res.deviated}; {res.reason}")
        _print_report_hint(res.workflow_id, res.report_md_key)
        return 0 if res.status == "completed" and not res.deviated else 1

    code = run_async(go())
    raise typer.Exit(code)


@chaos_app.command("schedule")
def schedule_cmd(
    experiment: Annotated[Path, typer.Argument(help="experiment file (native or Chaos Toolkit)")],
    cron: str = typer.Option(..., "--cron", help='cron expression, e.g. "0 3 * * 1-5"'),
    pause_on_failure: bool = typer.Option(False, "--pause-on-failure"),
    overlap: str = typer.Option(
        "skip", "--overlap", help="skip | buffer_one | buffer_all | cancel_other | allow_all"
    ),
    schedule_id: str | None = typer.Option(None, "--id"),
) -> None:
    """Create a Temporal Schedule for an experiment."""

    async def go() -> None:
        settings = Settings()
        exp = load(experiment)
        client = await client_for(settings)
        sid = await create_schedule(
            client,
            exp,
            settings.task_queue,
            identity(),
            cron=cron,
            pause_on_failure=pause_on_failure,
            overlap=overlap,
            schedule_id=schedule_id,
        )
        console.print(f"schedule [bold]{sid}[/bold] created ({cron}, overlap {overlap})")

    run_async(go())


@chaos_app.command("list")
def list_cmd() -> None:
    """List chaos schedules."""

    async def go() -> None:
        client = await client_for(Settings())
        table = Table(title="chaos schedules")
        for col in ("id", "paused", "next run", "recent runs"):
            table.add_column(col)
        async for s in await client.list_schedules():
            if not s.id.startswith("chaos-"):
                continue
            info, state = s.info, s.schedule.state if s.schedule else None
            nxt = info.next_action_times[0].isoformat() if info and info.next_action_times else "-"
            recent = len(info.recent_actions) if info else 0
            table.add_row(s.id, str(state.paused if state else "?"), nxt, str(recent))
        console.print(table)

    run_async(go())


def _schedule_op(op: str) -> Any:
    def cmd(
        schedule_id: str,
        note: str = typer.Option("", "--note"),
    ) -> None:
        async def go() -> None:
            client = await client_for(Settings())
            h = client.get_schedule_handle(schedule_id)
            if op == "pause":
                await h.pause(note=note or f"paused by {identity()}")
            elif op == "unpause":
                await h.unpause(note=note or f"unpaused by {identity()}")
            elif op == "trigger":
                await h.trigger()
            else:
                await h.delete()
            console.print(f"{op}: {schedule_id}")

        run_async(go())

    cmd.__doc__ = f"{op.capitalize()} a chaos schedule."
    return cmd


for _op in ("pause", "unpause", "trigger", "delete"):
    chaos_app.command(_op)(_schedule_op(_op))


def _print_report_hint(workflow_id: str, key: str | None) -> None:
    if key:
        console.print(f"report: {key}", highlight=False)
        console.print(f"  fetch it: codectl chaos report {workflow_id} --out DIR", highlight=False)
        console.print(f"  or: {get_command(key)}", highlight=False)


@chaos_app.command("status")
def status_cmd(
    workflow_id: str,
    as_json: bool = typer.Option(False, "--json", help="the bare journal as JSON (unversioned)"),
    output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
) -> None:
    """Show an experiment's journal (live while it runs)."""
    check_output(output)

    async def go() -> None:
        from workflows.chaos import ChaosExperimentWorkflow

        client = await client_for(Settings())
        j = await client.get_workflow_handle(workflow_id).query(ChaosExperimentWorkflow.status)
        if output == "json":
            doc = j.model_dump(mode="json") if j is not None else None
            emit(STATUS_SCHEMA, {"workflow_id": workflow_id, "journal": doc})
            return
        if j is None:
            console.print("not started yet")
            return
        if as_json:
            console.print_json(j.model_dump_json())
            return
        console.print(
            f"[bold]{j.title}[/bold]  status {j.status}  phase {j.phase}  deviated {j.deviated}"
        )
        if j.reason:
            console.print(f"reason: {j.reason}")
        for f in j.faults:
            state = (
                "reverted"
                if f.reverted_at
                else ("FAILED: " + f.revert_error if f.revert_error else "in place")
            )
            console.print(f"  fault {f.fault} on {f.target.id}: {state}")
        for p in j.probes[-10:]:
            console.print(
                f"  {p.started_at:%H:%M:%S} {p.phase:<7} {p.name}: {'ok' if p.ok else 'NOT OK'} {p.detail}"
            )
        _print_report_hint(workflow_id, j.report_md_key)

    run_async(go())


chaos_app.command("report")(report_cmd)


@chaos_app.command("cancel")
def cancel_cmd(workflow_id: str) -> None:
    """Cancel an experiment: its rollbacks run, status becomes interrupted.

    (Use this instead of terminate: terminate runs no code and would skip the rollbacks.)"""

    async def go() -> None:
        client = await client_for(Settings())
        await client.get_workflow_handle(workflow_id).cancel()
        console.print(f"cancellation requested for {workflow_id}; rollbacks will run")

    run_async(go())


@chaos_app.command("abort")
def abort_cmd(workflow_id: str, reason: str = typer.Option("manual abort", "--reason")) -> None:
    """Abort an experiment with your identity: rollbacks run, status becomes aborted."""

    async def go() -> None:
        from workflows.chaos import ChaosExperimentWorkflow

        client = await client_for(Settings())
        msg = await client.get_workflow_handle(workflow_id).execute_update(
            ChaosExperimentWorkflow.abort, AbortRequest(identity=identity(), reason=reason)
        )
        console.print(msg)

    run_async(go())


@chaos_app.command("terminate", hidden=True)
def terminate_cmd(workflow_id: str) -> None:
    """Refused: terminate would skip the rollbacks; use cancel or abort."""
    err.print(
        "[red]refused:[/red] terminating a workflow runs no code, so the experiment's rollbacks "
        f"would not run and faults could stay in place.\n  use `codectl chaos cancel {workflow_id}` "
        f"(rollbacks run) or `codectl chaos abort {workflow_id}` (rollbacks run, records who aborted)"
    )
    raise typer.Exit(2)
