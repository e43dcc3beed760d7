"""The analysis part of a ``DeploymentSpec`` (re-exported by :mod:`workflows.spec`):
the backbone ``Thresholds``, Kayenta-style ``AnalysisMetric``/``AnalysisSpec`` of an
analysis step, the Argo-style ``measurements`` (Web and Job providers with a success
condition: :mod:`workflows.measure_spec`), and the strategy-level ``BackgroundAnalysis``.
A ``dry_run`` metric or measurement is evaluated and recorded but never decides the
interval. Pure: no I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from code_foundation.durations import Duration, human
from workflows.measure_spec import MeasuredMetric

OnInconclusive = Literal["rollback", "promote", "pause"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


class Thresholds(_Model):
    """Simple canary-vs-stable thresholds (the backbone analysis)."""

    max_error_rate: float = Field(0.05, ge=0, le=1, description="absolute canary error rate")
    max_error_rate_increase: float = Field(
        0.01, ge=0, le=1, description="canary error rate minus stable error rate"
    )
    max_p99_latency_ms: float | None = Field(None, gt=0)
    max_p99_latency_ratio: float = Field(1.5, gt=0, description="canary p99 / stable p99")
    min_requests: int = Field(20, ge=0, description="fewer canary requests = inconclusive")


class AnalysisMetric(_Model):
    """One metric of a Kayenta-style judgement. The same query runs for the canary and
    for the baseline (``{version}`` replaced by each one's version); the judge compares
    the two series (Mann-Whitney, Hodges-Lehmann interval, effect size)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,62}$")
    query: str | None = Field(
        None,
        min_length=1,
        description="PromQL (prometheus provider); placeholders {version} {service} "
        "{environment} {namespace}; a range query over the window at `step` resolution",
    )
    source: Literal["latency_ms", "error_rate", "latency_mean_ms"] | None = Field(
        None,
        description="router provider: per-request latencies (latency_ms), or per-step "
        "error rate / mean latency buckets read from the local router",
    )
    group: str = Field("default", min_length=1)
    direction: Literal["increase", "decrease", "either"] = Field(
        "increase", description="which change is bad (increase: higher is worse)"
    )
    critical: bool = Field(False, description="a failure of this metric fails the whole interval")
    must_have_data: bool = Field(False, description="no data counts as a failure")
    allowed_increase: float = Field(
        1.0, ge=0, description="effect size (canary mean / baseline mean) tolerated upwards"
    )
    allowed_decrease: float = Field(1.0, ge=0)
    nan_strategy: Literal["remove", "replace"] = "remove"
    outlier_factor: float | None = Field(3.0, ge=0)
    dry_run: bool = Field(
        False,
        description="judged alone and recorded (reasons, provenance record) but left out of "
        "the interval's score and verdict (Argo's dryRun)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> AnalysisMetric:
        if (self.query is None) == (self.source is None):
            raise ValueError(
                f"metric {self.name!r}: set exactly one of query (PromQL) or source (router)"
            )
        return self


class AnalysisSpec(_Model):
    """One analysis step. Without ``metrics`` it is the backbone threshold check
    (``thresholds``); with ``metrics`` every interval is judged canary vs baseline by
    rust_core (Kayenta), and several intervals follow Kayenta's rule: every earlier
    score >= marginal_threshold, the last >= pass_threshold. Argo-style limits:
    ``failure_limit``, ``inconclusive_limit``, ``consecutive_error_limit``."""

    interval: Duration = human("30s")
    count: int = Field(1, ge=1, le=1000)
    warmup: Duration = human("0s")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    failure_limit: int = Field(0, ge=0, description="failed intervals tolerated")
    inconclusive_limit: int = Field(1, ge=0)
    on_inconclusive: OnInconclusive | None = Field(
        None, description="default: pause when metrics are judged, rollback in thresholds mode"
    )
    # --- Kayenta-style judgement (used when metrics are given)
    provider: Literal["router", "prometheus"] | None = Field(
        None, description="default: prometheus when the metrics have queries, else router"
    )
    metrics: list[AnalysisMetric] = Field(default_factory=list)
    measurements: list[MeasuredMetric] = Field(
        default_factory=list,
        description="Argo-style Web/Job metrics: each interval one value per measurement, "
        "checked against its success condition (not a canary-vs-baseline comparison)",
    )
    groups: dict[str, float] = Field(
        default_factory=dict, description="group name -> weight (percent); others share the rest"
    )
    pass_threshold: float = Field(95.0, ge=0, le=100)
    marginal_threshold: float = Field(75.0, ge=0, le=100)
    confidence: float = Field(0.98, gt=0.5, lt=1)
    lookback: Duration | None = Field(
        None,
        description="judge a sliding window of this length; default: the growing window "
        "from the start of the analysis (Kayenta's default)",
    )
    step: Duration = Field(human("1s"), description="resolution of range queries / router buckets")
    consecutive_error_limit: int = Field(
        4,
        ge=0,
        description="metrics-backend errors in a row tolerated (the next one ends the analysis)",
    )
    on_error: Literal["rollback", "pause", "continue"] = Field(
        "rollback", description="what to do when consecutive_error_limit is exceeded"
    )
    on_marginal: Literal["pause", "rollback", "continue"] = Field(
        "pause", description="a Marginal last interval: wait for a human decision by default"
    )
    decision_timeout: Duration | None = Field(
        None,
        description="how long a paused analysis waits for `approve` (default approvals.timeout)",
    )
    on_decision_timeout: Literal["rollback", "continue"] = "rollback"

    @model_validator(mode="after")
    def _judge_config(self) -> AnalysisSpec:
        if self.marginal_threshold > self.pass_threshold:
            raise ValueError("marginal_threshold must not exceed pass_threshold")
        names = [m.name for m in self.metrics]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"metric names must be unique (repeated: {', '.join(dup)})")
        if self.metrics and all(m.dry_run for m in self.metrics):
            raise ValueError(
                "every metric is dry_run: keep at least one judged metric "
                "(or use dry_run measurements)"
            )
        mnames = [m.name for m in self.measurements]
        mdup = sorted({n for n in mnames if mnames.count(n) > 1})
        if mdup:
            raise ValueError(f"measurement names must be unique (repeated: {', '.join(mdup)})")
        unknown = sorted(set(self.groups) - {m.group for m in self.metrics})
        if unknown:
            raise ValueError(f"groups {', '.join(unknown)} have no metric")
        if any(w < 0 for w in self.groups.values()):
            raise ValueError("group weights must be >= 0")
        provider = self.effective_provider()
        for m in self.metrics:
            if provider == "prometheus" and m.query is None:
                raise ValueError(f"metric {m.name!r}: the prometheus provider needs a query")
            if provider == "router" and m.source is None:
                raise ValueError(f"metric {m.name!r}: the router provider needs a source")
        if self.lookback is not None and self.lookback.total_seconds() <= 0:
            raise ValueError("lookback must be positive")
        if self.step.total_seconds() <= 0:
            raise ValueError("step must be positive")
        return self

    @property
    def judged(self) -> bool:
        """True when rust_core judges metrics; False for the backbone thresholds mode."""
        return bool(self.metrics)

    def live_metrics(self) -> list[AnalysisMetric]:
        """The metrics that decide the interval (``dry_run`` ones are judged apart)."""
        return [m for m in self.metrics if not m.dry_run]

    def effective_provider(self) -> Literal["router", "prometheus"]:
        if self.provider is not None:
            return self.provider
        return "prometheus" if any(m.query for m in self.metrics) else "router"

    def effective_on_inconclusive(self) -> OnInconclusive:
        return self.on_inconclusive or ("pause" if self.judged else "rollback")


class BackgroundAnalysis(AnalysisSpec):
    """Strategy-level analysis (Argo's background ``analysis:``): from step
    ``start_at_step`` until the steps end it runs alongside them, in passes of ``count``
    intervals, and the moment one fails the run stops and compensates."""

    start_at_step: int = Field(0, ge=0, description="index of the step it starts with")
