"""Worker killed (SIGKILL) mid-slice: the slice is retried on another worker and the
soak's totals stay exact — the killed attempt's requests reached the server but
are never counted, and no slice is counted twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.interceptor import ErrorInterceptor
from activities.settings import Settings
from activities.soak import SoakActivities
from loadtest.scenario import parse_scenario
from loadtest.soak_models import SoakInput, SoakPlan
from tests.waiting import wait_until_async
from workflows.soak import SoakTestWorkflow

ROOT = Path(__file__).resolve().parents[2]


async def slice_progress(handle: Any, index: int) -> dict[str, Any] | None:
    """The last heartbeat of slice ``index`` once it reports requests sent, else None."""
    desc = await handle.describe()
    for p in desc.raw_description.pending_activities:
        if p.activity_type.name == "soak.slice" and p.heartbeat_details.payloads:
            beat = json.loads(p.heartbeat_details.payloads[0].data)
            if beat.get("index") == index and beat.get("sent", 0) > 0:
                return beat  # type: ignore[no-any-return]
    return None


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_worker_killed_mid_slice_totals_exact(
    dev_env: WorkflowEnvironment, fast_target: str, tmp_path: Path
) -> None:
    plan = SoakPlan.model_validate(
        {
            "name": "crash",
            "target": {"url": fast_target},
            "scenario": parse_scenario({"targets": [{"name": "home"}]}),
            "rate": 50,
            "duration": "30s",
            "slice": "10s",
            "checks": {"resources": None},
        }
    )
    tq = f"soak-crash-{uuid.uuid4()}"
    address = dev_env.client.service_client.config.target_host
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.soak.crash_worker", address, tq, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        handle = await dev_env.client.start_workflow(
            SoakTestWorkflow.run,
            SoakInput(plan=plan),
            id=f"soak-crash-{uuid.uuid4()}",
            task_queue=tq,
        )
        # wait until slice 1 is mid-way (its heartbeat reports requests sent), then kill
        await wait_until_async(lambda: slice_progress(handle, 1), 60, "slice 1 sending")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    acts = SoakActivities(Settings(state_dir=tmp_path, artifact_dir=tmp_path / "artifacts"))
    async with Worker(
        dev_env.client,
        task_queue=tq,
        workflows=[SoakTestWorkflow],
        activities=[acts.resolve_target, acts.run_slice, acts.report],
        interceptors=[ErrorInterceptor()],
    ):
        res = await handle.result()

    assert res.verdict == "pass", res.reason
    assert [s.index for s in res.summaries] == [0, 1, 2]
    assert [s.attempt for s in res.summaries] == [1, 2, 1]  # slice 1 ran twice, counted once
    assert res.stats.planned == 1500
    assert res.stats.sent == res.stats.completed == 1500  # exact: 3 x 10 s x 50/s
    assert res.stats.histogram().count == 1500
    # the server saw more: the killed attempt's requests really were sent
    served = int(httpx.get(fast_target + "/__served").text)
    assert served > 1500 + 50, served
