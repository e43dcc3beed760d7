"""``codectl demo``: the tour of all four workflow kinds, in under four minutes.

Starts the embedded stack if none is running (detached, so the Web UI stays up
afterwards), then, while a client sends live traffic through the router and counts
what it sees:

1. deployments: demo v1, a good canary v2 (promoted) and a bad canary v3 (30% errors)
   that analysis catches and rolls back (``DeploymentWorkflow`` + ``RollbackWorkflow``);
2. chaos: ``deploy/examples/experiments/kill-stable-instance.yaml`` kills one stable
   instance under that traffic; the steady state holds and the rollback restores the
   instance (``ChaosExperimentWorkflow``);
3. soak: ``deploy/examples/soak/demo-45s.yaml``, 45 s of open-model load with its
   verdict and report (``SoakTestWorkflow``);
4. readiness: the certificate of demo/dev from what the tour just did
   (``ReadinessWorkflow``; its verdict is shown, not required: the rolled-back canary
   counts against Delivery), written to ``<state>/certificates/demo-dev/``.

Ends with a summary table (kind, outcome, seconds), the Web UI link of every run and
the commands that fetch the reports. Exit 0 when every step ended as the tour expects
(v2 promoted, v3 rolled back, chaos completed without deviation, soak passed).

:func:`demo` is the command (registered on the root app by :mod:`workers.cli.root`);
:func:`run_demo` the tour itself; deployments are followed with the progress view of
:mod:`workers.cli.progress`, chaos and soak with one line per event or slice."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from activities.settings import Settings
from workers.cli.common import client_for, console, load_spec_file, run_async, ui_link
from workers.cli.progress import follow

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
EXPERIMENT = EXAMPLES / "experiments" / "kill-stable-instance.yaml"
SOAK_PLAN = EXAMPLES / "soak" / "demo-45s.yaml"
DEPLOYS = (
    ("demo-v1.yaml", "v1: first release"),
    ("demo-v2.yaml", "v2: good canary"),
    ("demo-v3-bad.yaml", "v3: bad canary (30% errors)"),
)


def demo(state_dir: Path | None = typer.Option(None, help="defaults to CODE_STATE_DIR")) -> None:
    """The tour: deploy v1, canary a good v2 and a bad v3 (rolled back), kill a stable
    instance (chaos), soak for 45 s; starts the stack if needed."""
    if state_dir is not None:
        os.environ["CODE_STATE_DIR"] = str(state_dir)
    raise typer.Exit(run_async(run_demo(Settings(), console)))


@dataclass
class Traffic:
    """A bounded client loop against the router (loopback only)."""

    url: str
    rate: float = 40.0
    sent: int = 0
    failed: int = 0
    by_version: dict[str, int] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, max_seconds: float = 900.0) -> None:
        deadline = time.monotonic() + max_seconds
        import httpx

        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                tick = time.monotonic()
                try:
                    r = await client.get(self.url + "/work")
                    v = r.headers.get("x-code-version", "?")
                    self.by_version[v] = self.by_version.get(v, 0) + 1
                    if r.status_code >= 500:
                        self.failed += 1
                except httpx.HTTPError:
                    self.failed += 1
                self.sent += 1
                await asyncio.sleep(max(0.0, 1.0 / self.rate - (time.monotonic() - tick)))

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Run:
    """One run of the tour, as the summary shows it."""

    kind: str
    title: str
    id: str
    outcome: str
    ok: bool
    seconds: float
    link: str
    fetch: str = ""


async def router_endpoint(settings: Settings, service: str, env: str) -> str:
    import httpx

    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as c:
        r = await c.get(f"{settings.agent_url}/v1/services/{service}/{env}")
        r.raise_for_status()
        return str(r.json()["endpoint"]).rstrip("/")


async def _instances(settings: Settings) -> str:
    import httpx

    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as c:
        r = await c.get(f"{settings.agent_url}/v1/services/demo/dev")
    versions = r.json().get("versions", {}) if r.is_success else {}
    return ", ".join(
        f"{v}#{i['index']} pid {i['pid']} {'up' if i.get('alive') else 'DOWN'}"
        for v, d in sorted(versions.items())
        for i in d.get("instances", [])
    )


async def deployments(
    client: Any, settings: Settings, out: Console, state: dict[str, Any]
) -> list[Run]:
    """v1, v2 (promoted), v3 (rolled back); starts the live traffic after v1."""
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from workflows.client import deployment_result, start_deployment
    from workflows.models import DeployResult

    runs: list[Run] = []
    expected = {"v1": "promoted", "v2": "promoted", "v3": "rolled_back"}
    for name, title in DEPLOYS:
        spec = load_spec_file(EXAMPLES / name)
        out.rule(f"[bold]deployment[/bold] {title}")
        started = time.monotonic()
        try:
            handle = await start_deployment(client, spec, "demo", settings.task_queue)
        except WorkflowAlreadyStartedError:
            out.print(f"{spec.workflow_id()} is already running; following it")
            handle = client.get_workflow_handle(spec.workflow_id())
        await follow(client, handle.id, settings)
        # a rolled-back canary ends FAILED (red in the Web UI), carrying its result
        res = await deployment_result(
            client.get_workflow_handle(handle.id, result_type=DeployResult)
        )
        ok = res.outcome == expected[spec.version] or (spec.version == "v1" and bool(res.outcome))
        runs.append(
            Run(
                "deployment",
                title,
                handle.id,
                res.outcome,
                ok,
                time.monotonic() - started,
                ui_link(settings, handle.id),
            )
        )
        if "traffic" not in state:
            endpoint = await router_endpoint(settings, spec.service, spec.environment)
            traffic = Traffic(endpoint)
            state["traffic"], state["task"] = traffic, asyncio.create_task(traffic.run())
            out.print(f"sending live traffic to {endpoint} at {traffic.rate:.0f} req/s")
    return runs


async def chaos(client: Any, settings: Settings, out: Console) -> Run:
    """Kill one stable instance under the live traffic; follow the journal."""
    from temporalio.client import WorkflowFailureError

    from workers.cli.chaos_runs import load, start_run
    from workflows.chaos import ChaosExperimentWorkflow

    out.rule("[bold]chaos[/bold] kill one stable instance under live traffic")
    started = time.monotonic()
    exp = await asyncio.to_thread(load, EXPERIMENT, settings)
    out.print(f"experiment {EXPERIMENT.relative_to(EXAMPLES.parents[1])}: {exp.title}")
    out.print(f"instances before: {await _instances(settings)}")
    handle = await start_run(client, exp, settings.task_queue, "demo")
    out.print(f"started [bold]{handle.id}[/bold]  {ui_link(settings, handle.id)}", soft_wrap=True)
    result = asyncio.ensure_future(handle.result())
    seen = 0
    while True:
        done = result.done()
        try:
            j = await handle.query(ChaosExperimentWorkflow.status)
        except Exception:  # noqa: BLE001 - not started yet, or between tasks
            j = None
        if j is not None:
            events = sorted(j.events + j.rollbacks, key=lambda e: e.at)
            for e in events[seen:]:
                out.print(f"  {e.at:%H:%M:%S} [{e.kind}] {e.message}", highlight=False)
            seen = len(events)
        if done:
            break
        await asyncio.wait({result}, timeout=1.0)
    fetch = f"codectl chaos report {handle.id} --out ./chaos-report"
    try:
        res = result.result()
    except WorkflowFailureError as exc:
        out.print(f"[red]experiment failed:[/red] {exc.cause}")
        return Run(
            "chaos",
            exp.title,
            handle.id,
            "failed",
            False,
            time.monotonic() - started,
            ui_link(settings, handle.id),
            fetch,
        )
    j = res.journal
    rounds = j.during
    out.print(
        f"fault window: {rounds.rounds} probe rounds, {rounds.requests} requests, "
        f"{rounds.failures} bad, {rounds.out_of_tolerance} out of tolerance"
    )
    for phase, label in (("before", "before the fault"), ("after", "after the rollback")):
        recs = [p for p in j.probes if p.phase == phase]
        held = recs and all(p.ok for p in recs)
        detail = "; ".join(p.detail for p in recs) or "not probed"
        out.print(f"steady state {label}: {'held' if held else 'NOT held'} ({detail})")
    out.print(f"instances after: {await _instances(settings)}")
    if res.report_md_key:
        out.print(
            f"report: {res.report_md_key} (fetch: {fetch}, or codectl artifacts get "
            f"{res.report_md_key})",
            highlight=False,
        )
    outcome = f"{res.status}, steady state {'DEVIATED' if res.deviated else 'held'}"
    ok = res.status == "completed" and not res.deviated
    return Run(
        "chaos",
        exp.title,
        handle.id,
        outcome,
        ok,
        time.monotonic() - started,
        ui_link(settings, handle.id),
        fetch,
    )


async def soak(client: Any, settings: Settings, out: Console) -> Run:
    """45 s of open-model load on demo/dev; one line per slice; verdict and report."""
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from loadtest.soak_models import SoakResult, SoakStatus
    from workers.cli.soak import load_plan, start_soak

    out.rule("[bold]soak[/bold] 45 s of steady load, checked every slice")
    started = time.monotonic()
    plan = load_plan(SOAK_PLAN)
    try:
        handle = await start_soak(client, plan, settings, actor="demo")
    except WorkflowAlreadyStartedError:
        out.print(f"{plan.workflow_id()} is already running; following it")
        handle = client.get_workflow_handle(plan.workflow_id())
    out.print(
        f"started [bold]{handle.id}[/bold]: {plan.n_slices} slices of {plan.slice_s:g}s at "
        f"{plan.rate:g}/s  {ui_link(settings, handle.id)}",
        soft_wrap=True,
    )
    result = asyncio.ensure_future(
        client.get_workflow_handle(handle.id, result_type=SoakResult).result()
    )
    shown = 0
    while not result.done():
        await asyncio.wait({result}, timeout=2.0)
        try:
            st = await handle.query("status", result_type=SoakStatus)
        except Exception:  # noqa: BLE001, S112 - between runs, or finished
            continue
        if st is not None and st.slices_done > shown:
            shown, t = st.slices_done, st.totals
            checks = ", ".join(
                f"{o.name} {'ok' if o.ok else 'BREACH'}"
                for o in (st.last_check.outcomes if st.last_check else [])
            )
            out.print(
                f"  slice {shown}/{st.slices_total}: {t.get('completed', 0):,} requests, "
                f"{t.get('errors', 0):,} errors, p99 {t.get('p99') or 0:,.1f} ms; {checks or 'baseline'}",
                highlight=False,
            )
    res: SoakResult = result.result()
    style = "green" if res.verdict == "pass" else "red"
    out.print(f"verdict [{style}]{res.verdict.upper()}[/{style}] {res.reason}")
    fetch = f"codectl soak report {handle.id} --out ./soak-report"
    if res.report and res.report.html_key:
        out.print(
            f"report: {res.report.html_key} (fetch: {fetch}, or codectl artifacts get "
            f"{res.report.html_key})",
            highlight=False,
        )
    return Run(
        "soak",
        plan.name,
        handle.id,
        res.verdict,
        res.verdict == "pass",
        time.monotonic() - started,
        ui_link(settings, handle.id),
        fetch,
    )


async def certify(client: Any, settings: Settings, out: Console) -> Run:
    """The readiness certificate of demo/dev from what the tour just did (its verdict is
    information: a tour with a rolled-back canary is not expected to pass Delivery)."""
    from workers.cli.certify import certify_and_print

    out.rule("[bold]readiness[/bold] the certificate of demo/dev, from the evidence just made")
    started = time.monotonic()
    where = settings.state_dir / "certificates" / "demo-dev"
    res = await certify_and_print(client, "demo", "dev", settings=settings, window="1d", out=where)
    out.print(f"certificate files: {where}/certificate.{{json,md,html}}", highlight=False)
    cert = res.certificate
    return Run(
        "certify",
        "demo/dev readiness",
        res.workflow_id,
        str(cert.verdict),
        True,
        time.monotonic() - started,
        ui_link(settings, res.workflow_id),
        f"codectl certify demo --env dev --window 1d --out {where}",
    )


async def run_demo(settings: Settings, console: Console) -> int:
    from workers.devstack import ensure

    t0 = time.monotonic()
    console.rule("[bold]CODE demo: deployments, a rollback, chaos, a soak and a certificate")
    stack = await asyncio.to_thread(ensure, settings, True)
    for c in stack.components:
        console.print(f"  {c.name:9} {c.state:8} {c.url}")
    client = await client_for(settings)
    state: dict[str, Any] = {}
    runs: list[Run] = []
    chaos_traffic = (0, 0)
    try:
        runs += await deployments(client, settings, console, state)
        traffic: Traffic | None = state.get("traffic")
        before = (traffic.sent, traffic.failed) if traffic else (0, 0)
        runs.append(await chaos(client, settings, console))
        if traffic is not None:
            chaos_traffic = (traffic.sent - before[0], traffic.failed - before[1])
    finally:
        if "traffic" in state:
            state["traffic"].stop()
            await state["task"]
    runs.append(await soak(client, settings, console))
    runs.append(await certify(client, settings, console))
    _summary(console, settings, runs, state.get("traffic"), chaos_traffic, time.monotonic() - t0)
    return 0 if all(r.ok for r in runs) else 1


def _summary(
    out: Console,
    settings: Settings,
    runs: list[Run],
    traffic: Traffic | None,
    chaos_traffic: tuple[int, int],
    total: float,
) -> None:
    table = Table(title=f"CODE demo summary ({total:.0f} s)")
    for col in ("kind", "run", "outcome", "seconds", "workflow id"):
        table.add_column(col, overflow="fold")
    for r in runs:
        style = "green" if r.ok else "red"
        if r.kind == "deployment" and r.outcome == "rolled_back" and r.ok:
            style = "yellow"  # as expected: analysis caught v3
        table.add_row(r.kind, r.title, f"[{style}]{r.outcome}[/{style}]", f"{r.seconds:.0f}", r.id)
    out.print(table)
    out.print("Web UI links:")
    for r in runs:
        out.print(f"  {r.kind:10} {r.link}", soft_wrap=True, highlight=False)
    out.print("Reports:")
    for r in runs:
        if r.fetch:
            out.print(f"  {r.kind:10} {r.fetch}", highlight=False)
    if traffic is not None:
        seen = ", ".join(f"{v}: {n}" for v, n in sorted(traffic.by_version.items()))
        out.print(
            f"client traffic: {traffic.sent} requests, {traffic.failed} failed; served by {seen}. "
            f"During the chaos run: {chaos_traffic[0]} requests, {chaos_traffic[1]} failed "
            "(the router sends the killed replica's share to the live one)"
        )
    out.print(f'Web UI: {settings.temporal_ui_url}  (filter: CodeService="demo")')
    out.print("The stack keeps running for the Web UI; stop it with `codectl down`.")
