"""Metric providers for canary analysis: one interface (:mod:`.base`), the Prometheus
HTTP API (:mod:`.prometheus`) and the local router (:mod:`.router`, the embedded
default). :func:`provider_for` picks one from an ``AnalysisSpec`` and ``Settings``."""

from typing import TYPE_CHECKING

from activities.metrics.base import (
    BadQuery,
    MetricMismatch,
    MetricsError,
    MetricsProvider,
    MetricsUnavailable,
    NoData,
    Scope,
    Series,
)

if TYPE_CHECKING:
    from activities.platform.base import SampleSource
    from activities.settings import Settings

__all__ = [
    "BadQuery",
    "MetricMismatch",
    "MetricsError",
    "MetricsProvider",
    "MetricsUnavailable",
    "NoData",
    "Scope",
    "Series",
    "provider_for",
]


def provider_for(
    kind: str, settings: "Settings | None", platform: "SampleSource | None" = None
) -> MetricsProvider:
    """The provider named ``kind`` ("prometheus" or "router") configured from settings."""
    if kind == "prometheus":
        from activities.metrics.prometheus import PrometheusProvider

        return PrometheusProvider.from_settings(settings)
    from activities.metrics.router import RouterProvider

    if platform is None:
        from activities.platform.local import LocalPlatform

        platform = LocalPlatform(getattr(settings, "agent_url", "http://127.0.0.1:8270"))
    return RouterProvider(platform)
