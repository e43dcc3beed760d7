"""Background (strategy-level) analysis on the time-skipping server: a regression that
starts after the canary's last analysis step is caught by the background analysis
during the long pause that follows, and the run stops at once and rolls back; without a
regression the background passes end with the steps and the canary is promoted."""

from __future__ import annotations

import uuid

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from code_foundation.errors import SpecError
from code_foundation.names import A
from tests.workflows.fakes import FakePlatform
from tests.workflows.test_hooks import result, start
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.models import AnalyseInput, AnalysisResult, DeployStatus
from workflows.rollback import RollbackWorkflow
from workflows.spec import parse_spec

REGRESSION_AFTER = 3.25 * 3600  # seconds after the first analysed window (between polls)


def spec(version: str, background: str = "{interval: 30m, count: 2}") -> object:
    return parse_spec(
        f"""
service: shop
environment: prod
version: {version}
artifact: {{command: ["{{python}}", "svc.py"]}}
strategy:
  type: canary
  canary:
    analysis: {background}
    steps:
      - set_weight: 20
      - analysis: {{interval: 10m, count: 2}}
      - set_weight: 50
      - pause: {{duration: 6h}}
"""
    )


class Regression:
    """``analysis.run`` that passes until REGRESSION_AFTER, then fails for ``bad``."""

    def __init__(self, bad: set[str]) -> None:
        self.bad = bad
        self.origin: dict[str, float] = {}
        self.calls: list[tuple[int, float, str]] = []

    def activity(self):  # type: ignore[no-untyped-def]
        @activity.defn(name=A.ANALYSE)
        async def analyse(inp: AnalyseInput) -> AnalysisResult:
            t0 = self.origin.setdefault(inp.run_id, inp.window_start)
            late = inp.window_end - t0 > REGRESSION_AFTER
            bad = late and inp.canary_version in self.bad
            self.calls.append((inp.step_index, inp.window_end - t0, "fail" if bad else "pass"))
            return AnalysisResult(
                verdict="fail" if bad else "pass",
                reasons=["p99 latency 4x stable" if bad else "ok"],
                window_start=inp.window_start,
                window_end=inp.window_end,
            )

        return analyse


def worker(env: WorkflowEnvironment, fake: FakePlatform, judge: Regression) -> tuple[Worker, str]:
    tq = f"tq-{uuid.uuid4()}"
    acts = [a for a in fake.activities() if getattr(a, "__name__", "") != "analyse"]
    return (
        Worker(
            env.client,
            task_queue=tq,
            workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
            activities=[*acts, judge.activity()],
        ),
        tq,
    )


async def test_background_analysis_catches_a_late_regression_and_stops_the_run(
    ts_env: WorkflowEnvironment,
) -> None:
    fake, judge = FakePlatform(), Regression({"v2"})
    w, tq = worker(ts_env, fake, judge)
    async with w:
        await result(await start(ts_env, spec("v1"), tq))
        h = await start(ts_env, spec("v2"), tq)
        res = await result(h)
        st: DeployStatus = await h.query(DeploymentWorkflow.status)
        desc = await h.describe()
    assert res.outcome == "rolled_back", res.reason
    assert "background analysis: analysis failed at step 3" in res.reason
    assert "p99 latency 4x stable" in res.reason
    assert fake.weights == {"v1": 100} and "v2" not in fake.running
    # the step analysis (10m, 20m) passed; the regression began after it
    step_analysis = next(r for r in st.steps if r.kind == "analysis" and r.index == 1)
    assert step_analysis.outcome == "ok" and "background" not in step_analysis.description
    # stopped the moment it failed: in the 6h pause (at 3h30m), not at its end
    pause = next(r for r in st.steps if r.kind == "pause")
    assert pause.outcome == "interrupted"
    assert desc.close_time is not None and desc.start_time is not None
    ran = (desc.close_time - desc.start_time).total_seconds()
    assert 3.5 * 3600 <= ran < 4 * 3600, ran
    failed = [r for r in st.steps if r.description.startswith("background analysis")]
    assert failed[-1].outcome == "failed"
    assert [v for *_, v in judge.calls if v == "fail"] == ["fail"]


async def test_background_analysis_without_regression_ends_with_the_steps(
    ts_env: WorkflowEnvironment,
) -> None:
    fake, judge = FakePlatform(), Regression(set())
    w, tq = worker(ts_env, fake, judge)
    async with w:
        await result(await start(ts_env, spec("v1"), tq))
        h = await start(ts_env, spec("v2", "{interval: 50m, count: 2, start_at_step: 2}"), tq)
        res = await result(h)
        st: DeployStatus = await h.query(DeploymentWorkflow.status)
    assert res.outcome == "promoted", res.reason
    passes = [r for r in st.steps if r.description.startswith("background analysis")]
    # from step 2 (at 20m) through the 6h pause: passes of 100 min, the 4th one stopped
    assert [r.index for r in passes] == [2, 3, 3, 3]  # the step each pass started in
    assert [r.outcome for r in passes] == ["ok"] * 4
    assert passes[-1].detail.startswith("stopped when the steps ended")
    assert all(r.finished_at is not None for r in st.steps)


def test_background_start_must_be_a_step() -> None:
    with pytest.raises(SpecError) as err:
        spec("v2", "{start_at_step: 4}")
    assert "analysis.start_at_step 4 is past the last step (index 3)" in str(err.value)
