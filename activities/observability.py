"""Domain metrics and spans of the engine, recorded on the activity side only.

Why an activity interceptor: workflow code replays, so counting there would count a
deployment again on every replay and worker restart. Every fact the metrics need is
already the input or result of an activity the workflows run anyway — the ledger
record of a final status (deployments by outcome/strategy, rollbacks), the analysis
result (verdicts, analysis durations), platform calls (step durations), the chaos and
soak report activities (outcomes), the error-budget activity (budget remaining). So
:class:`DomainInterceptor` observes activity completions in the worker: no extra
activity, no change to any workflow's command sequence, and a retried activity is
counted once (on success).

It also wraps each activity in a domain span (``code.<activity name>``, with
service/environment/version attributes), a child of the ``RunActivity`` span of
temporalio's ``TracingInterceptor``; :func:`span` is the helper for spans inside
activity code. Both are no-ops when no tracer provider is installed.

Metric names (all ``code_``): ``deployments_total{outcome,strategy,service,environment}``,
``rollbacks_total``, ``step_duration_seconds{step}``, ``analysis_duration_seconds``,
``analysis_window_seconds``, ``analysis_verdicts_total{verdict}``,
``chaos_experiments_total{status,deviated}``, ``soak_tests_total{verdict}``,
``error_budget_remaining{service,environment,slo}``, ``activity_failures_total{activity,type}``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

FINAL = {"promoted", "rolled_back", "aborted", "failed"}
DUR_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class DomainMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        dep = ["service", "environment"]
        self.deployments = Counter(
            "code_deployments_total",
            "Deployments finished, by outcome and strategy",
            [*dep, "strategy", "outcome"],
            registry=registry,
        )
        self.rollbacks = Counter(
            "code_rollbacks_total", "Versions restored by RollbackWorkflow", dep, registry=registry
        )
        self.step_duration = Histogram(
            "code_step_duration_seconds",
            "Platform step duration, by step",
            ["step"],
            buckets=DUR_BUCKETS,
            registry=registry,
        )
        self.analysis_duration = Histogram(
            "code_analysis_duration_seconds",
            "Time to judge one analysis window",
            buckets=DUR_BUCKETS,
            registry=registry,
        )
        self.analysis_window = Histogram(
            "code_analysis_window_seconds",
            "Length of analysed traffic windows",
            buckets=DUR_BUCKETS,
            registry=registry,
        )
        self.verdicts = Counter(
            "code_analysis_verdicts_total",
            "Canary analysis verdicts",
            [*dep, "verdict"],
            registry=registry,
        )
        self.chaos = Counter(
            "code_chaos_experiments_total",
            "Chaos experiments reported, by status",
            ["status", "deviated"],
            registry=registry,
        )
        self.soak = Counter(
            "code_soak_tests_total",
            "Soak tests reported, by verdict",
            ["verdict"],
            registry=registry,
        )
        self.error_budget = Gauge(
            "code_error_budget_remaining",
            "Error budget remaining (1 = full, <= 0 spent)",
            [*dep, "slo"],
            registry=registry,
        )
        self.failures = Counter(
            "code_activity_failures_total",
            "Activity attempts that raised",
            ["activity", "type"],
            registry=registry,
        )


METRICS = DomainMetrics()
# strategy of deployments in flight (from their intent record), for outcomes recorded by a rollback
_STRATEGY: dict[tuple[str, str, str], str] = {}


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A span in the current trace (a child of the running activity's span)."""
    from opentelemetry import trace

    tracer = trace.get_tracer("code")
    attrs = {k: v for k, v in attributes.items() if isinstance(v, (str, int, float, bool))}
    with tracer.start_as_current_span(name, attributes=attrs) as s:
        yield s


def _attrs(arg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    src = getattr(arg, "spec", None) or arg
    for key in ("service", "environment", "version", "status", "canary_version", "step_index"):
        val = getattr(src, key, None)
        if val is None:
            val = getattr(arg, key, None)
        if isinstance(val, (str, int)):
            out[f"code.{key}"] = val
    return out


def observe(name: str, arg: Any, result: Any, seconds: float, m: DomainMetrics = METRICS) -> None:
    """Turn one successful activity completion into domain metrics."""
    if name == "ledger.record" and arg is not None:
        key = (arg.service, arg.environment, arg.version)
        if not getattr(result, "changed", True):
            return  # an idempotent replay of a record already counted
        if arg.strategy == "rollback":
            if arg.status == "promoted":  # each completed rollback restores one version
                m.rollbacks.labels(service=arg.service, environment=arg.environment).inc()
            elif arg.status == "rolled_back":  # the failed/aborted deployment it compensated
                outcome = (
                    "aborted" if arg.detail.startswith(("aborted", "cancelled")) else "rolled_back"
                )
                m.deployments.labels(
                    service=arg.service,
                    environment=arg.environment,
                    strategy=_STRATEGY.pop(key, "unknown"),
                    outcome=outcome,
                ).inc()
        elif arg.status in FINAL:
            _STRATEGY.pop(key, None)
            m.deployments.labels(
                service=arg.service,
                environment=arg.environment,
                strategy=arg.strategy or "unknown",
                outcome=arg.status,
            ).inc()
        elif arg.strategy:
            if len(_STRATEGY) > 10000:
                _STRATEGY.clear()
            _STRATEGY[key] = arg.strategy
    elif name == "analysis.run" and result is not None:
        m.analysis_duration.observe(seconds)
        m.analysis_window.observe(max(0.0, result.window_end - result.window_start))
        m.verdicts.labels(
            service=arg.service, environment=arg.environment, verdict=result.verdict
        ).inc()
    elif name.startswith("platform.") and name != "platform.describe":
        m.step_duration.labels(step=name.removeprefix("platform.")).observe(seconds)
    elif name == "chaos.report" and arg is not None:
        j = arg.journal
        m.chaos.labels(status=str(j.status), deviated=str(bool(j.deviated)).lower()).inc()
    elif name == "soak.report" and arg is not None:
        m.soak.labels(verdict=str(arg.verdict)).inc()


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        arg = input.args[0] if input.args else None
        t0 = time.monotonic()
        try:
            with span(f"code.{name}", **_attrs(arg)):
                result = await self.next.execute_activity(input)
        except BaseException as exc:
            if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
                METRICS.failures.labels(
                    activity=name, type=getattr(exc, "type", None) or type(exc).__name__
                ).inc()
            raise
        try:
            observe(name, arg, result, time.monotonic() - t0)
        except Exception:  # noqa: BLE001 - metrics never fail an activity
            activity.logger.debug("could not record domain metrics for %s", name, exc_info=True)
        return result


class DomainInterceptor(Interceptor):
    """Worker interceptor: domain spans + metrics around every activity."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)
