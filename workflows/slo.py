"""SLOs in an OpenSLO-compatible subset, and the Prometheus rules generated from them.

Accepted (``apiVersion: openslo/v1``, ``kind: SLO``; unknown fields are refused)::

    metadata: {name: demo-availability, displayName: ...}
    spec:
      service: demo
      indicator:                      # inline SLI: a ratio of two counters
        metadata: {name: demo-requests}
        spec:
          ratioMetric:
            counter: true
            good:  {metricSource: {type: Prometheus, spec: {query: 'code_router_requests_total{code!~"5.."}'}}}
            total: {metricSource: {type: Prometheus, spec: {query: 'code_router_requests_total'}}}
      timeWindow: [{duration: 30d, isRolling: true}]
      budgetingMethod: Occurrences
      objectives: [{target: 0.99}]

A query is a counter selector; rules take ``sum(rate(<query>[W]))``. A query holding
``{{window}}`` is used as written with the window substituted instead.

:func:`prometheus_rules` returns a Prometheus rule file (dict): recording rules
``slo:sli_error:ratio_rate<W>`` for every window the alerts need, the error budget
remaining over the SLO window, and the SRE Workbook's multi-window multi-burn-rate
alerts (1h/5m 14.4× and 6h/30m 6× page; 1d/2h 3× and 3d/6h 1× ticket). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from code_foundation.durations import Duration, format_duration
from code_foundation.errors import SpecError
from code_foundation.loader import problems_of

# (severity, long window, short window, burn-rate factor) — SRE Workbook, ch. 5, table 5-8
BURN_WINDOWS: list[tuple[str, str, str, float]] = [
    ("page", "1h", "5m", 14.4),
    ("page", "6h", "30m", 6.0),
    ("ticket", "1d", "2h", 3.0),
    ("ticket", "3d", "6h", 1.0),
]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PromSource(_M):
    query: str = Field(min_length=1)


class MetricSource(_M):
    type: Literal["Prometheus", "prometheus"] = "Prometheus"
    spec: PromSource


class MetricRef(_M):
    metric_source: MetricSource = Field(alias="metricSource")


class RatioMetric(_M):
    counter: bool = True
    good: MetricRef
    total: MetricRef


class IndicatorSpec(_M):
    ratio_metric: RatioMetric = Field(alias="ratioMetric")
    description: str = ""


class Meta(_M):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    display_name: str | None = Field(None, alias="displayName")
    labels: dict[str, Any] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Indicator(_M):
    metadata: Meta | None = None
    spec: IndicatorSpec


class TimeWindow(_M):
    duration: Duration = Field(default="30d")  # type: ignore[assignment]
    is_rolling: bool = Field(True, alias="isRolling")


class Objective(_M):
    display_name: str | None = Field(None, alias="displayName")
    target: float = Field(gt=0, lt=1)


class SLOSpec(_M):
    description: str = ""
    service: str = Field(min_length=1)
    indicator: Indicator
    time_window: list[TimeWindow] = Field(alias="timeWindow", min_length=1, max_length=1)
    budgeting_method: Literal["Occurrences"] = Field("Occurrences", alias="budgetingMethod")
    objectives: list[Objective] = Field(min_length=1, max_length=1)

    @field_validator("time_window")
    @classmethod
    def _rolling(cls, v: list[TimeWindow]) -> list[TimeWindow]:
        if not v[0].is_rolling:
            raise ValueError("only rolling time windows are supported")
        return v


class SLO(_M):
    api_version: Literal["openslo/v1"] = Field(alias="apiVersion")
    kind: Literal["SLO"]
    metadata: Meta
    spec: SLOSpec

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def target(self) -> float:
        return self.spec.objectives[0].target

    @property
    def window(self) -> str:
        return format_duration(self.spec.time_window[0].duration)

    @property
    def window_seconds(self) -> float:
        return self.spec.time_window[0].duration.total_seconds()

    def good_query(self) -> str:
        return self.spec.indicator.spec.ratio_metric.good.metric_source.spec.query

    def total_query(self) -> str:
        return self.spec.indicator.spec.ratio_metric.total.metric_source.spec.query


def parse_slos(text: str, source: str = "SLO") -> list[SLO]:
    """Every ``kind: SLO`` document of a (multi-document) YAML text; SpecError names bad fields."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise SpecError(source, [f"malformed YAML: {exc}"]) from None
    out: list[SLO] = []
    problems: list[str] = []
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict) or doc.get("kind") != "SLO":
            continue
        try:
            out.append(SLO.model_validate(doc))
        except ValidationError as exc:
            problems += [f"document {i}: {p}" for p in problems_of(exc)]
    if problems:
        raise SpecError(source, problems)
    if not out:
        raise SpecError(source, ["no `kind: SLO` document found"])
    return out


def rate(query: str, window: str) -> str:
    if "{{window}}" in query:
        return query.replace("{{window}}", window)
    return f"sum(rate({query}[{window}]))"


def _windows() -> list[str]:
    seen: list[str] = []
    for _, long_w, short_w, _ in BURN_WINDOWS:
        for w in (long_w, short_w):
            if w not in seen:
                seen.append(w)
    return seen


def prometheus_rules(slos: list[SLO]) -> dict[str, Any]:
    groups: list[dict[str, Any]] = []
    for slo in slos:
        labels = {"slo": slo.name, "service": slo.spec.service}
        sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
        budget = round(1 - slo.target, 10)
        rec: list[dict[str, Any]] = []
        for w in [*_windows(), slo.window]:
            if any(r["record"].endswith(f"rate{w}") for r in rec):
                continue
            rec.append(
                {
                    "record": f"slo:sli_error:ratio_rate{w}",
                    "expr": f"1 - ({rate(slo.good_query(), w)}) / ({rate(slo.total_query(), w)})",
                    "labels": dict(labels),
                }
            )
        rec.append(
            {
                "record": "slo:objective:ratio",
                "expr": f"vector({slo.target})",
                "labels": dict(labels),
            }
        )
        rec.append(
            {
                "record": "slo:error_budget_remaining:ratio",
                "expr": f"1 - (slo:sli_error:ratio_rate{slo.window}{{{sel}}} / {budget})",
                "labels": dict(labels),
            }
        )
        alerts: list[dict[str, Any]] = []
        for severity, long_w, short_w, factor in BURN_WINDOWS:
            threshold = round(factor * budget, 10)
            alerts.append(
                {
                    "alert": "SLOErrorBudgetBurn",
                    "expr": (
                        f"slo:sli_error:ratio_rate{long_w}{{{sel}}} > {threshold}\n"
                        f"and\nslo:sli_error:ratio_rate{short_w}{{{sel}}} > {threshold}"
                    ),
                    "for": "2m" if severity == "page" else "15m",
                    "labels": {
                        **labels,
                        "severity": severity,
                        "long_window": long_w,
                        "short_window": short_w,
                    },
                    "annotations": {
                        "summary": f"{slo.name}: error budget burning {factor}x too fast "
                        f"({long_w}/{short_w} windows)",
                        "description": (
                            f"SLO {slo.name} of service {slo.spec.service} (target {slo.target}, "
                            f"{slo.window} window) burns its error budget at more than {factor}x; "
                            "at this rate it is exhausted early. CODE gates deployments of this "
                            "service while the budget is spent."
                        ),
                    },
                }
            )
        alerts.append(
            {
                "alert": "SLOErrorBudgetExhausted",
                "expr": f"slo:error_budget_remaining:ratio{{{sel}}} <= 0",
                "for": "5m",
                "labels": {**labels, "severity": "ticket"},
                "annotations": {"summary": f"{slo.name}: error budget exhausted over {slo.window}"},
            }
        )
        groups.append({"name": f"slo-{slo.name}-recording", "interval": "30s", "rules": rec})
        groups.append({"name": f"slo-{slo.name}-alerts", "rules": alerts})
    return {"groups": groups}


def rules_yaml(slos: list[SLO]) -> str:
    header = "# generated by `codectl slo rules` from OpenSLO definitions; do not edit by hand\n"
    return header + yaml.safe_dump(prometheus_rules(slos), sort_keys=False, width=200)


# ---------------------------------------------------------------- activities (names + models)


class BudgetInput(_M):
    service: str
    environment: str
    slo: str
    objective: float
    window_seconds: float
    good_query: str | None = None
    total_query: str | None = None
    platform: Literal["local", "kubernetes"] = "local"


class BudgetResult(_M):
    slo: str
    remaining: float = Field(description="1 = untouched, 0 = spent, < 0 = overspent")
    firing: list[str] = Field(
        default_factory=list, description="burn-rate windows firing, e.g. '1h/5m 14.4x'"
    )
    source: str = ""
    events: float = 0.0


class AuditInput(_M):
    actor: str
    action: str
    subject: str
    detail: dict[str, Any] = Field(default_factory=dict)


class AuditResult(_M):
    seq: int
    hash: str
