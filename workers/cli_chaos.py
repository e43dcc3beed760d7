"""``codectl chaos``: run, schedule and control chaos experiments (typer sub-app
``chaos_app``; mounted on ``codectl`` by :mod:`workers.cli`).

    codectl chaos run EXP [--dry-run] [--wait] [--seed N]
    codectl chaos schedule EXP --cron "0 3 * * *" [--pause-on-failure] [--overlap skip]
    codectl chaos list | pause ID | unpause ID | trigger ID | delete ID
    codectl chaos status WORKFLOW_ID | cancel WORKFLOW_ID | abort WORKFLOW_ID [--reason]

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

import json
import os
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from activities.settings import Settings
from chaos.blast import Target, merge_protected, select_targets
from chaos.catalogue import CATALOGUE
from chaos.messages import AbortRequest, ChaosRunInput
from chaos.model import Experiment, Protected, load_experiment
from code_foundation.errors import CodeError, ServerUnavailable
from workers.cli_common import client_for as _client
from workers.cli_common import identity as _identity
from workers.cli_common import run_async as _run

chaos_app = typer.Typer(
    help="Chaos experiments as durable workflows whose rollbacks always run.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "experiment"


def load(path: Path) -> Experiment:
    """Load + validate (protected lists from the experiment and the environment)."""
    return load_experiment(path)


def protected_for(exp: Experiment) -> dict[str, list[str]]:
    return merge_protected(exp.protected, os.environ)


# ------------------------------------------------------------------ library API (tested)
async def plan(
    exp: Experiment, settings: Settings, seed: int | None = None
) -> dict[str, list[Target]]:
    """The exact targets of every action, as the workflow will choose them."""
    from activities.faults.local import LocalFaults

    seed = exp.seed if seed is None else seed
    out: dict[str, list[Target]] = {}
    for action in exp.actions():
        sel, unit = action.target, CATALOGUE[action.fault].unit
        cands: list[Target] = []
        if unit == "instance":
            if sel.platform == "kubernetes":
                from activities.faults.kubernetes import KubernetesFaults

                cands = await KubernetesFaults(settings.kube_context).candidates(
                    sel.service, sel.environment
                )
            else:
                try:
                    cands = await LocalFaults(settings.agent_url, settings.state_dir).candidates(
                        sel.service, sel.environment
                    )
                except CodeError as exc:
                    raise ServerUnavailable(str(exc)) from None
        out[action.name] = select_targets(unit, sel, cands, seed, action.name)
    return out


def run_input(
    exp: Experiment, actor: str, seed: int | None = None, search_attributes: bool = True
) -> ChaosRunInput:
    return ChaosRunInput(
        experiment=exp,
        actor=actor,
        seed=seed,
        protected=protected_for(exp),
        set_search_attributes=search_attributes,
    )


async def start_run(
    client: Any,
    exp: Experiment,
    task_queue: str,
    actor: str,
    seed: int | None = None,
    workflow_id: str | None = None,
) -> Any:
    from workflows.chaos import ChaosExperimentWorkflow

    wid = workflow_id or f"chaos-{_slug(exp.title)}-{uuid.uuid4().hex[:8]}"
    return await client.start_workflow(
        ChaosExperimentWorkflow.run,
        run_input(exp, actor, seed),
        id=wid,
        task_queue=task_queue,
        static_summary=f"chaos: {exp.title}",
        static_details=exp.description or None,
    )


async def create_schedule(
    client: Any,
    exp: Experiment,
    task_queue: str,
    actor: str,
    *,
    cron: str | None = None,
    every: timedelta | None = None,
    pause_on_failure: bool = False,
    overlap: str = "skip",
    schedule_id: str | None = None,
    search_attributes: bool = True,
) -> str:
    """Create a Temporal Schedule that runs the experiment (overlap SKIP by default)."""
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleIntervalSpec,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
        ScheduleState,
    )

    from workflows.chaos import ChaosExperimentWorkflow

    if not cron and not every:
        raise CodeError("a schedule needs --cron")
    policies = {
        "skip": ScheduleOverlapPolicy.SKIP,
        "buffer_one": ScheduleOverlapPolicy.BUFFER_ONE,
        "buffer_all": ScheduleOverlapPolicy.BUFFER_ALL,
        "cancel_other": ScheduleOverlapPolicy.CANCEL_OTHER,
        "allow_all": ScheduleOverlapPolicy.ALLOW_ALL,
    }
    if overlap not in policies:
        raise CodeError(f"--overlap must be one of {', '.join(policies)}")
    sid = schedule_id or f"chaos-{_slug(exp.title)}"
    spec = ScheduleSpec(
        cron_expressions=[cron] if cron else [],
        intervals=[ScheduleIntervalSpec(every=every)] if every else [],
    )
    await client.create_schedule(
        sid,
        Schedule(
            action=ScheduleActionStartWorkflow(
                ChaosExperimentWorkflow.run,
                run_input(exp, actor, search_attributes=search_attributes),
                id=f"{sid}-run",
                task_queue=task_queue,
                static_summary=f"chaos (scheduled): {exp.title}",
            ),
            spec=spec,
            policy=SchedulePolicy(overlap=policies[overlap], pause_on_failure=pause_on_failure),
            state=ScheduleState(note=f"created by {actor} from {exp.source or 'an experiment'}"),
        ),
    )
    return sid


# ------------------------------------------------------------------ commands
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
        client = await _client(settings)
        handle = await start_run(client, exp, settings.task_queue, _identity(), seed, workflow_id)
        console.print(f"started [bold]{handle.id}[/bold]")
        console.print(
            f"  {settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows/{handle.id}"
        )
        if not wait:
            return 0
        from temporalio.client import WorkflowFailureError

        try:
            res = await handle.result()
        except WorkflowFailureError as exc:
            err.print(f"[red]experiment failed:[/red] {exc.cause}")
            return 1
        console.print(f"status [bold]{res.status}[/bold], deviated: {res.deviated}; {res.reason}")
        console.print(f"report: {res.report_md_key}")
        return 0 if res.status == "completed" and not res.deviated else 1

    code = _run(go())
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
        client = await _client(settings)
        sid = await create_schedule(
            client,
            exp,
            settings.task_queue,
            _identity(),
            cron=cron,
            pause_on_failure=pause_on_failure,
            overlap=overlap,
            schedule_id=schedule_id,
        )
        console.print(f"schedule [bold]{sid}[/bold] created ({cron}, overlap {overlap})")

    _run(go())


@chaos_app.command("list")
def list_cmd() -> None:
    """List chaos schedules."""

    async def go() -> None:
        client = await _client(Settings())
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

    _run(go())


def _schedule_op(op: str) -> Any:
    def cmd(
        schedule_id: str,
        note: str = typer.Option("", "--note"),
    ) -> None:
        async def go() -> None:
            client = await _client(Settings())
            h = client.get_schedule_handle(schedule_id)
            if op == "pause":
                await h.pause(note=note or f"paused by {_identity()}")
            elif op == "unpause":
                await h.unpause(note=note or f"unpaused by {_identity()}")
            elif op == "trigger":
                await h.trigger()
            else:
                await h.delete()
            console.print(f"{op}: {schedule_id}")

        _run(go())

    cmd.__doc__ = f"{op.capitalize()} a chaos schedule."
    return cmd


for _op in ("pause", "unpause", "trigger", "delete"):
    chaos_app.command(_op)(_schedule_op(_op))


@chaos_app.command("status")
def status_cmd(workflow_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show an experiment's journal (live while it runs)."""

    async def go() -> None:
        from workflows.chaos import ChaosExperimentWorkflow

        client = await _client(Settings())
        j = await client.get_workflow_handle(workflow_id).query(ChaosExperimentWorkflow.status)
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
        if j.report_md_key:
            console.print(f"report: {j.report_md_key}")

    _run(go())


@chaos_app.command("cancel")
def cancel_cmd(workflow_id: str) -> None:
    """Cancel an experiment: its rollbacks run, status becomes interrupted.

    (Use this instead of terminate: terminate runs no code and would skip the rollbacks.)"""

    async def go() -> None:
        client = await _client(Settings())
        await client.get_workflow_handle(workflow_id).cancel()
        console.print(f"cancellation requested for {workflow_id}; rollbacks will run")

    _run(go())


@chaos_app.command("abort")
def abort_cmd(workflow_id: str, reason: str = typer.Option("manual abort", "--reason")) -> None:
    """Abort an experiment with your identity: rollbacks run, status becomes aborted."""

    async def go() -> None:
        from workflows.chaos import ChaosExperimentWorkflow

        client = await _client(Settings())
        msg = await client.get_workflow_handle(workflow_id).execute_update(
            ChaosExperimentWorkflow.abort, AbortRequest(identity=_identity(), reason=reason)
        )
        console.print(msg)

    _run(go())


@chaos_app.command("terminate", hidden=True)
def terminate_cmd(workflow_id: str) -> None:
    """Refused: terminate would skip the rollbacks; use cancel or abort."""
    err.print(
        "[red]refused:[/red] terminating a workflow runs no code, so the experiment's rollbacks "
        f"would not run and faults could stay in place.\n  use `codectl chaos cancel {workflow_id}` "
        f"(rollbacks run) or `codectl chaos abort {workflow_id}` (rollbacks run, records who aborted)"
    )
    raise typer.Exit(2)


def experiment_json(path: Path) -> str:
    """The validated experiment as JSON (debug helper)."""
    return json.dumps(load(path).model_dump(mode="json"), indent=2)


__all__ = ["chaos_app", "create_schedule", "plan", "start_run", "Protected"]
