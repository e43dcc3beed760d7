"""``codectl soak start/status/report/schedule`` end to end against a real dev server
(the CLI runs in a subprocess; the worker runs in the test)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.interceptor import ErrorInterceptor
from activities.settings import Settings
from activities.soak import SoakActivities
from loadtest.soak_models import SoakInput, load_plan
from tests.temporal_env import assert_daily_cron
from workflows.soak import SoakTestWorkflow

ROOT = Path(__file__).resolve().parents[2]


def codectl(
    args: list[str], env: dict[str, str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from workers.cli import main; main()", *args],
        cwd=ROOT,
        env={**os.environ, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_plan(tmp_path: Path, url: str, rate: str = "20") -> Path:
    (tmp_path / "sc.yaml").write_text("targets: [{name: home, path: /}]\n")
    p = tmp_path / "plan.yaml"
    p.write_text(
        f"name: cli\ntarget: {{url: '{url}'}}\nscenario: sc.yaml\nrate: {rate}\n"
        "duration: 4s\nslice: 2s\nchecks: {resources: null}\n"
    )
    return p


def test_start_bad_plan_exits_2(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, "http://127.0.0.1:9", rate="0")
    res = codectl(["soak", "start", str(plan)], {"CODE_TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert res.returncode == 2, res.stdout + res.stderr
    assert "rate" in res.stdout and "invalid" in res.stdout


@pytest.mark.integration
@pytest.mark.timeout(180)
async def test_start_status_report_schedule(
    dev_env: WorkflowEnvironment, fast_target: str, tmp_path: Path
) -> None:
    tq = f"soak-cli-{uuid.uuid4()}"
    env = {
        "CODE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "CODE_TASK_QUEUE": tq,
        "CODE_STATE_DIR": str(tmp_path / "state"),
        "CODE_ARTIFACT_DIR": str(tmp_path / "artifacts"),
    }
    settings = Settings(state_dir=tmp_path / "state", artifact_dir=tmp_path / "artifacts")
    acts = SoakActivities(settings)
    plan = write_plan(tmp_path, fast_target)
    wid = f"soak-cli-{uuid.uuid4().hex[:8]}"
    async with Worker(
        dev_env.client,
        task_queue=tq,
        workflows=[SoakTestWorkflow],
        activities=[acts.resolve_target, acts.run_slice, acts.report],
        interceptors=[ErrorInterceptor()],
    ):
        res = await asyncio.to_thread(
            codectl, ["soak", "start", str(plan), "--id", wid, "--wait"], env
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"started {wid}" in res.stdout
        res = await asyncio.to_thread(codectl, ["soak", "status", wid, "--json"], env)
        assert res.returncode == 0, res.stdout + res.stderr
        st = json.loads(res.stdout)
        assert st["verdict"] == "pass" and st["slices_done"] == 2 and st["phase"] == "done"
        out = tmp_path / "report"
        res = await asyncio.to_thread(codectl, ["soak", "report", wid, "--out", str(out)], env)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "PASS" in res.stdout
        assert (out / "report.png").stat().st_size > 1000
        assert "Soak report" in (out / "report.md").read_text()
        sid = f"sched-{uuid.uuid4().hex[:8]}"
        res = await asyncio.to_thread(
            codectl, ["soak", "schedule", str(plan), "--cron", "0 3 * * *", "--id", sid], env
        )
        assert res.returncode == 0, res.stdout + res.stderr
        handle = dev_env.client.get_schedule_handle(sid)
        try:
            desc = await handle.describe()
            assert_daily_cron(desc.schedule.spec, hour=3)
            assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
            action = desc.schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert action.workflow == "SoakTestWorkflow" and action.task_queue == tq
            assert action.id == load_plan(str(plan)).workflow_id()
            (inp,) = await dev_env.client.data_converter.decode(action.args, [SoakInput])
            assert inp.plan == load_plan(str(plan)) and inp.actor == f"schedule:{sid}"
        finally:
            await handle.delete()
