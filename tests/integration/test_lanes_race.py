"""Release lanes under a race, end to end: real Temporal dev server, real local agent
and router, a worker process, live client traffic through the router counted per
serving version.

Three versions of one service are started within one second under each policy
(``queue``, ``supersede``, ``reject``), each a short canary (set_weight + a short timed
pause). Checked:

- no request failed (the race costs no client request);
- the runs that took the lane ran one at a time (grant order = the ledger's intent
  order) and every run's recorded stable version (``DeployResult.previous_version``)
  was the version serving 100% when it took the lane, read from the agent's op journal
  (weights replayed up to that run's first operation); for ``queue`` each promoted
  run's ``previous_version`` is the version promoted before it;
- the ledger's last promoted version is the one serving 100%;
- no retire ever removed a version that had traffic (journal replay), none was refused
  for having traffic;
- ``reject``: the losers failed with ``LaneBusy`` and applied nothing;
- the lane is never left held: at the end it has no holder and no queue, or has ended.

The helpers here are shared by the other ``test_lanes_*`` modules."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowFailureError

from activities.ledger import Ledger
from tests.integration.stack import LiveStack
from tests.integration.test_deploy_local import Client, endpoint, example
from tests.waiting import wait_until_async
from workers.cli.lanes import lane_state, lane_workflow_id
from workflows.client import connect, deployment_result, start_deployment
from workflows.models import DeployResult, DeployStatus
from workflows.spec import DeploymentSpec

pytestmark = pytest.mark.integration

SHORT_STEPS: list[dict[str, Any]] = [
    {"set_weight": 30},
    {"pause": {"duration": "2s"}},
    {"set_weight": 60},
    {"pause": {"duration": "2s"}},
]


def canary(service: str, version: str, policy: str, steps: list[dict[str, Any]] | None = None):
    """A good demo release of ``version``: a short canary under lane policy ``policy``."""
    base = example("demo-v2.yaml", service).model_dump(mode="json")
    base.update(
        version=version,
        replicas=1,
        concurrency=policy,
        strategy={"type": "canary", "canary": {"steps": steps or SHORT_STEPS}},
    )
    return DeploymentSpec.model_validate(base)


def first_release(service: str) -> DeploymentSpec:
    return example("demo-v1.yaml", service, replicas=1)


async def run_to_end(client: Any, wid: str, timeout: float = 150) -> DeployResult | str:
    """The run's result, or the failure type (e.g. ``LaneBusy``) when it failed; a run
    still open after ``timeout`` seconds fails the test with its status and its lane's."""
    handle = client.get_workflow_handle(wid, result_type=DeployResult)
    try:
        return await asyncio.wait_for(deployment_result(handle), timeout)
    except WorkflowFailureError as exc:
        return str(getattr(exc.cause, "type", None) or exc.cause)
    except TimeoutError:
        st = await handle.query("status", result_type=DeployStatus)
        lane = await lane_state(client, st.lane) if st.lane else None
        pytest.fail(f"{wid} still running after {timeout}s: {st}\nlane: {lane}")


async def journal(stack: LiveStack, service: str) -> list[dict[str, Any]]:
    """The agent's op journal for ``service``, in the order the calls ended."""
    async with httpx.AsyncClient() as c:
        ops = (await c.get(f"{stack.settings.agent_url}/v1/ops")).json()
    ops = ops["ops"] if isinstance(ops, dict) else ops
    return [o for o in ops if o.get("service") == service]


async def platform(stack: LiveStack, service: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as c:
        r = await c.get(f"{stack.settings.agent_url}/v1/services/{service}/dev")
        return dict(r.json())


def serving(weights: dict[str, int]) -> str | None:
    """The version taking all traffic, if one does."""
    live = {v: w for v, w in weights.items() if w}
    return next(iter(live)) if len(live) == 1 and next(iter(live.values())) == 100 else None


def replay_journal(ops: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Replay the weights through the journal: assert that no retire removed a version
    with traffic (nor was refused for it), and return, for each workflow id seen in an
    idempotency key, the weights in force at that workflow's first operation."""
    weights: dict[str, int] = {}
    at_first: dict[str, dict[str, int]] = {}
    for o in ops:
        key = str(o.get("idempotency_key") or "")
        wid = key.split(":", 1)[0]
        if wid and wid not in at_first:
            at_first[wid] = dict(weights)
        if o["op"] == "retire":
            err = (o.get("error") or {}).get("error")
            assert err != "has_traffic", f"a retire was refused for a serving version: {o}"
            if o.get("changed"):
                assert weights.get(o["version"], 0) == 0, (o, weights)
                weights.pop(o["version"], None)
        if o.get("weights") and o.get("outcome") in ("done", "repaired"):
            weights = {v: int(w) for v, w in o["weights"].items()}
    return at_first


def grant_order(stack: LiveStack, service: str, wids: list[str]) -> list[str]:
    """The runs that took the lane, in grant order (each writes its ledger intent right
    after the grant, so the ledger's first row of each run orders them)."""
    rows = Ledger(stack.settings.effective_ledger_url()).history(service, "dev", limit=200)
    first: dict[str, Any] = {}
    for r in rows:
        if r.workflow_id in wids and (
            r.workflow_id not in first or r.created_at < first[r.workflow_id]
        ):
            first[r.workflow_id] = r.created_at
    return sorted(first, key=lambda w: first[w])


async def assert_lane_free(client: Any, stack: LiveStack, service: str) -> None:
    """The lane has no holder and no queue (or has ended) — within the watch period."""
    lane = lane_workflow_id(service, "dev", stack.settings.task_queue)

    async def free() -> bool:
        st = await lane_state(client, lane)
        return st is None or (st.holder is None and not st.queue)

    await wait_until_async(free, 30, f"{lane} free at the end")


@pytest.mark.parametrize("policy", ["queue", "supersede", "reject"])
async def test_three_versions_within_one_second(live_stack: LiveStack, policy: str) -> None:
    client = await connect(live_stack.settings.temporal_address)
    svc = f"race{policy[:3]}{uuid.uuid4().hex[:5]}"
    tq = live_stack.settings.task_queue
    v1 = await start_deployment(client, first_release(svc), "it", tq)
    assert isinstance(res := await run_to_end(client, v1.id), DeployResult), res
    assert res.outcome == "promoted", res.reason
    traffic = Client(await endpoint(live_stack, svc))
    task = asyncio.create_task(traffic.run(rate=40))
    try:
        handles = [
            await start_deployment(client, canary(svc, v, policy), "it", tq)
            for v in ("v2", "v3", "v4")
        ]
        wids = [h.id for h in handles]
        results = dict(
            zip(wids, await asyncio.gather(*(run_to_end(client, w) for w in wids)), strict=True)
        )
        done = time.time()
        await wait_until_async(lambda: len(traffic.after(done)) >= 40, 60, "traffic after")
    finally:
        traffic.stop.set()
        await task
    # the race cost no client request
    assert sum(traffic.failed.values()) == 0, (traffic.failed, traffic.served)
    ran = [w for w in wids if isinstance(results[w], DeployResult)]
    refused = {w: results[w] for w in wids if w not in ran}
    order = grant_order(live_stack, svc, wids)
    assert sorted(order) == sorted(ran), (order, results)
    # the race premise, on the server's clocks rather than this machine's speed: all three
    # runs were started while the first holder of the lane still held it
    descs = {w: await client.get_workflow_handle(w).describe() for w in wids}
    first_close = descs[order[0]].close_time
    assert first_close is not None, descs[order[0]].status
    assert all(d.start_time < first_close for d in descs.values()), {
        w: (d.start_time, d.close_time) for w, d in descs.items()
    }
    ops = await journal(live_stack, svc)
    at_first = replay_journal(ops)
    stable = "v1"
    for wid in order:
        res = results[wid]
        assert isinstance(res, DeployResult)
        # the stable version it recorded is the one serving when it took the lane
        assert res.previous_version == stable, (wid, res.previous_version, stable, results)
        assert wid in at_first or res.outcome != "promoted", (wid, ops)
        if wid in at_first:  # (a run superseded at once applied nothing)
            assert serving(at_first[wid]) == stable, (wid, at_first[wid])
        if res.outcome == "promoted":
            stable = res.version
    outcomes = {w: getattr(r, "outcome", r) for w, r in results.items()}
    if policy == "queue":
        assert all(o == "promoted" for o in outcomes.values()), outcomes
    elif policy == "supersede":
        assert results[order[-1]].outcome == "promoted", outcomes  # type: ignore[union-attr]
        superseded = [w for w in order[:-1] if outcomes[w] != "promoted"]
        assert superseded, f"nothing was superseded: {outcomes}"
        for w in superseded:
            assert outcomes[w] in ("aborted", "rolled_back"), outcomes
    else:
        assert len(ran) == 1 and outcomes[ran[0]] == "promoted", outcomes
        assert set(refused.values()) == {"LaneBusy"}, refused
        for w in refused:  # nothing applied for a refused run
            assert not [o for o in ops if str(o.get("idempotency_key", "")).startswith(w)]
    # the ledger's last promoted version serves 100%, and only it
    state = await platform(live_stack, svc)
    assert serving(state["weights"]) == stable, state
    assert set(state["versions"]) == {stable}, state
    current = Ledger(live_stack.settings.effective_ledger_url()).current(svc, "dev")
    assert current is not None and current.version == stable
    after = traffic.after(done)
    assert after and all(v == stable and code < 500 for _, v, code in after), after[-5:]
    await assert_lane_free(client, live_stack, svc)
