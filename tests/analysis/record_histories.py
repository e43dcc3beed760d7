"""Record the committed judge-mode DeploymentWorkflow histories replayed by
``test_replay.py``: ``python -m tests.analysis.record_histories`` (time-skipping server,
scripted ``analysis.run``). Re-record only for an intended, versioned change.
``--red``: only the rolled-back case, as ``<name>_red.json`` beside the older one (since
the ``not-promoted-fails`` patch it ends FAILED carrying its result)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.analysis.test_workflow_rules import spec, start
from workflows.client import data_converter, deployment_result
from workflows.deployment import DeploymentWorkflow
from workflows.models import ApproveInput

OUT = Path(__file__).parent / "histories"


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(),
        test_server_existing_path=shutil.which("temporal-test-server"),
    )
    cases = {
        # earlier marginal and a backend error tolerated, last pass: promoted
        "analysis_judged_promoted": (["marginal", "error", "pass"], {}),
        # backend down beyond consecutive_error_limit: rolled back (child rollback)
        "analysis_errors_rolled_back": (
            ["pass", "error"],
            {"count": 5, "consecutive_error_limit": 1},
        ),
        # marginal last interval, nobody decides, on_decision_timeout continue
        "analysis_marginal_timeout_continue": (
            ["marginal"],
            {"count": 1, "decision_timeout": "5m", "on_decision_timeout": "continue"},
        ),
        # marginal last interval, approved by a human
        "analysis_marginal_approved": (
            ["pass", "marginal"],
            {"count": 2, "decision_timeout": "2h"},
        ),
    }
    if "--red" in sys.argv:
        cases = {"analysis_errors_rolled_back_red": cases["analysis_errors_rolled_back"]}
    async with env:
        for name, (script, analysis) in cases.items():
            h, _, w = await start(env, script, spec(f"v-{uuid.uuid4().hex[:4]}", **analysis))
            try:
                if name == "analysis_marginal_approved":
                    await env.sleep(timedelta(minutes=21))
                    for _ in range(200):
                        if (await h.query(DeploymentWorkflow.status)).waiting_for_approval:
                            break
                        await asyncio.sleep(0.05)
                    await h.execute_update(
                        DeploymentWorkflow.approve, ApproveInput(identity="carol")
                    )
                res = await deployment_result(h)
                (OUT / f"{name}.json").write_text((await h.fetch_history()).to_json())
                print("recorded", name, res.outcome)
            finally:
                await w.__aexit__(None, None, None)


if __name__ == "__main__":
    asyncio.run(main())
