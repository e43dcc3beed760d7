"""Result and input types shared by the native wrapper and the pure-Python reference.

Every result is a frozen dataclass with ``to_dict()``; ``to_dict`` maps non-finite
floats (NaN, +/-inf) to ``None`` so the result is strict-JSON serialisable.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Direction = Literal["increase", "decrease", "either"]
NanStrategy = Literal["remove", "replace"]
Alternative = Literal["two-sided", "less", "greater"]
MwuMethod = Literal["auto", "exact", "asymptotic"]

# SRE Workbook multiwindow, multi-burn-rate alerts: (long s, short s, factor, severity)
DEFAULT_WINDOWS: tuple[tuple[float, float, float, str], ...] = (
    (3600.0, 300.0, 14.4, "page"),
    (21600.0, 1800.0, 6.0, "page"),
    (259200.0, 21600.0, 1.0, "ticket"),
)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list):
        return [_clean(x) for x in v]
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    return v


class _ToDict:
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (nested results included); NaN/inf become None."""
        return _clean(dataclasses.asdict(self))  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True, slots=True)
class MannWhitneyResult(_ToDict):
    u: float
    p_value: float
    z: float


@dataclass(frozen=True, slots=True)
class HodgesLehmannResult(_ToDict):
    estimate: float
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class MetricSpec(_ToDict):
    name: str
    group: str = "default"
    direction: Direction = "either"
    critical: bool = False
    must_have_data: bool = False
    allowed_increase: float = 1.0
    allowed_decrease: float = 1.0
    nan_strategy: NanStrategy = "remove"
    outlier_factor: float | None = 3.0

    @classmethod
    def coerce(cls, obj: MetricSpec | Mapping[str, Any], where: str = "metrics") -> MetricSpec:
        if isinstance(obj, MetricSpec):
            return obj
        if isinstance(obj, Mapping):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(obj) - known)
            if unknown:
                raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
            if "name" not in obj:
                raise ValueError(f"{where}: missing field 'name'")
            return cls(**obj)
        raise TypeError(f"{where}: expected a MetricSpec or a dict, got {type(obj).__name__}")

    def as_native(self) -> tuple[str, str, str, bool, bool, float, float, str, float]:
        return (
            str(self.name),
            str(self.group),
            str(self.direction),
            bool(self.critical),
            bool(self.must_have_data),
            float(self.allowed_increase),
            float(self.allowed_decrease),
            str(self.nan_strategy),
            0.0 if self.outlier_factor is None else float(self.outlier_factor),
        )


@dataclass(frozen=True, slots=True)
class MetricResult(_ToDict):
    """One metric's verdict.  ``critical`` is True when this metric is a critical failure."""

    name: str
    group: str
    classification: Literal["Pass", "High", "Low", "NoData", "Error"]
    reason: str
    critical: bool
    canary_mean: float
    baseline_mean: float
    effect_size: float
    p_value: float
    hl_estimate: float
    hl_lower: float
    hl_upper: float
    canary_count: int = 0
    baseline_count: int = 0


@dataclass(frozen=True, slots=True)
class JudgeResult(_ToDict):
    score: float
    classification: Literal["Pass", "Marginal", "Fail"]
    groups: dict[str, float]
    metrics: list[MetricResult]
    reason: str


@dataclass(frozen=True, slots=True)
class BurnWindow(_ToDict):
    severity: str
    long_window: float
    short_window: float
    factor: float
    long_burn_rate: float
    short_burn_rate: float
    firing: bool


@dataclass(frozen=True, slots=True)
class BurnRateResult(_ToDict):
    windows: list[BurnWindow]
    error_budget_remaining: float
    now: float
    firing: bool = field(default=False)


@dataclass(frozen=True, slots=True)
class TheilSenResult(_ToDict):
    slope: float
    intercept: float
    low_slope: float
    high_slope: float


@dataclass(frozen=True, slots=True)
class MannKendallResult(_ToDict):
    s: float
    tau: float
    z: float
    p_value: float
    trend: Literal["increasing", "decreasing", "no trend"]


@dataclass(frozen=True, slots=True)
class Violation(_ToDict):
    rule_id: str
    rule: str
    document: int
    kind: str
    name: str
    namespace: str
    path: str
    message: str


def trend_of(
    p_value: float, z: float, alpha: float
) -> Literal["increasing", "decreasing", "no trend"]:
    if p_value < alpha and z > 0:
        return "increasing"
    if p_value < alpha and z < 0:
        return "decreasing"
    return "no trend"


def check_mapping(obj: object, name: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise TypeError(
            f"{name}: expected a mapping of metric name to values, got {type(obj).__name__}"
        )
    return obj


def coerce_specs(metrics: Sequence[MetricSpec | Mapping[str, Any]]) -> list[MetricSpec]:
    if isinstance(metrics, (str, bytes)) or not isinstance(metrics, Sequence):
        raise TypeError("metrics: expected a sequence of MetricSpec or dicts")
    specs = [MetricSpec.coerce(m, f"metrics[{i}]") for i, m in enumerate(metrics)]
    seen: set[str] = set()
    for s in specs:
        if s.name in seen:
            raise ValueError(f"metrics: duplicate metric name {s.name!r}")
        seen.add(s.name)
    return specs


def check_groups(groups: Mapping[str, float] | None) -> list[tuple[str, float]]:
    if groups is None:
        return []
    if not isinstance(groups, Mapping):
        raise TypeError("groups: expected a mapping of group name to weight")
    out = []
    for g, w in groups.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"groups: weight of {g!r} must be a finite number >= 0")
        out.append((str(g), float(w)))
    return out
