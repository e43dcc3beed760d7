"""``codectl release``: start a release pipeline, follow it, read its status.

``codectl release PIPELINE.yaml --version V [--wait]`` checks the pipeline against the
stack's clusters (a bad one exits 2 with every problem named and starts nothing),
starts ``ReleaseWorkflow`` (id ``release-<service>-<version>``, ``CodeKind=release``)
and, with ``--wait``, shows the live stage × target matrix (rich) until it ends: exit 0
released, 1 not. ``codectl release status ID [--output json]`` (schema
``code.release/v1``: the ``ReleaseStatus`` fields). ``approve``, ``pause``, ``resume``
and ``abort`` take a release id like a deployment id (same Update and Signals)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from activities.platform.clusters import known_clusters, kube_contexts
from activities.settings import Settings
from code_foundation.errors import CodeError
from code_foundation.names import SA_KIND, SA_OUTCOME, SA_SERVICE, SA_VERSION, W
from workers.cli.common import client_for, console, fail, identity, run_async, token, ui_link
from workers.cli.output import check_output, emit
from workflows.pipeline_spec import PipelineSpec, check_pipeline, load_pipeline
from workflows.release_client import release_result
from workflows.release_models import ReleaseInput, ReleaseResult, ReleaseStatus, release_id

RELEASE_SCHEMA = "code.release/v1"
_COLOURS = {
    "promoted": "green",
    "running": "yellow",
    "failed": "red",
    "rolled_back": "red",
    "aborted": "red",
    "restored": "magenta",
    "skipped": "dim",
    "pending": "dim",
}


def release(
    what: str = typer.Argument(..., help="PIPELINE.yaml to start a release, or `status`"),
    ident: str | None = typer.Argument(None, help="status: the release id"),
    version: str | None = typer.Option(None, "--version", help="the version to release"),
    wait: bool = typer.Option(False, "--wait", help="follow the live matrix until it ends"),
    output: str = typer.Option("text", "--output", "-o", help="status: text or json"),
) -> None:
    """Promote one version through a release pipeline (stages, waves, gates)."""
    if what == "status":
        if not ident:
            raise fail("codectl release status ID: give the release id", 2)
        raise typer.Exit(run_async(_status(ident, check_output(output))))
    if not version:
        raise fail("--version is required to start a release", 2)
    settings = Settings()
    try:
        now, clusters = datetime.now(UTC), known_clusters(settings)
        pipeline = load_pipeline(what, clusters=clusters, now=now)
        if any(t.platform == "kubernetes" for s in pipeline.stages for t in s.targets):
            # the kubeconfig is read only when a target needs it (a broken one never
            # blocks a local-only release)
            check_pipeline(pipeline, what, clusters, now=now, kube_contexts=kube_contexts())
        pipeline = _resolve(pipeline, Path(what))
    except CodeError as exc:
        raise fail(exc) from None
    raise typer.Exit(run_async(_start(settings, pipeline, version, wait)))


def _resolve(p: PipelineSpec, path: Path) -> PipelineSpec:
    """A relative artifact.workdir resolves against the pipeline file's folder."""
    art = p.deployment.artifact
    workdir = Path(art.workdir or ".")
    if not workdir.is_absolute():
        workdir = (path.parent / workdir).resolve()
    art = art.model_copy(update={"workdir": str(workdir)})
    return p.model_copy(update={"deployment": p.deployment.model_copy(update={"artifact": art})})


async def _start(settings: Settings, p: PipelineSpec, version: str, wait: bool) -> int:
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    client = await client_for(settings)
    rid = release_id(p.service, version)
    attrs = TypedSearchAttributes(
        [
            SearchAttributePair(SA_KIND, "release"),
            SearchAttributePair(SA_SERVICE, p.service),
            SearchAttributePair(SA_VERSION, version),
            SearchAttributePair(SA_OUTCOME, "running"),
        ]
    )
    handle = await client.start_workflow(
        W.RELEASE,
        ReleaseInput(pipeline=p, version=version, actor=identity(), token=token()),
        id=rid,
        task_queue=settings.task_queue,
        search_attributes=attrs,
        static_summary=f"release {p.service} {version}",
    )
    console.print(f"started [bold]{rid}[/bold]  {ui_link(settings, rid)}")
    if not wait:
        return 0
    return await _follow(handle)


async def _follow(handle: Any) -> int:
    result_task = asyncio.ensure_future(release_result(handle, result_type=ReleaseResult))
    with Live(console=console, refresh_per_second=4) as live:
        while not result_task.done():
            with contextlib.suppress(Exception):  # between tasks: the next poll shows it
                live.update(render(await handle.query("status", result_type=ReleaseStatus)))
            await asyncio.wait({result_task}, timeout=1.0)
        st = await handle.query("status", result_type=ReleaseStatus)
        live.update(render(st))
    res: ReleaseResult = result_task.result()
    colour = "green" if res.outcome == "promoted" else "red"
    console.print(f"[{colour}]{res.outcome}[/{colour}]: {res.reason}")
    return 0 if res.outcome == "promoted" else 1


def render(st: ReleaseStatus) -> Group:
    """The stage × target matrix and the current gate."""
    table = Table(title=f"{st.release_id}  ({st.failure_policy})")
    for col in ("stage", "wave", "target", "cluster", "phase", "weights", "detail"):
        table.add_column(col)
    for c in st.cells:
        colour = _COLOURS.get(c.phase, "white")
        table.add_row(
            c.stage,
            str(c.wave + 1),
            c.target,
            f"{c.environment}/{c.cluster}",
            Text(c.phase, style=colour),
            " ".join(f"{v}:{w}" for v, w in c.weights.items()),
            c.reason[:60],
        )
    where = f"stage {st.stage}" + (f", wave {st.wave + 1}" if st.wave is not None else "")
    head = f"{st.outcome} · {st.phase}" + (f" · {where}" if st.stage else "")
    lines: list[RenderableType] = [Text(head), table]
    if st.gate:
        lines.append(Text(f"gate: {st.gate}", style="cyan"))
    if st.reason:
        lines.append(Text(st.reason, style="dim"))
    return Group(*lines)


async def _status(rid: str, output: str) -> int:
    client = await client_for(Settings())
    try:
        st = await client.get_workflow_handle(rid).query("status", result_type=ReleaseStatus)
    except Exception as exc:  # noqa: BLE001 - any failure to query is reported the same way
        raise fail(f"cannot query {rid}: {exc}") from None
    if output == "json":
        emit(RELEASE_SCHEMA, json.loads(st.model_dump_json()))
    else:
        console.print(render(st))
    return 0
