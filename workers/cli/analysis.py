"""``codectl rejudge`` and ``codectl analyse``: canary analysis without (or after) a
deployment. Plain command functions, registered on the root app by
:mod:`workers.cli.root`.

* ``rejudge RUN_ID``: loads the stored intervals of a deployment (``deploy-…`` workflow
  id, optionally ``WORKFLOW_ID/RUN_ID``) or of an ``analyse`` run from the artifact
  store, re-runs the judge (optionally with other thresholds) and prints old vs new
  verdict per interval and metric, and the step outcome under the Kayenta rule.
* ``analyse``: an analysis-only judgement of two versions already running, as a
  *direct call* (no workflow): every interval is read, judged and stored exactly like a
  deployment's analysis step, under id ``analyse-<service>-<env>-<canary>-vs-<baseline>/<time>``.

An ``--spec`` file is read through :mod:`code_foundation.loader`. Exit codes: 0 pass
(rejudge: nothing failed to load), 1 not pass, 2 invalid input, 3 a server could not be
reached."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from code_foundation.errors import CodeError, SpecError
from code_foundation.loader import parse_document, read_text, validate_model
from workers.cli.common import console, fail, run_async

if TYPE_CHECKING:
    from activities.analysis import AnalysisRecord

_STYLE = {
    "pass": "green",
    "fail": "red",
    "marginal": "yellow",
    "inconclusive": "yellow",
    "error": "red",
}


def _v(verdict: str | None, score: float | None = None) -> str:
    v = verdict or "-"
    s = f" ({score:.1f})" if isinstance(score, int | float) else ""
    return f"[{_STYLE.get(v, 'white')}]{v}{s}[/]"


def _load_runs(store: Any, run_id: str) -> dict[str, list[AnalysisRecord]]:
    from activities.analysis import load_record
    from activities.analysis.measure import MEASUREMENTS_SUFFIX

    prefix = f"analysis/{run_id.strip('/')}/"
    runs: dict[str, list[AnalysisRecord]] = {}
    for key in store.list(prefix):
        if key.endswith(MEASUREMENTS_SUFFIX):  # measurement evidence, not a judged interval
            continue
        rec = load_record(store.get(key))
        runs.setdefault(f"{rec['workflow_id']}/{rec['run_id']}", []).append(rec)
    return runs


def rejudge(
    run_id: str = typer.Argument(
        ..., help="workflow id (deploy-SVC-ENV-VERSION), WORKFLOW_ID/RUN_ID, or an analyse id"
    ),
    pass_threshold: float | None = typer.Option(
        None, "--pass-threshold", help="judge: new pass threshold"
    ),
    marginal_threshold: float | None = typer.Option(
        None, "--marginal-threshold", help="judge: new marginal threshold"
    ),
    confidence: float | None = typer.Option(
        None, "--confidence", help="judge: new confidence level"
    ),
    threshold: list[str] = typer.Option(
        [], "--threshold", help="thresholds mode: FIELD=VALUE (e.g. max_error_rate=0.1)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the comparison as JSON"),
) -> None:
    """Re-run the judge on the stored data of an analysis and show what would change."""
    from activities.analysis import rejudge_record
    from activities.artifacts import store_from_settings
    from activities.settings import Settings
    from workflows.analysis import overall
    from workflows.spec import AnalysisSpec

    overrides: dict[str, Any] = {}
    for item in threshold:
        name, sep, value = item.partition("=")
        if not sep:
            raise fail(f"--threshold expects FIELD=VALUE, got {item!r}", 2)
        overrides[name.strip()] = float(value)
    store = store_from_settings(Settings())
    runs = _load_runs(store, run_id)
    if not runs:
        raise fail(f"no stored analysis under analysis/{run_id}/ in the artifact store", 2)
    # the most recent run of a workflow id (a version can be deployed more than once)
    run_key = max(runs, key=lambda k: max(r["created_at"] for r in runs[k]))
    records = sorted(runs[run_key], key=lambda r: (r["step_index"], r["interval_index"]))
    rows = [
        rejudge_record(
            r,
            pass_threshold=pass_threshold,
            marginal_threshold=marginal_threshold,
            confidence=confidence,
            thresholds=overrides,
        )
        for r in records
    ]
    steps: dict[int, dict[str, Any]] = {}
    for rec, row in zip(records, rows, strict=True):
        a = AnalysisSpec.model_validate(rec["config"])
        changed: dict[str, Any] = {
            k: v
            for k, v in (
                ("pass_threshold", pass_threshold),
                ("marginal_threshold", marginal_threshold),
                ("confidence", confidence),
            )
            if v is not None
        }
        if overrides:
            changed["thresholds"] = a.thresholds.model_copy(update=overrides)
        st = steps.setdefault(
            rec["step_index"], {"old": [], "new": [], "a": a, "a_new": a.model_copy(update=changed)}
        )
        st["old"].append(row["old"])
        st["new"].append(row["new"])
    summary = {
        i: {"old": overall(s["old"], s["a"]), "new": overall(s["new"], s["a_new"])}
        for i, s in steps.items()
    }
    if as_json:
        print(
            json.dumps({"run": run_key, "intervals": rows, "steps": summary}, default=str, indent=2)
        )
        return
    table = Table(title=f"re-judged {run_key} (judge {records[0]['judge_version']})")
    for col in ("step", "interval", "window", "old", "new", "changed metrics"):
        table.add_column(col)
    for rec, row in zip(records, rows, strict=True):
        metrics = (
            ", ".join(f"{n}: {o}→{nw}" for n, o, nw in row.get("metrics", []) if o != nw) or "-"
        )
        if row.get("error"):
            metrics = f"error: {row['error'][:80]}"
        win = rec["window"]
        table.add_row(
            str(rec["step_index"]),
            str(rec["interval_index"] + 1),
            f"{win['end'] - win['start']:.0f}s",
            _v(row["old"], row.get("score_old")),
            _v(row["new"], row.get("score_new")),
            metrics,
        )
    console.print(table)
    for i, s in summary.items():
        mark = "unchanged" if s["old"] == s["new"] else "CHANGED"
        console.print(f"step {i}: {_v(s['old'])} → {_v(s['new'])}  ({mark})")


def _analysis_from_file(path: Path) -> Any:
    """An analysis from a file: a DeploymentSpec (its first analysis step), a document
    with an ``analysis`` key, or an AnalysisSpec itself."""
    from workflows.spec import AnalysisSpec, parse_spec

    text = read_text(path)
    data = parse_document(text, str(path))
    if isinstance(data, dict) and "service" in data:  # a DeploymentSpec: its first analysis step
        from activities.metrics.validate import analyses_of

        found = analyses_of(parse_spec(text, str(path)))
        if not found:
            raise SpecError(str(path), ["the spec has no analysis step"])
        return found[0][1]
    if isinstance(data, dict) and "analysis" in data:
        data = data["analysis"]
    return validate_model(AnalysisSpec, data, str(path), what="analysis")


DEFAULT_ROUTER_METRICS = [
    {"name": "latency", "source": "latency_ms", "group": "latency", "allowed_increase": 1.1},
    {"name": "error_rate", "source": "error_rate", "group": "errors", "critical": True},
]


def analyse(
    service: str = typer.Option(..., "--service", "-s"),
    env: str = typer.Option(..., "--env", "-e"),
    canary: str = typer.Option(..., "--canary", help="version under test"),
    baseline: str = typer.Option(..., "--baseline", help="version to compare with"),
    spec_file: Path | None = typer.Option(
        None, "--spec", help="an analysis (or deployment spec) YAML"
    ),
    duration: str = typer.Option("30s", "--duration", help="total time to observe"),
    interval: str | None = typer.Option(
        None, "--interval", help="judge every INTERVAL (default: once, at the end)"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Judge two running versions against each other (no deployment), Kayenta-style."""
    from code_foundation.durations import parse_duration
    from workflows.spec import AnalysisSpec

    try:
        total = parse_duration(duration).total_seconds()
        every = parse_duration(interval).total_seconds() if interval else total
        if total <= 0 or every <= 0:
            raise ValueError("durations must be positive")
        a = (
            _analysis_from_file(spec_file)
            if spec_file
            else AnalysisSpec.model_validate({"metrics": DEFAULT_ROUTER_METRICS})
        )
        if not a.judged:
            raise SpecError(str(spec_file), ["the analysis has no metrics to judge"])
    except CodeError as exc:
        raise fail(exc) from None
    except (ValueError, OSError) as exc:
        raise fail(str(exc), 2) from None
    count = max(1, round(total / every))
    a = AnalysisSpec.model_validate(
        {**a.model_dump(mode="json"), "count": count, "interval": every}
    )
    raise typer.Exit(run_async(_analyse(service, env, canary, baseline, a, as_json)))


async def _analyse(
    service: str, env: str, canary: str, baseline: str, a: Any, as_json: bool
) -> int:
    from activities.analysis import analyse_interval
    from activities.artifacts import store_from_settings
    from activities.metrics.base import MetricsError
    from activities.platform.local import LocalPlatform
    from activities.settings import Settings
    from workflows.analysis import overall
    from workflows.models import AnalyseInput
    from workflows.spec import DeploymentSpec

    settings = Settings()
    store = store_from_settings(settings)
    platform = LocalPlatform(settings.agent_url)
    wid = f"analyse-{service}-{env}-{canary}-vs-{baseline}"
    run = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    spec = DeploymentSpec.model_validate(
        {
            "service": service,
            "environment": env,
            "version": canary,
            "artifact": {"command": ["true"]},
            "strategy": {
                "type": "canary",
                "canary": {"steps": [{"analysis": a.model_dump(mode="json")}]},
            },
        }
    )
    if not as_json:
        console.print(
            f"analysing {service}/{env}: {canary} vs {baseline}, {a.count} interval(s) of "
            f"{a.interval.total_seconds():g}s via {a.effective_provider()}; id [bold]{wid}/{run}[/bold]"
        )
    origin = time.time()
    verdicts: list[str] = []
    rows: list[dict[str, Any]] = []
    for n in range(a.count):
        await asyncio.sleep(a.interval.total_seconds())
        end = time.time()
        start = origin if a.lookback is None else max(origin, end - a.lookback.total_seconds())
        inp = AnalyseInput(
            service=service,
            environment=env,
            canary_version=canary,
            stable_version=baseline,
            window_start=start,
            window_end=end,
            spec=spec,
            step_index=0,
            interval_index=n,
            run_id=run,
            analysis_start=origin,
        )
        try:
            res = await analyse_interval(
                inp, settings=settings, platform=platform, store=store, workflow_id=wid, analysis=a
            )
        except MetricsError as exc:
            verdicts.append("error")
            rows.append({"interval": n + 1, "verdict": "error", "error": str(exc)})
            if not as_json:
                console.print(f"interval {n + 1}: {_v('error')} {exc}")
            continue
        verdicts.append(res.verdict)
        rows.append(
            {
                "interval": n + 1,
                "verdict": res.verdict,
                "score": res.score,
                "reasons": res.reasons,
                "artifact_key": res.artifact_key,
            }
        )
        if not as_json:
            console.print(f"interval {n + 1}: {_v(res.verdict, res.score)}")
            for reason in res.reasons:
                console.print(f"   {reason}")
    outcome = overall(verdicts, a)
    if as_json:
        print(json.dumps({"id": f"{wid}/{run}", "outcome": outcome, "intervals": rows}, indent=2))
    else:
        console.print(f"outcome: {_v(outcome)}   re-judge with: codectl rejudge {wid}/{run}")
    return 0 if outcome == "pass" else 1
