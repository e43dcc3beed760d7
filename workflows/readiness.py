"""``ReadinessWorkflow``: a production-readiness certificate for one service and
environment, computed from evidence over a window (default 30 days).

1. Optionally runs a suite first, as child workflows: a load test at the target rate and a
   soak (``SoakTestWorkflow``, ids ``<id>-load`` / ``<id>-soak``) and chaos experiments
   (``ChaosExperimentWorkflow``, ``<id>-chaos-<n>``). A suite soak or load test that does
   not pass fails the certificate with its reason.
2. Gathers evidence in four activities (ledger, artifact store, Temporal, observability;
   :mod:`activities.readiness`) and each SLO's error budget (``slo.error_budget``; an
   unreadable budget after 3 attempts is "not measured").
3. Computes the certificate with :func:`workflows.readiness_formulas.certify` (pure),
   compares it with the previous one (``readiness.previous``) and stores
   ``certificate.json``/``.md``/``.html`` (``readiness.publish``).

The input is ``Any`` validated by :func:`workflows.inputs.parse_input`. Query: ``status``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError

from code_foundation.error_types import NON_RETRYABLE
from code_foundation.names import A, ReadyA, W

with workflow.unsafe.imports_passed_through():
    from chaos.messages import ChaosResult, ChaosRunInput
    from loadtest.soak_models import SoakInput, SoakPlan, SoakResult
    from workflows.inputs import parse_input
    from workflows.readiness_formulas import certify
    from workflows.readiness_models import (
        EvidenceBundle,
        GatherInput,
        PreviousInput,
        PreviousResult,
        PublishInput,
        PublishResult,
        ReadinessInput,
        ReadinessResult,
        SuiteRun,
    )
    from workflows.slo import BudgetInput, BudgetResult

RETRY = RetryPolicy(maximum_attempts=5, non_retryable_error_types=NON_RETRYABLE)
BUDGET_RETRY = RetryPolicy(maximum_attempts=3, non_retryable_error_types=NON_RETRYABLE)
GATHER = (ReadyA.LEDGER, ReadyA.ARTIFACTS, ReadyA.TEMPORAL, ReadyA.OBSERVABILITY)


def load_plan(plan: SoakPlan, inp: ReadinessInput) -> SoakPlan:
    """The suite's load test: at the highest rate the declared targets name (else the
    plan's), named ``load-...`` so the evidence counts it as a load test."""
    rates = [t.at_rps for t in inp.effective_rules().latency_targets() if t.at_rps]
    name = plan.name if plan.name.startswith("load") else f"load-{plan.name}"[:60]
    return plan.model_copy(update={"rate": max(rates) if rates else plan.rate, "name": name})


def _cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return str(err)[:500]


@workflow.defn(name=W.READINESS)
class ReadinessWorkflow:
    def __init__(self) -> None:
        self._phase = "starting"

    @workflow.query
    def status(self) -> str:
        return self._phase

    async def _soak(self, kind: str, plan: SoakPlan, actor: str) -> SuiteRun:
        wid = f"{workflow.info().workflow_id}-{kind}"
        self._phase = f"suite: {kind} {plan.name}"
        try:
            res: SoakResult = await workflow.execute_child_workflow(
                W.SOAK,
                SoakInput(plan=plan, actor=actor),
                id=wid,
                result_type=SoakResult,
                task_queue=workflow.info().task_queue,
                static_summary=f"readiness suite {kind}: {plan.name}",
            )
            outcome, reason = str(res.verdict), res.reason
        except ChildWorkflowError as err:
            outcome, reason = "failed", _cause(err)
        return SuiteRun(
            kind=kind,  # type: ignore[arg-type]
            name=plan.name,
            workflow_id=wid,
            outcome=outcome,
            reason=reason,
        )

    async def _suite(self, inp: ReadinessInput) -> list[SuiteRun]:
        suite = inp.suite
        if suite is None:
            return []
        runs: list[SuiteRun] = []
        actor = f"readiness:{workflow.info().workflow_id}"
        if suite.load is not None:
            runs.append(await self._soak("load", load_plan(suite.load, inp), actor))
        for i, exp in enumerate(suite.chaos):
            wid = f"{workflow.info().workflow_id}-chaos-{i + 1}"
            self._phase = f"suite: chaos {exp.title}"
            try:
                res: ChaosResult = await workflow.execute_child_workflow(
                    W.CHAOS,
                    ChaosRunInput(experiment=exp, actor=actor),
                    id=wid,
                    result_type=ChaosResult,
                    task_queue=workflow.info().task_queue,
                    static_summary=f"readiness suite chaos: {exp.title}",
                )
                outcome = "deviated" if res.deviated else res.status
                reason = res.reason
            except ChildWorkflowError as err:
                outcome, reason = "failed", _cause(err)
            runs.append(
                SuiteRun(
                    kind="chaos", name=exp.title, workflow_id=wid, outcome=outcome, reason=reason
                )
            )
        if suite.soak is not None:
            runs.append(await self._soak("soak", suite.soak, actor))
        return runs

    async def _budgets(self, bundle: EvidenceBundle, inp: ReadinessInput) -> None:
        for slo in bundle.observability.slos:
            try:
                res: BudgetResult = await workflow.execute_activity(
                    A.BUDGET,
                    BudgetInput(
                        service=inp.service,
                        environment=inp.environment,
                        slo=slo.name,
                        objective=slo.objective,
                        window_seconds=slo.window_seconds,
                        good_query=slo.good_query or None,
                        total_query=slo.total_query or None,
                    ),
                    result_type=BudgetResult,
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=BUDGET_RETRY,
                )
            except ActivityError as err:
                slo.budget_source = f"unreadable: {_cause(err)}"
                continue
            slo.budget_remaining = res.remaining
            slo.budget_source = res.source
            slo.firing = list(res.firing)

    @workflow.run
    async def run(self, raw: Any) -> ReadinessResult:
        inp = parse_input(ReadinessInput, raw, "readiness input")
        wid = workflow.info().workflow_id
        suite_runs = await self._suite(inp)
        end = workflow.now()
        start = end - inp.window
        rules = inp.effective_rules()
        gather = GatherInput(
            service=inp.service,
            environment=inp.environment,
            window_start=start,
            window_end=end,
            rules=rules,
            crash_matrix=inp.crash_matrix,
            exclude_workflow_ids=[wid],
        )
        self._phase = "gathering evidence"
        parts = await asyncio.gather(
            *(
                workflow.execute_activity(
                    name,
                    gather,
                    result_type=EvidenceBundle,
                    start_to_close_timeout=timedelta(minutes=10),
                    heartbeat_timeout=timedelta(minutes=2) if name == ReadyA.TEMPORAL else None,
                    retry_policy=RETRY,
                )
                for name in GATHER
            )
        )
        bundle = EvidenceBundle(
            service=inp.service, environment=inp.environment, window_start=start, window_end=end
        ).merged(*parts)
        await self._budgets(bundle, inp)
        prev: PreviousResult = await workflow.execute_activity(
            ReadyA.PREVIOUS,
            PreviousInput(service=inp.service, environment=inp.environment),
            result_type=PreviousResult,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        cert = certify(
            bundle,
            rules,
            generated_at=end,
            workflow_id=wid,
            suite=suite_runs,
            previous=prev.certificate,
        )
        self._phase = "publishing"
        pub: PublishResult = await workflow.execute_activity(
            ReadyA.PUBLISH,
            PublishInput(certificate=cert, bundle=bundle),
            result_type=PublishResult,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RETRY,
        )
        self._phase = "done"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return ReadinessResult(
            workflow_id=wid,
            verdict=cert.verdict,
            reasons=cert.reasons,
            certificate=cert,
            artifacts=pub.artifacts,
        )
