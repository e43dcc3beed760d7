"""``codectl demo release``: a good and a bad version of the demo service through the
release pipeline ``deploy/examples/pipelines/demo.yaml`` (dev → staging → prod:
``eu-canary``, then ``eu-1`` + ``us-1``).

Starts (or reuses) the detached stack with the clusters the pipeline names (one local
agent each, :func:`workers.clusters.start_stack`); a running detached stack without
them is refused with the exact command that gives it them, exit 2, nothing started.
While the releases run, a client sends live traffic to every router the release has
created on staging and prod (the canary analysis judges it). The good version
(``DEMO_ERROR_RATE=0``) is promoted everywhere; the bad one (50% errors) fails canary
analysis before ``eu-1``/``us-1`` (they keep serving the good version) and the failure
policy restores every target it changed. Each outcome is printed as the release's
stage × target matrix; exit 0 when both ended that way.

:func:`demo` replaces the plain tour command on the root app: ``codectl demo`` is still
the tour (:mod:`workers.cli.demo`), ``codectl demo release`` this one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console

from activities.platform.clusters import agent_url, known_clusters
from activities.settings import Settings
from code_foundation.errors import CodeError
from workers.cli import demo as tour
from workers.cli.common import client_for, console, fail, identity, run_async, ui_link
from workers.cli.release import _resolve, render
from workflows.pipeline_spec import PipelineSpec, load_pipeline
from workflows.release_models import ReleaseInput, ReleaseStatus, release_id

PIPELINE = tour.EXAMPLES / "pipelines" / "demo.yaml"
CLUSTERS = ["eu-canary", "eu-1", "us-1"]
TARGETS = [("local", "staging"), *[(c, "prod") for c in CLUSTERS]]
UNTOUCHED = ("eu-1", "us-1")  # the bad version must never reach them


def demo(
    step: str | None = typer.Argument(None, help="`release`: the release pipeline demo only"),
    state_dir: Path | None = typer.Option(None, help="defaults to CODE_STATE_DIR"),
) -> None:
    """The tour: deploy v1, canary a good v2 and a bad v3 (rolled back), kill a stable
    instance (chaos), soak for 45 s; starts the stack if needed. `codectl demo release`:
    a good and a bad version through deploy/examples/pipelines/demo.yaml on the clusters
    eu-canary, eu-1, us-1."""
    if step is None:
        tour.demo(state_dir)
        return
    if step != "release":
        raise fail(f"codectl demo: unknown step {step!r}; use `codectl demo release`", 2)
    if state_dir is not None:
        os.environ["CODE_STATE_DIR"] = str(state_dir)
    raise typer.Exit(run_async(run_release_demo(Settings(), console)))


def pipeline_for(settings: Settings, error_rate: str) -> PipelineSpec:
    """demo.yaml, checked against the stack's clusters, with the version's error rate."""
    p = _resolve(
        load_pipeline(PIPELINE, clusters=known_clusters(settings), now=datetime.now(UTC)),
        PIPELINE,
    )
    doc: dict[str, Any] = p.model_dump(mode="json", exclude_none=True)
    doc["deployment"]["artifact"].setdefault("env", {})["DEMO_ERROR_RATE"] = error_rate
    return PipelineSpec.model_validate(doc)


async def _get(c: httpx.AsyncClient, url: str) -> Any:
    with contextlib.suppress(httpx.HTTPError, ValueError):
        r = await c.get(url)
        return r.json() if r.status_code == 200 else None
    return None


async def traffic(
    settings: Settings, service: str, stop: asyncio.Event, seen: dict[str, int]
) -> None:
    """Live requests to each staging/prod router of ``service`` once it exists."""
    agents = [(agent_url(settings, c), env) for c, env in TARGETS]
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as c:
        while not stop.is_set():
            tick = time.monotonic()
            for agent, env in agents:
                st = await _get(c, f"{agent}/v1/services/{service}/{env}")
                if not st or not st.get("endpoint"):
                    continue
                for _ in range(4):
                    with contextlib.suppress(httpx.HTTPError):
                        r = await c.get(str(st["endpoint"]).rstrip("/") + "/work")
                        v = r.headers.get("x-code-version", "?")
                        seen[v] = seen.get(v, 0) + 1
            await asyncio.sleep(max(0.0, 0.25 - (time.monotonic() - tick)))


async def run_one(
    client: Any, settings: Settings, p: PipelineSpec, version: str, out: Console
) -> ReleaseStatus:
    """Start the release, wait for its end, print its final matrix; its final status."""
    from temporalio.client import WorkflowFailureError
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    from code_foundation.names import SA_KIND, SA_OUTCOME, SA_SERVICE, SA_VERSION, W

    rid = release_id(p.service, version)
    attrs = [(SA_KIND, "release"), (SA_SERVICE, p.service), (SA_VERSION, version)]
    handle = await client.start_workflow(
        W.RELEASE,
        ReleaseInput(pipeline=p, version=version, actor=identity()),
        id=rid,
        task_queue=settings.task_queue,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(k, v) for k, v in [*attrs, (SA_OUTCOME, "running")]]
        ),
        static_summary=f"release {p.service} {version}",
    )
    out.print(f"started [bold]{rid}[/bold]  {ui_link(settings, rid)}")
    with contextlib.suppress(WorkflowFailureError):  # a release that was not promoted
        await handle.result()
    st = await handle.query("status", result_type=ReleaseStatus)  # either way: the matrix
    out.print(render(st))
    colour = "green" if st.outcome == "promoted" else "red"
    out.print(f"{version}: [{colour}]{st.outcome}[/{colour}] {st.reason}")
    return st


async def run_release_demo(settings: Settings, out: Console) -> int:
    from workers.clusters import start_stack

    t0 = time.monotonic()
    out.rule("[bold]CODE demo: a good and a bad version through a release pipeline")
    try:
        stack = await asyncio.to_thread(start_stack, settings, CLUSTERS, True, True)
        good_p, bad_p = pipeline_for(settings, "0"), pipeline_for(settings, "0.5")
    except CodeError as exc:
        raise fail(exc) from None
    for c in stack.components:
        out.print(f"  {c.name:15} {c.state:8} {c.url}")
    client = await client_for(settings)
    stamp = time.strftime("%H%M%S")
    good, bad = f"good-{stamp}", f"bad-{stamp}"
    stop, seen = asyncio.Event(), dict[str, int]()
    task = asyncio.ensure_future(traffic(settings, good_p.service, stop, seen))
    try:
        g = await run_one(client, settings, good_p, good, out)
        b = await run_one(client, settings, bad_p, bad, out) if g.outcome == "promoted" else None
    finally:
        stop.set()
        await task
    untouched = await _untouched(settings, good_p.service, good)
    out.print(
        f"client traffic by version: {', '.join(f'{v}: {n}' for v, n in sorted(seen.items()))}"
    )
    out.print("eu-1/us-1 still on " + ", ".join(f"{k}: {v}" for k, v in untouched.items()))
    ok = (
        g.outcome == "promoted"
        and b is not None
        and b.outcome in ("rolled_back", "failed")
        and all(w == {good: 100} for w in untouched.values())
    )
    summary = f"good {g.outcome}, bad {b.outcome if b else 'not run'}"
    out.print(f"[{'green' if ok else 'red'}]{summary}[/] ({time.monotonic() - t0:.0f} s)")
    out.print(f"history: codectl history {good_p.service}   stop: codectl down")
    return 0 if ok else 1


async def _untouched(settings: Settings, service: str, good: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as c:
        got = {}
        for name in UNTOUCHED:
            st = await _get(c, f"{agent_url(settings, name)}/v1/services/{service}/prod")
            got[name] = (st or {}).get("weights")
        return got
