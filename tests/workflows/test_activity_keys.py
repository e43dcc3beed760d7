"""Idempotency keys are unique per run: two runs of one workflow id minutes apart on the
real dev server (whose run ids are UUIDv7, so their first 8 hex digits are the same for
~65 s) must not share their platform keys. A shared key made the second run's apply a
"used by a different apply request" conflict on the agent (CI: the demo's v2 and the
templated v2 canary, both deploy-demo-dev-v2, 40 s apart)."""

from __future__ import annotations

import uuid

from temporalio.testing import WorkflowEnvironment

from tests.temporal_env import dev_env  # noqa: F401
from tests.workflows.fakes import FakePlatform
from tests.workflows.test_deployment import spec, worker
from workflows.client import deployment_result
from workflows.deployment import DeploymentWorkflow
from workflows.models import DeployInput, DeployResult


async def test_two_runs_of_one_id_have_distinct_keys(
    dev_env: WorkflowEnvironment,  # noqa: F811
) -> None:
    fake = FakePlatform()
    w, tq = worker(dev_env, fake)
    wid = f"deploy-keys-{uuid.uuid4().hex[:8]}"
    runs = []
    async with w:
        for _ in range(2):  # straight: one apply per run, seconds apart
            handle = await dev_env.client.start_workflow(
                DeploymentWorkflow.run,
                DeployInput(
                    spec=spec("v1", steps="      - set_weight: 100\n"),
                    actor="tester",
                    set_search_attributes=False,
                ),
                id=wid,
                task_queue=tq,
                result_type=DeployResult,
            )
            runs.append(handle.result_run_id)
            await deployment_result(handle)
    assert runs[0] != runs[1] and runs[0] is not None and runs[1] is not None
    applies = [k for k in fake.keys if k.endswith(":apply")]
    assert len(applies) == 2, sorted(fake.keys)  # each run's apply is its own request
    for run_id in runs:
        assert any(run_id in k for k in applies), (run_id, sorted(fake.keys))
