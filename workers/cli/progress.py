"""The progress view of a deployment: :func:`render_status` (a rich panel of one
``DeployStatus``) and :func:`follow`, the live view of ``codectl deploy --wait``,
``codectl status --watch`` and ``codectl demo`` until the workflow ends."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from activities.settings import Settings
from workers.cli.common import console, err, ui_link

if TYPE_CHECKING:
    from workflows.models import DeployStatus

_STYLE = {"ok": "green", "running": "yellow", "failed": "red", "interrupted": "red"}


def weights_bar(weights: dict[str, int], width: int = 40) -> Text:
    text = Text()
    colors = ["cyan", "magenta", "green", "yellow"]
    for i, (_version, weight) in enumerate(sorted(weights.items())):
        n = round(width * weight / 100)
        text.append("█" * n, style=colors[i % len(colors)])
    text.append("  ")
    text.append("  ".join(f"{v} {w}%" for v, w in sorted(weights.items())))
    return text


def lane_busy(exc: BaseException) -> str:
    """The reason of a run refused its release lane (a ``LaneBusy`` failure), else ""."""
    from temporalio.exceptions import ApplicationError

    from code_foundation.error_types import LANE_BUSY

    cause = getattr(exc, "cause", None)
    if isinstance(cause, ApplicationError) and cause.type == LANE_BUSY:
        return f"{cause.message}; nothing applied"
    return ""


def queued_line(st: DeployStatus) -> str:
    """ "queued behind <id> (position N)" while the run waits for its lane, else ""."""
    if st.phase != "queued":
        return ""
    if st.reason.startswith("queued behind"):
        return st.reason
    if st.queued_behind:
        return f"queued behind {st.queued_behind}"
    return st.reason or f"waiting for lane {st.lane}"


def render_status(st: DeployStatus, ui_link: str | None = None) -> Panel:
    head = Table.grid(padding=(0, 2))
    head.add_row("workflow", st.workflow_id)
    head.add_row("phase", Text(st.phase, style="bold"))
    queued = queued_line(st)
    if queued:
        head.add_row("lane", Text(queued, style="yellow"))
    elif st.lane:
        head.add_row("lane", st.lane)
    head.add_row("stable", st.stable_version or "-")
    head.add_row("traffic", weights_bar(st.weights) if st.weights else Text("-"))
    if st.paused:
        head.add_row("paused", Text("yes — `codectl resume` to continue", style="yellow"))
    if st.waiting_for_approval:
        head.add_row(
            "approval", Text(f"waiting — `codectl approve {st.workflow_id}`", style="yellow")
        )
    if st.last_analysis is not None:
        a = st.last_analysis
        style = {"pass": "green", "fail": "red"}.get(a.verdict, "yellow")
        head.add_row("analysis", Text(f"{a.verdict}: " + "; ".join(a.reasons), style=style))
        if a.artifact_key:
            head.add_row("provenance", f"{a.artifact_key}  (codectl rejudge {st.workflow_id})")
    if st.last_analysis_error:
        errors = f" ({st.analysis_errors} in a row)" if st.analysis_errors else ""
        head.add_row("metrics error", Text(st.last_analysis_error + errors, style="red"))
    if st.reason and st.reason != queued:
        head.add_row("note", st.reason)
    if ui_link:
        head.add_row("web ui", ui_link)
    steps = Table(box=None, show_header=True, header_style="bold")
    steps.add_column("#", justify="right")
    steps.add_column("step")
    steps.add_column("outcome")
    steps.add_column("detail", overflow="fold")
    for rec in st.steps:
        style = _STYLE.get(rec.outcome.split(" ")[0], "white")
        idx = "" if rec.index < 0 else str(rec.index + 1)
        steps.add_row(idx, rec.description, Text(rec.outcome, style=style), rec.detail[:120])
    title = f"{st.service} {st.version} → {st.environment} ({st.strategy})"
    outcome_style = {
        "promoted": "green",
        "rolled_back": "yellow",
        "aborted": "yellow",
        "failed": "red",
    }
    sub = Text(st.outcome, style=outcome_style.get(st.outcome, "cyan"))
    return Panel(Group(head, steps), title=title, subtitle=sub, border_style="blue")


async def follow(client: Any, workflow_id: str, settings: Settings) -> int:
    """Show a deployment live until it ends; 0 if it was promoted, 2 if it was refused its
    release lane (``LaneBusy``), else 1. While queued the view says who it waits behind."""
    from temporalio.client import WorkflowFailureError

    from workflows.client import deployment_result
    from workflows.models import DeployResult, DeployStatus

    handle = client.get_workflow_handle(workflow_id, result_type=DeployResult)
    # a rolled-back/failed/aborted run ends FAILED carrying its result: shown like a promoted one
    result_task = asyncio.ensure_future(deployment_result(handle))
    link = ui_link(settings, workflow_id)
    last: DeployStatus | None = None
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while not result_task.done():
            try:
                last = await handle.query("status", result_type=DeployStatus)
                live.update(render_status(last, link))
            except Exception:  # noqa: BLE001, S110 - the query may race the workflow's end
                pass
            await asyncio.wait([result_task], timeout=0.5)
        try:
            res = result_task.result()
        except WorkflowFailureError as exc:
            if last is not None:
                live.update(render_status(last, link))
            busy = lane_busy(exc)
            if busy:  # concurrency reject lost a race for the lane: bad timing, exit 2
                err.print(f"[red]error:[/red] {busy}", soft_wrap=True)
                return 2
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
