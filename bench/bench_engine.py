"""Engine overhead benchmark, measured side by side in one run on one
dev server:

1. wall time of a DeploymentWorkflow whose platform steps are no-ops against a
   bare workflow running the same number of no-op activities (target: the
   engine adds at most 15%);
2. 500 concurrent no-op deployments on one worker: completion time,
   throughput and the worker process's peak RSS.

Prints ratios; asserts nothing (machines are shared and noisy)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402

from workflows.client import data_converter  # noqa: E402
from workflows.models import DeployInput, DeployResult  # noqa: E402
from workflows.spec import parse_spec  # noqa: E402

SPEC = """
service: bench
environment: perf
version: v{n}
artifact: {{command: [x]}}
strategy:
  type: canary
  canary:
    steps: [{{set_weight: 10}}, {{set_weight: 25}}, {{set_weight: 50}}, {{set_weight: 75}}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PeakRSS(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)


async def main() -> None:
    port = free_port()
    db = Path(f"/tmp/bench-temporal-{port}.db")
    server = subprocess.Popen(
        [
            shutil.which("temporal") or "temporal",
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--headless",
            "--log-level",
            "error",
            "--db-filename",
            str(db),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tq = f"bench-{uuid.uuid4().hex[:6]}"
    worker = None
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter())
        worker = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "noop_worker.py"), f"127.0.0.1:{port}", tq],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert worker.stdout is not None
        worker.stdout.readline()
        rss = PeakRSS(worker.pid)
        rss.start()

        async def deployment(i: int) -> float:
            spec = parse_spec(SPEC.format(n=i))
            t = time.perf_counter()
            res = await client.execute_workflow(
                "DeploymentWorkflow",
                DeployInput(spec=spec, set_search_attributes=False),
                id=f"bench-deploy-{uuid.uuid4()}",
                task_queue=tq,
                result_type=DeployResult,
            )
            assert res.outcome == "promoted", res
            return time.perf_counter() - t

        # how many activities does one (canary) deployment run? count them in a history
        await deployment(0)  # the first release goes straight to 100%; later ones are canaries
        spec = parse_spec(SPEC.format(n=1))
        h = await client.start_workflow(
            "DeploymentWorkflow",
            DeployInput(spec=spec, set_search_attributes=False),
            id=f"bench-count-{uuid.uuid4()}",
            task_queue=tq,
        )
        await h.result()
        hist = await h.fetch_history()
        n_acts = sum(
            1 for e in hist.events if e.HasField("activity_task_scheduled_event_attributes")
        )

        async def bare() -> float:
            t = time.perf_counter()
            await client.execute_workflow(
                "BareWorkflow", n_acts, id=f"bench-bare-{uuid.uuid4()}", task_queue=tq
            )
            return time.perf_counter() - t

        for _ in range(3):  # warm up both paths
            await deployment(1)
            await bare()
        d_times, b_times = [], []
        for i in range(15):  # interleaved, so drift hits both alike
            d_times.append(await deployment(i))
            b_times.append(await bare())
        d, b = statistics.median(d_times), statistics.median(b_times)
        print(f"\n== 1. engine overhead ({n_acts} activities per canary deployment)")
        print(f"{'workflow':<28}{'median s':>10}{'p90 s':>10}")
        print(
            f"{'DeploymentWorkflow (no-op)':<28}{d:>10.3f}{sorted(d_times)[int(0.9 * len(d_times))]:>10.3f}"
        )
        print(
            f"{'bare workflow, same acts':<28}{b:>10.3f}{sorted(b_times)[int(0.9 * len(b_times))]:>10.3f}"
        )
        ratio = d / b
        print(
            f"ratio deployment/bare = {ratio:.3f}  (target <= 1.15: {'PASS' if ratio <= 1.15 else 'MISS'})"
        )

        rss.peak = 0
        n = 500
        procs = {
            "worker": psutil.Process(worker.pid),
            "temporal server": psutil.Process(server.pid),
            "client (this process)": psutil.Process(),
        }

        def cpu() -> dict[str, float]:
            out = {}
            for name, p in procs.items():
                ts = [p.cpu_times()] + [c.cpu_times() for c in p.children(recursive=True)]
                out[name] = sum(t.user + t.system for t in ts)
            return out

        before = cpu()
        t = time.perf_counter()
        await asyncio.gather(*(deployment(1000 + i) for i in range(n)))
        total = time.perf_counter() - t
        after = cpu()
        rss.running = False
        print(f"\n== 2. {n} concurrent no-op deployments on one worker")
        print(
            f"completion time {total:.1f} s, throughput {n / total:.1f} deployments/s, "
            f"worker peak RSS {rss.peak / 2**20:.0f} MiB"
        )
        print("CPU seconds spent during the run (2 cores shared by all three):")
        for name in procs:
            print(f"  {name:<24}{after[name] - before[name]:>8.1f} s")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(10)
        server.terminate()
        server.wait(10)
        db.unlink(missing_ok=True)


if __name__ == "__main__":
    asyncio.run(main())
