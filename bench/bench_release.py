"""Release overhead benchmark, measured side by side in one run on one dev server:
a release of 1 service across 20 clusters in 4 waves of 5 (``ReleaseWorkflow``, child
deployments, no-op platform steps) against the same 20 deployments started directly
by a client, wave by wave (5 at once, the next wave when they are done). Interleaved
rounds; prints both medians, the release's wall time and the overhead ratio
(target <= 1.10). Asserts nothing (machines are shared and noisy).

    python bench/bench_release.py [--rounds 5]"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from tests.workflows.release_fakes import MultiFake  # noqa: E402
from workflows.client import data_converter  # noqa: E402
from workflows.deployment import DeploymentWorkflow  # noqa: E402
from workflows.lane import ReleaseLaneWorkflow  # noqa: E402
from workflows.models import DeployInput, DeployResult  # noqa: E402
from workflows.pipeline_spec import PipelineSpec, parse_pipeline  # noqa: E402
from workflows.release import ReleaseWorkflow  # noqa: E402
from workflows.release_models import ReleaseInput, ReleaseResult  # noqa: E402
from workflows.rollback import RollbackWorkflow  # noqa: E402

CLUSTERS = [f"c{i:02d}" for i in range(1, 21)]
WAVES = [CLUSTERS[i : i + 5] for i in range(0, 20, 5)]


def pipeline() -> PipelineSpec:
    targets = "".join(f"      - {{environment: prod, cluster: {c}}}\n" for c in CLUSTERS)
    waves = "".join(f"      - {{targets: [{', '.join(w)}], max_parallel: 5}}\n" for w in WAVES)
    return parse_pipeline(
        "service: shop\ndeployment: {artifact: {command: [x]}}\nstages:\n"
        f"  - name: prod\n    targets:\n{targets}    waves:\n{waves}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main(rounds: int) -> None:
    port = free_port()
    db = Path(f"/tmp/bench-release-{port}.db")
    server = subprocess.Popen(
        [shutil.which("temporal") or "temporal", "server", "start-dev", "--ip", "127.0.0.1"]
        + ["--port", str(port), "--headless", "--log-level", "error", "--db-filename", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(150):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter())
        fake = MultiFake()
        for c in CLUSTERS:
            fake.seed("prod", c, "v0")
        tq = f"bench-{uuid.uuid4().hex[:6]}"
        p = pipeline()
        async with Worker(
            client,
            task_queue=tq,
            workflows=[ReleaseWorkflow, DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
            activities=fake.activities(),
            max_concurrent_workflow_tasks=100,
            max_concurrent_activities=100,
        ):

            async def release(version: str) -> float:
                t = time.perf_counter()
                res = await client.execute_workflow(
                    ReleaseWorkflow.run,
                    ReleaseInput(pipeline=p, version=version, set_search_attributes=False),
                    id=f"release-shop-{version}",
                    task_queue=tq,
                    result_type=ReleaseResult,
                )
                assert res.outcome == "promoted", res.reason
                return time.perf_counter() - t

            async def direct(version: str) -> float:
                t = time.perf_counter()
                stage = p.stages[0]
                for wave in WAVES:
                    results = await asyncio.gather(
                        *(
                            client.execute_workflow(
                                DeploymentWorkflow.run,
                                DeployInput(
                                    spec=p.target_spec(stage, stage.target(c), version),
                                    set_search_attributes=False,
                                ),
                                id=p.target_spec(stage, stage.target(c), version).workflow_id(),
                                task_queue=tq,
                                result_type=DeployResult,
                            )
                            for c in wave
                        )
                    )
                    assert all(r.outcome == "promoted" for r in results), results
                return time.perf_counter() - t

            await release("w1")  # warm up both paths
            await direct("w2")
            r_times, d_times = [], []
            for i in range(rounds):  # interleaved, so drift hits both alike
                r_times.append(await release(f"r{i}"))
                d_times.append(await direct(f"d{i}"))
        r, d = statistics.median(r_times), statistics.median(d_times)
        ratio = r / d
        print(f"\n== release of 1 service to 20 clusters in 4 waves ({rounds} rounds, no-op steps)")
        print(f"{'path':<34}{'median s':>10}{'min s':>10}{'max s':>10}")
        print(
            f"{'ReleaseWorkflow (20 children)':<34}{r:>10.3f}{min(r_times):>10.3f}{max(r_times):>10.3f}"
        )
        print(
            f"{'20 deployments started directly':<34}{d:>10.3f}{min(d_times):>10.3f}{max(d_times):>10.3f}"
        )
        verdict = "PASS" if ratio <= 1.10 else "MISS"
        print(f"overhead ratio release/direct = {ratio:.3f}  (target <= 1.10: {verdict})")
    finally:
        server.terminate()
        server.wait(20)
        db.unlink(missing_ok=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(ap.parse_args().rounds))
