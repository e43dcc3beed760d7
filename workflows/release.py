"""``ReleaseWorkflow``: one version of one service promoted through a pipeline's
stages, wave by wave, each target a child ``DeploymentWorkflow``.

Id ``release-<service>-<version>``; search attributes ``CodeKind=release``,
``CodeService``, ``CodeVersion``, ``CodeOutcome``. Stages run in dependency order;
before a stage its gates, then its waves in order (the targets of a wave in parallel,
at most ``max_parallel`` at once, each through its own release lane: the child takes
the lane of its service/environment/platform/cluster, so a release never races a
direct deploy), the wave's gates after it, the stage's ``after`` gates last. A target
that does not promote (its deployment compensates itself) stops its wave: the
running siblings are aborted (they roll back) and no later wave starts. Then the
failure policy: ``rollback_all`` (every target this release promoted goes back to
the version it had, through child ``RollbackWorkflow``s), ``rollback_wave`` (only
the failed wave's) or ``halt`` (wait for a decision: ``abort`` rolls back,
``resume`` leaves everything as it is). ``abort`` (Signal with identity, audited)
stops everything and applies the policy; ``pause``/``resume`` hold at the next wave
boundary; ``approve`` (Update, approvers of the waiting gate only, audited);
``status`` (Query) is the stage × target matrix and the current gate. The history
stays bounded: continue-as-new at a stage boundary when the server suggests it.
Deterministic: all I/O is in activities and child workflows, called by name."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ChildWorkflowHandle

with workflow.unsafe.imports_passed_through():
    from code_foundation.error_types import RELEASE_NOT_PROMOTED, SPEC_ERROR
    from code_foundation.names import (
        SA_KIND,
        SA_OUTCOME,
        SA_SERVICE,
        SA_VERSION,
        A,
        W,
    )
    from workflows import release_events as events
    from workflows.inputs import parse_input
    from workflows.models import (
        ApproveInput,
        ApproveResult,
        ControlInput,
    )
    from workflows.outcome import not_promoted_failure
    from workflows.pipeline_spec import PipelineSpec, Stage, Wave, pipeline_problems
    from workflows.release_admit import admit_release
    from workflows.release_deploy import deploy_target
    from workflows.release_gates import (
        RETRY,
        ApprovalState,
        GateFailed,
        ReleaseAborted,
        run_gate,
    )
    from workflows.release_models import (
        ReleaseEvent,
        ReleaseInput,
        ReleaseResult,
        ReleaseStatus,
        TargetCell,
    )
    from workflows.release_policy import apply_failure_policy
    from workflows.slo import AuditInput, AuditResult


NOT_RELEASED_FAILS = "release-not-promoted-fails"
"""Patch: a release that is not released ends FAILED (red in the Web UI) carrying its
``ReleaseResult``; histories recorded before it completed and replay as they ran."""


class TargetFailed(Exception):
    """A target of a wave did not promote."""


@workflow.defn(name=W.RELEASE)
class ReleaseWorkflow:
    def __init__(self) -> None:
        self.progress = ReleaseStatus(release_id="", service="", version="", failure_policy="")
        self.approvals = ApprovalState()
        self._abort: ControlInput | None = None
        self._paused = False
        self.resumed_halt = False
        self._stop_wave = False
        self._children: dict[str, ChildWorkflowHandle[Any, Any]] = {}
        self._inp: ReleaseInput | None = None

    # ------------------------------------------------------------ handlers
    @workflow.query
    def status(self) -> ReleaseStatus:
        return self.progress

    @workflow.update
    async def approve(self, raw: Any) -> ApproveResult:
        inp = parse_input(ApproveInput, raw, "approve")
        await self.audit(inp.identity, "release.approve", {"comment": inp.comment[:500]})
        if self.approvals.gate is None or self._abort is not None:
            return ApproveResult(accepted=False, identity=inp.identity, message="not applied")
        self.approvals.seq += 1
        self.approvals.approved_by.append(inp.identity)
        return ApproveResult(accepted=True, identity=inp.identity, message="approved")

    @approve.validator
    def _validate_approve(self, raw: Any) -> None:
        try:
            inp = parse_input(ApproveInput, raw, "approve")
        except ApplicationError as err:
            raise ValueError(err.message) from None
        gate = self.approvals.gate
        if gate is None:
            raise ValueError("nothing in this release is waiting for approval right now")
        if inp.identity not in gate.approvers:
            raise ValueError(
                f"{inp.identity!r} may not approve this gate of {self.progress.service}; "
                f"approvers are: {', '.join(gate.approvers)}"
            )

    def _control(self, raw: Any, what: str) -> ControlInput | None:
        try:
            return parse_input(ControlInput, raw, what)
        except ApplicationError as err:
            self.note(f"ignored a malformed {what} signal: {err.message}")
            return None

    @workflow.signal
    def pause(self, raw: Any) -> None:
        inp = self._control(raw, "pause")
        if inp is not None:
            self._paused = True
            self.note(f"paused by {inp.identity}: holds at the next wave boundary")

    @workflow.signal
    def resume(self, raw: Any) -> None:
        inp = self._control(raw, "resume")
        if inp is not None:
            self._paused = False
            self.resumed_halt = True
            self.note(f"resumed by {inp.identity}")

    @workflow.signal
    def abort(self, raw: Any) -> None:
        inp = self._control(raw, "abort")
        if inp is not None and self._abort is None:
            self._abort = inp
            self.progress.aborted_by = inp.identity
            self.note(f"abort requested by {inp.identity}: {inp.reason or 'no reason'}")

    # ------------------------------------------------------------ host surface
    @property
    def abort_request(self) -> ControlInput | None:
        return self._abort

    @property
    def actor(self) -> str:
        return self._inp.actor if self._inp else "unknown"

    @property
    def search_attributes_on(self) -> bool:
        return bool(self._inp and self._inp.set_search_attributes)

    @property
    def aborted(self) -> bool:
        return self._abort is not None

    def check_abort(self) -> None:
        if self._abort is not None:
            raise ReleaseAborted(f"aborted by {self._abort.identity}: {self._abort.reason}")

    def note(self, text: str) -> None:
        self.progress.reason = text
        self.progress.events = [*self.progress.events, ReleaseEvent(at=workflow.now(), what=text)][
            -30:
        ]

    async def audit(self, actor: str, action: str, detail: dict[str, str]) -> None:
        try:
            await workflow.execute_activity(
                A.AUDIT,
                AuditInput(
                    actor=actor,
                    action=action,
                    subject=f"{self.progress.service}@{self.progress.version}",
                    detail={**detail, "workflow_id": workflow.info().workflow_id},
                ),
                result_type=AuditResult,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RETRY,
            )
        except ActivityError:
            workflow.logger.warning("could not audit %s by %s", action, actor)

    # ------------------------------------------------------------ run
    @workflow.run
    async def run(self, raw: Any) -> ReleaseResult:
        inp = parse_input(ReleaseInput, raw, "release input")
        self._inp = inp
        p = inp.pipeline
        problems = pipeline_problems(p, None, workflow.now())
        if problems:
            raise ApplicationError(
                "invalid pipeline: " + "; ".join(problems), type=SPEC_ERROR, non_retryable=True
            )
        st = self.progress = inp.carry or self._fresh(p, inp.version)
        if inp.carry is not None and inp.carry.paused:  # a pause signal may have come first
            self._paused = True
        if inp.set_search_attributes and inp.carry is None:
            workflow.upsert_search_attributes(
                [
                    SA_KIND.value_set("release"),
                    SA_SERVICE.value_set(p.service),
                    SA_VERSION.value_set(inp.version),
                    SA_OUTCOME.value_set("running"),
                ]
            )
        if inp.carry is None:
            await self._admit(inp)  # a refused starter: nothing starts
            await events.emit(p, st, "release.started")
        try:
            order = p.order()
            for i, stage in enumerate(order):
                if stage.name in st.done_stages:
                    continue
                await self._stage_with_events(p, stage)
                st.done_stages.append(stage.name)
                if i + 1 < len(order) and self._history_full():
                    self.check_abort()  # an abort is never lost to a continue-as-new
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    st.paused = self._paused
                    workflow.continue_as_new(self._inp.model_copy(update={"carry": st}))
            st.outcome, st.phase, st.reason = "promoted", "done", f"{inp.version} released"
        except (GateFailed, TargetFailed, ReleaseAborted) as exc:
            await apply_failure_policy(self, p, str(exc), isinstance(exc, ReleaseAborted))
        st.gate, st.stage, st.wave = None, None, None
        await events.emit(p, st, "release.finished", outcome=st.outcome, reason=st.reason)
        if inp.set_search_attributes:
            workflow.upsert_search_attributes([SA_OUTCOME.value_set(st.outcome)])
        await workflow.wait_condition(workflow.all_handlers_finished)
        result = ReleaseResult(
            release_id=st.release_id,
            outcome=st.outcome,
            version=st.version,
            reason=st.reason,
            cells=list(st.cells),
        )
        if st.outcome != "promoted" and workflow.patched(NOT_RELEASED_FAILS):
            raise not_promoted_failure(result, RELEASE_NOT_PROMOTED)  # FAILED, with the result
        return result

    async def _admit(self, inp: ReleaseInput) -> None:
        """The starter check of every environment the pipeline touches."""
        try:
            who = await admit_release(inp.token, inp.pipeline, inp.version)
        except ApplicationError as err:
            st = self.progress
            st.outcome, st.phase, st.reason = "failed", "done", err.message
            if inp.set_search_attributes:
                workflow.upsert_search_attributes([SA_OUTCOME.value_set("failed")])
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise
        if who is not None:  # the verified starter, not a self-asserted name
            self._inp = inp.model_copy(update={"actor": who})

    async def _stage_with_events(self, p: PipelineSpec, stage: Stage) -> None:
        st = self.progress
        await events.emit(p, st, "release.stage_started", stage=stage)
        try:
            await self._stage(p, stage)
        except (GateFailed, TargetFailed, ReleaseAborted) as exc:
            await events.emit(
                p, st, "release.stage_finished", stage=stage, outcome="failed", reason=str(exc)
            )
            raise
        await events.emit(p, st, "release.stage_finished", stage=stage, outcome="passed")

    def _history_full(self) -> bool:
        """Continue-as-new now: the server suggests it, or the history passed the input's
        ``max_history_events`` (None: only the server's suggestion)."""
        info = workflow.info()
        limit = self._inp.max_history_events if self._inp else None
        if info.is_continue_as_new_suggested():
            return True
        return limit is not None and info.get_current_history_length() >= limit

    def _fresh(self, p: PipelineSpec, version: str) -> ReleaseStatus:
        cells = [
            TargetCell(
                stage=s.name,
                target=key,
                wave=wi,
                environment=s.target(key).environment,
                cluster=s.target(key).cluster,
                platform=s.target(key).platform,
                placement=s.target(key).placement(),
                version=version,
            )
            for s in p.order()
            for wi, w in enumerate(s.effective_waves())
            for key in w.targets
        ]
        return ReleaseStatus(
            release_id=workflow.info().workflow_id,
            service=p.service,
            version=version,
            failure_policy=p.failure_policy,
            cells=cells,
        )

    async def _stage(self, p: PipelineSpec, stage: Stage) -> None:
        st = self.progress
        st.stage, st.wave, st.phase = stage.name, None, "gate"
        for gi, gate in enumerate(stage.gates):
            await run_gate(self, stage, gate, f"{stage.name}.gates[{gi}]")
        for wi, wave in enumerate(stage.effective_waves()):
            await self._boundary(stage, wi)
            st.wave, st.phase = wi, "deploying"
            await self._wave(p, stage, wi, wave)
            st.phase = "gate"
            for gi, gate in enumerate(wave.gates):
                await run_gate(self, stage, gate, f"{stage.name}.waves[{wi}].gates[{gi}]")
        for gi, gate in enumerate(stage.after):
            await run_gate(self, stage, gate, f"{stage.name}.after[{gi}]")

    async def _boundary(self, stage: Stage, wave: int) -> None:
        """A wave boundary: hold while paused; an abort stops here."""
        self.check_abort()
        if self._paused:
            self.progress.paused, self.progress.phase = True, "paused"
            self.progress.gate = f"paused before {stage.name} wave {wave + 1}"
            await workflow.wait_condition(lambda: not self._paused or self._abort is not None)
            self.progress.paused, self.progress.gate = False, None
        self.check_abort()

    def cell(self, stage: str, target: str) -> TargetCell:
        return next(c for c in self.progress.cells if c.stage == stage and c.target == target)

    async def _wave(self, p: PipelineSpec, stage: Stage, wi: int, wave: Wave) -> None:
        cells = [self.cell(stage.name, k) for k in wave.targets]
        limit = wave.max_parallel or len(cells)
        self._stop_wave = False
        running = [0]
        failures: list[str] = []

        async def one(c: TargetCell) -> None:
            while True:  # take a slot: the check and the take run without an await between
                await workflow.wait_condition(lambda: running[0] < limit or self._stopping())
                if self._stopping():
                    c.phase, c.reason = "skipped", "the wave was stopped"
                    return
                if running[0] < limit:
                    break
            running[0] += 1
            try:
                if self._inp is None:
                    raise RuntimeError("the release has not started")
                await deploy_target(self._inp, p, stage, c, self._children)
            finally:
                running[0] -= 1
            if c.phase != "promoted":
                failures.append(f"{stage.name}/{c.target} {c.phase}: {c.reason}")
                self._stop_wave = True

        tasks = [asyncio.ensure_future(one(c)) for c in cells]
        await workflow.wait_condition(lambda: all(t.done() for t in tasks) or self._stopping())
        if not all(t.done() for t in tasks):  # stop the siblings: they roll back
            why = self._abort.identity if self._abort else "a failed sibling"
            for c in cells:
                h = self._children.get(c.target + "@" + stage.name)
                if h is not None and c.phase == "running":
                    await h.signal(
                        "abort",
                        ControlInput(
                            identity=self._abort.identity if self._abort else st_id(self),
                            reason=f"release {self.progress.release_id} stopped ({why})",
                        ),
                    )
        await asyncio.gather(*tasks)
        self.check_abort()
        if failures:
            raise TargetFailed("; ".join(failures))

    def _stopping(self) -> bool:
        return self._stop_wave or self._abort is not None


def st_id(wf: ReleaseWorkflow) -> str:
    return f"release:{wf.progress.release_id}"
