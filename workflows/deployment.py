"""``DeploymentWorkflow``: one release of one service, durable end to end.

validate → record intent → snapshot last-known-good → apply → strategy steps
(traffic weights, durable pauses, analysis) → promote → record. ``approve`` is
an Update (validated, records who); ``pause``/``resume``/``abort`` are Signals
carrying identity; ``status`` is a Query. Failure, abort or cancellation
compensates through a child ``RollbackWorkflow``. Deterministic: all I/O is in
activities, called by name."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from code_foundation.names import (
        SA_ENVIRONMENT,
        SA_KIND,
        SA_OUTCOME,
        SA_SERVICE,
        SA_VERSION,
        A,
        W,
    )
    from workflows.analysis import AnalysisRun
    from workflows.models import (
        ApplyVersionInput,
        ApplyVersionResult,
        ApproveInput,
        ApproveResult,
        ControlInput,
        DeployInput,
        DeployResult,
        DeployStatus,
        DescribeInput,
        DescribeResult,
        LastGoodInput,
        LastGoodResult,
        LedgerRecordInput,
        LedgerRecordResult,
        RetireVersionInput,
        RetireVersionResult,
        RollbackInput,
        RollbackResult,
        SetTrafficInput,
        SetTrafficResult,
        StepRecord,
        ValidateInput,
        ValidateResult,
    )
    from workflows.slo import (
        AuditInput,
        AuditResult,
        BudgetInput,
        BudgetResult,
    )
    from workflows.spec import AnalysisSpec, DeploymentSpec, PauseSpec, Step

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=[
        "SpecError",
        "UnhealthyVersion",
        "PlatformConflict",
        "PolicyViolation",
    ],
)
SHORT = timedelta(seconds=30)
APPLY_TIMEOUT = timedelta(minutes=10)


class Aborted(Exception):
    """Raised inside the workflow when an abort signal arrives."""


@workflow.defn(name=W.DEPLOYMENT)
class DeploymentWorkflow:
    def __init__(self) -> None:
        self._status: DeployStatus | None = None
        self._spec: DeploymentSpec | None = None
        self._paused = False
        self._abort: ControlInput | None = None
        self._approved_by: list[str] = []
        self._approval_seq = 0
        self._waiting_approval = False
        self._override_by: str | None = None  # error-budget override (issue 8)
        self._waiting_override = False

    # ------------------------------------------------------------ handlers
    @workflow.query
    def status(self) -> DeployStatus:
        assert self._status is not None
        return self._status

    @workflow.update
    async def approve(self, inp: ApproveInput) -> ApproveResult:
        # audited before it takes effect: the approver's identity lands in the hash-chained log
        if workflow.patched("audit-approvals"):
            await self._audit(
                inp.identity,
                "deployment.override" if inp.override else "deployment.approve",
                {"comment": inp.comment[:500]},
            )
        if inp.override:
            self._override_by = inp.identity
            return ApproveResult(
                accepted=True, identity=inp.identity, message="error-budget override granted"
            )
        self._approval_seq += 1
        self._approved_by.append(inp.identity)
        if self._status:
            self._status.approvals.append(inp.identity)
        return ApproveResult(accepted=True, identity=inp.identity, message="approved")

    @approve.validator
    def _validate_approve(self, inp: ApproveInput) -> None:
        if self._spec is None or self._status is None:
            raise ValueError("the deployment has not started yet")
        if inp.override:
            pol = self._spec.error_budget
            allowed = (pol.override_approvers if pol else []) or self._spec.approvals.approvers
            if allowed and inp.identity not in allowed:
                raise ValueError(
                    f"{inp.identity!r} may not override the error budget of {self._spec.service}; "
                    f"allowed: {', '.join(allowed)}"
                )
            if not self._waiting_override:
                raise ValueError("nothing is waiting for an error-budget override right now")
            return
        approvers = self._spec.approvals.approvers
        if approvers and inp.identity not in approvers:
            raise ValueError(
                f"{inp.identity!r} may not approve {self._spec.service}; "
                f"approvers are: {', '.join(approvers)}"
            )
        if not self._waiting_approval:
            raise ValueError("nothing is waiting for approval right now")

    async def _audit(self, actor: str, action: str, detail: dict[str, str]) -> None:
        spec = self._spec
        assert spec is not None
        await workflow.execute_activity(
            A.AUDIT,
            AuditInput(
                actor=actor,
                action=action,
                subject=f"{spec.service}/{spec.environment}@{spec.version}",
                detail={**detail, "workflow_id": workflow.info().workflow_id},
            ),
            result_type=AuditResult,
            start_to_close_timeout=SHORT,
            retry_policy=RETRY,
        )

    async def _error_budget_gate(self, spec: DeploymentSpec) -> None:
        """While the service's SLO budget is spent, wait for an audited override (``approve --override``)."""
        pol = spec.error_budget
        if pol is None or not workflow.patched("error-budget-gate"):
            return
        assert self._status is not None
        rec = self._begin(-1, "error_budget", f"error budget of SLO {pol.slo}")
        res = await workflow.execute_activity(
            A.BUDGET,
            BudgetInput(
                service=spec.service,
                environment=spec.environment,
                slo=pol.slo,
                objective=pol.objective,
                window_seconds=pol.window.total_seconds(),
                good_query=pol.good_query,
                total_query=pol.total_query,
                platform=spec.platform,
            ),
            result_type=BudgetResult,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        self._status.error_budget_remaining = res.remaining
        if res.remaining > pol.min_remaining:
            self._end(rec, "ok", f"{res.remaining:.1%} of the error budget left ({res.source})")
            return
        self._waiting_override = True
        self._status.waiting_for_override = True
        self._status.phase = "waiting for error-budget override"
        self._note(
            f"error budget of {pol.slo} is spent ({res.remaining:.1%} left); "
            "an approver must override (codectl approve --override)"
        )
        try:
            await workflow.wait_condition(
                lambda: self._override_by is not None or self._abort is not None,
                timeout=pol.override_timeout,
            )
        except TimeoutError:
            self._end(rec, "failed", "no override")
            raise ApplicationError(
                f"error budget of {pol.slo} is spent and no override arrived within {pol.override_timeout}",
                type="ErrorBudgetExhausted",
                non_retryable=True,
            ) from None
        finally:
            self._waiting_override = False
            self._status.waiting_for_override = False
        self._check_abort()
        self._end(
            rec,
            f"overridden by {self._override_by}",
            f"{res.remaining:.1%} of the error budget left",
        )

    @workflow.signal
    def pause(self, inp: ControlInput) -> None:
        self._paused = True
        self._note(f"paused by {inp.identity}")

    @workflow.signal
    def resume(self, inp: ControlInput) -> None:
        self._paused = False
        self._note(f"resumed by {inp.identity}")

    @workflow.signal
    def abort(self, inp: ControlInput) -> None:
        if self._abort is None:
            self._abort = inp
            self._note(f"abort requested by {inp.identity}: {inp.reason}")

    # ------------------------------------------------------------ helpers
    def _note(self, text: str) -> None:
        if self._status is not None:
            self._status.reason = text

    def _key(self, step: str) -> str:
        info = workflow.info()
        return f"{info.workflow_id}:{info.run_id[:8]}:{step}"

    def _check_abort(self) -> None:
        if self._abort is not None:
            raise Aborted(f"aborted by {self._abort.identity}: {self._abort.reason or 'no reason'}")

    async def _hold_if_paused(self) -> None:
        if self._paused:
            assert self._status is not None
            self._status.paused = True
            await workflow.wait_condition(lambda: not self._paused or self._abort is not None)
            self._status.paused = False
        self._check_abort()

    async def _ledger(self, status: str, detail: str = "") -> None:
        spec = self._spec
        assert spec is not None
        await workflow.execute_activity(
            A.LEDGER_RECORD,
            LedgerRecordInput(
                service=spec.service,
                environment=spec.environment,
                version=spec.version,
                status=status,  # type: ignore[arg-type]
                actor=self._actor,
                workflow_id=workflow.info().workflow_id,
                strategy=spec.strategy.type,
                detail=detail[:2000],
                spec=spec if status in ("intent", "promoted") else None,
                idempotency_key=self._key(f"ledger-{status}"),
            ),
            result_type=LedgerRecordResult,
            start_to_close_timeout=SHORT,
            retry_policy=RETRY,
        )

    async def _traffic(self, weights: dict[str, int], step: str) -> None:
        spec = self._spec
        assert spec is not None and self._status is not None
        res = await workflow.execute_activity(
            A.PLATFORM_TRAFFIC,
            SetTrafficInput(
                service=spec.service,
                environment=spec.environment,
                weights=weights,
                idempotency_key=self._key(step),
                platform=spec.platform,
                namespace=spec.namespace,
            ),
            result_type=SetTrafficResult,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        self._status.weights = dict(res.weights)

    def _begin(self, index: int, kind: str, description: str) -> StepRecord:
        assert self._status is not None
        rec = StepRecord(index=index, kind=kind, description=description, started_at=workflow.now())
        self._status.steps.append(rec)
        self._status.current_step = index
        self._status.step_description = description
        self._status.phase = kind
        return rec

    @staticmethod
    def _end(rec: StepRecord, outcome: str, detail: str = "") -> None:
        rec.finished_at = workflow.now()
        rec.outcome = outcome
        rec.detail = detail

    # ------------------------------------------------------------ run
    @workflow.run
    async def run(self, inp: DeployInput) -> DeployResult:
        spec = inp.spec
        self._spec = spec
        self._actor = inp.actor
        self._sa = inp.set_search_attributes
        info = workflow.info()
        self._status = DeployStatus(
            workflow_id=info.workflow_id,
            service=spec.service,
            environment=spec.environment,
            version=spec.version,
            strategy=spec.strategy.type,
            total_steps=len(spec.strategy.canary.steps) if spec.strategy.canary else 1,
        )
        self._previous: str | None = None
        self._applied = False
        try:
            result = await self._deploy(spec)
        except (
            Aborted,
            asyncio.CancelledError,
            ActivityError,
            ApplicationError,
            ChildWorkflowError,
        ) as exc:
            result = await self._compensate(spec, exc)
        self._status.outcome = result.outcome
        self._status.phase = "done"
        self._status.reason = result.reason
        result.steps = list(self._status.steps)
        if self._sa:
            workflow.upsert_search_attributes([SA_OUTCOME.value_set(result.outcome)])
        if result.outcome == "failed" and not self._applied:
            # nothing ran: surface as a failed workflow so the UI shows it red
            raise ApplicationError(result.reason, type="DeploymentFailed", non_retryable=True)
        return result

    async def _deploy(self, spec: DeploymentSpec) -> DeployResult:
        assert self._status is not None
        wid = workflow.info().workflow_id
        rec = self._begin(-1, "validate", "validate spec and manifests")
        val = await workflow.execute_activity(
            A.VALIDATE_SPEC,
            ValidateInput(spec=spec),
            result_type=ValidateResult,
            start_to_close_timeout=SHORT,
            retry_policy=RETRY,
        )
        if not val.ok:
            self._end(rec, "failed", "; ".join(val.violations))
            raise ApplicationError(
                "validation failed: " + "; ".join(val.violations),
                type="PolicyViolation",
                non_retryable=True,
            )
        self._end(rec, "ok", "; ".join(val.warnings))
        await self._error_budget_gate(spec)
        await self._ledger("intent")
        lkg = await workflow.execute_activity(
            A.LEDGER_LAST_GOOD,
            LastGoodInput(
                service=spec.service, environment=spec.environment, exclude_version=spec.version
            ),
            result_type=LastGoodResult,
            start_to_close_timeout=SHORT,
            retry_policy=RETRY,
        )
        state = await workflow.execute_activity(
            A.PLATFORM_DESCRIBE,
            DescribeInput(
                service=spec.service,
                environment=spec.environment,
                platform=spec.platform,
                namespace=spec.namespace,
            ),
            result_type=DescribeResult,
            start_to_close_timeout=SHORT,
            retry_policy=RETRY,
        )
        stable = lkg.version if lkg.version and lkg.version in state.versions else None
        if stable is None and state.weights:
            # the platform serves something the ledger does not know as good: keep it as stable
            serving = [v for v, w in sorted(state.weights.items()) if w > 0 and v != spec.version]
            stable = serving[0] if serving else None
        self._previous = stable
        self._status.stable_version = stable
        self._status.weights = dict(state.weights)
        self._check_abort()

        rec = self._begin(-1, "apply", f"start {spec.version}")
        first = stable is None
        applied = await workflow.execute_activity(
            A.PLATFORM_APPLY,
            ApplyVersionInput(
                spec=spec, idempotency_key=self._key("apply"), initial_weight=100 if first else None
            ),
            result_type=ApplyVersionResult,
            start_to_close_timeout=APPLY_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=RETRY,
        )
        self._applied = True
        self._end(rec, "ok", f"{applied.instances} instance(s) healthy at {applied.endpoint}")
        await self._ledger("in_progress")

        if first:
            await self._traffic({spec.version: 100}, "first-traffic")
        elif spec.strategy.type == "canary":
            await self._canary(spec, stable)  # type: ignore[arg-type]
        elif spec.strategy.type == "blue_green":
            await self._blue_green(spec, stable)  # type: ignore[arg-type]
        else:
            await self._rolling(spec, stable)  # type: ignore[arg-type]

        if spec.approvals.required_before_promotion:
            await self._wait_approval(
                PauseSpec(until_approved=True, timeout=spec.approvals.timeout), "promotion"
            )
        await self._hold_if_paused()
        rec = self._begin(self._status.total_steps, "promote", f"promote {spec.version}")
        await self._traffic({spec.version: 100}, "promote")
        if stable and stable != spec.version:
            await workflow.execute_activity(
                A.PLATFORM_RETIRE,
                RetireVersionInput(
                    service=spec.service,
                    environment=spec.environment,
                    version=stable,
                    idempotency_key=self._key("retire-stable"),
                    platform=spec.platform,
                    namespace=spec.namespace,
                ),
                result_type=RetireVersionResult,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RETRY,
            )
        self._end(rec, "ok")
        await self._ledger("promoted")
        return DeployResult(
            workflow_id=wid,
            outcome="promoted",
            version=spec.version,
            previous_version=stable,
            reason=f"{spec.version} promoted"
            + (f", {stable} retired" if stable else " (first release)"),
        )

    # ------------------------------------------------------------ strategies
    async def _canary(self, spec: DeploymentSpec, stable: str) -> None:
        assert spec.strategy.canary is not None and self._status is not None
        weight = 0
        await self._traffic({stable: 100, spec.version: 0}, "canary-init")
        for i, step in enumerate(spec.strategy.canary.steps):
            await self._hold_if_paused()
            rec = self._begin(i, self._kind(step), step.describe())
            if step.set_weight is not None:
                weight = step.set_weight
                await self._traffic({stable: 100 - weight, spec.version: weight}, f"step{i}-weight")
                self._end(rec, "ok")
            elif step.pause is not None:
                await self._pause(step.pause, rec, f"step {i}")
            elif step.analysis is not None:
                await self._analyse(step.analysis, spec, stable, i, rec)
            self._check_abort()

    @staticmethod
    def _kind(step: Step) -> str:
        return (
            "set_weight" if step.set_weight is not None else ("pause" if step.pause else "analysis")
        )

    async def _blue_green(self, spec: DeploymentSpec, stable: str) -> None:
        bg = spec.strategy.blue_green
        assert bg is not None and self._status is not None
        await self._traffic({stable: 100, spec.version: 0}, "bg-preview")
        if bg.pre_promotion_analysis is not None:
            # preview traffic: a small share so analysis has data (the local router has no preview port)
            await self._traffic({stable: 95, spec.version: 5}, "bg-preview-traffic")
            rec = self._begin(0, "analysis", "pre-promotion analysis")
            await self._analyse(bg.pre_promotion_analysis, spec, stable, 0, rec)
        if not bg.auto_promote:
            rec = self._begin(0, "pause", "pause until approved")
            await self._pause(
                PauseSpec(until_approved=True, timeout=spec.approvals.timeout), rec, "blue-green"
            )
        elif bg.auto_promote_after is not None:
            rec = self._begin(0, "pause", "auto-promote delay")
            await self._pause(PauseSpec(duration=bg.auto_promote_after), rec, "blue-green")
        await self._hold_if_paused()
        rec = self._begin(0, "switch", f"switch all traffic to {spec.version}")
        await self._traffic({spec.version: 100, stable: 0}, "bg-switch")
        self._end(rec, "ok")
        if bg.scale_down_delay.total_seconds() > 0:
            await self._sleep(bg.scale_down_delay)

    async def _rolling(self, spec: DeploymentSpec, stable: str) -> None:
        roll = spec.strategy.rolling
        assert roll is not None and self._status is not None
        stride = max(1, math.ceil(100 * roll.max_surge / spec.replicas))
        weight, i = 0, 0
        while weight < 100:
            await self._hold_if_paused()
            weight = min(100, weight + stride)
            rec = self._begin(i, "set_weight", f"roll to {weight}%")
            await self._traffic({stable: 100 - weight, spec.version: weight}, f"roll{i}")
            self._end(rec, "ok")
            if roll.step_pause.total_seconds() > 0 and weight < 100:
                await self._sleep(roll.step_pause)
            i += 1

    # ------------------------------------------------------------ steps
    async def _sleep(self, duration: timedelta) -> None:
        try:
            await workflow.wait_condition(lambda: self._abort is not None, timeout=duration)
        except TimeoutError:
            return
        self._check_abort()

    async def _pause(self, pause: PauseSpec, rec: StepRecord, label: str) -> None:
        if pause.duration is not None and not pause.until_approved:
            await self._sleep(pause.duration)
            self._end(rec, "ok")
            return
        outcome = await self._wait_approval(pause, label)
        self._end(rec, outcome)

    async def _wait_approval(self, pause: PauseSpec, label: str) -> str:
        assert self._status is not None
        seen = self._approval_seq
        self._waiting_approval = True
        self._status.waiting_for_approval = True
        self._status.phase = "waiting for approval"
        try:
            await workflow.wait_condition(
                lambda: self._approval_seq > seen or self._abort is not None,
                timeout=pause.timeout,
            )
        except TimeoutError:
            if pause.on_timeout == "rollback":
                raise ApplicationError(
                    f"no approval for {label} within {pause.timeout}",
                    type="ApprovalTimeout",
                    non_retryable=True,
                ) from None
            return f"timed out ({pause.on_timeout})"
        finally:
            self._waiting_approval = False
            self._status.waiting_for_approval = False
        self._check_abort()
        return f"approved by {self._approved_by[-1]}"

    async def _analyse(
        self, a: AnalysisSpec, spec: DeploymentSpec, stable: str, index: int, rec: StepRecord
    ) -> None:
        # thresholds or Kayenta-style judge, Argo limits, decisions: workflows/analysis.py
        assert self._status is not None
        await AnalysisRun(self, a, spec, stable, index, rec).run()

    # ------------------------------------------------------------ compensation
    async def _compensate(self, spec: DeploymentSpec, exc: BaseException) -> DeployResult:
        assert self._status is not None
        wid = workflow.info().workflow_id
        reason = _reason(exc)
        aborted = isinstance(exc, (Aborted, asyncio.CancelledError))
        outcome = "aborted" if aborted else "failed"
        if aborted and self._abort is not None and workflow.patched("audit-aborts"):
            try:
                await self._audit(
                    self._abort.identity, "deployment.abort", {"reason": self._abort.reason[:500]}
                )
            except ActivityError:
                workflow.logger.warning("could not audit the abort")
        for rec in self._status.steps:
            if rec.finished_at is None:
                self._end(rec, "interrupted", reason)
        policy = spec.rollback.on_abort if aborted else spec.rollback.on_failure
        if not self._applied or not policy:
            await self._ledger_quietly(outcome, reason)
            return DeployResult(
                workflow_id=wid,
                outcome=outcome,
                version=spec.version,
                previous_version=self._previous,
                reason=reason,
            )
        self._status.phase = "rolling back"
        child_id = f"rollback-{spec.service}-{spec.environment}-from-{spec.version}"
        try:
            rb: RollbackResult = await workflow.execute_child_workflow(
                W.ROLLBACK,
                RollbackInput(
                    service=spec.service,
                    environment=spec.environment,
                    to_version=self._previous,
                    failed_version=spec.version,
                    reason=reason,
                    actor=self._actor,
                    set_search_attributes=self._sa,
                ),
                id=child_id,
                result_type=RollbackResult,
                task_queue=workflow.info().task_queue,
                search_attributes=_rollback_attributes(spec) if self._sa else None,
                static_summary=f"rollback {spec.service} in {spec.environment} from {spec.version}",
            )
        except ChildWorkflowError as err:
            await self._ledger_quietly("failed", f"{reason}; rollback failed: {_reason(err)}")
            raise ApplicationError(
                f"{reason}; ROLLBACK FAILED: {_reason(err)}",
                type="RollbackFailed",
                non_retryable=True,
            ) from None
        if rb.restored_version:
            self._status.weights = {rb.restored_version: 100}
        final = "aborted" if aborted else "rolled_back"
        return DeployResult(
            workflow_id=wid,
            outcome=final,
            version=spec.version,
            previous_version=self._previous,
            reason=f"{reason}; restored {rb.restored_version}",
            rollback_workflow_id=child_id,
        )

    async def _ledger_quietly(self, status: str, detail: str) -> None:
        try:
            await self._ledger(status, detail)
        except ActivityError:
            workflow.logger.warning("could not record %s in the ledger", status)


def _rollback_attributes(spec: DeploymentSpec) -> TypedSearchAttributes:
    """The compensating rollback is found by the same filters as its deployment."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_SERVICE, spec.service),
            SearchAttributePair(SA_ENVIRONMENT, spec.environment),
            SearchAttributePair(SA_VERSION, spec.version),
            SearchAttributePair(SA_KIND, "rollback"),
            SearchAttributePair(SA_OUTCOME, "running"),
        ]
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    cur: BaseException | None = exc
    while isinstance(cur, (ActivityError, ChildWorkflowError)) and cur.__cause__ is not None:
        cur = cur.__cause__
    return str(cur) if cur is not None else str(exc)
