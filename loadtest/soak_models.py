"""Soak plans and the public input/result models of ``SoakTestWorkflow`` (pure).

A plan (YAML, :func:`parse_plan`)::

    name: demo-soak
    target: {service: demo, environment: dev}   # or {url: http://127.0.0.1:8080}
    scenario: ../scenarios/demo.yaml            # path (relative to the plan) or inline
    rate: 50                                    # arrivals per second
    duration: 24h                               # default 24h
    slice: 5m                                   # default 5m; one heartbeating activity each
    baseline: 1h                                # drift/creep compare against this first part
    checks:
      slo: {objective: 0.999, latency_ms: 250}
      p99_drift: {max_increase: 0.5}            # p99 may grow 50% over the baseline
      error_creep: {max_increase: 0.01}         # +1 percentage point over the baseline
      resources: {max_rss_slope_mb_per_hour: 50, alpha: 0.05}

Every bad field is named through :class:`code_foundation.errors.SpecError`."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from code_foundation.durations import Duration, human
from code_foundation.errors import SpecError
from code_foundation.loader import problems_of, read_text
from code_foundation.notify_ref import NotifyRef
from loadtest.safety import load_target_problem
from loadtest.scenario import Scenario, _load_yaml, load_scenario
from loadtest.stats import LoadStats

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# ---------------------------------------------------------------- plan
class SoakTarget(_M):
    """A local-platform service/environment (router endpoint + process resources) or a URL."""

    service: str | None = Field(None, pattern=_NAME)
    environment: str | None = Field(None, pattern=_NAME)
    platform: Literal["local"] = "local"
    url: str | None = Field(None, description="loopback base URL; no resource trend")

    @model_validator(mode="after")
    def _one(self) -> SoakTarget:
        if self.url is not None:
            if self.service or self.environment:
                raise ValueError("give either url or service+environment, not both")
            problem = load_target_problem(self.url)
            if problem:
                raise ValueError(problem)
        elif not (self.service and self.environment):
            raise ValueError("give service and environment (local platform) or url")
        return self

    def describe(self) -> str:
        return self.url or f"{self.service}/{self.environment}"


class BurnWindow(_M):
    long: Duration
    short: Duration
    factor: float = Field(gt=0)


class SLOCheck(_M):
    objective: float = Field(0.999, gt=0, lt=1)
    latency_ms: float | None = Field(None, gt=0, description="good = expected status and faster")
    windows: list[BurnWindow] = Field(
        default_factory=lambda: [
            BurnWindow(long=human("1h"), short=human("5m"), factor=14.4),
            BurnWindow(long=human("6h"), short=human("30m"), factor=6.0),
        ],
        min_length=1,
    )


class DriftCheck(_M):
    max_increase: float = Field(0.5, gt=0, description="p99 / baseline p99 - 1")
    min_delta_ms: float = Field(5.0, ge=0, description="ignore drifts smaller than this")
    min_requests: int = Field(100, ge=1)


class ErrorCreepCheck(_M):
    max_increase: float = Field(0.01, gt=0, le=1, description="error rate - baseline error rate")
    min_requests: int = Field(100, ge=1)


class ResourceCheck(_M):
    """Trend of the target's memory: RSS of the local service's processes (summed over
    serving instances) or, with ``prometheus_query``, the value of that instant query
    (bytes; summed over the result's series) from ``CODE_PROMETHEUS_URL``."""

    max_rss_slope_mb_per_hour: float = Field(50.0, gt=0)
    alpha: float = Field(0.05, gt=0, lt=1, description="Mann-Kendall significance")
    min_growth_mb: float = Field(
        2.0,
        ge=0,
        description=(
            "noise floor: the fitted growth over the judged window (slope x span) must "
            "reach this too, so allocator jitter over a short window is not a leak"
        ),
    )
    warmup: Duration = Field(default=human("0s"), description="ignore samples before this")
    min_points: int = Field(10, ge=4)
    sample_every: Duration = Field(default=human("5s"))
    prometheus_query: str | None = Field(
        None, min_length=1, description='e.g. process_resident_memory_bytes{job="demo"}'
    )


class SoakChecks(_M):
    slo: SLOCheck | None = Field(default_factory=SLOCheck)
    p99_drift: DriftCheck | None = Field(default_factory=DriftCheck)
    error_creep: ErrorCreepCheck | None = Field(default_factory=ErrorCreepCheck)
    resources: ResourceCheck | None = Field(default_factory=ResourceCheck)


class SoakPlan(_M):
    name: str = Field("soak", pattern=_NAME, max_length=60)
    target: SoakTarget
    scenario: Scenario
    rate: float = Field(gt=0, le=100_000, description="arrivals per second")
    duration: Duration = human("24h")
    slice: Duration = human("5m")
    baseline: Duration = Field(default=human("1h"), description="drift/creep reference period")
    max_vus: int = Field(200, ge=1, le=10_000)
    checks: SoakChecks = Field(default_factory=SoakChecks)
    slices_per_run: int = Field(48, ge=1, le=500, description="continue-as-new after this many")
    notifications: NotifyRef | None = Field(None, description="sinks (by name) told of the run")

    @model_validator(mode="after")
    def _times(self) -> SoakPlan:
        problems = []
        if self.duration.total_seconds() <= 0:
            problems.append("duration must be positive")
        if self.slice.total_seconds() < 1:
            problems.append("slice must be at least 1s")
        elif self.slice > self.duration:
            problems.append(
                f"slice ({self.slice}) is longer than duration ({self.duration}); "
                "use a shorter slice or a longer duration"
            )
        if self.duration > timedelta(days=7):
            problems.append("duration must be at most 7 days")
        if self.baseline.total_seconds() <= 0:
            problems.append("baseline must be positive")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def slice_s(self) -> float:
        return self.slice.total_seconds()

    @property
    def n_slices(self) -> int:
        return max(1, math.ceil(self.duration.total_seconds() / self.slice_s - 1e-9))

    def slice_length(self, index: int) -> float:
        return min(self.slice_s, self.duration.total_seconds() - index * self.slice_s)

    def workflow_id(self) -> str:
        t = self.target
        where = f"{t.service}-{t.environment}" if t.service else "url"
        return f"soak-{self.name}-{where}"


def parse_plan(text: str, source: str = "plan", base_dir: str | Path | None = None) -> SoakPlan:
    """YAML -> SoakPlan; ``scenario`` may be a path relative to ``base_dir``."""
    data = _load_yaml(text, source)
    sc = data.get("scenario")
    if isinstance(sc, str):
        path = Path(sc)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        data = {
            **data,
            "scenario": load_scenario(path).model_dump(by_alias=True, exclude_none=True),
        }
    try:
        return SoakPlan.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, problems_of(exc)) from None


def load_plan(path: str | Path) -> SoakPlan:
    """A soak plan file (missing, binary or non-UTF-8: SpecError naming the file)."""
    return parse_plan(read_text(path), str(path), Path(path).resolve().parent)


# ---------------------------------------------------------------- activities
class ResolveTargetInput(_M):
    target: SoakTarget


class ResolveTargetResult(_M):
    url: str
    versions: list[str] = Field(default_factory=list)


class ResourceSample(_M):
    t: float = Field(description="unix time")
    rss_bytes: int
    cpu_percent: float = 0.0
    instances: int = 0


class SliceInput(_M):
    workflow_id: str
    index: int
    url: str
    scenario: Scenario
    rate: float
    duration_s: float
    max_vus: int
    slo_latency_ms: float | None = None
    target: SoakTarget
    versions: list[str] = Field(default_factory=list)
    sample_every_s: float = 5.0
    prometheus_query: str | None = None


class SliceResult(_M):
    index: int
    attempt: int = 1
    stats: LoadStats
    resources: list[ResourceSample] = Field(default_factory=list)


# ---------------------------------------------------------------- workflow
class CheckOutcome(_M):
    name: str
    ok: bool
    value: float | None = None
    limit: float | None = None
    detail: str = ""


class CheckReport(_M):
    slice_index: int
    at_s: float = Field(description="seconds since the soak started (workflow time)")
    breach: bool = False
    reason: str = ""
    outcomes: list[CheckOutcome] = Field(default_factory=list)


class SliceSummary(_M):
    index: int
    start_s: float
    end_s: float
    attempt: int = 1
    planned: int
    sent: int
    dropped: int
    completed: int
    errors: int
    good: int
    slo_total: int
    achieved_rate: float
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    rss_mb: float | None = None


class TrendPoint(_M):
    t_s: float = Field(description="seconds since the soak started")
    rss_mb: float
    cpu_percent: float = 0.0


class SoakCarry(_M):
    """State carried across continue-as-new (histograms as base64 inside LoadStats)."""

    started_at: float
    url: str = ""
    versions: list[str] = Field(default_factory=list)
    next_slice: int = 0
    runs: int = 1
    counted: list[int] = Field(default_factory=list, description="slice indexes already added")
    totals: LoadStats = Field(default_factory=LoadStats)
    baseline: LoadStats = Field(default_factory=LoadStats)
    slices: list[SliceSummary] = Field(default_factory=list)
    trend: list[TrendPoint] = Field(default_factory=list)
    last_check: CheckReport | None = None
    breach: CheckReport | None = None
    aborted: str = ""


class SoakInput(_M):
    plan: SoakPlan
    carry: SoakCarry | None = None
    actor: str = "unknown"
    token: str | None = Field(None, repr=False, description="the starter's OIDC token (JWT)")


Verdict = Literal["pass", "fail", "aborted"]


class SoakStatus(_M):
    workflow_id: str
    name: str
    target: str
    phase: str = "starting"
    elapsed_s: float = 0.0
    remaining_s: float = 0.0
    slices_done: int = 0
    slices_total: int = 0
    runs: int = 1
    planned_rate: float = 0.0
    current_rate: float = 0.0
    totals: dict[str, Any] = Field(default_factory=dict)
    last_check: CheckReport | None = None
    verdict: Verdict | None = None
    reason: str = ""
    notes: list[str] = Field(default_factory=list, description="e.g. malformed signals ignored")


class SoakReportInput(_M):
    workflow_id: str
    plan: SoakPlan
    carry: SoakCarry
    verdict: Verdict
    reason: str = ""


class SoakReportResult(_M):
    html_key: str = ""
    markdown_key: str = ""
    png_key: str = ""
    store: str = ""


class SoakResult(_M):
    workflow_id: str
    verdict: Verdict
    reason: str = ""
    slices: int
    runs: int
    totals: dict[str, Any] = Field(default_factory=dict)
    stats: LoadStats
    last_check: CheckReport | None = None
    summaries: list[SliceSummary] = Field(default_factory=list)
    trend: list[TrendPoint] = Field(default_factory=list)
    report: SoakReportResult | None = None
