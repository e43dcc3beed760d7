"""``codectl soak`` (typer sub-app ``soak_app``, mounted by :mod:`workers.cli.root`):
``start``, ``schedule``, ``status`` and ``report`` of 24-hour soak tests, plus
:func:`start_soak` (also used by tests) and :func:`render_soak_status`.

Wiring only: parsing, rendering and Temporal calls; the engine lives in
:mod:`loadtest`, orchestration in :mod:`workflows.soak`. A plan file is read through
:mod:`code_foundation.loader`; a bad plan exits 2 and nothing starts. Errors are
printed on stdout (as they always were for this group): 2 invalid input, 3 a server
could not be reached, 1 anything else."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer

from activities.settings import Settings
from code_foundation.loader import read_text
from workers.cli.common import client_for, console, run_async, token, ui_link
from workers.cli.output import OUTPUT_HELP, check_output, emit

soak_app = typer.Typer(
    help="24-hour soak tests: start, schedule, status, report.", no_args_is_help=True
)


def load_plan(path: str | Path) -> Any:
    """A soak plan file (its scenario path resolves against the plan's folder)."""
    from loadtest.soak_models import parse_plan

    p = Path(path)
    return parse_plan(read_text(p), str(path), p.resolve().parent)


async def start_soak(
    client: Any, plan: Any, settings: Any, *, workflow_id: str | None = None, actor: str = "cli"
) -> Any:
    """Validate the target (unknown -> SpecError, nothing started) and start the workflow."""
    from activities.soak import check_target
    from loadtest.soak_models import SoakInput
    from workflows.soak import SoakTestWorkflow

    await check_target(plan.target, settings)
    return await client.start_workflow(
        SoakTestWorkflow.run,
        SoakInput(plan=plan, actor=actor, token=token()),
        id=workflow_id or plan.workflow_id(),
        task_queue=settings.task_queue,
    )


def render_soak_status(st: Any) -> Any:
    from rich.panel import Panel
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    from code_foundation.durations import format_duration

    def dur(s: float) -> str:
        from datetime import timedelta

        return format_duration(timedelta(seconds=round(s))) or "0s"

    g = Table.grid(padding=(0, 2))
    total = st.elapsed_s + st.remaining_s
    g.add_row("phase", Text(st.phase, style="bold"))
    g.add_row("target", st.target)
    g.add_row(
        "elapsed",
        f"{dur(st.elapsed_s)} / remaining {dur(st.remaining_s)}",
        ProgressBar(total=max(total, 1e-9), completed=st.elapsed_s, width=30),
    )
    g.add_row("slices", f"{st.slices_done}/{st.slices_total} (run {st.runs})")
    g.add_row("rate", f"planned {st.planned_rate:g}/s, current {st.current_rate:,.1f}/s")
    if st.totals:
        t = st.totals
        g.add_row(
            "requests",
            f"{t.get('completed', 0):,} done, {t.get('errors', 0):,} errors, "
            f"{t.get('dropped', 0):,} dropped; p99 {t.get('p99') or 0:,.2f} ms",
        )
    if st.last_check is not None:
        for o in st.last_check.outcomes:
            g.add_row(f"check {o.name}", Text(o.detail, style="green" if o.ok else "red"))
    if st.verdict:
        g.add_row(
            "verdict",
            Text(f"{st.verdict} {st.reason}", style="green" if st.verdict == "pass" else "red"),
        )
    return Panel(g, title=f"soak {st.name} ({st.workflow_id})", border_style="blue")


@soak_app.command("start")
def soak_start(
    plan_file: str = typer.Argument(..., help="soak plan YAML"),
    workflow_id: str | None = typer.Option(None, "--id", help="default soak-<name>-<target>"),
    wait: bool = typer.Option(False, "--wait", help="follow the status until it finishes"),
) -> None:
    """Validate a soak plan and start SoakTestWorkflow (nothing starts if the plan is bad)."""
    settings = Settings()

    async def go() -> Any:
        plan = load_plan(plan_file)
        client = await client_for(settings)
        handle = await start_soak(client, plan, settings, workflow_id=workflow_id)
        console.print(
            f"started [bold]{handle.id}[/bold]: {plan.n_slices} slices of "
            f"{plan.slice_s:g}s at {plan.rate:g}/s → {plan.target.describe()}"
        )
        console.print(f"web ui: {ui_link(settings, handle.id)}")
        if wait:
            await _watch(handle)

    run_async(go(), out=console, any_error=True)


async def _watch(handle: Any) -> None:
    from rich.live import Live

    from loadtest.soak_models import SoakStatus

    with Live(console=console, refresh_per_second=2) as live:
        while True:
            try:
                st = await handle.query("status", result_type=SoakStatus)
                if st is not None:
                    live.update(render_soak_status(st))
            except Exception:  # noqa: BLE001, S110 - the workflow may be between runs
                pass
            desc = await handle.describe()
            if desc.status is not None and desc.status.name != "RUNNING":
                break
            await asyncio.sleep(2)


@soak_app.command("schedule")
def soak_schedule(
    plan_file: str = typer.Argument(...),
    cron: str = typer.Option(..., "--cron", help='e.g. "0 2 * * *" (UTC)'),
    schedule_id: str | None = typer.Option(None, "--id", help="default schedule-<workflow id>"),
) -> None:
    """Run a soak plan on a cron schedule (Temporal Schedule; overlapping runs are skipped)."""
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
    )

    from activities.soak import check_target
    from loadtest.soak_models import SoakInput
    from workflows.soak import SoakTestWorkflow

    settings = Settings()

    async def go() -> None:
        plan = load_plan(plan_file)
        await check_target(plan.target, settings, str(plan_file))
        client = await client_for(settings)
        sid = schedule_id or f"schedule-{plan.workflow_id()}"
        await client.create_schedule(
            sid,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    SoakTestWorkflow.run,
                    SoakInput(plan=plan, actor=f"schedule:{sid}"),
                    id=plan.workflow_id(),
                    task_queue=settings.task_queue,
                ),
                spec=ScheduleSpec(cron_expressions=[cron]),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            ),
        )
        console.print(f"schedule [bold]{sid}[/bold] created: `{cron}` → {plan.workflow_id()}")

    run_async(go(), out=console, any_error=True)


@soak_app.command("status")
def soak_status(
    run_id: str = typer.Argument(..., help="workflow id"),
    watch: bool = typer.Option(False, "--watch", "-w"),
    json_out: bool = typer.Option(False, "--json", help="the bare status as JSON (unversioned)"),
    output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
) -> None:
    """Elapsed/remaining, current rate, last check (Temporal query)."""
    from loadtest.soak_models import SoakStatus

    check_output(output)

    async def go() -> None:
        client = await client_for(Settings())
        handle = client.get_workflow_handle(run_id)
        if watch:
            await _watch(handle)
            return
        st = await handle.query("status", result_type=SoakStatus)
        if output == "json":
            doc = json.loads(st.model_dump_json()) if st is not None else None
            emit("code.soak.status/v1", {"run_id": run_id, "status": doc})
        elif st is None:
            console.print("no status yet")
        elif json_out:
            console.print_json(st.model_dump_json())
        else:
            console.print(render_soak_status(st))

    run_async(go(), out=console, any_error=True)


@soak_app.command("report")
def soak_report(
    run_id: str = typer.Argument(..., help="workflow id of a finished soak"),
    out: str = typer.Option(".", "--out", "-o", help="write report.{html,md,png} here"),
) -> None:
    """Fetch a finished soak's report (verdict, percentiles over time, RSS trend) from the
    artifact store and write it locally; re-render it from the result if it is missing."""
    from activities.artifacts import store_from_settings
    from loadtest.soak_models import SoakCarry, SoakReportInput, SoakResult

    settings = Settings()

    async def go() -> None:
        client = await client_for(settings)
        handle = client.get_workflow_handle(run_id, result_type=SoakResult)
        desc = await handle.describe()
        if desc.status is not None and desc.status.name == "RUNNING":
            console.print(f"{run_id} is still running; `codectl soak status {run_id}`")
            raise typer.Exit(1)
        res: SoakResult = await handle.result()
        out_dir = Path(out)
        await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
        written = []
        if res.report and res.report.html_key:
            store = store_from_settings(settings)
            for key in (res.report.html_key, res.report.markdown_key, res.report.png_key):
                data = await asyncio.to_thread(store.get, key)
                path = out_dir / key.rsplit("/", 1)[-1]
                path.write_bytes(data)
                written.append(path)
        else:  # no stored report: render it again from the result
            from loadtest.report import render_report
            from loadtest.soak_models import SoakInput, SoakPlan

            console.print("[yellow]no stored report; rendering from the workflow result[/yellow]")
            hist = handle.fetch_history()
            first = (await hist).events[0].workflow_execution_started_event_attributes
            # the client's converter: it carries the payload codec of the settings
            (inp,) = await client.data_converter.decode(first.input.payloads, [SoakInput])
            plan: SoakPlan = inp.plan
            carry = SoakCarry(
                started_at=0,
                totals=res.stats,
                slices=res.summaries,
                trend=res.trend,
                last_check=res.last_check,
                counted=[s.index for s in res.summaries],
                runs=res.runs,
            )
            files = render_report(
                SoakReportInput(
                    workflow_id=run_id,
                    plan=plan,
                    carry=carry,
                    verdict=res.verdict,
                    reason=res.reason,
                )
            )
            for name, (data, _) in files.items():
                (out_dir / name).write_bytes(data)
                written.append(out_dir / name)
        style = "green" if res.verdict == "pass" else "red"
        console.print(f"[{style}]{res.verdict.upper()}[/{style}] {res.reason}")
        for p in written:
            console.print(f"  {p}")

    run_async(go(), out=console, any_error=True)
