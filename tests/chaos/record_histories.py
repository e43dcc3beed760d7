"""Record the committed ChaosExperimentWorkflow histories replayed by
``test_replay.py``: ``python -m tests.chaos.record_histories`` (time-skipping
server, in-memory activities). Re-record only for an intended change."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from chaos.messages import AbortRequest, ChaosRunInput
from tests.chaos.fakes import FakeChaos
from tests.chaos.test_workflow import experiment
from workflows.chaos import ChaosExperimentWorkflow
from workflows.client import data_converter

OUT = Path(__file__).parent / "histories"


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(),
        test_server_existing_path=shutil.which("temporal-test-server"),
    )
    try:
        cases = {
            "chaos_completed": (FakeChaos(), experiment()),
            "chaos_deviation_aborted": (
                FakeChaos(probe_ok=lambda p, n: p != "during" or n < 4),
                experiment(),
            ),
            "chaos_rollback_failed": (
                FakeChaos(revert_failures=1000),
                experiment(rollback_attempts=2),
            ),
            "chaos_manual_abort": (FakeChaos(), experiment(duration="1h")),
        }
        for name, (fake, exp) in cases.items():
            tq = str(uuid.uuid4())
            async with Worker(
                env.client,
                task_queue=tq,
                workflows=[ChaosExperimentWorkflow],
                activities=fake.activities(),
            ):
                h = await env.client.start_workflow(
                    ChaosExperimentWorkflow.run,
                    ChaosRunInput(experiment=exp, actor="recorder", set_search_attributes=False),
                    id=f"{name}-{uuid.uuid4().hex[:6]}",
                    task_queue=tq,
                )
                if name == "chaos_manual_abort":
                    while len(fake.active) < 2:
                        await asyncio.sleep(0.05)
                    await h.execute_update(
                        ChaosExperimentWorkflow.abort, AbortRequest(identity="recorder")
                    )
                with contextlib.suppress(Exception):  # failed runs are recorded too
                    await asyncio.wait_for(h.result(), 60)
                (OUT / f"{name}.json").write_text((await h.fetch_history()).to_json())
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
