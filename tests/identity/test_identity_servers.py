"""The worker's metrics endpoint (the one server of the worker process): loopback by
default, and HTTPS with TLS 1.2 at least (1.3 preferred) when ``metrics_tls_cert`` is set —
a plain-HTTP or TLS 1.1 client gets nothing, and a hung handshake never blocks other
scrapes. The other servers CODE runs are listed in docs/identity.md ("TLS on the servers
CODE runs")."""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from activities.settings import Settings
from tests.identity.test_identity_codec import self_signed
from tests.servers import free_port
from workers import telemetry


@pytest.fixture
def stop() -> Iterator[list[object]]:
    servers: list[object] = []
    yield servers
    for s in servers:
        s.shutdown()  # type: ignore[attr-defined]
        s.server_close()  # type: ignore[attr-defined]


def test_metrics_binds_loopback_by_default(
    stop: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODE_METRICS_HOST", raising=False)
    settings = Settings(metrics_port=free_port(), sdk_metrics_port=free_port())
    assert settings.metrics_host == "127.0.0.1"
    server = telemetry.start_metrics_server(settings)
    assert server is not None
    stop.append(server)
    assert server.server_address[0] == "127.0.0.1"
    r = httpx.get(f"http://127.0.0.1:{settings.metrics_port}/metrics", timeout=10)
    assert r.status_code == 200 and "python_info" in r.text


def test_metrics_tls_is_1_2_or_better(tmp_path: Path, stop: list[object]) -> None:
    crt, key = self_signed(tmp_path)
    port = free_port()
    settings = Settings(
        metrics_port=port, sdk_metrics_port=free_port(), metrics_tls_cert=crt, metrics_tls_key=key
    )
    server = telemetry.start_metrics_server(settings)
    assert server is not None
    stop.append(server)
    hung = socket.create_connection(("127.0.0.1", port), timeout=5)  # never says hello
    try:
        trust = ssl.create_default_context(cafile=str(crt))
        r = httpx.get(f"https://127.0.0.1:{port}/metrics", verify=trust, timeout=10)
        assert r.status_code == 200 and "python_info" in r.text
        with pytest.raises(httpx.HTTPError):  # plain HTTP gets no answer
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)

        def version(maximum: ssl.TLSVersion | None) -> str | None:
            ctx = ssl.create_default_context(cafile=str(crt))
            if maximum is not None:
                ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
                ctx.maximum_version = maximum
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s,
            ):
                return s.version()

        assert version(None) == "TLSv1.3"  # preferred
        assert version(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
        with warnings.catch_warnings(), pytest.raises(ssl.SSLError):
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1: that is the point
            version(ssl.TLSVersion.TLSv1_1)
    finally:
        hung.close()
