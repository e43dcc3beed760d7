"""Refuse bad PromQL before a deployment starts: every query of every analysis step is
sent to Prometheus once (an instant query at a fixed time; Prometheus parses it and
answers ``bad_data`` on a syntax error). Called by ``activities.deploy.validate_spec``,
so both ``codectl deploy/validate`` (exit 2, no workflow) and the workflow's validate
activity refuse it. Synchronous: runs its own event loop (in a helper thread when the
caller's thread already runs one)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from workflows.spec import AnalysisMetric, AnalysisSpec, DeploymentSpec

if TYPE_CHECKING:
    from activities.settings import Settings

T = TypeVar("T")


def analyses_of(spec: DeploymentSpec) -> list[tuple[str, AnalysisSpec]]:
    out: list[tuple[str, AnalysisSpec]] = []
    if spec.strategy.canary is not None:
        for i, step in enumerate(spec.strategy.canary.steps):
            if step.analysis is not None:
                out.append((f"strategy.canary.steps.{i}.analysis", step.analysis))
    bg = spec.strategy.blue_green
    if bg is not None and bg.pre_promotion_analysis is not None:
        out.append(("strategy.blue_green.pre_promotion_analysis", bg.pre_promotion_analysis))
    return out


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def validate_queries(
    spec: DeploymentSpec, settings: Settings | None = None
) -> tuple[list[str], list[str]]:
    """(problems, warnings) for the PromQL of ``spec``'s analysis steps."""
    targets = [
        (f"{where}.metrics.{j}.query", m)
        for where, a in analyses_of(spec)
        if a.judged and a.effective_provider() == "prometheus"
        for j, m in enumerate(a.metrics)
    ]
    if not targets:
        return [], []
    if settings is None:
        from activities.settings import Settings

        settings = Settings()
    if not settings.prometheus_url:
        msg = (
            f"{targets[0][0]}: the analysis uses PromQL but no Prometheus is configured; "
            "set CODE_PROMETHEUS_URL"
        )
        return (
            ([msg], [])
            if settings.metrics_backend == "prometheus"
            else ([], [msg + " (queries not validated)"])
        )
    return _run(_validate(spec, settings, targets))


async def _validate(
    spec: DeploymentSpec, settings: Settings, targets: list[tuple[str, AnalysisMetric]]
) -> tuple[list[str], list[str]]:
    from activities.metrics.base import BadQuery, MetricsError, Scope
    from activities.metrics.prometheus import PrometheusProvider

    prov = PrometheusProvider.from_settings(settings)
    scope = Scope(
        service=spec.service,
        environment=spec.environment,
        version=spec.version,
        namespace=spec.namespace or spec.environment,
    )
    problems: list[str] = []
    warnings: list[str] = []
    for where, metric in targets:
        try:
            await prov.validate(metric, scope)
        except BadQuery as exc:
            problems.append(f"{where} ({metric.name}): {exc}")
        except MetricsError as exc:
            warnings.append(f"{where} ({metric.name}): not validated: {exc}")
            if exc.retryable:  # Prometheus is down: do not wait for it once per query
                break
    return problems, warnings
