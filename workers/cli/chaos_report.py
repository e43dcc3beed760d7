"""``codectl chaos report WORKFLOW_ID [--out DIR]``: the reports of a chaos run as
files a user can open.

The journal comes from the artifact store (``chaos/<id>/journal.json``, written by
the report activity when the run ends) or, while the run is still going (or its
report was never stored), from the workflow's ``status`` query. Written to ``DIR``
(default ``./chaos-report-<id>``): ``report.md`` (Markdown), ``report.html`` (one
self-contained page: timeline and probe results plotted as inline SVG),
``journal.json`` (CODE's journal) and ``ctk/journal.json`` (the same run in the
Chaos Toolkit journal format). ``--output json`` prints
``{"schema": "code.chaos.report/v1", "workflow_id", "source": "store"|"workflow",
"files": {name: path}}``.

Exit codes: 0 ok, 1 no such run or journal, 3 a server could not be reached."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from activities.artifacts import ArtifactNotFound, ArtifactStoreUnavailable, store_from_settings
from activities.settings import Settings
from chaos.ctk_journal import to_ctk_journal
from chaos.messages import Journal
from chaos.report import render_markdown
from chaos.report_html import render_html
from workers.cli.common import client_for, console, err, run_async
from workers.cli.output import check_output, emit

STATUS_SCHEMA = "code.chaos.status/v1"
REPORT_SCHEMA = "code.chaos.report/v1"


def journal_key(workflow_id: str) -> str:
    return f"chaos/{workflow_id}/journal.json"


async def _journal(settings: Settings, workflow_id: str) -> tuple[Journal, str]:
    import asyncio

    store = store_from_settings(settings)
    try:
        data = await asyncio.to_thread(store.get, journal_key(workflow_id))
        return Journal.model_validate_json(data), "store"
    except ArtifactNotFound:
        pass
    from workflows.chaos import ChaosExperimentWorkflow

    client = await client_for(settings)
    j = await client.get_workflow_handle(workflow_id).query(ChaosExperimentWorkflow.status)
    if j is None:
        raise ArtifactNotFound(f"chaos run {workflow_id} has not started yet: no journal")
    return j, "workflow"


def write_reports(j: Journal, out: Path) -> dict[str, Path]:
    """Write the four report files of ``j`` into ``out``; returns name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "ctk").mkdir(exist_ok=True)
    files = {
        "markdown": out / "report.md",
        "html": out / "report.html",
        "journal": out / "journal.json",
        "ctk_journal": out / "ctk" / "journal.json",
    }
    files["markdown"].write_text(render_markdown(j))
    files["html"].write_text(render_html(j))
    files["journal"].write_text(j.model_dump_json(indent=2))
    ctk = to_ctk_journal(j, platform=sys.platform)
    files["ctk_journal"].write_text(json.dumps(ctk, indent=2))
    return files


def report_cmd(
    workflow_id: str,
    out: Path | None = typer.Option(None, "--out", help="directory (default ./chaos-report-ID)"),
    output: str = typer.Option("text", "--output", "-o", help=f"text or json ({REPORT_SCHEMA})"),
) -> None:
    """Write a run's report (Markdown + self-contained HTML) and journals (CODE + CTK)."""
    check_output(output)
    dest = out or Path(f"chaos-report-{workflow_id}")

    async def go() -> int:
        try:
            j, source = await _journal(Settings(), workflow_id)
        except ArtifactNotFound as exc:
            err.print(f"[red]error:[/red] {exc}")
            return 1
        except ArtifactStoreUnavailable as exc:
            err.print(f"[red]error:[/red] {exc}")
            return 3
        files = write_reports(j, dest)
        if output == "json":
            doc: dict[str, Any] = {
                "workflow_id": workflow_id,
                "source": source,
                "files": {k: str(v) for k, v in files.items()},
            }
            emit(REPORT_SCHEMA, doc)
            return 0
        if source == "workflow":
            err.print("[yellow]no stored journal yet; rendered from the workflow's status[/]")
        for name, path in files.items():
            console.print(f"{name:<12} {path}", highlight=False)
        return 0

    raise typer.Exit(run_async(go()))
