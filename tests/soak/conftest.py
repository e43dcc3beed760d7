"""Fixtures for real soak tests: a local platform agent subprocess, a fast target, demo
services as plain processes, and a real Prometheus scraping their RSS."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, port_open, start_agent, stop_process, wait_until

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "examples"


@pytest.fixture(scope="module")
def agent_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("soak-agent")
    proc, url = start_agent(state / "state")
    try:
        yield url
    finally:
        stop_process(proc)


def deploy_demo(agent_url: str, service: str, **env: str) -> dict:
    body = {
        "command": ["{python}", "demo_service.py"],
        "workdir": str(EXAMPLES),
        "env": env,
        "replicas": 1,
        "health_path": "/healthz",
        "health_timeout_s": 20,
        "idempotency_key": f"{service}-v1",
        "initial_weight": 100,
    }
    r = httpx.put(f"{agent_url}/v1/services/{service}/dev/versions/v1", json=body, timeout=60)
    r.raise_for_status()
    return httpx.get(f"{agent_url}/v1/services/{service}/dev", timeout=10).json()


@pytest.fixture
def fast_target() -> Iterator[str]:
    """``python -m loadtest.target_server`` in a subprocess (bounded to 10 minutes)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtest.target_server",
            "--port",
            str(port),
            "--max-seconds",
            "600",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        wait_until(lambda: port_open(port), 10, "target server", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@contextlib.contextmanager
def demo_process(**env: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``deploy/examples/demo_service.py`` as a plain subprocess (no agent) on a free
    loopback port, with ``env`` (e.g. ``DEMO_LEAK_KB_PER_S``); its process and URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "demo_service.py"],
        cwd=EXAMPLES,
        env={**os.environ, **env, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(url + "/healthz").status_code == 200, 20, "demo", proc)
        yield proc, url
    finally:
        stop_process(proc)


class RssExporter:
    """A Prometheus exporter on loopback for processes the test started: one
    ``process_resident_memory_bytes{service=NAME}`` series per entry of ``pids``, read
    from ``/proc/<pid>/statm`` at each scrape (the real RSS of a real process)."""

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.metrics().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def metrics(self) -> str:
        lines = ["# TYPE process_resident_memory_bytes gauge"]
        page = os.sysconf("SC_PAGE_SIZE")
        for name, pid in sorted(self.pids.items()):
            with contextlib.suppress(OSError):
                rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
                lines.append(f'process_resident_memory_bytes{{service="{name}"}} {rss}')
        return "\n".join(lines) + "\n"

    def __enter__(self) -> RssExporter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_prometheus(d: Path, jobs: dict[str, int]) -> tuple[subprocess.Popen[bytes], str]:
    """A real Prometheus (``apt-get install -y prometheus``) on a free loopback port that
    scrapes itself (job ``prometheus``) and each ``jobs`` entry (name -> loopback port)
    every second; returns once its own series is queryable."""
    import shutil

    from tests.servers import require_server

    binary = shutil.which("prometheus")
    if binary is None:
        require_server("prometheus", "binary not found (apt-get install -y prometheus)")
    port = free_port()
    scrape = {"prometheus": port, **jobs}
    (d / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n"
        + "".join(
            f"  - job_name: {job}\n    static_configs: [{{targets: ['127.0.0.1:{p}']}}]\n"
            for job, p in scrape.items()
        )
    )
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(d / "prometheus.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        q = {"query": 'process_resident_memory_bytes{job="prometheus"}'}
        wait_until(
            lambda: bool(httpx.get(url + "/api/v1/query", params=q).json()["data"]["result"]),
            30,
            "prometheus",
            proc,
        )
    except BaseException:
        stop_process(proc)
        raise
    return proc, url


@pytest.fixture
def rss_prometheus(tmp_path: Path) -> Iterator[tuple[str, RssExporter]]:
    """Prometheus scraping an :class:`RssExporter` as job ``rss``: register pids in
    ``exporter.pids`` and query ``process_resident_memory_bytes{job="rss",service=...}``."""
    with RssExporter() as exporter:
        proc, url = start_prometheus(tmp_path, {"rss": exporter.port})
        try:
            yield url, exporter
        finally:
            stop_process(proc)
