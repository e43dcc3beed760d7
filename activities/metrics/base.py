"""The metric-provider interface of canary analysis and its error classes.

A provider turns one :class:`~workflows.spec.AnalysisMetric` and one :class:`Scope`
(service, environment, version) into a :class:`Series` over a time window. Errors are
classified so the workflow can react: :class:`MetricsUnavailable` (timeout, 5xx,
connection refused: retryable), :class:`NoData` (empty result: the judge sees no data),
:class:`MetricMismatch` (only NaN, typically canary/baseline label mismatch or 0/0:
not retryable), :class:`BadQuery` (syntax or execution error: not retryable). Every
message names the query that failed."""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from code_foundation.errors import CodeError
from workflows.spec import AnalysisMetric


class MetricsError(CodeError):
    """A metrics backend could not answer a query. ``query`` is the failing query."""

    retryable = False
    exit_code = 1

    def __init__(self, message: str, *, query: str = "") -> None:
        super().__init__(message)
        self.query = query


class MetricsUnavailable(MetricsError):
    """Timeout, 5xx or connection refused: trying again may work."""

    retryable = True
    exit_code = 3


class NoData(MetricsError):
    """The query matched no series in the window."""


class MetricMismatch(MetricsError):
    """Only NaN values (e.g. canary and baseline label sets do not match, or 0/0)."""


class BadQuery(MetricsError):
    """The backend refused the query (syntax error or cannot be executed)."""

    exit_code = 2


class Scope(BaseModel):
    service: str
    environment: str
    version: str
    namespace: str = ""


class Series(BaseModel):
    """Values of one metric for one version; ``query`` is the exact text sent."""

    query: str = ""
    timestamps: list[float] = Field(default_factory=list)
    values: list[float] = Field(default_factory=list)

    def finite(self) -> list[float]:
        return [v for v in self.values if math.isfinite(v)]


def render(template: str, scope: Scope) -> str:
    """Replace ``{version}``, ``{service}``, ``{environment}``, ``{namespace}`` (PromQL
    braces elsewhere are left alone: this is not ``str.format``)."""
    out = template
    for key in ("version", "service", "environment", "namespace"):
        out = out.replace("{" + key + "}", getattr(scope, key))
    return out


@runtime_checkable
class MetricsProvider(Protocol):
    name: str

    async def fetch(
        self, metric: AnalysisMetric, scope: Scope, start: float, end: float, step: float
    ) -> Series:
        """The metric's series for ``scope`` in ``[start, end]``; raises a MetricsError."""
        ...

    async def validate(self, metric: AnalysisMetric, scope: Scope) -> None:
        """Raise :class:`BadQuery` when the backend cannot parse the metric's query."""
        ...

    def describe(self) -> str:
        """Where the data comes from (recorded with every verdict)."""
        ...
