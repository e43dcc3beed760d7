"""``codectl certify``: production-readiness certificates from evidence.

* ``codectl certify SERVICE --env E [--suite SUITE.yaml] [--window 30d] [--out DIR]
  [--output json]`` starts ``ReadinessWorkflow``, waits, writes ``certificate.json``,
  ``certificate.md`` and ``certificate.html`` into DIR (read back from the artifact store,
  checksums verified) and prints the summary table (``--output json``: one
  ``code.certify/v1`` document, :mod:`workers.cli.output`); exit 0 pass, 1 fail.
* ``codectl certify schedule SERVICE --env E --cron "0 6 * * 1" [--suite ...]`` creates a
  Temporal Schedule (overlap SKIP) so certification is continuous; each run is compared
  with the previous certificate (``--output json``: ``code.certify.schedule/v1``).
* :func:`certify_and_print` (for ``codectl demo`` and tests) runs one certification with a
  client and prints the summary.

A suite file (YAML) names its parts by path, relative to the suite file::

    name: weekly
    rules: {required: {delivery: 0.8}, targets: ["p95 < 200ms at 50 rps"], slo_files: [slo.yaml]}
    soak: ../soak/demo-2m.yaml          # a soak plan
    chaos: [../experiments/kill-stable-instance.yaml]
    load: ../soak/load-30s.yaml         # a soak plan run as the load test (name load-...)

Wiring only: the formulas live in :mod:`workflows.readiness_formulas`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel, ConfigDict, Field

from activities.settings import Settings
from code_foundation.errors import SpecError
from code_foundation.loader import load_file
from workers.cli.common import client_for, console, fail, identity, run_async, ui_link
from workers.cli.output import OUTPUT_HELP, check_output, emit

CERTIFY_SCHEMA = "code.certify/v1"
SCHEDULE_SCHEMA = "code.certify.schedule/v1"


class SuiteFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "suite"
    rules: dict[str, Any] = Field(default_factory=dict)
    soak: str | None = None
    chaos: list[str] = Field(default_factory=list)
    load: str | None = None


def load_suite(path: str | Path) -> Any:
    """A suite file → :class:`workflows.readiness_models.Suite` (paths resolved)."""
    from workers.cli.chaos_runs import load as load_experiment  # {type: endpoint} resolved
    from workers.cli.soak import load_plan
    from workflows.readiness_models import Rules, Suite

    p = Path(path)
    doc = load_file(SuiteFile, p, what="readiness suite")
    base = p.resolve().parent

    def at(x: str) -> Path:
        return (base / x).resolve()

    rules = dict(doc.rules)
    rules["slo_files"] = [str(at(f)) for f in rules.get("slo_files", [])]
    try:
        return Suite(
            name=doc.name,
            rules=Rules.model_validate(rules),
            soak=load_plan(at(doc.soak)) if doc.soak else None,
            chaos=[load_experiment(at(c)) for c in doc.chaos],
            load=load_plan(at(doc.load)) if doc.load else None,
        )
    except ValueError as exc:
        raise SpecError(str(p), [str(exc)]) from None


def readiness_input(
    service: str, env: str, window: str, suite: Any = None, actor: str = "cli"
) -> Any:
    from workflows.readiness_models import ReadinessInput

    crash = Path("artifacts/crash-matrix.md")
    return ReadinessInput.model_validate(
        {
            "service": service,
            "environment": env,
            "window": window,
            "suite": suite,
            "actor": actor,
            "crash_matrix": str(crash.resolve()) if crash.is_file() else None,
        }
    )


def _attributes(service: str, env: str) -> Any:
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    from code_foundation.names import SA_ENVIRONMENT, SA_KIND, SA_SERVICE

    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_SERVICE, service),
            SearchAttributePair(SA_ENVIRONMENT, env),
            SearchAttributePair(SA_KIND, "readiness"),
        ]
    )


async def run_certification(
    client: Any, settings: Settings, inp: Any, workflow_id: str | None = None
) -> Any:
    """Start ``ReadinessWorkflow`` and return its :class:`ReadinessResult`."""
    from workflows.readiness import ReadinessWorkflow
    from workflows.readiness_models import ReadinessResult

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    wid = workflow_id or f"readiness-{inp.service}-{inp.environment}-{stamp}-{uuid.uuid4().hex[:4]}"
    return await client.execute_workflow(
        ReadinessWorkflow.run,
        inp,
        id=wid,
        task_queue=settings.task_queue,
        search_attributes=_attributes(inp.service, inp.environment),
        result_type=ReadinessResult,
        static_summary=f"readiness certificate: {inp.service}/{inp.environment}",
    )


def write_outputs(settings: Settings, result: Any, out: Path) -> list[Path]:
    """Copy the stored certificate files into ``out`` (checksums verified by the store)."""
    from activities.artifacts import store_from_settings

    store = store_from_settings(settings)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for a in result.artifacts:
        dest = out / a.name
        dest.write_bytes(store.get(a.key, a.version_id))
        paths.append(dest)
    return paths


def certify_document(result: Any) -> dict[str, Any]:
    """The ``code.certify/v1`` document of one certification (``--output json``)."""
    return {
        "workflow_id": result.workflow_id,
        "verdict": result.verdict,
        "reasons": list(result.reasons),
        "certificate": result.certificate.model_dump(mode="json"),
        "artifacts": [a.model_dump() for a in result.artifacts],
    }


def summary_table(cert: Any) -> Any:
    from rich.table import Table

    t = Table(title=f"readiness {cert.service}/{cert.environment}: {cert.verdict.upper()}")
    for col in ("category", "score", "summary"):
        t.add_column(col)
    for c in cert.categories:
        score = "not measured" if c.score is None else f"{c.score:.2f}"
        t.add_row(c.name, score, c.summary)
    return t


def print_result(settings: Settings, result: Any) -> None:
    cert = result.certificate
    console.print(summary_table(cert))
    for r in cert.reasons:
        console.print(f"  [red]✗[/red] {r}", soft_wrap=True)
    for line in cert.diff:
        console.print(f"  Δ {line}", soft_wrap=True)
    console.print(f"web ui: {ui_link(settings, result.workflow_id)}")
    for a in result.artifacts:
        console.print(f"  {a.key} (sha256 {a.sha256[:12]})")


async def certify_and_print(
    client: Any,
    service: str,
    env: str,
    *,
    settings: Settings | None = None,
    window: str = "30d",
    out: Path | None = None,
) -> Any:
    """One certification of SERVICE in ENV, its summary printed (the ``codectl demo`` hook)."""
    settings = settings or Settings()
    result = await run_certification(client, settings, readiness_input(service, env, window))
    if out is not None:
        write_outputs(settings, result, out)
    print_result(settings, result)
    return result


async def create_schedule(
    client: Any, settings: Settings, inp: Any, cron: str, schedule_id: str | None = None
) -> str:
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
    )

    from workflows.readiness import ReadinessWorkflow

    sid = schedule_id or f"readiness-{inp.service}-{inp.environment}"
    await client.create_schedule(
        sid,
        Schedule(
            action=ScheduleActionStartWorkflow(
                ReadinessWorkflow.run,
                inp,
                id=f"{sid}-run",
                task_queue=settings.task_queue,
                typed_search_attributes=_attributes(inp.service, inp.environment),
            ),
            spec=ScheduleSpec(cron_expressions=[cron]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        ),
    )
    return sid


def certify(
    service: str = typer.Argument(..., help="the service (or `schedule SERVICE`)"),
    scheduled: str | None = typer.Argument(None, help="with `schedule`: the service"),
    env: str = typer.Option(..., "--env", help="environment"),
    suite: Path | None = typer.Option(None, "--suite", help="suite YAML run first"),
    window: str = typer.Option("30d", "--window", help="evidence window, e.g. 30d, 7d"),
    out: Path | None = typer.Option(None, "--out", help="write certificate.{json,md,html} here"),
    output: str = typer.Option("text", "--output", help=OUTPUT_HELP),
    cron: str | None = typer.Option(None, "--cron", help='with schedule: e.g. "0 6 * * 1"'),
    schedule_id: str | None = typer.Option(None, "--id", help="schedule id"),
) -> None:
    """Certify a service's production readiness from evidence (or schedule it)."""
    check_output(output)
    settings = Settings()
    if service == "schedule":
        if scheduled is None or cron is None:
            raise fail("usage: codectl certify schedule SERVICE --env E --cron CRON", 2)
        service = scheduled
    elif scheduled is not None:
        raise fail(f"unexpected argument {scheduled!r}", 2)

    async def go() -> int:
        s = load_suite(suite) if suite else None
        inp = readiness_input(service, env, window, s, actor=identity())
        client = await client_for(settings)
        if cron is not None:
            sid = await create_schedule(client, settings, inp, cron, schedule_id)
            if output == "json":
                doc = {"schedule_id": sid, "cron": cron, "service": service, "environment": env}
                emit(SCHEDULE_SCHEMA, doc)
                return 0
            console.print(f"schedule [bold]{sid}[/bold] created: `{cron}` → {service}/{env}")
            return 0
        result = await run_certification(client, settings, inp)
        if out is not None:
            write_outputs(settings, result, out)
        if output == "json":
            emit(CERTIFY_SCHEMA, certify_document(result))
        else:
            print_result(settings, result)
        return 0 if result.verdict == "pass" else 1

    code = run_async(go(), any_error=True)
    if code:
        raise typer.Exit(code)
