"""The worker SIGKILLed while one deployment holds its service's release lane and
another waits in the lane's queue, on the real embedded stack with live traffic:

after a new worker starts, both finish in order (the queued one takes the lane only
after the holder ended, with the holder's version as its stable version), no client
request fails, no retire removes a serving version, and the lane is never left held
by a finished run (at the end: no holder, empty queue, or the lane has ended)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from activities.ledger import Ledger
from tests.integration.stack import LiveStack
from tests.integration.test_deploy_local import Client, endpoint
from tests.integration.test_lanes_race import (
    assert_lane_free,
    canary,
    first_release,
    grant_order,
    journal,
    platform,
    replay_journal,
    run_to_end,
    serving,
)
from tests.waiting import wait_until_async
from workers.cli.lanes import lane_state, lane_workflow_id
from workflows.client import connect, start_deployment
from workflows.models import DeployResult, DeployStatus

pytestmark = pytest.mark.integration

STEPS = [
    {"set_weight": 30},
    {"pause": {"duration": "4s"}},
    {"set_weight": 60},
    {"pause": {"duration": "2s"}},
]


async def test_worker_killed_with_holder_and_waiter(live_stack: LiveStack) -> None:
    client = await connect(live_stack.settings.temporal_address)
    tq = live_stack.settings.task_queue
    svc = f"lkill{uuid.uuid4().hex[:5]}"
    h1 = await start_deployment(client, first_release(svc), "it", tq)
    res = await run_to_end(client, h1.id)
    assert isinstance(res, DeployResult) and res.outcome == "promoted", res
    traffic = Client(await endpoint(live_stack, svc))
    task = asyncio.create_task(traffic.run(rate=40))
    try:
        holder = await start_deployment(client, canary(svc, "v2", "queue", STEPS), "it", tq)
        waiter = await start_deployment(client, canary(svc, "v3", "queue", STEPS), "it", tq)
        lane = lane_workflow_id(svc, "dev", tq)

        async def both_in_lane() -> bool:
            st = await lane_state(client, lane)
            return bool(
                st
                and st.holder
                and st.holder.holder_id == holder.id
                and [q.holder_id for q in st.queue] == [waiter.id]
            )

        await wait_until_async(both_in_lane, 30, "v2 holding the lane, v3 queued")

        async def canary_live() -> bool:
            st = await holder.query("status", result_type=DeployStatus)
            return st.weights.get("v2", 0) > 0

        await wait_until_async(canary_live, 60, "the v2 canary taking traffic")
        st3 = await waiter.query("status", result_type=DeployStatus)
        assert st3.phase == "queued" and st3.queued_behind == holder.id, st3
        live_stack.kill_worker()
        await asyncio.sleep(3)  # the holder's pause timer fires with no worker
        live_stack.start_worker()
        r2 = await run_to_end(client, holder.id)
        r3 = await run_to_end(client, waiter.id)
        await asyncio.sleep(2)
    finally:
        traffic.stop.set()
        await task
    assert isinstance(r2, DeployResult) and r2.outcome == "promoted", r2
    assert isinstance(r3, DeployResult) and r3.outcome == "promoted", r3
    assert (r2.previous_version, r3.previous_version) == ("v1", "v2")
    assert grant_order(live_stack, svc, [holder.id, waiter.id]) == [holder.id, waiter.id]
    ops = await journal(live_stack, svc)
    at_first = replay_journal(ops)
    assert serving(at_first[waiter.id]) == "v2", at_first
    idx = {
        w: [i for i, o in enumerate(ops) if str(o.get("idempotency_key", "")).startswith(w)]
        for w in (holder.id, waiter.id)
    }
    assert max(idx[holder.id]) < min(idx[waiter.id]), idx  # one at a time, in order
    assert sum(traffic.failed.values()) == 0, (traffic.failed, traffic.served)
    state = await platform(live_stack, svc)
    assert serving(state["weights"]) == "v3" and set(state["versions"]) == {"v3"}, state
    current = Ledger(live_stack.settings.effective_ledger_url()).current(svc, "dev")
    assert current is not None and current.version == "v3"
    await assert_lane_free(client, live_stack, svc)
    st = await lane_state(client, lane)
    assert st is None or (st.holder is None and not st.queue), st
