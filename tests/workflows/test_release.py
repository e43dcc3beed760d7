"""ReleaseWorkflow on the time-skipping server: waves in order, a failing canary
cluster stops the release before the next wave (whose clusters see no call) and the
policy restores every changed target; abort during a wave (audited, rollbacks carry
the aborter's identity); a deploy window that opens in 3 days holds and then
proceeds; a 6 h bake with an SLO breach at 4 h fails the stage; approval timeouts
per stage. Each test waits for its release to end: nothing is left running."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.waiting import wait_until_async
from tests.workflows.release_fakes import MultiFake
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.models import ApproveInput, ControlInput
from workflows.pipeline_spec import PipelineSpec, parse_pipeline
from workflows.release import ReleaseWorkflow
from workflows.release_client import release_result
from workflows.release_models import ReleaseInput, ReleaseResult, ReleaseStatus
from workflows.rollback import RollbackWorkflow

CANARY = """
  strategy:
    type: canary
    canary:
      steps:
        - set_weight: 20
        - analysis: {interval: 10m, count: 1}
"""


def pipeline(stages: str, policy: str = "rollback_all", deployment: str = CANARY) -> PipelineSpec:
    return parse_pipeline(
        f"""
service: shop
failure_policy: {policy}
deployment:
  artifact: {{command: ["{{python}}", "svc.py"]}}
{deployment}
stages:
{stages}
""",
        now=datetime.now(UTC),
    )


PROD = """
  - name: staging
    targets: [{environment: staging}]
  - name: prod
    targets:
      - {environment: prod, cluster: eu-canary}
      - {environment: prod, cluster: eu-1}
      - {environment: prod, cluster: us-1}
    waves:
      - targets: [eu-canary]
        gates: [{type: bake, duration: 1h, interval: 30m}]
      - targets: [eu-1, us-1]
        max_parallel: 2
"""


def worker(env: WorkflowEnvironment, fake: MultiFake) -> tuple[Worker, str]:
    tq = f"tq-{uuid.uuid4()}"
    return (
        Worker(
            env.client,
            task_queue=tq,
            workflows=[ReleaseWorkflow, DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
            activities=fake.activities(),
        ),
        tq,
    )


async def start(env: WorkflowEnvironment, p: PipelineSpec, version: str, tq: str) -> WorkflowHandle:
    return await env.client.start_workflow(
        ReleaseWorkflow.run,
        ReleaseInput(pipeline=p, version=version, actor="tester", set_search_attributes=False),
        id=f"release-shop-{version}-{uuid.uuid4().hex[:6]}",
        task_queue=tq,
    )


async def status_when(
    h: WorkflowHandle, cond: Callable[[ReleaseStatus], bool], what: str
) -> ReleaseStatus:
    async def probe() -> ReleaseStatus | None:
        st: ReleaseStatus = await h.query(ReleaseWorkflow.status)
        return st if cond(st) else None

    return await wait_until_async(probe, 20, what)  # type: ignore[arg-type]


def gate_to_failure(st: ReleaseStatus, gate: str) -> timedelta:
    """Workflow time from the start of ``gate`` to the failure (the release's events)."""
    began = next(e.at for e in st.events if e.what.startswith(gate + ":"))
    failed = next(
        e.at
        for e in st.events
        if e.at >= began and "passed" not in e.what and e.what.split(":")[0] != gate
    )
    return failed - began


def phases(res: ReleaseResult) -> dict[str, str]:
    return {f"{c.stage}/{c.target}": c.phase for c in res.cells}


async def test_good_version_goes_through_every_stage_and_wave(ts_env: WorkflowEnvironment) -> None:
    fake = MultiFake()
    for env, cl in [("staging", None), ("prod", "eu-canary"), ("prod", "eu-1"), ("prod", "us-1")]:
        fake.seed(env, cl, "v1")
    w, tq = worker(ts_env, fake)
    async with w:
        res: ReleaseResult = await release_result(await start(ts_env, pipeline(PROD), "v2", tq))
    assert res.outcome == "promoted", res.reason
    assert set(phases(res).values()) == {"promoted"}
    for key in ("prod/eu-canary", "prod/eu-1", "prod/us-1", "staging/local"):
        assert fake.clusters[key].weights == {"v2": 100}, key
        assert ("retire", "v1") in fake.clusters[key].journal
    ids = {c.target: c.workflow_id for c in res.cells}
    assert ids["eu-1"] == "deploy-shop-prod-eu-1-v2" and ids["local"] == "deploy-shop-staging-v2"
    assert all(c.previous_version == "v1" for c in res.cells)


async def test_bad_version_fails_in_the_canary_cluster_and_everything_goes_back(
    ts_env: WorkflowEnvironment,
) -> None:
    fake = MultiFake(bad_versions={"v3"})
    for env, cl in [("staging", None), ("prod", "eu-canary"), ("prod", "eu-1"), ("prod", "us-1")]:
        fake.seed(env, cl, "v1")
    # staging takes a plain rolling deployment (no analysis): v3 reaches prod
    plain = "targets: [{environment: staging, strategy: plain}]"
    p = pipeline(
        PROD.replace("targets: [{environment: staging}]", plain),
        deployment=CANARY + "strategies: {plain: {type: rolling}}\n",
    )
    w, tq = worker(ts_env, fake)
    async with w:
        res: ReleaseResult = await release_result(await start(ts_env, p, "v3", tq))
    assert res.outcome == "rolled_back", res.reason
    got = phases(res)
    assert got["staging/local"] == "restored"  # changed by this release: put back
    assert got["prod/eu-canary"] == "rolled_back"  # its own deployment compensated
    assert got["prod/eu-1"] == got["prod/us-1"] == "pending"  # never started
    assert fake.clusters["prod/eu-1"].journal == [] and fake.clusters["prod/us-1"].journal == []
    for key in ("staging/local", "prod/eu-canary", "prod/eu-1", "prod/us-1"):
        assert fake.clusters[key].weights == {"v1": 100}, key


async def test_abort_during_wave_two_restores_every_target_with_the_aborters_identity(
    ts_env: WorkflowEnvironment,
) -> None:
    fake = MultiFake()
    for env, cl in [("staging", None), ("prod", "eu-canary"), ("prod", "eu-1"), ("prod", "us-1")]:
        fake.seed(env, cl, "v1")
    slow = CANARY.replace("- set_weight: 20", "- set_weight: 20\n        - pause: {duration: 5h}")
    w, tq = worker(ts_env, fake)
    async with w:
        h = await start(ts_env, pipeline(PROD, deployment=slow), "v4", tq)
        await _skip_until_wave_two(ts_env, h)  # staging and canary pauses, the bake
        await h.signal(ReleaseWorkflow.abort, ControlInput(identity="carol", reason="stop"))
        res: ReleaseResult = await release_result(h)
    assert res.outcome == "aborted", res.reason
    got = phases(res)
    assert got["prod/eu-1"] == got["prod/us-1"] == "aborted"  # stopped, rolled back
    assert got["staging/local"] == got["prod/eu-canary"] == "restored"
    for key in ("staging/local", "prod/eu-canary", "prod/eu-1", "prod/us-1"):
        assert fake.clusters[key].weights == {"v1": 100}, key
    actions = [(a.actor, a.action) for a in fake.audits]
    assert ("carol", "release.abort") in actions
    assert actions.count(("carol", "release.rollback")) == 2
    restores = [r for r in fake.releases if r.strategy == "rollback" and r.status == "promoted"]
    assert {r.actor for r in restores} >= {"carol"}


async def _skip_until_wave_two(env: WorkflowEnvironment, h: WorkflowHandle) -> bool:
    """Let time pass (the staging and canary pauses, the bake) until wave 2 runs."""
    for _ in range(40):
        st: ReleaseStatus = await h.query(ReleaseWorkflow.status)
        if st.stage == "prod" and st.wave == 1 and st.phase == "deploying":
            return True
        await env.sleep(timedelta(hours=1))
    raise AssertionError(f"wave 2 never started: {st}")


async def test_a_deploy_window_three_days_out_holds_then_proceeds(
    ts_env: WorkflowEnvironment,
) -> None:
    fake = MultiFake()
    now = await ts_env.get_current_time()
    today = now.astimezone(UTC).date()
    blackout = ", ".join(f"{{date: {today + timedelta(days=d)}}}" for d in range(3))
    stages = f"""
  - name: prod
    gates:
      - type: window
        window: {{timezone: UTC, allowed: [{{start: "00:00", end: "24:00"}}], blackout: [{blackout}]}}
    targets: [{{environment: prod}}]
"""
    w, tq = worker(ts_env, fake)
    async with w:
        h = await start(ts_env, pipeline(stages, deployment=""), "v1", tq)
        st = await status_when(h, lambda s: (s.gate or "").startswith("window closed"), "held")
        assert st.cells[0].phase == "pending"
        res: ReleaseResult = await release_result(h)
        after = await ts_env.get_current_time()
    assert res.outcome == "promoted", res.reason
    opens = datetime.combine(today + timedelta(days=3), datetime.min.time(), UTC)
    assert after >= opens, (after, opens)
    assert fake.clusters["prod/local"].weights == {"v1": 100}


async def test_six_hour_bake_with_a_breach_at_four_hours_fails_the_stage(
    ts_env: WorkflowEnvironment,
) -> None:
    fake = MultiFake(breach_after=8)  # checks every 30 min: the 8th is at 4 h
    fake.seed("prod", None, "v1")
    stages = """
  - name: prod
    targets: [{environment: prod}]
    after:
      - type: bake
        duration: 6h
        interval: 30m
        slo: {slo: shop-availability, objective: 0.99}
  - name: later
    targets: [{environment: later}]
"""
    w, tq = worker(ts_env, fake)
    async with w:
        h = await start(ts_env, pipeline(stages, deployment=""), "v2", tq)
        res: ReleaseResult = await release_result(h)
        st: ReleaseStatus = await h.query(ReleaseWorkflow.status)
    assert res.outcome == "rolled_back", res.reason
    assert "breached" in res.reason and "4:00:00" in res.reason, res.reason
    # in workflow time: the bake began, and failed 4 h later (of its 6 h)
    assert abs(gate_to_failure(st, "gate prod.after[0]") - timedelta(hours=4)) < timedelta(
        minutes=1
    )
    assert phases(res) == {"prod/local": "restored", "later/local": "pending"}
    assert fake.clusters["prod/local"].weights == {"v1": 100}
    assert "later/local" not in fake.clusters


async def test_approval_timeouts_are_per_stage(ts_env: WorkflowEnvironment) -> None:
    fake = MultiFake()
    stages = """
  - name: staging
    gates: [{type: approval, approvers: [alice], timeout: 1h}]
    targets: [{environment: staging}]
  - name: prod
    gates: [{type: approval, approvers: [bob], timeout: 3h}]
    targets: [{environment: prod}]
"""
    w, tq = worker(ts_env, fake)
    async with w:
        h = await start(ts_env, pipeline(stages, deployment=""), "v1", tq)
        await status_when(h, lambda s: s.waiting_for_approval and s.stage == "staging", "gate 1")
        ok = await h.execute_update(ReleaseWorkflow.approve, ApproveInput(identity="alice"))
        assert ok.accepted
        res: ReleaseResult = await release_result(h)  # nobody approves prod: 3 h later it fails
        st: ReleaseStatus = await h.query(ReleaseWorkflow.status)
    assert res.outcome == "rolled_back" and "no approval within 3:00:00" in res.reason, res.reason
    assert abs(gate_to_failure(st, "gate prod.gates[0]") - timedelta(hours=3)) < timedelta(
        minutes=1
    )
    assert phases(res) == {"staging/local": "restored", "prod/local": "pending"}
    assert ("alice", "release.approve") in [(a.actor, a.action) for a in fake.audits]


TWO_WAVES = """
  - name: prod
    targets:
      - {environment: prod, cluster: eu-canary}
      - {environment: prod, cluster: eu-1}
      - {environment: prod, cluster: us-1}
    waves:
      - targets: [eu-canary]
      - targets: [eu-1, us-1]
        max_parallel: 1
"""


def seeded(bad: set[str] | None = None) -> MultiFake:
    fake = MultiFake(bad_versions=bad or set())
    for cl in ("eu-canary", "eu-1", "us-1"):
        fake.seed("prod", cl, "v1")
    return fake


async def test_rollback_wave_restores_only_the_failed_wave(ts_env: WorkflowEnvironment) -> None:
    fake = seeded({"v5"})
    # eu-canary (wave 1) promotes with a plain rolling deploy; wave 2 is judged and fails
    stages = TWO_WAVES.replace(
        "{environment: prod, cluster: eu-canary}",
        "{environment: prod, cluster: eu-canary, strategy: {type: rolling}}",
    )
    w, tq = worker(ts_env, fake)
    async with w:
        res = await release_result(await start(ts_env, pipeline(stages, "rollback_wave"), "v5", tq))
    assert res.outcome == "failed", res.reason  # nothing of the failed wave was left changed
    got = phases(res)
    assert got["prod/eu-canary"] == "promoted"  # an earlier wave: kept
    assert got["prod/eu-1"] == "rolled_back" and got["prod/us-1"] == "skipped"  # max_parallel 1
    assert fake.clusters["prod/eu-canary"].weights == {"v5": 100}
    assert fake.clusters["prod/us-1"].journal == []


async def test_halt_waits_for_a_decision_then_abort_rolls_back(ts_env: WorkflowEnvironment) -> None:
    fake = seeded({"v6"})
    stages = TWO_WAVES.replace(
        "{environment: prod, cluster: eu-canary}",
        "{environment: prod, cluster: eu-canary, strategy: {type: rolling}}",
    )
    w, tq = worker(ts_env, fake)
    async with w:
        h = await start(ts_env, pipeline(stages, "halt"), "v6", tq)
        try:
            await ts_env.sleep(timedelta(hours=1))  # wave 2's analysis window passes
            st = await status_when(h, lambda s: s.phase == "halted", "halted")
            assert {c.target: c.phase for c in st.cells}["eu-canary"] == "promoted"
            assert fake.clusters["prod/eu-canary"].weights == {"v6": 100}  # left as it is
        finally:  # the decision: never leave a halted release running
            await h.signal(ReleaseWorkflow.abort, ControlInput(identity="dave", reason="undo"))
        res: ReleaseResult = await release_result(h)
    assert res.outcome == "aborted", res.reason
    assert phases(res)["prod/eu-canary"] == "restored"
    assert fake.clusters["prod/eu-canary"].weights == {"v1": 100}
    assert ("dave", "release.rollback") in [(a.actor, a.action) for a in fake.audits]


async def test_pause_holds_at_the_wave_boundary_until_resumed(ts_env: WorkflowEnvironment) -> None:
    fake = seeded()
    stages = TWO_WAVES
    w, tq = worker(ts_env, fake)
    async with w:
        h = await start(ts_env, pipeline(stages, deployment=""), "v7", tq)
        await h.signal(ReleaseWorkflow.pause, ControlInput(identity="erin"))
        try:
            await ts_env.sleep(timedelta(hours=2))  # paused: nothing starts, however long
            # it holds at the first boundary it reaches (before wave 1 or wave 2)
            st = await status_when(h, lambda s: s.paused, "paused at a wave boundary")
            assert (st.gate or "").startswith("paused before prod wave"), st.gate
            later = [c for c in st.cells if st.wave is None or c.wave > st.wave]
            assert later and all(c.phase == "pending" for c in later), st.cells
            assert all(fake.clusters[f"prod/{c.target}"].journal == [] for c in later)
        finally:  # never leave it paused
            await h.signal(ReleaseWorkflow.resume, ControlInput(identity="erin"))
        res: ReleaseResult = await release_result(h)
    assert res.outcome == "promoted", res.reason
