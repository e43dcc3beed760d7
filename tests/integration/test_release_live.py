"""A release pipeline on the real embedded stack with several real agents
(``workers.clusters.ensure_clusters``: one local agent per cluster, own state dir and
port), real demo-service processes and live HTTP traffic to the canary cluster's router.

A good version goes dev → staging → prod (eu-canary, then eu-1 + us-1) and is promoted
on every cluster. A bad one (50% errors) fails analysis in eu-canary: eu-1 and us-1
never see a call for it (their agents' journals), keep serving the good version, and
the failure policy restores dev and staging."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.integration.stack import EXAMPLES, LiveStack
from tests.waiting import wait_until_async
from workers.clusters import ensure_clusters
from workflows.client import connect
from workflows.pipeline_spec import PipelineSpec, load_pipeline
from workflows.release_client import release_result
from workflows.release_models import ReleaseInput, ReleaseResult, release_id
from workflows.release_models import ReleaseStatus as ReleaseStatusModel

pytestmark = pytest.mark.integration
CLUSTERS = ["eu-canary", "eu-1", "us-1"]


def demo_pipeline(service: str, error_rate: str) -> PipelineSpec:
    p = load_pipeline(
        EXAMPLES / "pipelines" / "demo.yaml", clusters=["local", *CLUSTERS], now=datetime.now(UTC)
    )
    doc: dict[str, Any] = p.model_dump(mode="json", exclude_none=True)
    doc["service"] = service
    art = doc["deployment"]["artifact"]
    art["workdir"] = str(EXAMPLES)
    art["env"]["DEMO_ERROR_RATE"] = error_rate
    for stage in doc["stages"]:
        if stage["name"] == "staging":  # only the canary cluster is judged (live traffic)
            stage["targets"][0]["strategy"] = "straight"
        for t in stage["targets"]:
            if t.get("cluster") in ("eu-1", "us-1"):
                t["strategy"] = "straight"
    return PipelineSpec.model_validate(doc)


async def agent_get(url: str, path: str) -> Any:
    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.get(url + path)
        return r.json() if r.status_code == 200 else None


async def hammer(url_of: Any, stop: asyncio.Event, counts: dict[str, int]) -> None:
    """Live traffic to the canary cluster's router, once it exists."""
    async with httpx.AsyncClient(timeout=5) as c:
        while not stop.is_set():
            url = await url_of()
            if url:
                try:
                    r = await c.get(url + "/work")
                    v = r.headers.get("x-code-version", "?")
                    counts[v] = counts.get(v, 0) + 1
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.02)


async def run_release(live: LiveStack, p: PipelineSpec, version: str) -> ReleaseResult:
    client = await connect(live.settings.temporal_address)
    h = await client.start_workflow(
        "ReleaseWorkflow",
        ReleaseInput(pipeline=p, version=version, actor="it"),
        id=release_id(p.service, version),
        task_queue=live.settings.task_queue,
        result_type=ReleaseResult,
    )
    return await asyncio.wait_for(release_result(h), 400)


async def test_good_then_bad_version_across_real_clusters(live_stack: LiveStack) -> None:
    agents = ensure_clusters(live_stack.stack, CLUSTERS)
    assert len(set(agents.values())) == 3
    for url in agents.values():  # one real agent per cluster, each answering
        assert await agent_get(url, "/v1/ops") is not None
    svc = f"rel{uuid.uuid4().hex[:6]}"

    good = await run_release(live_stack, demo_pipeline(svc, "0"), "g1")
    # first release everywhere: no canary to judge yet (all traffic to g1 at once)
    assert good.outcome == "promoted", good.reason
    for name, url in agents.items():
        st = await agent_get(url, f"/v1/services/{svc}/prod")
        assert st and st["weights"] == {"g1": 100}, (name, st)
    for env in ("dev", "staging"):
        st = await agent_get(live_stack.settings.agent_url, f"/v1/services/{svc}/{env}")
        assert st and st["weights"] == {"g1": 100}, (env, st)
    assert {c.workflow_id for c in good.cells} >= {f"deploy-{svc}-prod-eu-1-g1"}

    async def canary_router() -> str | None:
        st = await agent_get(agents["eu-canary"], f"/v1/services/{svc}/prod")
        return str(st["endpoint"]).rstrip("/") if st and st.get("endpoint") else None

    stop, counts = asyncio.Event(), dict[str, int]()
    traffic = asyncio.ensure_future(hammer(canary_router, stop, counts))
    try:
        bad = await run_release(live_stack, demo_pipeline(svc, "0.5"), "b1")
    finally:
        stop.set()
        await traffic
    assert bad.outcome == "rolled_back", bad.reason
    phases = {c.target if c.stage == "prod" else c.stage: c.phase for c in bad.cells}
    assert phases == {
        "dev": "restored",
        "staging": "restored",
        "eu-canary": "rolled_back",
        "eu-1": "pending",
        "us-1": "pending",
    }, phases
    assert counts.get("b1", 0) > 0, counts  # the canary served live traffic before the verdict
    for name in ("eu-1", "us-1"):  # never touched: no call for b1 in their journals
        ops = await agent_get(agents[name], "/v1/ops")
        # (by field, not by substring: "b1" also occurs inside hex fingerprints)
        touched = [o for o in ops if o.get("version") == "b1" or "b1" in (o.get("weights") or {})]
        assert not touched and any(o.get("op") == "traffic" for o in ops), (name, touched)
        st = await agent_get(agents[name], f"/v1/services/{svc}/prod")
        assert st["weights"] == {"g1": 100}, (name, st)

    async def restored() -> bool:
        for url, env in [(live_stack.settings.agent_url, "dev"), (agents["eu-canary"], "prod")]:
            st = await agent_get(url, f"/v1/services/{svc}/{env}")
            if not st or st["weights"] != {"g1": 100}:
                return False
        return True

    await wait_until_async(restored, 30, "dev and eu-canary back on g1")


async def test_worker_killed_mid_wave_the_release_finishes(live_stack: LiveStack) -> None:
    """SIGKILL the worker while wave 2 runs: a new worker finishes the release correctly,
    every cluster on the new version, nothing applied twice."""
    agents = ensure_clusters(live_stack.stack, CLUSTERS)
    svc = f"kw{uuid.uuid4().hex[:6]}"
    assert (await run_release(live_stack, demo_pipeline(svc, "0"), "k1")).outcome == "promoted"
    doc = demo_pipeline(svc, "0").model_dump(mode="json", exclude_none=True)
    pause = {
        "type": "canary",
        "canary": {"steps": [{"set_weight": 50}, {"pause": {"duration": "15s"}}]},
    }
    for stage in doc["stages"]:
        for t in stage["targets"]:
            if t["cluster"] in ("eu-1", "us-1"):
                t["strategy"] = pause
    p = PipelineSpec.model_validate(doc)
    client = await connect(live_stack.settings.temporal_address)
    h = await client.start_workflow(
        "ReleaseWorkflow",
        ReleaseInput(pipeline=p, version="k2", actor="it"),
        id=release_id(svc, "k2"),
        task_queue=live_stack.settings.task_queue,
        result_type=ReleaseResult,
    )

    async def wave_two() -> bool:
        st = await h.query("status", result_type=ReleaseStatusModel)
        return sum(1 for c in st.cells if c.wave == 1 and c.phase == "running") == 2

    await wait_until_async(wave_two, 120, "wave 2 running")
    await asyncio.to_thread(live_stack.kill_worker)
    await asyncio.to_thread(live_stack.start_worker)
    res: ReleaseResult = await asyncio.wait_for(release_result(h), 300)
    assert res.outcome == "promoted", res.reason
    for name, url in agents.items():
        st = await agent_get(url, f"/v1/services/{svc}/prod")
        assert st["weights"] == {"k2": 100}, (name, st)
        ops = await agent_get(url, "/v1/ops")
        applies = [
            o
            for o in ops
            if "k2" in json.dumps(o) and "apply" in json.dumps(o) and o.get("changed")
        ]
        assert len({json.dumps(o.get("idempotency_key")) for o in applies}) <= 1, (name, applies)
