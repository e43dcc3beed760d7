"""``ChaosExperimentWorkflow``: a chaos experiment whose rollbacks always run.

Order: resolve the exact targets (blast radius, protection) -> steady state
before (not met: ``aborted``, nothing injected) -> method (inject catalogued
faults, probes, pauses) -> fault window: the steady-state probes run every
``controls.probe_interval`` for ``controls.duration`` in heartbeating probe batches
(:mod:`workflows.chaos_window`: a bounded history for any window), cut short by abort conditions (a probe out of tolerance, an error-rate burn over
``controls.abort_burn_rate``, a manual ``abort`` update/signal) ->
**rollbacks** (revert every fault that was, or may have been, injected, in
reverse order, then the experiment's explicit rollbacks) -> steady state after
-> journal + Markdown report stored as artifacts (keys in the result, the
memo and the workflow's current details). The workflow, its update and its signal
take ``Any`` and validate with :func:`workflows.inputs.parse_input`: a bad input fails
the run (``SpecError``), a bad update is rejected, a bad signal is ignored (journal event).

Rollbacks run after success, deviation, abort, activity failure, cancellation
(the ``CancelledError`` is caught, the rollback activities are started after
it, then the cancellation is re-raised) and worker crash (the workflow is
durable: a new worker replays it and continues). A rollback is retried per
``controls.rollback_attempts``; if it still fails the journal says so and the
workflow FAILS with ``RollbackFailed`` — it is never silently skipped. A revert that
finds nothing in place (never injected, already gone) is ``nothing-to-revert``, not a
failure; the failure names the injected faults that may still be in place.
Terminating runs no code at all: use cancel (``codectl chaos cancel``) or abort; a
terminated experiment can leave its faults in place (run its rollbacks by hand).

Status: ``completed`` (the method ran; ``deviated`` says whether the steady
state held), ``aborted`` (abort condition or manual abort), ``failed``
(activity or rollback failure, protected/no targets), ``interrupted``
(cancelled). Sinks named in ``notifications`` hear of it (:mod:`workflows.chaos_notify`)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import workflows.identity_gate as identity_gate  # the real module: its enforce flag
    from chaos import abort as conditions
    from chaos.blast import Target, combine_protected, protection_problems, select_targets
    from chaos.catalogue import CATALOGUE
    from chaos.messages import (
        AbortRequest,
        ChaosResult,
        ChaosRunInput,
        DiscoverInput,
        DiscoverResult,
        Event,
        EventKind,
        FaultRecord,
        InjectInput,
        InjectResult,
        Journal,
        ProbeInput,
        ProbePhase,
        ProbeRecord,
        ProbeResult,
    )
    from chaos.model import Action, Experiment, HttpProbe
    from code_foundation.error_types import (
        NO_TARGETS,
        NON_RETRYABLE,
        PROTECTED_TARGET,
        ROLLBACK_FAILED,
    )
    from code_foundation.names import CA, SA_ENVIRONMENT, SA_KIND, SA_SERVICE, W
    from workflows.chaos_notify import notifier
    from workflows.chaos_rollbacks import Shield, cause, failure_message, rollback_all, store_report
    from workflows.chaos_window import BATCHES_PATCH, PLATFORM_RETRY, FaultWindow
    from workflows.inputs import parse_input


WORKFLOW_NAME = W.CHAOS


@workflow.defn(name=WORKFLOW_NAME)
class ChaosExperimentWorkflow:
    def __init__(self) -> None:
        self._journal: Journal | None = None
        self._abort: AbortRequest | None = None
        self._finished = False
        self._shield = Shield(
            lambda: self._event(
                "cancel", "cancellation received during the rollbacks; they continue"
            )
        )

    # ------------------------------------------------------------ handlers
    @workflow.query
    def status(self) -> Journal | None:
        return self._journal

    @workflow.update
    async def abort(self, raw: Any) -> str:
        req = parse_input(AbortRequest, raw, "the abort request")
        self._request_abort(req)
        return f"abort requested by {req.identity}; rollbacks will run"

    @abort.validator
    def _validate_abort(self, raw: Any) -> None:
        req = parse_input(AbortRequest, raw, "the abort request")  # malformed: rejected
        if self._finished:
            raise ValueError("the experiment has already finished")
        if not req.identity:
            raise ValueError("an abort needs the caller's identity")

    @workflow.signal
    def abort_signal(self, raw: Any) -> None:
        try:
            req = parse_input(AbortRequest, raw, "the abort signal")
        except ApplicationError as err:  # a malformed signal is ignored, and said so
            self._event("ignored", f"{err.message}; the signal was ignored")
            return
        self._request_abort(req)

    def _request_abort(self, req: AbortRequest) -> None:
        if self._abort is None and not self._finished:
            self._abort = req
            self._event("abort", f"abort requested by {req.identity}: {req.reason}")

    # ------------------------------------------------------------ helpers
    @property
    def journal(self) -> Journal:
        if self._journal is None:
            raise RuntimeError("the experiment has not started")
        return self._journal

    def _event(self, kind: EventKind, message: str) -> None:
        if self._journal is not None:
            self._journal.events.append(Event(at=workflow.now(), kind=kind, message=message))
            self._notify.saw(kind, message)  # chaos.started, the first chaos.deviated
            workflow.logger.info("[%s] %s", kind, message)

    def _aborts(self, reason: str) -> None:
        """An abort condition fired: the run ends ``aborted`` (after its rollbacks)."""
        j = self.journal
        j.deviated = True
        j.status, j.reason = "aborted", reason
        self._event("abort", reason)

    def _aborted(self) -> bool:
        return self._abort is not None

    async def _wait(self, delay: timedelta) -> bool:
        """Durable sleep that wakes early on abort; True when an abort arrived."""
        if delay <= timedelta(0):
            return self._abort is not None
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._abort is not None, timeout=delay)
        return self._abort is not None

    async def _probe(self, probe: HttpProbe, phase: ProbePhase) -> ProbeRecord:
        timeout = probe.timeout * probe.requests + timedelta(seconds=10)
        started = workflow.now()
        try:
            res: ProbeResult = await workflow.execute_activity(
                CA.PROBE,
                ProbeInput(probe=probe, phase=phase),
                result_type=ProbeResult,
                start_to_close_timeout=timeout,
                retry_policy=RetryPolicy(
                    maximum_attempts=2,
                    initial_interval=timedelta(seconds=1),
                    non_retryable_error_types=list(NON_RETRYABLE),
                ),
                # probes only read: on cancellation stop waiting, do not cancel them
                cancellation_type=workflow.ActivityCancellationType.ABANDON,
            )
            record = res.record
        except ActivityError as err:
            record = ProbeRecord(
                name=probe.name,
                phase=phase,
                ok=False,
                detail=f"probe could not run: {cause(err)}",
                started_at=started,
                finished_at=workflow.now(),
                requests=1,
                failures=1,
            )
        self.journal.probes.append(record)
        return record

    async def _probe_all(self, exp: Experiment, phase: ProbePhase) -> list[ProbeRecord]:
        if exp.steady_state is None:
            return []
        return list(await asyncio.gather(*(self._probe(p, phase) for p in exp.steady_state.probes)))

    # ------------------------------------------------------------ run
    @workflow.run
    async def run(self, raw: Any) -> ChaosResult:
        inp = parse_input(ChaosRunInput, raw, "the chaos experiment input")
        exp = inp.experiment
        seed = inp.seed if inp.seed is not None else exp.seed
        self._notify = notifier(exp)
        self._journal = j = Journal(
            workflow_id=workflow.info().workflow_id,
            title=exp.title,
            actor=inp.actor,
            seed=seed,
            started_at=workflow.now(),
        )
        if inp.set_search_attributes:
            first = exp.actions()[0].target if exp.actions() else None
            updates = [SA_KIND.value_set("chaos")]
            if first is not None:
                updates += [
                    SA_SERVICE.value_set(first.service),
                    SA_ENVIRONMENT.value_set(first.environment),
                ]
            workflow.upsert_search_attributes(updates)
        await identity_gate.admit_chaos(inp.token, exp)  # a refused starter: nothing runs
        self._event("start", f"experiment {exp.title!r} started by {inp.actor} (seed {seed})")
        cancelled = False
        try:
            await self._execute(inp, exp, seed)
        except asyncio.CancelledError:
            cancelled = True
            j.status, j.reason = "interrupted", conditions.CANCELLED
            self._event("cancel", "cancellation received; running rollbacks")
        except (ActivityError, ApplicationError) as err:
            j.status, j.reason = "failed", cause(err)
            self._event("failure", j.reason)
        # ---------------------------------------------------------- rollbacks ALWAYS
        j.phase = "rollback"
        if not await rollback_all(self._shield, j, exp):
            conditions.rollback_failed(j)
        elif j.faults and not cancelled and not self._shield.late_cancel:
            j.phase = "steady-state-after"
            try:
                after = await self._probe_all(exp, "after")
            except asyncio.CancelledError:
                self._shield.late_cancel = True
                after = []
            if not conditions.holds(after):
                j.deviated = True
                self._event("deviation", "steady state not restored after the rollbacks")
        cancelled = conditions.settle(j, cancelled, self._shield.late_cancel)
        j.phase = "done"
        j.finished_at = workflow.now()
        self._finished = True
        problem = await store_report(self._shield, j)
        if problem is not None:
            self._event("report", f"the report could not be stored: {problem}")
        await self._notify.finish(j)  # chaos.finished or chaos.rollback_failed
        # an abort Update still running finishes before the run ends
        await workflow.wait_condition(workflow.all_handlers_finished)
        if cancelled:
            raise asyncio.CancelledError()
        if j.rollback_failed:
            raise ApplicationError(
                failure_message(j, exp.title),
                j.model_dump(mode="json"),
                type=ROLLBACK_FAILED,
                non_retryable=True,
            )
        return ChaosResult(
            workflow_id=j.workflow_id,
            status=j.status,
            deviated=j.deviated,
            reason=j.reason,
            report_json_key=j.report_json_key,
            report_md_key=j.report_md_key,
            journal=j,
        )

    async def _plan(
        self, inp: ChaosRunInput, exp: Experiment, seed: int
    ) -> dict[str, list[Target]]:
        protected = combine_protected(inp.protected, exp.protected)
        plan: dict[str, list[Target]] = {}
        cache: dict[tuple[str, str, str], list[Target]] = {}
        for action in exp.actions():
            sel = action.target
            problems = protection_problems(sel, protected)
            if problems:
                raise ApplicationError(
                    "; ".join(problems), type=PROTECTED_TARGET, non_retryable=True
                )
            unit = CATALOGUE[action.fault].unit
            cands: list[Target] = []
            if unit == "instance":
                ck = (sel.platform, sel.service, sel.environment)
                if ck not in cache:
                    res: DiscoverResult = await workflow.execute_activity(
                        CA.DISCOVER,
                        DiscoverInput(selector=sel),
                        result_type=DiscoverResult,
                        start_to_close_timeout=timedelta(seconds=30),
                        retry_policy=PLATFORM_RETRY,
                    )
                    cache[ck] = res.candidates
                cands = cache[ck]
            targets = select_targets(unit, sel, cands, seed, action.name)
            if not targets:
                raise ApplicationError(
                    f"action {action.name!r}: no target matches {sel.service}/{sel.environment}"
                    f" version={sel.version or '*'} labels={sel.labels}",
                    type=NO_TARGETS,
                    non_retryable=True,
                )
            plan[action.name] = targets
        return plan

    async def _execute(self, inp: ChaosRunInput, exp: Experiment, seed: int) -> None:
        j = self.journal
        j.phase = "plan"
        plan = await self._plan(inp, exp, seed)
        j.targets = plan
        self._event(
            "plan", "; ".join(f"{a}: {', '.join(t.id for t in ts)}" for a, ts in plan.items())
        )

        j.phase = "steady-state-before"
        before = await self._probe_all(exp, "before")
        if not conditions.holds(before):
            j.status = "aborted"
            j.reason = "steady state not met before the method; nothing was injected"
            self._event("abort", j.reason)
            return

        j.phase = "method"
        for i, step in enumerate(exp.method):
            if self._abort is not None:
                break
            if step.pause is not None:
                await self._wait(step.pause)
            elif step.probe is not None:
                rec = await self._probe(step.probe, "method")
                if not rec.ok:
                    j.deviated = True
                    self._event("deviation", f"method probe {rec.name}: {rec.detail}")
            elif step.action is not None:
                action = step.action
                if await self._wait(action.pauses.before):
                    break
                for target in plan[action.name]:
                    await self._inject(inp, action, target, i)
                if await self._wait(action.pauses.after):
                    break

        if self._abort is None and j.faults:
            j.phase = "fault-window"
            if workflow.patched(BATCHES_PATCH):
                window = FaultWindow(j, self._event, self._aborts, self._aborted, self._wait)
                await window.run(exp)
            else:  # histories recorded before the probe batches
                await self._fault_window(exp)
        if self._abort is not None and j.status == "running":
            j.status, j.aborted_by = "aborted", self._abort.identity
            j.reason = f"aborted by {self._abort.identity}: {self._abort.reason}"

    async def _inject(self, inp: ChaosRunInput, action: Action, target: Target, step: int) -> None:
        j = self.journal
        key = f"{j.workflow_id}:{action.name}:{target.id}"
        fault = FaultRecord(action=action.name, fault=action.fault, target=target, key=key)
        j.faults.append(fault)  # recorded BEFORE injecting: a revert always follows
        try:
            res: InjectResult = await workflow.execute_activity(
                CA.INJECT,
                InjectInput(key=key, action=action, target=target, protected=inp.protected),
                result_type=InjectResult,
                start_to_close_timeout=timedelta(seconds=120),
                heartbeat_timeout=timedelta(seconds=15),
                retry_policy=PLATFORM_RETRY,
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except ActivityError as err:
            fault.inject_error = cause(err)
            raise
        fault.handle, fault.injected_at = res.handle, workflow.now()
        self._event("inject", f"{action.fault} injected into {target.id} (step {step})")

    async def _fault_window(self, exp: Experiment) -> None:
        """Probe every ``probe_interval`` until ``duration`` passed or an abort condition
        (:func:`chaos.abort.judge_round`) or a manual abort ends the window."""
        c = exp.controls
        end = workflow.now() + c.duration
        series = conditions.BurnSeries()
        while True:
            records = await self._probe_all(exp, "during")
            self.journal.during.add(records)
            verdict = conditions.judge_round(records, series, c, workflow.now().timestamp())
            if verdict.deviation is not None:
                self.journal.deviated = True
                self._event("deviation", verdict.deviation)
            if verdict.abort is not None:
                self._aborts(verdict.abort)
                return
            remaining = end - workflow.now()
            if remaining <= timedelta(0):
                return
            if await self._wait(min(c.probe_interval, remaining)):
                return
