"""Time to safety: how long the demo's bad canary serves users before stable has it all back.

    python bench/bench_time_to_safety.py [--runs 10]

Starts the embedded stack (Temporal dev server, agent, worker; ``workers.devstack``)
on free loopback ports with a temporary state dir, deploys demo v1, then canaries the
demo's bad release (``deploy/examples/demo-v3-bad.yaml``: 30% errors, +80 ms) ``--runs``
times, each under a fresh version name, while a live client sends 200 req/s through the
router and notes which version answered each request.

For each run:

* **canary receiving traffic** = the first response served by the bad version;
* **decision** = the moment the deployment workflow starts its compensating
  ``RollbackWorkflow`` (the history event's time);
* **safe** = the last response served by the bad version (from then on stable
  answers 100%).

detection = decision - first canary response (the analysis), reaction = safe -
decision (the rollback), total = safe - first canary response. Prints each run and
the medians. Loopback only; bounded (each deployment must finish within 180 s)."""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.settings import Settings
from workers.devstack import ensure
from workflows.client import connect, start_deployment
from workflows.spec import DeploymentSpec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "deploy" / "examples"
CLIENTS, RATE_EACH = 4, 50.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def example(name: str, service: str, **changes: Any) -> DeploymentSpec:
    spec = parse_spec((EXAMPLES / name).read_text(), name)
    art = spec.artifact.model_copy(update={"workdir": str(EXAMPLES)})
    return spec.model_copy(update={"service": service, "artifact": art, **changes})


class Traffic:
    """Live clients through the router: (unix time of the answer, version) per request."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[float, str]] = []
        self.stop = asyncio.Event()

    async def one(self, max_seconds: float) -> None:
        end = time.monotonic() + max_seconds
        async with httpx.AsyncClient(timeout=5) as c:
            while not self.stop.is_set() and time.monotonic() < end:
                t = time.monotonic()
                try:
                    r = await c.get(self.url + "/work")
                    v = r.headers.get("x-code-version", "?")
                except httpx.HTTPError:
                    v = "unreachable"
                self.events.append((time.time(), v))
                await asyncio.sleep(max(0.0, 1 / RATE_EACH - (time.monotonic() - t)))

    async def run(self, max_seconds: float) -> None:
        await asyncio.gather(*(self.one(max_seconds) for _ in range(CLIENTS)))


async def rollback_started(client: Any, workflow_id: str) -> float | None:
    """Unix time the deployment started its compensating RollbackWorkflow child."""
    async for e in client.get_workflow_handle(workflow_id).fetch_history_events():
        if e.HasField("start_child_workflow_execution_initiated_event_attributes"):
            a = e.start_child_workflow_execution_initiated_event_attributes
            if "ollback" in a.workflow_type.name:
                return float(e.event_time.ToDatetime().timestamp())
    return None


async def bench(runs: int) -> list[dict[str, float]]:
    from workflows.models import DeployResult

    state = Path(tempfile.mkdtemp(prefix="code-tts-"))
    port, ui_port, agent_port = _free_port(), _free_port(), _free_port()
    settings = Settings(
        state_dir=state,
        temporal_address=f"127.0.0.1:{port}",
        temporal_ui_url=f"http://127.0.0.1:{ui_port}",
        agent_url=f"http://127.0.0.1:{agent_port}",
        task_queue=f"tts-{uuid.uuid4().hex[:8]}",
    )
    stack = await asyncio.to_thread(ensure, settings, False, True, ui_port)
    out: list[dict[str, float]] = []
    try:
        client = await connect(settings.temporal_address)
        svc = f"tts{uuid.uuid4().hex[:6]}"

        async def deploy(spec: DeploymentSpec) -> Any:
            h = await start_deployment(client, spec, "bench", settings.task_queue)
            handle = client.get_workflow_handle(h.id, result_type=DeployResult)
            return h.id, await asyncio.wait_for(handle.result(), 180)

        _, first = await deploy(example("demo-v1.yaml", svc))
        if first.outcome != "promoted":
            raise RuntimeError(f"v1 was not promoted: {first.reason}")
        async with httpx.AsyncClient() as c:
            r = await c.get(f"{settings.agent_url}/v1/services/{svc}/dev")
            url = str(r.json()["endpoint"]).rstrip("/")
        traffic = Traffic(url)
        task = asyncio.create_task(traffic.run(runs * 200.0))
        try:
            for i in range(runs):
                version = f"v3r{i}"
                wid, res = await deploy(example("demo-v3-bad.yaml", svc, version=version))
                await asyncio.sleep(1.0)  # a second of "stable only" after the rollback
                if res.outcome != "rolled_back":
                    raise RuntimeError(f"{wid}: expected a rollback, got {res.outcome}")
                served = [t for t, v in traffic.events if v == version]
                decided = await rollback_started(client, wid)
                if not served or decided is None:
                    raise RuntimeError(f"{wid}: no canary traffic or no rollback event")
                row = {
                    "detection": decided - served[0],
                    "reaction": served[-1] - decided,
                    "total": served[-1] - served[0],
                    "canary_requests": float(len(served)),
                }
                out.append(row)
                print(
                    f"run {i + 1}: detection {row['detection']:.2f}s, reaction "
                    f"{row['reaction']:.2f}s, total {row['total']:.2f}s "
                    f"({len(served)} requests served by the bad canary)",
                    flush=True,
                )
        finally:
            traffic.stop.set()
            await task
    finally:
        stack.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    t0 = time.monotonic()
    rows = asyncio.run(bench(a.runs))
    print()
    print(f"time to safety, demo bad canary, local platform, median of {len(rows)} runs:")
    for k in ("detection", "reaction", "total"):
        vals = [r[k] for r in rows]
        print(
            f"  {k:10} median {statistics.median(vals):6.2f}s  "
            f"(min {min(vals):.2f}s, max {max(vals):.2f}s)"
        )
    print(f"total wall time {time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    main()
