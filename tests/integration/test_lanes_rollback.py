"""A manual ``codectl rollback`` issued while a canary holds its service's release lane,
on the real embedded stack with live traffic through the router:

- default (``queue``): the rollback waits in the lane's queue and changes nothing while
  the canary runs; once the canary is approved and promoted, the rollback runs and
  restores the version before it;
- ``--concurrency supersede``: the canary is aborted (it rolls back to its stable
  version), then the rollback runs;
- either way no client request fails, the agent never retires a serving version, the
  rollback's first platform operation comes after the canary's last one, and the
  ledger and the router end consistent (the ledger's current release serves 100%)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from activities.ledger import Ledger
from tests.integration.stack import ROOT, LiveStack
from tests.integration.test_deploy_local import Client, endpoint
from tests.integration.test_lanes_race import (
    assert_lane_free,
    canary,
    first_release,
    journal,
    platform,
    replay_journal,
    run_to_end,
    serving,
)
from tests.waiting import wait_until_async
from workers.cli.lanes import lane_state, lane_workflow_id
from workflows.client import connect, start_deployment
from workflows.models import ApproveInput, DeployResult, DeployStatus

pytestmark = pytest.mark.integration

GATE = [{"set_weight": 30}, {"pause": {"until_approved": True, "timeout": "10m"}}]
QUICK = [{"set_weight": 50}, {"pause": {"duration": "1s"}}]


def cli_async(stack: LiveStack, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **stack.env, "COLUMNS": "200"},
        cwd=ROOT,
    )


def ops_index(ops: list[dict[str, Any]], prefix: str) -> list[int]:
    return [i for i, o in enumerate(ops) if str(o.get("idempotency_key", "")).startswith(prefix)]


@pytest.mark.parametrize("policy", ["queue", "supersede"])
async def test_manual_rollback_while_canary_holds_lane(live_stack: LiveStack, policy: str) -> None:
    client = await connect(live_stack.settings.temporal_address)
    tq = live_stack.settings.task_queue
    svc = f"lrb{policy[:3]}{uuid.uuid4().hex[:5]}"
    for spec in (first_release(svc), canary(svc, "v2", "queue", QUICK)):
        h = await start_deployment(client, spec, "it", tq)
        res = await run_to_end(client, h.id)
        assert isinstance(res, DeployResult) and res.outcome == "promoted", res
    traffic = Client(await endpoint(live_stack, svc))
    task = asyncio.create_task(traffic.run(rate=40))
    try:
        holder = await start_deployment(client, canary(svc, "v3", "queue", GATE), "it", tq)

        async def waiting() -> bool:
            return (await holder.query("status", result_type=DeployStatus)).waiting_for_approval

        await wait_until_async(waiting, 90, "the v3 canary waiting for approval")
        args = ["rollback", svc, "--env", "dev"]
        if policy == "supersede":
            args += ["--concurrency", "supersede"]
        proc = cli_async(live_stack, *args)
        lane = lane_workflow_id(svc, "dev", tq)

        if policy == "queue":

            async def rollback_queued() -> str | None:
                st = await lane_state(client, lane)
                q = [r.holder_id for r in st.queue] if st else []
                return q[0] if q and q[0].startswith(f"rollback-{svc}-") else None

            rb_id = await wait_until_async(rollback_queued, 30, "the rollback in the lane queue")
            st = await lane_state(client, lane)
            assert st is not None and st.holder is not None and st.holder.holder_id == holder.id
            await asyncio.sleep(2)  # it stays queued: nothing of it reaches the platform
            assert ops_index(await journal(live_stack, svc), rb_id) == []
            assert (await platform(live_stack, svc))["weights"] == {"v2": 70, "v3": 30}
            await holder.execute_update("approve", ApproveInput(identity="oncall"))
        try:
            out, errs = await asyncio.to_thread(proc.communicate, timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, errs = proc.communicate()
            st = await lane_state(client, lane)
            hs = await holder.query("status", result_type=DeployStatus)
            pytest.fail(f"rollback did not finish: {out}{errs}\nlane {st}\nholder {hs}")
        held = await run_to_end(client, holder.id)
        await asyncio.sleep(2)
    finally:
        traffic.stop.set()
        await task
    assert proc.returncode == 0, out + errs
    assert isinstance(held, DeployResult), held
    rb_id = next(w.split()[1] for w in out.splitlines() if w.startswith("started "))
    if policy == "queue":
        # the canary finished first, then the rollback undid it
        assert held.outcome == "promoted", held.reason
        assert "restored v2" in out, out
        expected = "v2"
    else:
        # superseded: the canary aborted and rolled back to v2, then the rollback ran
        assert held.outcome in ("aborted", "rolled_back"), (held.outcome, held.reason)
        assert "superseded" in held.reason or "abort" in held.reason, held.reason
        assert "rolled_back" in out, out
        expected = None  # whatever the rollback restored: checked against the ledger below
    assert sum(traffic.failed.values()) == 0, (traffic.failed, traffic.served)
    ops = await journal(live_stack, svc)
    replay_journal(ops)  # no retire of a serving version
    mine, theirs = ops_index(ops, rb_id), ops_index(ops, holder.id)
    assert mine and theirs and max(theirs) < min(mine), (theirs, mine)
    state = await platform(live_stack, svc)
    now = serving(state["weights"])
    current = Ledger(live_stack.settings.effective_ledger_url()).current(svc, "dev")
    assert current is not None and now == current.version, (state, current)
    assert set(state["versions"]) == {now}, state
    if expected:
        assert now == expected
    assert traffic.after(0) and traffic.events[-1][1] == now
    await assert_lane_free(client, live_stack, svc)
