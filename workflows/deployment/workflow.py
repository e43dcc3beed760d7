"""``DeploymentWorkflow``: one release of one service, durable end to end.

validate → error-budget gate → record intent → snapshot last-known-good → apply → strategy
steps (:mod:`~workflows.deployment.strategies`) → approval gate → promote → record.
Handlers: ``approve`` is an Update (validated by
:func:`~workflows.deployment.gates.approve_problem`, audited, records who; it counts for the
gate that waited when it was accepted: after an abort, or once that gate was approved, it
answers ``accepted=False`` — abort wins, a duplicate never passes the next gate);
``pause``/``resume``/``abort`` are Updates that verify the caller (and Signals for older
clients: :mod:`~workflows.deployment.control`); ``status`` is a Query. Failure, abort or
cancellation compensates through a child ``RollbackWorkflow``
(:mod:`~workflows.deployment.compensation`). The run waits for every handler to finish
before it ends. The class is the :class:`~workflows.deployment.host.DeploymentHost` of the
modules it delegates to. Deterministic: all I/O is in activities, called by name."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    import workflows.identity_gate as identity_gate  # the real module: its enforce flag
    from code_foundation.error_types import DEPLOYMENT_FAILED, LANE_BUSY
    from code_foundation.names import SA_OUTCOME, A, W
    from workflows.deployment import control, gates, hooks, prepare, strategies
    from workflows.deployment.host import (
        APPLY_TIMEOUT,
        RETRY,
        SHORT,
        Aborted,
        ApprovalState,
        required,
    )
    from workflows.deployment.prepare import LaneRejected
    from workflows.inputs import parse_for_validator, parse_input
    from workflows.lane_session import LaneSession
    from workflows.models import (
        ApplyVersionInput,
        ApplyVersionResult,
        ApproveInput,
        ApproveResult,
        ControlInput,
        DeployInput,
        DeployResult,
        DeployStatus,
        LedgerRecordInput,
        LedgerRecordResult,
        LedgerStatus,
        RetireVersionInput,
        RetireVersionResult,
        SetTrafficInput,
        SetTrafficResult,
        StepKind,
        StepRecord,
    )
    from workflows.outcome import not_promoted_failure
    from workflows.spec import DeploymentSpec, PauseSpec


@workflow.defn(name=W.DEPLOYMENT)
class DeploymentWorkflow:
    def __init__(self) -> None:
        self._status: DeployStatus | None = None
        self._spec: DeploymentSpec | None = None
        self.hold = False
        self.abort_req: ControlInput | None = None
        self.approvals = ApprovalState()
        self.actor = "unknown"
        self.search_attributes_on = True
        self.applied = False
        self.previous: str | None = None
        self.lane_session: LaneSession | None = None
        self.guard = identity_gate.IdentityGuard()

    # ------------------------------------------------------------ handlers
    @workflow.query
    def status(self) -> DeployStatus:
        st = self.progress
        lane = self.lane_session
        if lane is not None and lane.reply is None:  # still waiting for the lane
            queued = lane.queued
            return st.model_copy(
                update={"queued_behind": queued.holder if queued else None, "reason": lane.waiting}
            )
        return st

    @workflow.update
    async def approve(self, raw: Any) -> ApproveResult:
        inp = parse_input(ApproveInput, raw, "approve")
        # an approval counts for the gate that waited when it was accepted, and only then
        gate_seq = self.approvals.seq
        if await self.guard.enforced():  # verified, decided, audited; a denial fails the update
            inp = await identity_gate.approve_checked(
                self.guard, self.spec, inp, gates.approve_problem, self.approvals
            )
        # audited before it takes effect: the approver's identity lands in the hash-chained log
        elif workflow.patched("audit-approvals"):
            await gates.audit(
                self,
                inp.identity,
                "deployment.override" if inp.override else "deployment.approve",
                {"comment": inp.comment[:500]},
            )
        if inp.override:
            self.approvals.override_by = inp.identity
            return ApproveResult(
                accepted=True, identity=inp.identity, message="error-budget override granted"
            )
        if workflow.patched("approval-binds-its-gate"):
            late = self._late_approval(gate_seq)
            if late:  # abort wins; a duplicate or late approval never passes another gate
                return ApproveResult(accepted=False, identity=inp.identity, message=late)
        self.approvals.seq += 1
        self.approvals.approved_by.append(inp.identity)
        if self._status:
            self._status.approvals.append(inp.identity)
        return ApproveResult(accepted=True, identity=inp.identity, message="approved")

    def _late_approval(self, gate_seq: int) -> str | None:
        """Why an approval accepted at ``gate_seq`` no longer applies (None: it applies)."""
        if self.abort_req is not None:
            return f"not applied: {self.abort_req.identity} aborted the deployment (abort wins)"
        if self.approvals.seq != gate_seq:
            return f"not applied: the gate was already approved by {self.approvals.approved_by[-1]}"
        if not self.approvals.waiting_approval:
            return "not applied: nothing waits for approval any more"
        return None

    @approve.validator
    def _validate_approve(self, raw: Any) -> None:
        inp = parse_for_validator(ApproveInput, raw, "approve")
        if self.guard.on:  # identity on: the handler verifies, decides and audits
            return
        problem = gates.approve_problem(
            self._spec if self._status is not None else None, inp, self.approvals
        )
        if problem:
            raise ValueError(problem)

    # pause/resume/abort: Updates, and Signals for older clients (workflows.deployment.control)
    @workflow.signal
    async def pause(self, raw: Any) -> None:
        await control.on_signal(self, raw, "pause")

    @workflow.signal
    async def resume(self, raw: Any) -> None:
        await control.on_signal(self, raw, "resume")

    @workflow.signal
    async def abort(self, raw: Any) -> None:
        await control.on_signal(self, raw, "abort")

    @workflow.update(name="pause")
    async def pause_update(self, raw: Any) -> control.ControlResult:
        return await control.on_update(self, raw, "pause")

    @workflow.update(name="resume")
    async def resume_update(self, raw: Any) -> control.ControlResult:
        return await control.on_update(self, raw, "resume")

    @workflow.update(name="abort")
    async def abort_update(self, raw: Any) -> control.ControlResult:
        return await control.on_update(self, raw, "abort")

    @pause_update.validator
    @resume_update.validator
    @abort_update.validator
    def _validate_control(self, raw: Any) -> None:
        control.validate(self, raw)

    # ------------------------------------------------------------ host surface
    @property
    def spec(self) -> DeploymentSpec:
        return required(self._spec, "the deployment's spec")

    @property
    def progress(self) -> DeployStatus:
        return required(self._status, "the deployment's status")

    @property
    def abort_request(self) -> ControlInput | None:
        return self.abort_req

    def note(self, text: str) -> None:
        if self._status is not None:
            self._status.reason = text

    def activity_key(self, step: str) -> str:
        info = workflow.info()
        return f"{info.workflow_id}:{info.run_id}:{step}"

    def check_abort(self) -> None:
        if (req := self.abort_req) is not None:
            raise Aborted(f"aborted by {req.identity}: {req.reason or 'no reason'}")

    async def hold_if_paused(self) -> None:
        if self.hold:
            self.progress.paused = True
            await workflow.wait_condition(lambda: not self.hold or self.abort_req is not None)
            self.progress.paused = False
        self.check_abort()

    async def sleep(self, duration: timedelta) -> None:
        try:
            await workflow.wait_condition(lambda: self.abort_req is not None, timeout=duration)
        except TimeoutError:
            return
        self.check_abort()

    async def wait_approval(self, pause: PauseSpec, label: str) -> str:
        return await hooks.wait_approval(self, pause, label)  # + its notification

    def begin_step(self, index: int, kind: StepKind, description: str) -> StepRecord:
        status = self.progress
        rec = StepRecord(index=index, kind=kind, description=description, started_at=workflow.now())
        status.steps.append(rec)
        status.current_step = index
        status.step_description = description
        status.phase = kind
        return rec

    def end_step(self, rec: StepRecord, outcome: str, detail: str = "") -> None:
        rec.finished_at = workflow.now()
        rec.outcome = outcome
        rec.detail = detail

    async def ledger(self, status: LedgerStatus, detail: str = "") -> None:
        spec = self.spec
        await workflow.execute_activity(
            A.LEDGER_RECORD,
            LedgerRecordInput(
                service=spec.service,
                environment=spec.environment,
                version=spec.version,
                status=status,
                actor=self.actor,
                workflow_id=workflow.info().workflow_id,
                strategy=spec.strategy.type,
                detail=detail[:2000],
                spec=spec if status in ("intent", "promoted") else None,
                idempotency_key=self.activity_key(f"ledger-{status}"),
            ),
            result_type=LedgerRecordResult,
            start_to_close_timeout=SHORT,
            retry_policy=RETRY,
        )

    async def traffic(self, weights: dict[str, int], step: str) -> None:
        spec = self.spec
        res = await workflow.execute_activity(
            A.PLATFORM_TRAFFIC,
            SetTrafficInput(
                service=spec.service,
                environment=spec.environment,
                weights=weights,
                idempotency_key=self.activity_key(step),
                platform=spec.platform,
                namespace=spec.namespace,
                cluster=spec.cluster,
            ),
            result_type=SetTrafficResult,
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=10),  # a dead worker is noticed in 10 s
            retry_policy=RETRY,
        )
        self.progress.weights = dict(res.weights)

    # ------------------------------------------------------------ run
    @workflow.run
    async def run(self, raw: Any) -> DeployResult:
        inp = parse_input(DeployInput, raw, "deployment input")
        spec = inp.spec
        self._spec = spec
        self.actor = inp.actor
        self.search_attributes_on = inp.set_search_attributes
        info = workflow.info()
        self._status = status = DeployStatus(
            workflow_id=info.workflow_id,
            service=spec.service,
            environment=spec.environment,
            version=spec.version,
            strategy=spec.strategy.type,
            total_steps=len(spec.strategy.canary.steps) if spec.strategy.canary else 1,
        )
        if who := await identity_gate.admit_deployment(self.guard, inp.token, spec, status):
            self.actor = who.id  # the verified starter, not a self-asserted name
        try:
            try:
                result = await self._deploy(spec)
            except (
                Aborted,
                asyncio.CancelledError,
                ActivityError,
                ApplicationError,
                ChildWorkflowError,
            ) as exc:
                result = await hooks.compensated(self, spec, exc)  # + rollback hooks
        except LaneRejected as rej:
            status.outcome, status.phase, status.reason = "failed", "done", str(rej)
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise ApplicationError(str(rej), type=LANE_BUSY, non_retryable=True) from None
        finally:
            if self.lane_session is not None:  # given back however the run ends
                await self.lane_session.release(status.outcome)
        status.outcome = result.outcome
        status.phase = "done"
        status.reason = result.reason
        result.steps = list(status.steps)
        if self.search_attributes_on:
            workflow.upsert_search_attributes([SA_OUTCOME.value_set(result.outcome)])
        # an approve still being audited finishes before the run ends
        await workflow.wait_condition(workflow.all_handlers_finished)
        if result.outcome != "promoted" and workflow.patched("not-promoted-fails"):
            raise not_promoted_failure(result, applied=self.applied)  # FAILED, with the result
        if result.outcome == "failed" and not self.applied:
            # nothing ran: surface as a failed workflow so the UI shows it red
            raise ApplicationError(result.reason, type=DEPLOYMENT_FAILED, non_retryable=True)
        return result

    async def _deploy(self, spec: DeploymentSpec) -> DeployResult:
        status = self.progress
        wid = workflow.info().workflow_id
        await prepare.validate(self, spec)
        await gates.error_budget_gate(self, spec)
        if workflow.patched("release-lanes"):
            await prepare.take_lane(self, spec, self.guard.starter_token)
        await self.ledger("intent")
        stable = await prepare.snapshot_stable(self, spec)
        self.previous = stable
        self.check_abort()
        await hooks.run_point(self, "confirm_rollout")  # hooks: nothing when none configured

        rec = self.begin_step(-1, "apply", f"start {spec.version}")
        first = stable is None
        applied = await workflow.execute_activity(
            A.PLATFORM_APPLY,
            ApplyVersionInput(
                spec=spec,
                idempotency_key=self.activity_key("apply"),
                initial_weight=100 if first else None,
            ),
            result_type=ApplyVersionResult,
            start_to_close_timeout=APPLY_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=RETRY,
        )
        self.applied = True
        self.end_step(rec, "ok", f"{applied.instances} instance(s) healthy at {applied.endpoint}")
        await self.ledger("in_progress")
        await hooks.run_point(self, "pre_rollout")

        if stable is None:
            await self.traffic({spec.version: 100}, "first-traffic")
        elif spec.strategy.type == "canary":
            await strategies.canary(self, spec, stable)
        elif spec.strategy.type == "blue_green":
            await strategies.blue_green(self, spec, stable)
        else:
            await strategies.rolling(self, spec, stable)

        if spec.approvals.required_before_promotion:
            await self.wait_approval(
                PauseSpec(until_approved=True, timeout=spec.approvals.timeout), "promotion"
            )
        await hooks.run_point(self, "confirm_promotion")
        await self.hold_if_paused()
        rec = self.begin_step(status.total_steps, "promote", f"promote {spec.version}")
        await self.traffic({spec.version: 100}, "promote")
        if stable and stable != spec.version:
            await workflow.execute_activity(
                A.PLATFORM_RETIRE,
                RetireVersionInput(
                    service=spec.service,
                    environment=spec.environment,
                    version=stable,
                    idempotency_key=self.activity_key("retire-stable"),
                    platform=spec.platform,
                    namespace=spec.namespace,
                    cluster=spec.cluster,
                ),
                result_type=RetireVersionResult,
                start_to_close_timeout=timedelta(minutes=2),
                heartbeat_timeout=timedelta(seconds=10),  # a dead worker is noticed in 10 s
                retry_policy=RETRY,
            )
        self.end_step(rec, "ok")
        await self.ledger("promoted")
        await hooks.run_point(self, "post_rollout")
        return DeployResult(
            workflow_id=wid,
            outcome="promoted",
            version=spec.version,
            previous_version=stable,
            reason=f"{spec.version} promoted"
            + (f", {stable} retired" if stable else " (first release)"),
        )
