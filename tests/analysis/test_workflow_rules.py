"""Analysis rules of DeploymentWorkflow on the time-skipping server, with a scripted
fake ``analysis.run``: Kayenta's multi-interval rule (earlier scores >= marginal, the
last >= pass), Argo's failure/consecutive-error limits, and Marginal -> pause for a
human decision -> approve / timeout. Ten-minute intervals pass in milliseconds."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from code_foundation.names import A
from tests.workflows.fakes import FakePlatform
from workflows.analysis import overall
from workflows.client import deployment_result, execute_deployment
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.models import (
    AnalyseInput,
    AnalysisResult,
    ApproveInput,
    DeployInput,
    DeployResult,
    DeployStatus,
)
from workflows.rollback import RollbackWorkflow
from workflows.spec import AnalysisSpec, DeploymentSpec

QUERY = 'sum(rate(code_router_requests_total{version="{version}",code=~"5.."}[1m]))'
SCORES = {"pass": 100.0, "marginal": 80.0, "fail": 40.0}


def spec(version: str, **analysis: Any) -> DeploymentSpec:
    a = {"interval": "10m", "count": 3, "metrics": [{"name": "errors", "query": QUERY}], **analysis}
    return DeploymentSpec.model_validate(
        {
            "service": "shop",
            "environment": "prod",
            "version": version,
            "artifact": {"command": ["{python}", "svc.py"]},
            "approvals": {"timeout": "2h"},
            "strategy": {
                "type": "canary",
                "canary": {"steps": [{"set_weight": 20}, {"analysis": a}]},
            },
        }
    )


@dataclass
class Scripted:
    """``analysis.run`` answering from a script: pass/marginal/fail/inconclusive/error/flaky."""

    script: list[str]
    calls: list[AnalyseInput] = field(default_factory=list)
    attempts: int = 0

    def activity(self) -> Any:
        @activity.defn(name=A.ANALYSE)
        async def analyse(inp: AnalyseInput) -> AnalysisResult:
            self.attempts += 1
            step = self.script[min(inp.interval_index, len(self.script) - 1)]
            if step == "flaky" and activity.info().attempt < 2:
                raise ApplicationError("Prometheus answered 503", type="MetricsUnavailable")
            if step == "error":
                raise ApplicationError(
                    f"Prometheus at http://127.0.0.1:1 is unreachable (ConnectError) on query: {QUERY}",
                    type="MetricsUnavailable",
                    non_retryable=True,
                )
            self.calls.append(inp)
            verdict = "pass" if step == "flaky" else step
            return AnalysisResult(
                verdict=verdict,
                score=SCORES.get(verdict),
                reasons=[f"scripted {verdict}"],  # type: ignore[arg-type]
                artifact_key=f"analysis/x/{inp.run_id}/step01-interval{inp.interval_index:03d}.json",
                window_start=inp.window_start,
                window_end=inp.window_end,
            )

        return analyse


async def start(
    env: WorkflowEnvironment, script: list[str], s: DeploymentSpec
) -> tuple[WorkflowHandle, Scripted, Worker]:
    fake = FakePlatform()
    scripted = Scripted(script)
    acts = [a for a in fake.activities() if a.__temporal_activity_definition.name != A.ANALYSE]  # type: ignore[attr-defined]
    tq = f"tq-{uuid.uuid4()}"
    w = Worker(
        env.client,
        task_queue=tq,
        workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
        activities=[*acts, scripted.activity()],
    )
    await w.__aenter__()
    first = await execute_deployment(
        env.client,
        DeploymentWorkflow.run,
        DeployInput(spec=spec("v1"), set_search_attributes=False),
        id=f"deploy-{uuid.uuid4()}",
        task_queue=tq,
        result_type=DeployResult,
    )
    assert first.outcome == "promoted"
    h = await env.client.start_workflow(
        DeploymentWorkflow.run,
        DeployInput(spec=s, set_search_attributes=False),
        id=f"deploy-{uuid.uuid4()}",
        task_queue=tq,
        result_type=DeployResult,
    )
    return h, scripted, w


async def run(
    env: WorkflowEnvironment, script: list[str], **analysis: Any
) -> tuple[DeployResult, Scripted, DeployStatus]:
    h, scripted, w = await start(env, script, spec("v2", **analysis))
    try:
        res = await deployment_result(h)
        st = await h.query(DeploymentWorkflow.status)
    finally:
        await w.__aexit__(None, None, None)
    return res, scripted, st


def analysis_step(res: DeployResult) -> Any:
    return next(s for s in res.steps if s.kind == "analysis")


# ---------------------------------------------------------------- Kayenta rule
async def test_earlier_marginal_then_pass_promotes(ts_env: WorkflowEnvironment) -> None:
    res, sc, _ = await run(ts_env, ["marginal", "marginal", "pass"])
    assert res.outcome == "promoted", res.reason
    assert len(sc.calls) == 3
    assert "scores 80, 80, 100" in analysis_step(res).detail
    # judge mode: the growing window starts where the analysis started (Kayenta default)
    assert len({c.window_start for c in sc.calls}) == 1
    assert sc.calls[2].window_end - sc.calls[2].window_start >= 3 * 600 - 1


async def test_earlier_score_below_marginal_fails_at_once(ts_env: WorkflowEnvironment) -> None:
    res, sc, _ = await run(ts_env, ["fail", "pass", "pass"])
    assert res.outcome == "rolled_back"
    assert "analysis failed at step 1" in res.reason
    assert len(sc.calls) == 1
    assert analysis_step(res).outcome == "failed"


async def test_failure_limit_tolerates_earlier_failures_but_last_must_pass(
    ts_env: WorkflowEnvironment,
) -> None:
    ok, _, _ = await run(ts_env, ["fail", "pass", "pass"], failure_limit=1)
    assert ok.outcome == "promoted", ok.reason
    bad, _, _ = await run(ts_env, ["pass", "pass", "fail"], failure_limit=1)
    assert bad.outcome == "rolled_back"
    assert "last interval did not reach marginal_threshold" in bad.reason


async def test_sliding_lookback_window(ts_env: WorkflowEnvironment) -> None:
    res, sc, _ = await run(ts_env, ["pass"], lookback="10m")
    assert res.outcome == "promoted"
    assert [round(c.window_end - c.window_start) for c in sc.calls] == [600, 600, 600]


# ---------------------------------------------------------------- marginal -> decision
async def test_marginal_last_interval_pauses_and_approve_continues(
    ts_env: WorkflowEnvironment,
) -> None:
    h, sc, w = await start(ts_env, ["pass", "pass", "marginal"], spec("v2", decision_timeout="2h"))
    try:
        await ts_env.sleep(timedelta(minutes=31))  # the three 10-minute intervals
        for _ in range(200):
            st = await h.query(DeploymentWorkflow.status)
            if st.waiting_for_approval:
                break
            await asyncio.sleep(0.05)
        assert st.waiting_for_approval and st.phase == "waiting for approval"
        assert st.last_analysis is not None and st.last_analysis.verdict == "marginal"
        await h.execute_update(DeploymentWorkflow.approve, ApproveInput(identity="carol"))
        res = await deployment_result(h)
    finally:
        await w.__aexit__(None, None, None)
    assert res.outcome == "promoted", res.reason
    assert "approved by carol" in analysis_step(res).detail


async def test_marginal_without_decision_rolls_back_at_the_deadline(
    ts_env: WorkflowEnvironment,
) -> None:
    res, _, _ = await run(ts_env, ["pass", "marginal"], count=2, decision_timeout="30m")
    assert res.outcome == "rolled_back"
    assert "no approval" in res.reason and "marginal analysis" in res.reason


async def test_marginal_timeout_can_continue_or_roll_back_at_once(
    ts_env: WorkflowEnvironment,
) -> None:
    cont, _, _ = await run(
        ts_env, ["marginal"], count=1, decision_timeout="5m", on_decision_timeout="continue"
    )
    assert cont.outcome == "promoted"
    assert "timed out (continue)" in analysis_step(cont).detail
    now, _, _ = await run(ts_env, ["marginal"], count=1, on_marginal="rollback")
    assert now.outcome == "rolled_back" and "below pass_threshold 95" in now.reason


async def test_inconclusive_pauses_by_default_in_judge_mode(ts_env: WorkflowEnvironment) -> None:
    res, _, _ = await run(
        ts_env, ["inconclusive"], count=2, inconclusive_limit=0, decision_timeout="10m"
    )
    assert res.outcome == "rolled_back"
    assert "no approval for inconclusive analysis" in res.reason


# ---------------------------------------------------------------- metrics-backend errors
async def test_errors_below_consecutive_limit_do_not_fail(ts_env: WorkflowEnvironment) -> None:
    res, sc, st = await run(
        ts_env, ["error", "error", "pass", "pass"], count=4, consecutive_error_limit=2
    )
    assert res.outcome == "promoted", res.reason
    assert "2 error(s)" in analysis_step(res).detail
    assert st.last_analysis_error is not None and "unreachable" in st.last_analysis_error
    assert QUERY in st.last_analysis_error
    assert st.analysis_errors == 0  # reset by the passing intervals


async def test_consecutive_errors_beyond_limit_roll_back_with_the_query(
    ts_env: WorkflowEnvironment,
) -> None:
    res, sc, st = await run(ts_env, ["pass", "error"], count=5, consecutive_error_limit=2)
    assert res.outcome == "rolled_back"
    assert "3 consecutive metrics-backend errors (limit 2)" in res.reason
    assert QUERY in res.reason
    assert len(sc.calls) == 1 and sc.attempts == 4
    assert st.analysis_errors == 3 and QUERY in (st.last_analysis_error or "")
    assert analysis_step(res).outcome == "error"


async def test_default_consecutive_error_limit_is_four(ts_env: WorkflowEnvironment) -> None:
    assert AnalysisSpec().consecutive_error_limit == 4
    res, sc, st = await run(ts_env, ["error"], count=10)
    assert res.outcome == "rolled_back" and sc.attempts == 5


async def test_transient_backend_error_is_retried_inside_the_interval(
    ts_env: WorkflowEnvironment,
) -> None:
    res, sc, st = await run(ts_env, ["flaky"], count=2)
    assert res.outcome == "promoted"
    assert sc.attempts == 4  # two intervals, each failed once and succeeded on retry
    assert st.last_analysis_error is None


def test_overall_rule_matches_the_workflow() -> None:
    a = AnalysisSpec.model_validate({"metrics": [{"name": "m", "query": "up"}], "count": 3})
    assert overall(["marginal", "pass", "pass"], a) == "pass"
    assert overall(["pass", "pass", "marginal"], a) == "marginal"
    assert overall(["fail", "pass", "pass"], a) == "fail"
    assert overall(["error", "error", "pass"], a) == "pass"
    assert overall(["error"] * 5, a) == "error"
    t = AnalysisSpec()  # thresholds mode keeps Argo semantics only
    assert overall(["pass", "fail"], t) == "fail"
    assert overall(["inconclusive", "pass"], t) == "pass"
