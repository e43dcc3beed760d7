"""A chaos worker as its own process, so a test can SIGKILL it mid-experiment.

``python -m tests.chaos.worker_proc ADDRESS TASK_QUEUE AGENT_URL STATE_DIR``
hosts ChaosExperimentWorkflow and the real chaos activities."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


async def main(address: str, task_queue: str, agent_url: str, state_dir: str) -> None:
    from temporalio.worker import Worker

    from activities.chaos import chaos_activities
    from activities.interceptor import ErrorInterceptor
    from activities.settings import Settings
    from workflows.chaos import ChaosExperimentWorkflow
    from workflows.client import connect

    client = await connect(address)
    settings = Settings(agent_url=agent_url, state_dir=Path(state_dir))
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[ChaosExperimentWorkflow],
        activities=chaos_activities(settings),
        interceptors=[ErrorInterceptor()],
    )
    print("worker ready", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
