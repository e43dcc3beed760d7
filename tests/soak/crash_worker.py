"""A soak worker process for the crash test: ``python -m tests.soak.crash_worker
ADDRESS TASK_QUEUE ARTIFACT_DIR`` hosts SoakTestWorkflow and the real soak
activities until killed (bounded: exits after 5 minutes)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities.interceptor import ErrorInterceptor
from activities.settings import Settings
from activities.soak import SoakActivities
from workflows.client import data_converter
from workflows.soak import SoakTestWorkflow


async def main(address: str, task_queue: str, artifacts: str) -> None:
    client = await Client.connect(address, data_converter=data_converter())
    acts = SoakActivities(Settings(state_dir=Path(artifacts), artifact_dir=Path(artifacts)))
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[SoakTestWorkflow],
        activities=[acts.resolve_target, acts.run_slice, acts.report],
        interceptors=[ErrorInterceptor()],
    ):
        print("worker ready", flush=True)
        await asyncio.sleep(300)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
