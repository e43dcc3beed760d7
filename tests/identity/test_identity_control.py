"""pause / resume / abort of a deployment as Updates, with identity on (real dev server,
real local OIDC issuer, real tokens; the ``stack`` of :mod:`test_identity_workflow`).

A raw SDK client without a valid token, or with a token whose principal lacks ``operator``,
gets the Update rejected by its validator: no Update event enters the history, nothing
changes, and the denial is in the hash-chained audit log (written by the worker's
rejection sink). A forged token passes the validator (no pinned key verifies it: the
handler refreshes the keys) and is refused by the handler: the Update fails, audited,
nothing changes. An operator's pause, resume and abort (through ``codectl``, which sends
the Updates) take effect; the history replays."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.worker import Replayer

from workflows import identity_gate
from workflows.client import data_converter, deployment_result
from workflows.deployment import DeploymentWorkflow
from workflows.deployment.control import ControlResult
from workflows.models import ControlInput, DeployStatus
from workflows.rollback import RollbackWorkflow

from .test_identity_workflow import (  # noqa: F401 - fixtures
    GATES,
    RM,
    Stack,
    at_gate,
    forged,
    issuer,
    stack,
    start,
)


@pytest.fixture(autouse=True)
def no_sink_after() -> Iterator[None]:
    yield
    identity_gate.audit_rejections(None)  # other tests in this process run without identity


async def rejected(handle: WorkflowHandle, what: str, token: str | None) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(
            what,
            ControlInput(identity="alice", reason="test", token=token),
            result_type=ControlResult,
        )
    return str(info.value.cause)


async def update_events(handle: WorkflowHandle) -> list[str]:
    history = await handle.fetch_history()
    return [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]


async def codectl(s: Stack, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """codectl as a process, off the event loop (the worker shares the loop)."""
    return await asyncio.to_thread(_codectl, s, token, *args)


def _codectl(s: Stack, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODE_")}
    env.update(
        CODE_STATE_DIR=str(s.settings.state_dir),
        CODE_TEMPORAL_ADDRESS=s.env.client.service_client.config.target_host,
        CODE_TOKEN=token,
    )
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_control_updates_verify_the_caller(stack: Stack) -> None:  # noqa: F811
    s = stack
    first = await start(s, "v1", s.issuer.token("alice", RM))
    assert (await deployment_result(first)).outcome == "promoted"
    handle = await start(s, "v2", s.issuer.token("alice", RM), GATES)
    before = await at_gate(handle, 1)
    viewer = s.issuer.token("carol", ["viewers"])

    assert "no token" in await rejected(handle, "pause", None)
    assert "lacks role operator" in await rejected(handle, "abort", viewer)
    no_mfa = s.issuer.token("bob", RM, mfa=False)
    assert "multi-factor" in await rejected(handle, "resume", no_mfa)
    assert await update_events(handle) == []  # rejected by the validator: never accepted

    # a forged token is decided by the handler (keys refreshed first): accepted, then refused
    assert "signature does not verify" in await rejected(
        handle, "abort", forged(s.issuer.token("dave", RM))
    )
    assert await update_events(handle) == ["abort"]
    st: DeployStatus = await at_gate(handle, 1)
    assert st.approvals == before.approvals == [] and st.outcome == before.outcome == "running"
    assert s.fake.weights == {"v1": 70, "v2": 30}

    rejection_sink = identity_gate._REJECTIONS["sink"]
    assert rejection_sink is not None
    rejection_sink.flush()  # type: ignore[attr-defined]
    denied = [d for d in s.decisions() if d[2] == "denied"]
    assert [d[:2] for d in denied] == [
        ("unverified", "identity.pause"),
        ("carol@example.com", "identity.abort"),
        ("bob@example.com", "identity.resume"),
        ("unverified", "identity.abort"),  # the forged one, audited by the handler
    ], denied
    rows = [json.loads(r.detail_json) for r in s.ledger().audit_records()]
    assert sum(r.get("rejected_by") == "update validator" for r in rows) == 3
    assert s.ledger().verify_audit() is None

    # an operator, through codectl (which sends the Updates)
    dave = s.issuer.token("dave", RM)
    paused = await codectl(s, dave, "pause", handle.id, "--reason", "look")
    assert paused.returncode == 0, paused.stderr
    assert "dave@example.com: paused" in " ".join(paused.stdout.split())
    assert dave not in paused.stdout
    assert (await handle.query(DeploymentWorkflow.status)).reason == "paused by dave@example.com"
    resumed = await codectl(s, dave, "resume", handle.id)
    assert resumed.returncode == 0, resumed.stderr
    refused = await codectl(s, viewer, "abort", handle.id)
    assert refused.returncode == 1 and "lacks role operator" in " ".join(refused.stderr.split())
    aborted = await codectl(s, dave, "abort", handle.id, "--reason", "enough")
    assert aborted.returncode == 0, aborted.stderr
    res = await deployment_result(handle)
    assert res.outcome != "promoted" and "dave@example.com" in (res.reason or "")
    assert await update_events(handle) == ["abort", "pause", "resume", "abort"]
    allowed = [d[:2] for d in s.decisions() if d[2] == "allowed"]
    for action in ("pause", "resume", "abort"):
        assert ("dave@example.com", f"identity.{action}") in allowed
    await Replayer(
        workflows=[DeploymentWorkflow, RollbackWorkflow], data_converter=data_converter()
    ).replay_workflow(await handle.fetch_history())
