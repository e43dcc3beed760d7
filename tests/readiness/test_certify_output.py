"""``codectl certify --output json`` (a process, against a real Temporal dev server and a
worker running ``ReadinessWorkflow`` with the real readiness activities): one
``code.certify/v1`` document, documented in :mod:`workers.cli.output`, whose certificate
is the one the run stored; ``certify schedule --output json`` is
``code.certify.schedule/v1``; a bad ``--output`` exits 2 and starts nothing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.artifacts import store_from_settings
from activities.interceptor import ErrorInterceptor
from activities.readiness import readiness_activities
from activities.settings import Settings
from workers.cli import output
from workflows.readiness import ReadinessWorkflow
from workflows.readiness_models import Certificate

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def codectl(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env, "COLUMNS": "200"},
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_certify_json_is_a_versioned_document(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    tq = f"rdy-out-{uuid.uuid4().hex[:8]}"
    svc = f"ro{uuid.uuid4().hex[:6]}"
    target = dev_env.client.service_client.config.target_host
    env = {"CODE_TEMPORAL_ADDRESS": target, "CODE_TASK_QUEUE": tq, "CODE_STATE_DIR": str(tmp_path)}
    settings = Settings(state_dir=tmp_path, temporal_address=target, task_queue=tq)
    code, out, err = await codectl(env, "certify", svc, "--env", "dev", "--output", "yaml")
    assert code == 2 and "--output must be text or json" in err, out + err
    async with Worker(
        dev_env.client,
        task_queue=tq,
        workflows=[ReadinessWorkflow],
        activities=readiness_activities(settings),
        interceptors=[ErrorInterceptor()],
    ):
        code, out, err = await codectl(
            env, "certify", svc, "--env", "dev", "--window", "1d", "--output", "json"
        )
        # nothing deployed: delivery (required by default) is not measured -> fail, exit 1
        assert code == 1, out + err
        lines = out.splitlines()
        assert len(lines) == 1, out
        doc = json.loads(lines[0])
        assert doc["schema"] == "code.certify/v1" and doc["schema"] in output.SCHEMAS
        assert doc["verdict"] == "fail" and "delivery: not measured" in doc["reasons"]
        cert = Certificate.model_validate(doc["certificate"])
        assert cert.schema_version == "code.certificate/v1" and cert.service == svc
        assert doc["workflow_id"] == cert.workflow_id
        # the certificate printed is the one stored (read back with its checksum)
        store = store_from_settings(settings)
        stored = {a["name"]: a for a in doc["artifacts"]}
        a = stored["certificate.json"]
        assert Certificate.model_validate_json(store.get(a["key"], a["version_id"])) == cert
        cron = ("--cron", "0 6 * * 1", "--output", "json")
        code, out, err = await codectl(env, "certify", "schedule", svc, "--env", "dev", *cron)
        assert code == 0, out + err
        sched = json.loads(out)
        assert sched == {
            "schema": "code.certify.schedule/v1",
            "schedule_id": f"readiness-{svc}-dev",
            "cron": "0 6 * * 1",
            "service": svc,
            "environment": "dev",
        }
        await dev_env.client.get_schedule_handle(sched["schedule_id"]).delete()
    for schema in ("code.certify/v1", "code.certify.schedule/v1"):
        assert f"``{schema}``" in (output.__doc__ or "")
