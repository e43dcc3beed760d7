"""``codectl notify test SINK`` as a real process against a real receiver on loopback:
a signed test event (verified here with the key), exit 0; a sink that is down exits 1;
an unknown sink or a non-loopback URL exits 2 naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.receiver import Receiver
from tests.servers import free_port
from workflows.notify_spec import signature

ROOT = Path(__file__).resolve().parents[2]
KEY = f"key-{uuid.uuid4().hex}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def codectl(sinks: list[dict], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODE_NOTIFY_SINKS": json.dumps(sinks), "NOTIFY_CLI_KEY": KEY}
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "notify", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


def test_notify_test_sends_a_signed_test_event(receiver: Receiver) -> None:
    sinks = [{"name": "ops", "url": f"{receiver.url}/hook", "secret": "env:NOTIFY_CLI_KEY"}]
    p = codectl(sinks, "test", "ops", "--output", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["state"] == "delivered"
    (call,) = receiver.calls
    ts = call.headers["X-Code-Timestamp"]
    assert call.headers["X-Code-Signature"] == signature(KEY.encode(), ts, call.body)
    event = call.json()
    assert event["kind"] == "test" and call.headers["X-Code-Event-Id"] == event["id"]
    assert KEY not in p.stdout + p.stderr


def test_notify_test_exit_codes() -> None:
    down = [{"name": "down", "url": f"http://127.0.0.1:{free_port()}/x"}]
    p = codectl(down, "test", "down")
    assert p.returncode == 1 and "failed" in p.stdout
    p = codectl(down, "test", "nope")
    assert p.returncode == 2 and "no notification sink named 'nope'" in p.stderr
    far = [{"name": "far", "kind": "slack", "url": "http://192.0.2.7/hook"}]
    p = codectl(far, "test", "far")
    assert p.returncode == 2 and "is not loopback" in p.stdout
    p = codectl(far, "sinks")
    assert p.returncode == 0 and "far: slack http://192.0.2.7/hook" in p.stdout
