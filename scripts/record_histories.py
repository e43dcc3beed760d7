"""Regenerate the committed workflow histories under tests/histories/ by running
each workflow type on the time-skipping server with the in-memory fakes.

Run after an intentional, versioned change to a workflow:
``python scripts/record_histories.py``. Replay tests then pin the new shape.
``--lanes`` writes ``<name>_lanes.json``; ``--red`` writes only the histories the
``not-promoted-fails`` patch changed (a rolled-back canary ends FAILED) as
``<name>_red.json``. Both beside the older ones, never over them."""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from tests.workflows.fakes import FakePlatform  # noqa: E402
from tests.workflows.test_deployment import spec  # noqa: E402
from workflows.client import data_converter, deployment_result  # noqa: E402
from workflows.deployment import DeploymentWorkflow  # noqa: E402
from workflows.lane import ReleaseLaneWorkflow  # noqa: E402
from workflows.models import DeployInput, RollbackInput  # noqa: E402
from workflows.rollback import RollbackWorkflow  # noqa: E402

OUT = ROOT / "tests" / "histories"


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(),  # no codec: committed histories stay plaintext
        test_server_existing_path=shutil.which("temporal-test-server"),
    )
    fake = FakePlatform(bad_versions={"v3"})
    tq = f"record-{uuid.uuid4()}"
    async with (
        env,
        Worker(
            env.client,
            task_queue=tq,
            workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
            activities=fake.activities(),
        ),
    ):
        runs = {
            "deployment_first_release": (
                "DeploymentWorkflow",
                DeployInput(spec=spec("v1"), set_search_attributes=False),
            ),
            "deployment_canary_promoted": (
                "DeploymentWorkflow",
                DeployInput(spec=spec("v2"), set_search_attributes=False),
            ),
            "deployment_canary_rolled_back": (
                "DeploymentWorkflow",
                DeployInput(spec=spec("v3"), set_search_attributes=False),
            ),
            "rollback_manual": (
                "RollbackWorkflow",
                RollbackInput(
                    service="shop",
                    environment="prod",
                    to_version="v1",
                    reason="manual",
                    set_search_attributes=False,
                ),
            ),
        }
        if "--lanes" in sys.argv and "--red" not in sys.argv:
            # histories recorded since release lanes: written beside the older ones (which
            # keep pinning the pre-lane command order), never over them
            runs = {f"{name}_lanes": run for name, run in runs.items()}
        keep = set(runs)
        if "--red" in sys.argv:
            # a deployment that is not promoted ends FAILED carrying its result; v1 and v2
            # run first (not written) so that v3 is a canary against a stable version
            bad = runs.pop("deployment_canary_rolled_back")
            runs = {**dict(list(runs.items())[:2]), "deployment_canary_rolled_back_red": bad}
            keep = {"deployment_canary_rolled_back_red"}
        for name, (wf, arg) in runs.items():
            handle = await env.client.start_workflow(
                wf, arg, id=f"{name}-{uuid.uuid4().hex[:6]}", task_queue=tq
            )
            if wf == "DeploymentWorkflow":
                print(" ", (await deployment_result(handle)).outcome)
            else:
                await handle.result()
            if name not in keep:
                continue
            history = await handle.fetch_history()
            (OUT / f"{name}.json").write_text(history.to_json())
            # the child rollback of the failed canary is its own history
            if name.startswith("deployment_canary_rolled_back") and not name.endswith("_red"):
                child = env.client.get_workflow_handle("rollback-shop-prod-from-v3")
                suffix = name.removeprefix("deployment_canary_rolled_back")
                (OUT / f"rollback_child{suffix}.json").write_text(
                    (await child.fetch_history()).to_json()
                )
            if name == "rollback_manual_lanes":
                lane = env.client.get_workflow_handle(f"lane-shop-prod-local@{tq}")
                (OUT / "lane_one_holder_lanes.json").write_text(
                    (await lane.fetch_history()).to_json()
                )
            print("recorded", name)


if __name__ == "__main__":
    asyncio.run(main())
