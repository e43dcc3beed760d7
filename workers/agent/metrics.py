"""Prometheus metrics of the local platform, each on a dedicated ``CollectorRegistry``.

Data plane (:class:`RouterMetrics`, in each router process, on its admin port's
``/metrics``):

- ``code_router_requests_total{service,environment,version,code}`` counter
- ``code_router_request_duration_seconds{service,environment,version}`` histogram

Control plane (:class:`AgentMetrics`, the agent's ``/metrics``): the routers'
families above, merged (:func:`merge_texts`), plus gauges rebuilt from the live
state on every scrape (:meth:`AgentMetrics.refresh`), so retired versions disappear:

- ``code_router_weight{service,environment,version}`` gauge
- ``code_instance_up{service,environment,version,instance}`` gauge (1 = healthy)
- ``code_instance_rss_bytes{service,environment,version,instance}`` gauge (psutil)

Router counters live in the router processes, so they survive an agent restart."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RouterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        base = ["service", "environment", "version"]
        self.requests = Counter(
            "code_router_requests_total",
            "Requests through the router, by upstream version and status code",
            [*base, "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "code_router_request_duration_seconds",
            "Router request duration, by version",
            base,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}

    def observe(self, service: str, env: str, version: str, code: int, seconds: float) -> None:
        key = (service, env, version, str(code))
        pair = self._children.get(key)
        if pair is None:
            pair = (
                self.requests.labels(service, env, version, str(code)),
                self.duration.labels(service, env, version),
            )
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def merge_texts(texts: Iterable[str]) -> bytes:
    """One exposition of several routers' ``/metrics`` (same families, other labels)."""
    merged: dict[str, Metric] = {}
    for text in texts:
        for fam in text_string_to_metric_families(text):
            have = merged.get(fam.name)
            if have is None:
                merged[fam.name] = fam
            else:
                have.samples.extend(fam.samples)
    if not merged:
        return b""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(merged.values())))
    return generate_latest(registry)


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        base = ["service", "environment", "version"]
        self.weight = Gauge(
            "code_router_weight",
            "Traffic weight (percent) per version",
            base,
            registry=self.registry,
        )
        self.up = Gauge(
            "code_instance_up",
            "1 when the instance passes its health check",
            [*base, "instance"],
            registry=self.registry,
        )
        self.rss = Gauge(
            "code_instance_rss_bytes",
            "Resident memory of the instance process",
            [*base, "instance"],
            registry=self.registry,
        )

    def refresh(self, services: Iterable[Any]) -> None:
        """``services``: objects with ``service``, ``environment``, ``weights`` and
        ``versions`` ({version: obj with ``instances``})."""
        self.weight.clear()
        self.up.clear()
        self.rss.clear()
        for svc in services:
            for version, w in svc.weights.items():
                self.weight.labels(svc.service, svc.environment, version).set(w)
            for version, ver in svc.versions.items():
                for inst in ver.instances:
                    labels = (svc.service, svc.environment, version, str(inst.index))
                    self.up.labels(*labels).set(1 if inst.healthy and inst.alive else 0)
                    self.rss.labels(*labels).set(inst.resources()["rss_bytes"])

    def render(self, router_texts: Iterable[str] = ()) -> bytes:
        return merge_texts(router_texts) + generate_latest(self.registry)
