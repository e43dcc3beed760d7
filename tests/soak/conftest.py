"""Fixtures for real soak tests: a local platform agent subprocess and a fast target."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus (``apt-get install -y prometheus``) scraping itself every second."""
    import shutil

    from tests.servers import require_server

    binary = shutil.which("prometheus")
    if binary is None:
        require_server("prometheus", "binary not found (apt-get install -y prometheus)")
    d = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    (d / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: prometheus\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
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
        yield url
    finally:
        stop_process(proc)
