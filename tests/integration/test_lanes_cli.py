"""``codectl`` and release lanes, on the real embedded stack (dev server, local agent,
worker process), while a canary waiting for approval holds its service's lane:

- ``codectl deploy`` of a ``concurrency: reject`` spec checks the lane first and
  refuses with exit 2 naming the holder; no workflow is started;
- a reject run that still fails with ``LaneBusy`` (it lost the race after the check)
  exits 2 from the live view too (``codectl status ID --watch``);
- a queued deployment: ``codectl status ID`` shows "queued behind <holder> (position 1)",
  ``--output json`` gives phase ``queued`` and ``queued_behind``;
- ``codectl lanes [SERVICE] [--env E] [--output json]`` lists the lane with its holder
  and queue; ``codectl rollback --concurrency reject`` is refused with exit 2 too;
- once approved, the holder promotes, the queued run follows and the lane ends free."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.stack import LiveStack
from tests.integration.test_lanes_race import (
    assert_lane_free,
    canary,
    first_release,
    run_to_end,
)
from tests.waiting import wait_until_async
from workers.cli.lanes import lane_workflow_id
from workflows.client import connect, deployment_result, start_deployment
from workflows.models import ApproveInput, DeployResult, DeployStatus

pytestmark = pytest.mark.integration

GATE = [{"set_weight": 20}, {"pause": {"until_approved": True, "timeout": "10m"}}]


def spec_file(tmp: Path, spec: Any) -> Path:
    path = tmp / f"{spec.service}-{spec.version}-{spec.concurrency}.json"
    path.write_text(spec.model_dump_json(indent=2))
    return path


async def test_cli_reject_queued_status_and_lanes(live_stack: LiveStack, tmp_path: Path) -> None:
    client = await connect(live_stack.settings.temporal_address)
    tq = live_stack.settings.task_queue
    svc = f"lcli{uuid.uuid4().hex[:5]}"
    first = await start_deployment(client, first_release(svc), "it", tq)
    assert getattr(await run_to_end(client, first.id), "outcome", None) == "promoted"
    holder = await start_deployment(client, canary(svc, "v2", "queue", GATE), "it", tq)

    async def waiting() -> bool:
        return (await holder.query("status", result_type=DeployStatus)).waiting_for_approval

    await wait_until_async(waiting, 90, "the canary holding the lane, waiting for approval")

    # reject: checked before anything starts
    proc = live_stack.cli("deploy", str(spec_file(tmp_path, canary(svc, "v3", "reject"))))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert holder.id in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert [w.id async for w in client.list_workflows(f'WorkflowId="deploy-{svc}-dev-v3"')] == []
    rb = live_stack.cli("rollback", svc, "--env", "dev", "--concurrency", "reject")
    assert rb.returncode == 2 and holder.id in rb.stderr, rb.stdout + rb.stderr
    assert [
        w.id async for w in client.list_workflows(f'WorkflowId STARTS_WITH "rollback-{svc}"')
    ] == []

    # a reject run that got past the check: LaneBusy exits 2 from the live view
    raced = await start_deployment(client, canary(svc, "v9", "reject"), "it", tq)
    assert await run_to_end(client, raced.id) == "LaneBusy"
    watch = live_stack.cli("status", raced.id, "--watch")
    assert watch.returncode == 2, watch.stdout + watch.stderr
    assert holder.id in watch.stderr and "nothing applied" in watch.stderr, watch.stderr

    # queue: the run waits, and says behind whom
    queued = live_stack.cli(
        "deploy", str(spec_file(tmp_path, canary(svc, "v3", "queue"))), "--no-wait"
    )
    assert queued.returncode == 0, queued.stdout + queued.stderr
    wid = f"deploy-{svc}-dev-v3"

    def phase_queued() -> Any:
        out = live_stack.cli("status", wid, "--output", "json")
        doc = json.loads(out.stdout) if out.returncode == 0 else {}
        return doc if doc.get("phase") == "queued" and doc.get("queued_behind") else None

    doc = await wait_until_async(phase_queued, 30, f"{wid} queued")
    assert doc["queued_behind"] == holder.id, doc
    assert doc["reason"] == f"queued behind {holder.id} (position 1)", doc
    text = live_stack.cli("status", wid)
    assert text.returncode == 0, text.stderr
    assert f"queued behind {holder.id} (position 1)" in text.stdout, text.stdout

    lane = lane_workflow_id(svc, "dev", live_stack.settings.task_queue)
    for args in (["lanes", svc], ["lanes", svc, "--env", "dev"], ["lanes"]):
        out = live_stack.cli(*args, "--output", "json")
        assert out.returncode == 0, out.stderr
        rows = [r for r in json.loads(out.stdout) if r["workflow_id"] == lane]
        assert len(rows) == 1, (args, out.stdout)
        assert rows[0]["holder"]["workflow_id"] == holder.id, rows
        assert [q["workflow_id"] for q in rows[0]["queue"]] == [wid], rows
    other = live_stack.cli("lanes", svc, "--env", "prod", "--output", "json")
    assert other.returncode == 0 and json.loads(other.stdout) == [], other.stdout
    table = live_stack.cli("lanes", svc)
    assert table.returncode == 0 and holder.id in table.stdout and wid in table.stdout

    # the holder promotes; the queued run follows with it as its stable version
    await holder.execute_update("approve", ApproveInput(identity="oncall"))
    res = await deployment_result(client.get_workflow_handle(holder.id, result_type=DeployResult))
    assert res.outcome == "promoted", res.reason
    nxt = await run_to_end(client, wid)
    assert isinstance(nxt, DeployResult) and nxt.outcome == "promoted", nxt
    assert nxt.previous_version == "v2"
    await assert_lane_free(client, live_stack, svc)
    gone = live_stack.cli("lanes", svc, "--output", "json")
    assert gone.returncode == 0
    assert all(r["holder"] is None and not r["queue"] for r in json.loads(gone.stdout))
