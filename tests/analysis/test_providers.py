"""Metric providers: PrometheusProvider against a real Prometheus (queries, placeholders,
validation, NoData / NaN / bad query / unreachable) and against a scripted HTTP server
(5xx, timeout, 401, auth header); RouterProvider against a fake platform."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from activities.metrics.base import (
    BadQuery,
    MetricMismatch,
    MetricsError,
    MetricsUnavailable,
    NoData,
    Scope,
)
from activities.metrics.prometheus import PrometheusProvider
from activities.metrics.router import RouterProvider
from activities.platform.base import PlatformUnavailable
from activities.platform.local import WindowSample
from activities.settings import Settings
from tests.analysis.prom import PromServer
from tests.servers import free_port
from workflows.spec import AnalysisMetric

SCOPE = Scope(service="code-agent", environment="test", version="v1")


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromServer]:
    root = tmp_path_factory.mktemp("prom")
    port = free_port()
    srv = PromServer(root, [f"127.0.0.1:{port}"], port=port).start()  # scrapes itself
    try:
        srv.wait_for_series('up{job="code-agent"}')
        yield srv
    finally:
        srv.stop()


def metric(query: str) -> AnalysisMetric:
    return AnalysisMetric(name="m", query=query)


async def test_range_query_with_placeholders(prom: PromServer) -> None:
    p = PrometheusProvider(prom.url)
    now = time.time()
    s = await p.fetch(metric('up{job="{service}"}'), SCOPE, now - 5, now, 1.0)
    assert s.query == 'up{job="code-agent"}'
    assert s.values and all(v == 1.0 for v in s.values)
    assert s.timestamps == sorted(s.timestamps)
    inst = await p.query('up{job="code-agent"}')
    assert inst["resultType"] == "vector"


async def test_empty_result_is_nodata(prom: PromServer) -> None:
    now = time.time()
    with pytest.raises(NoData) as exc:
        await PrometheusProvider(prom.url).fetch(
            metric('up{job="{service}-nope"}'), SCOPE, now - 5, now, 1.0
        )
    assert 'up{job="code-agent-nope"}' in str(exc.value) and not exc.value.retryable


async def test_only_nan_is_metric_mismatch(prom: PromServer) -> None:
    now = time.time()
    with pytest.raises(MetricMismatch) as exc:
        await PrometheusProvider(prom.url).fetch(
            metric("vector(0) / vector(0)"), SCOPE, now - 3, now, 1.0
        )
    assert "NaN" in str(exc.value) and "vector(0) / vector(0)" in exc.value.query


async def test_syntax_error_is_bad_query_and_validate_refuses_it(prom: PromServer) -> None:
    p = PrometheusProvider(prom.url)
    bad = metric('sum(rate(up{job="{service}"}[1m])')
    with pytest.raises(BadQuery) as exc:
        await p.validate(bad, SCOPE)
    assert "bad_data" in str(exc.value) and not exc.value.retryable
    await p.validate(metric('sum(rate(up{job="{service}"}[1m]))'), SCOPE)  # valid: no error


async def test_connection_refused_is_retryable() -> None:
    with pytest.raises(MetricsUnavailable) as exc:
        await PrometheusProvider(f"http://127.0.0.1:{free_port()}").query("up")
    assert exc.value.retryable and "unreachable" in str(exc.value) and "query: up" in str(exc.value)


# ---------------------------------------------------------------- scripted server
class Scripted:
    def __init__(self) -> None:
        self.status, self.body, self.delay = (
            200,
            {"status": "success", "data": {"resultType": "vector", "result": []}},
            0.0,
        )
        self.headers: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        await asyncio.sleep(self.delay)
        return web.json_response(self.body, status=self.status)


@contextlib.asynccontextmanager
async def serving(s: Scripted) -> AsyncIterator[str]:
    """``s`` answering Prometheus' API paths on a loopback port; yields its base URL."""
    app = web.Application()
    app.router.add_get("/api/v1/{tail:.*}", s.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[tuple[Scripted, str]]:
    s = Scripted()
    async with serving(s) as url:
        yield s, url


async def test_5xx_and_timeout_are_retryable(scripted: tuple[Scripted, str]) -> None:
    s, url = scripted
    s.status, s.body = 503, {"status": "error", "errorType": "timeout", "error": "query timed out"}
    with pytest.raises(MetricsUnavailable, match="503 timeout"):
        await PrometheusProvider(url).query("up")
    s.status, s.body = 502, {}
    with pytest.raises(MetricsUnavailable, match="502"):
        await PrometheusProvider(url).query("up")
    s.status, s.delay = 200, 1.0
    with pytest.raises(MetricsUnavailable, match="timed out after 0.2s"):
        await PrometheusProvider(url, timeout=0.2).query("up")


async def test_execution_error_is_bad_query_and_401_is_not_retryable(
    scripted: tuple[Scripted, str],
) -> None:
    s, url = scripted
    s.status, s.body = (
        422,
        {"status": "error", "errorType": "execution", "error": "many-to-many matching"},
    )
    with pytest.raises(BadQuery, match="many-to-many"):
        await PrometheusProvider(url).query("a / b")
    s.status, s.body = 401, {}
    with pytest.raises(MetricsError) as exc:
        await PrometheusProvider(url).query("up")
    assert not exc.value.retryable and "CODE_PROMETHEUS_TOKEN" in str(exc.value)


async def test_token_and_headers_from_settings(
    scripted: tuple[Scripted, str], tmp_path: Path
) -> None:
    s, url = scripted
    settings = Settings(
        state_dir=tmp_path,
        prometheus_url=url,
        prometheus_token="s3cret",  # type: ignore[arg-type]
        prometheus_headers={"X-Scope-OrgID": "team-a"},
    )
    await PrometheusProvider.from_settings(settings).query("up")
    assert s.headers[-1]["Authorization"] == "Bearer s3cret"
    assert s.headers[-1]["X-Scope-OrgID"] == "team-a"
    insecure = PrometheusProvider.from_settings(
        settings.model_copy(update={"prometheus_insecure": True})
    )
    assert insecure.verify is False
    with pytest.raises(MetricsError, match="CODE_PROMETHEUS_URL"):
        PrometheusProvider.from_settings(Settings(state_dir=tmp_path))


# ---------------------------------------------------------------- router provider
class FakeRouterPlatform:
    agent_url = "http://fake"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[float, float]] = []

    async def fetch_samples(
        self, service: str, env: str, since: float, until: float
    ) -> dict[str, Any]:
        if self.fail:
            raise PlatformUnavailable("the local agent at http://fake is unreachable")
        self.calls.append((since, until))
        n = int(round(until - since)) * 10
        return {
            "v1": WindowSample(count=n, errors=0, latencies_ms=[10.0] * n),
            "v2": WindowSample(count=n, errors=n // 10, latencies_ms=[14.0] * n),
        }


async def test_router_provider_series_and_errors() -> None:
    plat = FakeRouterPlatform()
    p = RouterProvider(plat)
    lat = await p.fetch(
        AnalysisMetric(name="l", source="latency_ms"),
        SCOPE.model_copy(update={"version": "v2"}),
        0,
        10,
        1,
    )
    assert lat.values == [14.0] * 100
    err = await p.fetch(
        AnalysisMetric(name="e", source="error_rate"),
        SCOPE.model_copy(update={"version": "v2"}),
        0,
        10,
        2,
    )
    assert err.values == [0.1] * 5 and len(plat.calls) == 6
    with pytest.raises(NoData):
        await p.fetch(
            AnalysisMetric(name="l", source="latency_ms"),
            SCOPE.model_copy(update={"version": "v9"}),
            0,
            10,
            1,
        )
    with pytest.raises(MetricsUnavailable) as exc:
        await RouterProvider(FakeRouterPlatform(fail=True)).fetch(
            AnalysisMetric(name="l", source="latency_ms"), SCOPE, 0, 1, 1
        )
    assert exc.value.retryable


class RawScripted(Scripted):
    """Answers raw bytes with a content type: what a proxy, a half-dead server or a
    misconfigured URL sends instead of Prometheus' JSON."""

    raw: bytes = b""
    content_type: str = "text/html"

    async def handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        return web.Response(body=self.raw, status=self.status, content_type=self.content_type)


@pytest_asyncio.fixture
async def raw_scripted() -> AsyncIterator[tuple[RawScripted, str]]:
    s = RawScripted()
    async with serving(s) as url:
        yield s, url


@pytest.mark.parametrize(
    ("raw", "content_type", "shown"),
    [
        (b"<html><body>502 Bad Gateway (nginx)</body></html>", "text/html", "Bad Gateway"),
        (b"\x00\xff\xfe garbage \x01", "application/octet-stream", "answered 200"),
        (b'{"status": "success", "data": {"resultType": "vec', "application/json", "resultType"),
    ],
    ids=["html", "garbage", "truncated-json"],
)
async def test_a_200_that_is_not_prometheus_json_is_retryable_and_says_what_came(
    raw_scripted: tuple[RawScripted, str], raw: bytes, content_type: str, shown: str
) -> None:
    """HTML, garbage or truncated JSON with status 200: MetricsUnavailable (retried by the
    analysis' policy, shown as the run's last analysis error), naming what arrived."""
    s, url = raw_scripted
    s.status, s.raw, s.content_type = 200, raw, content_type
    with pytest.raises(MetricsUnavailable) as exc:
        await PrometheusProvider(url).query("up")
    assert exc.value.retryable
    assert shown in str(exc.value) and "query: up" in str(exc.value)


async def test_a_200_with_an_error_body_is_classified(scripted: tuple[Scripted, str]) -> None:
    """Status 200 but ``status: error`` in the body: the body's errorType decides."""
    s, url = scripted
    s.status, s.body = 200, {"status": "error", "errorType": "bad_data", "error": "parse error"}
    with pytest.raises(BadQuery, match="parse error"):
        await PrometheusProvider(url).query("rate(")
    s.body = {"status": "error", "errorType": "unavailable", "error": "tsdb not ready"}
    with pytest.raises(MetricsUnavailable, match="tsdb not ready") as exc:
        await PrometheusProvider(url).query("up")
    assert exc.value.retryable
