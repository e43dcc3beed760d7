"""Worker process for the engine benchmark: the real Deployment/Rollback
workflows plus a bare workflow, with in-memory no-op activities (the platform
is not what is measured). Run by bench/bench_engine.py."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def main(address: str, task_queue: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.worker import Worker

    from bench.bare import BareWorkflow
    from tests.workflows.fakes import FakePlatform
    from workflows.client import connect
    from workflows.deployment import DeploymentWorkflow
    from workflows.lane import ReleaseLaneWorkflow
    from workflows.rollback import RollbackWorkflow

    client = await connect(address)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow, BareWorkflow],
        activities=FakePlatform().activities(),
        activity_executor=ThreadPoolExecutor(8),
        max_concurrent_workflow_tasks=200,
        max_concurrent_activities=200,
    )
    print("ready", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
