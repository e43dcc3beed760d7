"""The I/O of canary analysis: read one interval's data, judge it
(:mod:`activities.analysis.verdict`), store its :class:`AnalysisRecord`
(:mod:`activities.analysis.record`).

* :func:`collect` reads every metric of an ``AnalysisSpec`` for the canary and the
  baseline from a :class:`MetricsProvider`. ``NoData`` leaves a side empty (the judge
  classifies it); the first other ``MetricsError`` is returned with everything read.
* :func:`analyse_interval` runs one interval of either mode and stores its record —
  errors included: a failing read is stored, then raised (``MetricsError`` naming the
  query, or the platform's error).
* :func:`analyse_activity` is the body of the ``analysis.run`` activity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from activities.analysis.record import (
    JudgeRecord,
    RecordError,
    SeriesRecord,
    new_record,
    store_record,
)
from activities.analysis.verdict import (
    analyse_windows,
    analysis_for,
    judge_dry_run,
    judge_values,
    result_from_judge,
)
from activities.artifacts import ArtifactStore
from activities.metrics.base import MetricsError, MetricsProvider, NoData, Scope, render
from activities.platform.base import Platform, SampleSource, WindowSample
from workflows.models import AnalyseInput, AnalysisResult
from workflows.spec import AnalysisSpec

if TYPE_CHECKING:
    from activities.settings import Settings


@dataclass
class Collected:
    """What :func:`collect` read: per metric and side the stored series, the values
    the judge gets, notes (NoData) and the first backend error, if any."""

    series: dict[str, dict[str, SeriesRecord]] = field(default_factory=dict)
    canary: dict[str, list[float]] = field(default_factory=dict)
    baseline: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: MetricsError | None = None


async def collect(
    a: AnalysisSpec,
    provider: MetricsProvider,
    inp: AnalyseInput,
    namespace: str,
) -> Collected:
    """Series of every metric of ``a`` for the canary and the baseline of ``inp``."""
    scopes = {
        side: Scope(
            service=inp.service, environment=inp.environment, version=v, namespace=namespace
        )
        for side, v in (("canary", inp.canary_version), ("baseline", inp.stable_version))
    }
    step = a.step.total_seconds()
    out = Collected()
    values = {"canary": out.canary, "baseline": out.baseline}
    for m in a.metrics:
        out.series[m.name] = {}
        for side, scope in scopes.items():
            text = render(m.query, scope) if m.query else f"router:{m.source}"
            try:
                series = await provider.fetch(m, scope, inp.window_start, inp.window_end, step)
            except MetricsError as exc:
                out.series[m.name][side] = SeriesRecord(query=exc.query or text, error=str(exc))
                if isinstance(exc, NoData):
                    values[side][m.name] = []
                    out.notes.append(str(exc))
                else:
                    out.error = out.error or exc
                continue
            out.series[m.name][side] = SeriesRecord(
                query=series.query, timestamps=series.timestamps, values=series.values
            )
            values[side][m.name] = list(series.values)
    return out


async def analyse_interval(
    inp: AnalyseInput,
    *,
    settings: Settings | None,
    platform: SampleSource | None,
    store: ArtifactStore,
    workflow_id: str,
    provider: MetricsProvider | None = None,
    analysis: AnalysisSpec | None = None,
) -> AnalysisResult:
    """One interval of either mode, stored in the artifact store. Raises MetricsError
    (with the failing query) after storing what was collected. ``analysis`` defaults to
    the spec's step ``inp.step_index``."""
    from activities.metrics import provider_for

    a = analysis or analysis_for(inp) or AnalysisSpec(thresholds=inp.spec.analysis_defaults)
    if not a.judged:
        from activities.metrics.router import RouterProvider

        if platform is None:
            raise MetricsError("thresholds analysis reads the router: no platform given")
        rp = RouterProvider(platform)
        record = new_record(
            inp, a, mode="thresholds", provider=rp.describe(), workflow_id=workflow_id
        )
        try:
            samples = await platform.fetch_samples(
                inp.service, inp.environment, inp.window_start, inp.window_end
            )
        except Exception as exc:
            record.error = str(exc)
            await store_record(store, record)
            raise
        canary, stable = samples.get(inp.canary_version), samples.get(inp.stable_version)
        res = analyse_windows(inp, canary, stable)
        record.windows = {
            v: WindowSample.model_validate(w, from_attributes=True)
            for v, w in samples.items()
            if v in (inp.canary_version, inp.stable_version)
        }
        record.verdict = res.model_copy()
        res.artifact_key = await store_record(store, record)
        res.provider = "router"
        res.judge_version = record.judge_version
        return res

    kind = a.effective_provider()
    prov = provider or provider_for(kind, settings, platform)
    record = new_record(inp, a, mode="judge", provider=prov.describe(), workflow_id=workflow_id)
    got = await collect(a, prov, inp, inp.spec.namespace or inp.environment)
    record.series = got.series
    if got.error is not None:
        failed = got.error
        record.error = RecordError(
            type=type(failed).__name__, message=str(failed), query=failed.query
        )
        await store_record(store, record)
        raise failed
    verdict, jr = judge_values(a, got.canary, got.baseline)
    res = result_from_judge(verdict, jr, (inp.window_start, inp.window_end))
    res.reasons += judge_dry_run(a, got.canary, got.baseline)  # recorded, never decisive
    res.reasons += got.notes[:3]
    res.provider = kind
    res.judge_version = record.judge_version
    record.judge = JudgeRecord.model_validate(jr.to_dict())
    record.verdict = res.model_copy()
    res.artifact_key = await store_record(store, record)
    return res


async def analyse_activity(
    inp: AnalyseInput,
    *,
    settings: Settings,
    platform: Callable[..., Platform],
    store: ArtifactStore,
) -> AnalysisResult:
    """Body of the ``analysis.run`` activity (``DeployActivities.analyse``): the platform
    is asked for only when the interval reads the router. Errors (``MetricsError``
    naming the query, ``ArtifactError``, ``PlatformError``) are raised as they are."""
    from temporalio import activity

    a = analysis_for(inp)
    needs_platform = a is None or not a.judged or a.effective_provider() == "router"
    return await analyse_interval(
        inp,
        settings=settings,
        platform=platform(inp.platform, inp.cluster) if needs_platform else None,
        store=store,
        workflow_id=activity.info().workflow_id or "adhoc",
    )
