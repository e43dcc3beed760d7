"""Fixtures of the chaos tests: a real local agent running the demo service."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from activities.platform.local import LocalPlatform
from tests.servers import start_agent
from workflows.models import ApplyVersionInput
from workflows.spec import DeploymentSpec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "examples"
SVC, ENV = "chaosdemo", "dev"


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A fresh agent with demo v1 (one instance, all traffic) for each test: faults,
    kills and the ops log of one test are never seen by another, whatever the order."""
    state = tmp_path_factory.mktemp("chaos-agent")
    proc, url = start_agent(state / "agent")
    try:
        spec = DeploymentSpec.model_validate(
            {
                "service": SVC,
                "environment": ENV,
                "version": "v1",
                "artifact": {"command": ["{python}", "demo_service.py"], "workdir": str(EXAMPLES)},
                "replicas": 1,
                "health_check": {"path": "/healthz", "timeout": "20s"},
            }
        )
        res = asyncio.run(
            LocalPlatform(url).apply_version(
                ApplyVersionInput(spec=spec, idempotency_key="chaos-test-v1", initial_weight=100)
            )
        )
        yield {"url": url, "endpoint": res.endpoint, "state": state}
    finally:
        stop(proc)
