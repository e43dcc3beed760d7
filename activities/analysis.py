"""Canary analysis, one interval at a time. Two modes:

* **thresholds** (the backbone, when an ``AnalysisSpec`` has no ``metrics``): canary vs
  stable error rate and p99 latency over one window read from the local router;
  ``pass`` / ``fail`` / ``inconclusive`` (too little canary traffic) with reasons.
* **judge** (``metrics`` given): each metric is read for the canary and the baseline
  from a provider (:mod:`activities.metrics`: Prometheus or the router) and judged by
  ``rust_core.judge`` (Kayenta semantics). Pass / Marginal / Fail map to ``pass`` /
  ``marginal`` / ``fail``; no data for every metric is ``inconclusive``.

Provenance: every interval (errors included) is stored as JSON in the artifact store
under :func:`record_key` — raw series, query text, judge version, config, verdict —
and only the key goes into history. :func:`rejudge_record` re-runs the judge on a
stored record (``codectl rejudge``). Metrics-backend failures raise ``MetricsError``
naming the failing query (reported as ``ApplicationError(type=<error class>)`` by the
worker's error interceptor); the workflow counts them against ``consecutive_error_limit``."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any, Protocol

from workflows.models import AnalyseInput, AnalysisResult
from workflows.spec import AnalysisSpec, Thresholds

RECORD_SCHEMA = "code.analysis/v1"


class Window(Protocol):
    count: int
    errors: int
    latencies_ms: list[float]


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    import rust_core

    return float(rust_core.percentiles(values, [99.0])[0])


def summarise(w: Window | None) -> dict[str, float]:
    if w is None or w.count == 0:
        return {"requests": 0.0, "errors": 0.0, "error_rate": 0.0, "p99_ms": 0.0}
    return {
        "requests": float(w.count),
        "errors": float(w.errors),
        "error_rate": w.errors / w.count,
        "p99_ms": p99(list(w.latencies_ms)),
    }


def judge_thresholds(
    canary: dict[str, float], stable: dict[str, float], t: Thresholds
) -> tuple[str, list[str]]:
    reasons: list[str] = []
    if canary["requests"] < t.min_requests:
        return "inconclusive", [
            f"only {int(canary['requests'])} canary request(s) in the window (need {t.min_requests})"
        ]
    fail = False
    if canary["error_rate"] > t.max_error_rate:
        fail = True
        reasons.append(f"canary error rate {canary['error_rate']:.1%} > max {t.max_error_rate:.1%}")
    if (
        stable["requests"] > 0
        and canary["error_rate"] - stable["error_rate"] > t.max_error_rate_increase
    ):
        fail = True
        reasons.append(
            f"canary error rate {canary['error_rate']:.1%} exceeds stable "
            f"{stable['error_rate']:.1%} by more than {t.max_error_rate_increase:.1%}"
        )
    if t.max_p99_latency_ms is not None and canary["p99_ms"] > t.max_p99_latency_ms:
        fail = True
        reasons.append(f"canary p99 {canary['p99_ms']:.1f} ms > max {t.max_p99_latency_ms:.1f} ms")
    if stable["requests"] > 0 and stable["p99_ms"] > 0:
        ratio = canary["p99_ms"] / stable["p99_ms"]
        # small absolute differences (< 5 ms) are noise on loopback, not regressions
        if ratio > t.max_p99_latency_ratio and canary["p99_ms"] - stable["p99_ms"] > 5.0:
            fail = True
            reasons.append(
                f"canary p99 {canary['p99_ms']:.1f} ms is {ratio:.2f}x stable "
                f"{stable['p99_ms']:.1f} ms (max {t.max_p99_latency_ratio:.2f}x)"
            )
    if not fail:
        reasons.append(
            f"canary error rate {canary['error_rate']:.1%}, p99 {canary['p99_ms']:.1f} ms "
            f"within thresholds ({int(canary['requests'])} requests)"
        )
    return ("fail" if fail else "pass"), reasons


def analysis_for(inp: AnalyseInput) -> AnalysisSpec | None:
    """The AnalysisSpec of the step being analysed (None: the spec's defaults apply)."""
    steps = inp.spec.strategy.canary.steps if inp.spec.strategy.canary else []
    if 0 <= inp.step_index < len(steps) and steps[inp.step_index].analysis is not None:
        return steps[inp.step_index].analysis
    bg = inp.spec.strategy.blue_green
    if bg is not None and bg.pre_promotion_analysis is not None:
        return bg.pre_promotion_analysis
    return None


def thresholds_for(inp: AnalyseInput) -> Thresholds:
    a = analysis_for(inp)
    return a.thresholds if a is not None else inp.spec.analysis_defaults


def analyse_windows(
    inp: AnalyseInput, canary: Window | None, stable: Window | None
) -> AnalysisResult:
    c, s = summarise(canary), summarise(stable)
    verdict, reasons = judge_thresholds(c, s, thresholds_for(inp))
    return AnalysisResult(
        verdict=verdict,  # type: ignore[arg-type]
        reasons=reasons,
        canary=c,
        stable=s,
        window_start=inp.window_start,
        window_end=inp.window_end,
    )


# ====================================================================== judge mode
def metric_specs(a: AnalysisSpec) -> list[Any]:
    import rust_core

    return [
        rust_core.MetricSpec(
            name=m.name,
            group=m.group,
            direction=m.direction,
            critical=m.critical,
            must_have_data=m.must_have_data,
            allowed_increase=m.allowed_increase,
            allowed_decrease=m.allowed_decrease,
            nan_strategy=m.nan_strategy,
            outlier_factor=m.outlier_factor,
        )
        for m in a.metrics
    ]


def judge_values(
    a: AnalysisSpec,
    canary: dict[str, list[float]],
    baseline: dict[str, list[float]],
    *,
    pass_threshold: float | None = None,
    marginal_threshold: float | None = None,
    confidence: float | None = None,
) -> tuple[str, Any]:
    """Run rust_core.judge with the spec's config (or overrides); returns (verdict, JudgeResult)."""
    import rust_core

    res = rust_core.judge(
        metric_specs(a),
        {k: v for k, v in canary.items() if v},
        {k: v for k, v in baseline.items() if v},
        groups=dict(a.groups) or None,
        pass_threshold=a.pass_threshold if pass_threshold is None else pass_threshold,
        marginal_threshold=a.marginal_threshold
        if marginal_threshold is None
        else marginal_threshold,
        confidence=a.confidence if confidence is None else confidence,
    )
    if res.metrics and all(m.classification == "NoData" for m in res.metrics):
        return "inconclusive", res
    return {"Pass": "pass", "Marginal": "marginal"}.get(res.classification, "fail"), res


def _finite(values: dict[str, float]) -> dict[str, float]:
    # NaN/inf cannot cross the data converter into a dict[str, float]; the record keeps them
    return {k: v for k, v in values.items() if math.isfinite(v)}


def result_from_judge(verdict: str, res: Any, inp_window: tuple[float, float]) -> AnalysisResult:
    reasons = [res.reason]
    for m in res.metrics:
        if m.classification != "Pass":
            reasons.append(f"{m.name} [{m.classification}]: {m.reason}")
    return AnalysisResult(
        verdict=verdict,  # type: ignore[arg-type]
        reasons=reasons,
        canary=_finite({m.name: m.canary_mean for m in res.metrics}),
        stable=_finite({m.name: m.baseline_mean for m in res.metrics}),
        window_start=inp_window[0],
        window_end=inp_window[1],
        score=res.score,
    )


def record_key(workflow_id: str, run_id: str, step_index: int, interval_index: int) -> str:
    """Artifact key of one analysis interval: analysis/<workflow id>/<run id>/step<i>-interval<n>.json."""
    return f"analysis/{workflow_id}/{run_id}/step{step_index:02d}-interval{interval_index:03d}.json"


async def collect(
    a: AnalysisSpec,
    provider: Any,
    service: str,
    environment: str,
    canary: str,
    baseline: str,
    namespace: str,
    start: float,
    end: float,
) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, list[float]], list[str]]:
    """Series of every metric for both versions. NoData leaves a side empty (the judge
    classifies it); any other MetricsError is raised after the rest is recorded."""
    from activities.metrics.base import MetricsError, NoData, Scope, render

    scopes = {
        "canary": Scope(
            service=service, environment=environment, version=canary, namespace=namespace
        ),
        "baseline": Scope(
            service=service, environment=environment, version=baseline, namespace=namespace
        ),
    }
    step = a.step.total_seconds()
    raw: dict[str, Any] = {}
    values: dict[str, dict[str, list[float]]] = {"canary": {}, "baseline": {}}
    notes: list[str] = []
    first_error: MetricsError | None = None
    for m in a.metrics:
        raw[m.name] = {}
        for side, scope in scopes.items():
            text = render(m.query, scope) if m.query else f"router:{m.source}"
            try:
                series = await provider.fetch(m, scope, start, end, step)
            except NoData as exc:
                raw[m.name][side] = {
                    "query": exc.query or text,
                    "timestamps": [],
                    "values": [],
                    "error": str(exc),
                }
                values[side][m.name] = []
                notes.append(str(exc))
                continue
            except MetricsError as exc:
                raw[m.name][side] = {
                    "query": exc.query or text,
                    "timestamps": [],
                    "values": [],
                    "error": str(exc),
                }
                first_error = first_error or exc
                continue
            raw[m.name][side] = {
                "query": series.query,
                "timestamps": series.timestamps,
                "values": series.values,
            }
            values[side][m.name] = list(series.values)
    if first_error is not None:
        first_error.raw = raw  # type: ignore[attr-defined]
        raise first_error
    return raw, values["canary"], values["baseline"], notes


def build_record(
    *,
    inp: AnalyseInput | None,
    a: AnalysisSpec,
    mode: str,
    provider: str,
    key: str,
    window: tuple[float, float],
    service: str,
    environment: str,
    canary: str,
    baseline: str,
    workflow_id: str,
    run_id: str,
    step_index: int,
    interval_index: int,
) -> dict[str, Any]:
    import rust_core

    version = rust_core.judge_version()
    return {
        "schema": RECORD_SCHEMA,
        "key": key,
        "workflow_id": workflow_id,
        "run_id": run_id,
        "step_index": step_index,
        "interval_index": interval_index,
        "service": service,
        "environment": environment,
        "canary_version": canary,
        "baseline_version": baseline,
        "window": {"start": window[0], "end": window[1]},
        "mode": mode,
        "provider": provider,
        "judge_version": version,
        "config": a.model_dump(mode="json"),
        "created_at": time.time(),
    }


def dump_record(record: dict[str, Any]) -> bytes:
    # NaN values from Prometheus are kept (Python's json reads them back exactly)
    return json.dumps(record, sort_keys=True).encode()


async def store_record(store: Any, record: dict[str, Any]) -> str:
    await asyncio.to_thread(store.put, record["key"], dump_record(record), "application/json")
    return str(record["key"])


async def analyse_activity(acts: Any, inp: AnalyseInput) -> AnalysisResult:
    """Body of the ``analysis.run`` activity (``DeployActivities.analyse``). Its errors
    (``MetricsError`` naming the query, ``ArtifactError``, ``PlatformError``) are reported
    by the worker's error interceptor."""
    from temporalio import activity

    from activities.artifacts import store_from_settings

    store = getattr(acts, "_analysis_store", None)
    if store is None:
        store = acts._analysis_store = store_from_settings(acts.settings)
    a = analysis_for(inp)
    needs_platform = a is None or not a.judged or a.effective_provider() == "router"
    platform = acts.platform(inp.platform) if needs_platform else None
    return await analyse_interval(
        inp,
        settings=acts.settings,
        platform=platform,
        store=store,
        workflow_id=activity.info().workflow_id or "adhoc",
    )


async def analyse_interval(
    inp: AnalyseInput,
    *,
    settings: Any,
    platform: Any,
    store: Any,
    workflow_id: str,
    provider: Any | None = None,
    analysis: AnalysisSpec | None = None,
) -> AnalysisResult:
    """One interval of either mode, stored in the artifact store. Raises MetricsError
    (with the failing query) after storing what was collected. ``analysis`` defaults to
    the spec's step ``inp.step_index``."""
    from activities.metrics import provider_for
    from activities.metrics.base import MetricsError

    a = analysis or analysis_for(inp) or AnalysisSpec(thresholds=inp.spec.analysis_defaults)
    key = record_key(workflow_id, inp.run_id, inp.step_index, inp.interval_index)
    window = (inp.window_start, inp.window_end)
    common = dict(
        inp=inp,
        a=a,
        key=key,
        window=window,
        service=inp.service,
        environment=inp.environment,
        canary=inp.canary_version,
        baseline=inp.stable_version,
        workflow_id=workflow_id,
        run_id=inp.run_id,
        step_index=inp.step_index,
        interval_index=inp.interval_index,
    )
    if not a.judged:
        from activities.metrics.router import RouterProvider

        rp = RouterProvider(platform)
        record = build_record(mode="thresholds", provider=rp.describe(), **common)  # type: ignore[arg-type]
        try:
            samples = await platform.fetch_samples(inp.service, inp.environment, *window)
        except Exception as exc:
            record["error"] = str(exc)
            await store_record(store, record)
            raise
        canary, stable = samples.get(inp.canary_version), samples.get(inp.stable_version)
        res = analyse_windows(inp, canary, stable)
        record["windows"] = {
            v: w.model_dump() if hasattr(w, "model_dump") else dict(w)
            for v, w in samples.items()
            if v in (inp.canary_version, inp.stable_version)
        }
        record["verdict"] = res.model_dump(mode="json")
        res.artifact_key = await store_record(store, record)
        res.provider = "router"
        res.judge_version = record["judge_version"]
        return res

    kind = a.effective_provider()
    prov = provider or provider_for(kind, settings, platform)
    record = build_record(mode="judge", provider=prov.describe(), **common)  # type: ignore[arg-type]
    namespace = inp.spec.namespace or inp.environment
    try:
        raw, canary_vals, base_vals, notes = await collect(
            a,
            prov,
            inp.service,
            inp.environment,
            inp.canary_version,
            inp.stable_version,
            namespace,
            *window,
        )
    except MetricsError as exc:
        record["series"] = getattr(exc, "raw", {})
        record["error"] = {"type": type(exc).__name__, "message": str(exc), "query": exc.query}
        await store_record(store, record)
        raise
    verdict, jr = judge_values(a, canary_vals, base_vals)
    res = result_from_judge(verdict, jr, window)
    res.reasons += notes[:3]
    res.provider = kind
    res.judge_version = record["judge_version"]
    record["series"] = raw
    record["judge"] = jr.to_dict()
    record["verdict"] = res.model_dump(mode="json")
    res.artifact_key = await store_record(store, record)
    return res


def load_record(data: bytes) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(data)
    if record.get("schema") != RECORD_SCHEMA:
        raise ValueError(f"not an analysis record (schema {record.get('schema')!r})")
    return record


def rejudge_record(
    record: dict[str, Any],
    *,
    pass_threshold: float | None = None,
    marginal_threshold: float | None = None,
    confidence: float | None = None,
    thresholds: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Re-run the judge on a stored record; returns {"old": verdict, "new": verdict,
    "score_old", "score_new", "metrics": [(name, old, new)], "error": ...}."""
    a = AnalysisSpec.model_validate(record["config"])
    old = record.get("verdict") or {}
    out: dict[str, Any] = {
        "key": record["key"],
        "interval": record["interval_index"],
        "step": record["step_index"],
        "old": old.get("verdict", "error"),
        "score_old": old.get("score"),
    }
    if "error" in record and "verdict" not in record:
        err = record["error"]
        out |= {
            "new": "error",
            "score_new": None,
            "metrics": [],
            "error": err["message"] if isinstance(err, dict) else str(err),
        }
        return out
    if record["mode"] == "thresholds":
        from activities.platform.local import WindowSample

        t = a.thresholds.model_copy(update=thresholds or {})
        wins = {v: WindowSample.model_validate(w) for v, w in record.get("windows", {}).items()}
        c, s = (
            summarise(wins.get(record["canary_version"])),
            summarise(wins.get(record["baseline_version"])),
        )
        verdict, reasons = judge_thresholds(c, s, t)
        out |= {"new": verdict, "score_new": None, "metrics": [], "reasons": reasons}
        return out
    series = record["series"]
    canary = {m: sides.get("canary", {}).get("values", []) for m, sides in series.items()}
    base = {m: sides.get("baseline", {}).get("values", []) for m, sides in series.items()}
    verdict, jr = judge_values(
        a,
        canary,
        base,
        pass_threshold=pass_threshold,
        marginal_threshold=marginal_threshold,
        confidence=confidence,
    )
    old_metrics = {
        m["name"]: m["classification"] for m in (record.get("judge") or {}).get("metrics", [])
    }
    out |= {
        "new": verdict,
        "score_new": jr.score,
        "reason_new": jr.reason,
        "metrics": [(m.name, old_metrics.get(m.name, "-"), m.classification) for m in jr.metrics],
    }
    return out
