"""A full 24-hour soak (288 x 5-minute slices) in the time-skipping test server.

The slice activity is replaced by a synthetic one (same activity name); the real
resolve and report activities run. Checks that the workflow continues-as-new,
counts every slice exactly once, and that its verdict is the one the slices
imply (pass, p99 drift at slice 200, error creep at slice 150, RSS leak)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowHistoryEventFilterType
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.interceptor import ErrorInterceptor
from activities.settings import Settings
from activities.soak import SoakActivities
from code_foundation.names import SoakA
from loadtest.scenario import parse_scenario
from loadtest.soak_models import (
    SliceInput,
    SliceResult,
    SoakInput,
    SoakPlan,
    SoakResult,
    SoakTarget,
)
from tests.soak.synthetic import LATENCIES, make_slice_activity
from workflows.soak import SoakTestWorkflow

RATE = 10.0
SLICE_S = 300


def plan(**kw: object) -> SoakPlan:
    base: dict = {
        "name": "ts",
        "target": SoakTarget(url="http://127.0.0.1:9"),
        "scenario": parse_scenario({"targets": [{"name": "home"}]}),
        "rate": RATE,
        "duration": "24h",
        "slice": "5m",
        "checks": {
            "slo": {"objective": 0.99},
            "p99_drift": {"max_increase": 0.5},
            "error_creep": {"max_increase": 0.01},
            "resources": {"max_rss_slope_mb_per_hour": 5.0, "min_points": 12},
        },
    }
    base.update(kw)
    return SoakPlan.model_validate(base)


async def _run(
    env: WorkflowEnvironment, tmp_path: Path, p: SoakPlan, **fake: object
) -> tuple[SoakResult, int, float]:
    tq = f"soak-{uuid.uuid4()}"
    acts = SoakActivities(Settings(state_dir=tmp_path, artifact_dir=tmp_path / "artifacts"))
    calls: list[int] = []
    async with Worker(
        env.client,
        task_queue=tq,
        workflows=[SoakTestWorkflow],
        activities=[acts.resolve_target, acts.report, make_slice_activity(calls=calls, **fake)],
        interceptors=[ErrorInterceptor()],
    ):
        t = time.monotonic()
        handle = await env.client.start_workflow(
            SoakTestWorkflow.run, SoakInput(plan=p), id=f"soak-ts-{uuid.uuid4()}", task_queue=tq
        )
        result = await handle.result()
        wall = time.monotonic() - t
        # the final run's history stays small; count its events
        events = 0
        async for _ in handle.fetch_history_events(
            event_filter_type=WorkflowHistoryEventFilterType.ALL_EVENT
        ):
            events += 1
    assert sorted(set(calls)) == sorted(calls)  # no slice was scheduled twice
    return result, events, wall


@pytest.mark.slow
async def test_24h_soak_passes_with_exact_totals(
    ts_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    p = plan()
    assert p.n_slices == 288
    res, events, wall = await _run(ts_env, tmp_path, p)
    assert res.verdict == "pass", res.reason
    assert res.slices == 288 and res.runs == 6  # 48 slices per run -> 5 continue-as-new
    per_slice = int(RATE * SLICE_S) // len(LATENCIES) * len(LATENCIES)
    assert res.stats.completed == 288 * per_slice  # exact totals, nothing double counted
    assert res.stats.planned == 288 * int(RATE * SLICE_S)
    assert [s.index for s in res.summaries] == list(range(288))
    assert res.summaries[-1].end_s == 24 * 3600
    assert res.stats.histogram().count == res.stats.completed
    print(f"24h soak: {wall:.1f}s wall, {res.runs} runs, {events} events in the last run")
    assert events < 10_000
    assert res.report is not None and res.report.png_key.endswith("report.png")
    png = tmp_path / "artifacts" / f"{res.report.png_key}.versions"
    assert png.exists()


@pytest.mark.slow
async def test_p99_drift_breach_at_the_slice_that_drifts(
    ts_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    res, _, _ = await _run(ts_env, tmp_path, plan(), drift_from=200)
    assert res.verdict == "fail"
    assert res.reason.startswith("p99 drift")
    assert res.slices == 201 and res.last_check is not None and res.last_check.slice_index == 200


@pytest.mark.slow
async def test_error_creep_breach(ts_env: WorkflowEnvironment, tmp_path: Path) -> None:
    p = plan(
        checks={
            "slo": None,
            "p99_drift": None,
            "error_creep": {"max_increase": 0.01},
            "resources": None,
        }
    )
    res, _, _ = await _run(ts_env, tmp_path, p, errors_from=150)
    assert res.verdict == "fail" and res.reason.startswith("error creep")
    assert res.slices == 151


@pytest.mark.slow
async def test_slo_burn_breach(ts_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """5% errors against a 99.9% objective burns 50x: the 1h/5m window fires once
    the long window's burn rate also exceeds 14.4 (after a few bad slices)."""
    p = plan(
        checks={
            "slo": {"objective": 0.999},
            "p99_drift": None,
            "error_creep": None,
            "resources": None,
        }
    )
    res, _, _ = await _run(ts_env, tmp_path, p, errors_from=100)
    assert res.verdict == "fail" and res.reason.startswith("slo burn 1h/5m")
    # long window 1h = 12 slices; burn = 50 * k/12 > 14.4 first at k = 4 bad slices
    assert res.slices == 104


@pytest.mark.slow
async def test_rss_leak_breach(ts_env: WorkflowEnvironment, tmp_path: Path) -> None:
    # 1 MB per 5-minute slice = 12 MB/h against a 5 MB/h limit
    res, _, _ = await _run(ts_env, tmp_path, plan(duration="6h"), leak_mb_per_slice=1.0)
    assert res.verdict == "fail" and res.reason.startswith("rss trend"), res.reason
    assert res.slices < 10  # flagged as soon as there are enough points


@pytest.mark.slow
async def test_status_query_and_abort(ts_env: WorkflowEnvironment, tmp_path: Path) -> None:
    import asyncio

    from loadtest.soak_models import SoakStatus

    tq = f"soak-{uuid.uuid4()}"
    acts = SoakActivities(Settings(state_dir=tmp_path, artifact_dir=tmp_path / "artifacts"))
    async with Worker(
        ts_env.client,
        task_queue=tq,
        workflows=[SoakTestWorkflow],
        activities=[acts.resolve_target, acts.report, make_slice_activity()],
        interceptors=[ErrorInterceptor()],
    ):
        handle = await ts_env.client.start_workflow(
            SoakTestWorkflow.run,
            SoakInput(plan=plan()),
            id=f"soak-ab-{uuid.uuid4()}",
            task_queue=tq,
        )
        st = None
        for _ in range(200):  # no time skipping while we only query: waits on the 1st timer
            st = await handle.query(SoakTestWorkflow.status)
            if st is not None and st.slices_done >= 1:
                break
            await asyncio.sleep(0.05)
        assert isinstance(st, SoakStatus)
        assert st.slices_total == 288 and st.planned_rate == RATE
        assert st.current_rate == pytest.approx(RATE * 0.999, rel=0.01)  # 2,999 of 3,000 sent
        assert st.remaining_s == pytest.approx(24 * 3600 - st.elapsed_s)
        assert st.last_check is not None and not st.last_check.breach
        await handle.signal(SoakTestWorkflow.abort, "operator said stop")
        res = await handle.result()
    assert res.verdict == "aborted" and res.reason == "operator said stop"
    assert res.slices == 1


@pytest.mark.slow
async def test_history_replays_deterministically(
    ts_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Replay this run's history (and the committed one) with the current code."""
    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    from workflows.client import data_converter

    p = plan(duration="1h", slices_per_run=5)
    tq = f"soak-{uuid.uuid4()}"
    acts = SoakActivities(Settings(state_dir=tmp_path, artifact_dir=tmp_path / "artifacts"))
    async with Worker(
        ts_env.client,
        task_queue=tq,
        workflows=[SoakTestWorkflow],
        activities=[acts.resolve_target, acts.report, make_slice_activity()],
        interceptors=[ErrorInterceptor()],
    ):
        handle = await ts_env.client.start_workflow(
            SoakTestWorkflow.run, SoakInput(plan=p), id=f"soak-rp-{uuid.uuid4()}", task_queue=tq
        )
        res = await handle.result()
        assert res.runs == 3
        first = ts_env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
        history = await first.fetch_history()
    replayer = Replayer(workflows=[SoakTestWorkflow], data_converter=data_converter())
    await replayer.replay_workflow(history)
    committed = Path(__file__).parent / "histories" / "soak_1h_5_per_run.json"
    assert committed.exists(), f"committed history missing: write {committed} from this run"
    await replayer.replay_workflow(WorkflowHistory.from_json(handle.id, committed.read_text()))


@pytest.mark.slow
async def test_slice_failing_after_retries_fails_the_soak_with_report(
    ts_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A target that stays unreachable: the slice fails non-retryably, the soak's
    verdict is fail with the reason, and the report is still written."""

    @activity.defn(name=SoakA.SLICE)
    async def broken(inp: SliceInput) -> SliceResult:
        raise ApplicationError(
            "target refused every connection", type="SpecError", non_retryable=True
        )

    tq = f"soak-{uuid.uuid4()}"
    acts = SoakActivities(Settings(state_dir=tmp_path, artifact_dir=tmp_path / "artifacts"))
    async with Worker(
        ts_env.client,
        task_queue=tq,
        workflows=[SoakTestWorkflow],
        activities=[acts.resolve_target, acts.report, broken],
        interceptors=[ErrorInterceptor()],
    ):
        res = await ts_env.client.execute_workflow(
            SoakTestWorkflow.run, SoakInput(plan=plan()), id=f"soak-f-{uuid.uuid4()}", task_queue=tq
        )
    assert res.verdict == "fail" and res.slices == 0
    assert "slice 0 failed after retries: target refused every connection" in res.reason
    assert res.report is not None and res.report.html_key
