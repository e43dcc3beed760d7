"""A deployment receives its Vault (OpenBao) secret; the value appears nowhere in
the workflow history, the worker's log, the agent's state or any exception; a
wrong secret path fails before anything is applied."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import WorkflowFailureError

from tests.integration.stack import ROOT, LiveStack
from tests.integration.test_deploy_local import example
from tests.servers import BaoServer
from tests.temporal_env import wait_for_worker_sync
from workflows.client import connect, deployment_result, start_deployment
from workflows.models import DeployResult

pytestmark = pytest.mark.integration
SECRET = f"s3cr3t-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def vault_worker(live_stack: LiveStack, openbao_server: BaoServer):  # type: ignore[no-untyped-def]
    import hvac

    hvac.Client(
        url=openbao_server.url, token=openbao_server.root_token
    ).secrets.kv.v2.create_or_update_secret(
        path="app", secret={"db_password": SECRET}, mount_point="secret"
    )
    tq = f"vault-{uuid.uuid4().hex[:6]}"
    log = live_stack.settings.state_dir / "logs" / f"{tq}.log"
    env = {
        **os.environ,
        **live_stack.env,
        "CODE_TASK_QUEUE": tq,
        "CODE_SECRET_STORE": "vault",
        "CODE_VAULT_URL": openbao_server.url,
        "CODE_VAULT_TOKEN": openbao_server.root_token,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.worker"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        wait_for_worker_sync(live_stack.settings.temporal_address, tq, proc.pid, proc=proc)
        yield tq, log
    finally:
        proc.terminate()
        proc.wait(10)


def with_secret(svc: str, ref: str, version: str = "v1"):  # type: ignore[no-untyped-def]
    spec = example("demo-v1.yaml", svc, version=version)
    art = spec.artifact.model_copy(
        update={
            "secrets": {"DB_PASSWORD": ref},
            "env": {**spec.artifact.env, "DEMO_SECRET_VARS": "DB_PASSWORD"},
        }
    )
    return spec.model_copy(update={"artifact": art})


async def test_secret_reaches_the_service_and_nothing_else(
    live_stack: LiveStack, vault_worker
) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    tq, log = vault_worker
    client = await connect(live_stack.settings.temporal_address)
    svc = f"sec{uuid.uuid4().hex[:6]}"
    h = await start_deployment(
        client, with_secret(svc, "vault:secret/data/app#db_password"), "it", tq
    )
    res = await deployment_result(client.get_workflow_handle(h.id, result_type=DeployResult))
    assert res.outcome == "promoted", res.reason
    async with httpx.AsyncClient() as c:
        state = (await c.get(f"{live_stack.settings.agent_url}/v1/services/{svc}/dev")).json()
        info = (await c.get(state["endpoint"].rstrip("/") + "/info")).json()
    assert info["secrets"]["DB_PASSWORD"] == hashlib.sha256(SECRET.encode()).hexdigest()[:12]
    history = await h.fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)
    assert SECRET.encode() not in raw and SECRET not in history.to_json()
    assert b"vault-v1" in raw  # the version is what the workflow sees
    assert SECRET not in log.read_text(errors="replace")
    for f in Path(live_stack.settings.state_dir).rglob("*"):
        if f.is_file() and f.suffix in (".json", ".jsonl", ".log", ".db", ""):
            assert SECRET.encode() not in f.read_bytes(), f


async def test_wrong_secret_path_fails_before_anything_is_applied(
    live_stack: LiveStack, vault_worker
) -> None:  # type: ignore[no-untyped-def]
    tq, _ = vault_worker
    client = await connect(live_stack.settings.temporal_address)
    svc = f"bad{uuid.uuid4().hex[:6]}"
    h = await start_deployment(
        client, with_secret(svc, "vault:secret/data/nope#db_password"), "it", tq
    )
    with pytest.raises(WorkflowFailureError) as err:
        await deployment_result(client.get_workflow_handle(h.id, result_type=DeployResult))
    msg = str(err.value.cause)
    assert "SecretNotFound" in msg and "secret/data/nope" in msg
    async with httpx.AsyncClient() as c:
        ops = (await c.get(f"{live_stack.settings.agent_url}/v1/ops")).json()
        missing = await c.get(f"{live_stack.settings.agent_url}/v1/services/{svc}/dev")
    ops = ops["ops"] if isinstance(ops, dict) else ops
    assert not [o for o in ops if o.get("service") == svc]
    assert missing.status_code == 404
