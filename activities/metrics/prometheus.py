"""``PrometheusProvider``: PromQL over the Prometheus HTTP API (``/api/v1/query`` and
``/api/v1/query_range``) with httpx.

Auth: ``Authorization: Bearer <prometheus_token>`` and any extra headers; TLS: a CA
file or (tests only) no verification. Error classification follows the API's
envelope: 400 ``bad_data`` / 422 ``execution`` -> :class:`BadQuery`; 5xx, 503
``timeout``, transport errors and timeouts -> :class:`MetricsUnavailable`; 401/403 ->
:class:`MetricsError` (not retryable: fix the token); an empty result -> :class:`NoData`;
only NaN values -> :class:`MetricMismatch`. Several series in a result are pooled
(queries should aggregate to one series per version)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import httpx

from activities.metrics.base import (
    BadQuery,
    MetricMismatch,
    MetricsError,
    MetricsUnavailable,
    NoData,
    Scope,
    Series,
    render,
)
from workflows.spec import AnalysisMetric

if TYPE_CHECKING:
    from activities.settings import Settings

# a fixed evaluation time for validation: parsing does not depend on data
VALIDATE_AT = 1_000_000_000.0


class PrometheusProvider:
    name = "prometheus"

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        verify: bool | str = True,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.headers = dict(headers or {})
        if token:
            self.headers.setdefault("Authorization", f"Bearer {token}")
        self.verify = verify
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings | None) -> PrometheusProvider:
        url = getattr(settings, "prometheus_url", None)
        if not url:
            raise MetricsError(
                "analysis uses the prometheus provider but no Prometheus is configured; "
                "set CODE_PROMETHEUS_URL (e.g. http://127.0.0.1:9090)"
            )
        token = getattr(settings, "prometheus_token", None)
        ca = getattr(settings, "prometheus_ca_file", None)
        verify: bool | str = str(ca) if ca else not getattr(settings, "prometheus_insecure", False)
        return cls(
            url,
            token=token.get_secret_value() if token is not None else None,
            headers=dict(getattr(settings, "prometheus_headers", {}) or {}),
            verify=verify,
            timeout=float(getattr(settings, "prometheus_timeout", 10.0)),
        )

    def describe(self) -> str:
        return f"prometheus {self.url}"

    # ------------------------------------------------------------ HTTP API
    async def _get(self, path: str, params: dict[str, Any], query: str) -> Any:
        try:
            async with httpx.AsyncClient(
                base_url=self.url, headers=self.headers, verify=self.verify, timeout=self.timeout
            ) as client:
                resp = await client.get(path, params=params)
        except httpx.TimeoutException:
            raise MetricsUnavailable(
                f"Prometheus at {self.url} timed out after {self.timeout:g}s on query: {query}",
                query=query,
            ) from None
        except httpx.TransportError as exc:
            raise MetricsUnavailable(
                f"Prometheus at {self.url} is unreachable ({type(exc).__name__}: {exc}) "
                f"on query: {query}",
                query=query,
            ) from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        kind = body.get("errorType", "") if isinstance(body, dict) else ""
        detail = body.get("error", "") if isinstance(body, dict) else ""
        detail = detail or resp.text[:300]
        code = resp.status_code
        if code in (401, 403):
            raise MetricsError(
                f"Prometheus at {self.url} refused access ({code}); check CODE_PROMETHEUS_TOKEN "
                f"/ headers; query: {query}",
                query=query,
            )
        if code >= 500 or kind in ("timeout", "canceled", "unavailable", "internal"):
            raise MetricsUnavailable(
                f"Prometheus at {self.url} answered {code} {kind}: {detail}; query: {query}",
                query=query,
            )
        if code in (400, 422) or kind in ("bad_data", "execution"):
            raise BadQuery(
                f"Prometheus refused the query ({kind or code}: {detail}): {query}", query=query
            )
        if code >= 400 or not isinstance(body, dict) or body.get("status") != "success":
            raise MetricsUnavailable(
                f"Prometheus at {self.url} answered {code}: {detail}; query: {query}", query=query
            )
        return body["data"]

    async def query(self, query: str, at: float | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"query": query}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data: dict[str, Any] = await self._get("/api/v1/query", params, query)
        return data

    async def query_range(
        self, query: str, start: float, end: float, step: float
    ) -> dict[str, Any]:
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data: dict[str, Any] = await self._get("/api/v1/query_range", params, query)
        return data

    # ------------------------------------------------------------ provider
    async def fetch(
        self, metric: AnalysisMetric, scope: Scope, start: float, end: float, step: float
    ) -> Series:
        q = render(_query_of(metric), scope)
        data = await self.query_range(q, start, end, step)
        return series_from(data, q, f"{metric.name} for {scope.version}")

    async def validate(self, metric: AnalysisMetric, scope: Scope) -> None:
        await self.query(render(_query_of(metric), scope), at=VALIDATE_AT)


def _query_of(metric: AnalysisMetric) -> str:
    if metric.query is None:  # the spec model requires one for this provider
        raise BadQuery(f"metric {metric.name} has no PromQL query", query="")
    return metric.query


def _num(text: Any) -> float:
    try:
        return float(text)  # Prometheus sends "NaN", "+Inf", "-Inf" as strings
    except (TypeError, ValueError):
        return math.nan


def series_from(data: dict[str, Any], query: str, what: str) -> Series:
    """Flatten a matrix/vector/scalar result into one Series; classify empty/NaN."""
    kind, result = data.get("resultType"), data.get("result")
    points: list[tuple[float, float]] = []
    if kind == "matrix":
        for s in result or []:
            points += [(float(t), _num(v)) for t, v in s.get("values", [])]
    elif kind == "vector":
        points += [(float(s["value"][0]), _num(s["value"][1])) for s in result or []]
    elif kind == "scalar" and result:
        points.append((float(result[0]), _num(result[1])))
    if not points:
        raise NoData(
            f"no data for {what}: the query matched no series in the window: {query}", query=query
        )
    points.sort(key=lambda p: p[0])
    series = Series(query=query, timestamps=[p[0] for p in points], values=[p[1] for p in points])
    if not series.finite():
        raise MetricMismatch(
            f"only NaN values for {what} ({len(points)} points): the labels of the two sides "
            f"of an operation probably do not match, or it divides 0 by 0: {query}",
            query=query,
        )
    return series
