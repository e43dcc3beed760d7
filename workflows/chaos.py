"""``ChaosExperimentWorkflow``: a chaos experiment whose rollbacks always run.

Order: resolve the exact targets (blast radius, protection) -> steady state
before (not met: ``aborted``, nothing injected) -> method (inject catalogued
faults, probes, pauses) -> fault window: the steady-state probes run every
``controls.probe_interval`` on durable timers for ``controls.duration``, cut
short by abort conditions (a probe out of tolerance, an error-rate burn over
``controls.abort_burn_rate``, a manual ``abort`` update/signal) ->
**rollbacks** (revert every fault that was, or may have been, injected, in
reverse order, then the experiment's explicit rollbacks) -> steady state after
-> journal + Markdown report stored as artifacts (keys in the result, the
memo and the workflow's current details).

Rollbacks run after success, deviation, abort, activity failure, cancellation
(the ``CancelledError`` is caught, the rollback activities are started after
it, then the cancellation is re-raised) and worker crash (the workflow is
durable: a new worker replays it and continues). A rollback is retried per
``controls.rollback_attempts``; if it still fails the journal says so and the
workflow FAILS with ``RollbackFailed`` — it is never silently skipped.
Terminating a workflow runs no code at all: use cancel (``codectl chaos
cancel``) or abort instead; a terminated experiment can leave its faults in
place (recover with the experiment's rollbacks run by hand).

Status: ``completed`` (the method ran; ``deviated`` says whether the steady
state held), ``aborted`` (abort condition or manual abort), ``failed``
(activity or rollback failure, protected/no targets), ``interrupted``
(cancelled)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from chaos.blast import Target, protection_problems, select_targets
    from chaos.catalogue import CATALOGUE
    from chaos.messages import (
        AbortRequest,
        ChaosResult,
        ChaosRunInput,
        DiscoverInput,
        DiscoverResult,
        Event,
        FaultRecord,
        InjectInput,
        InjectResult,
        Journal,
        ProbeInput,
        ProbeRecord,
        ProbeResult,
        ReportInput,
        ReportResult,
        RevertInput,
        RevertResult,
        RollbackInput,
    )
    from chaos.model import Experiment, HttpProbe
    from chaos.tolerance import window_burn
    from code_foundation.names import CA, SA_ENVIRONMENT, SA_KIND, SA_SERVICE, W


WORKFLOW_NAME = W.CHAOS


def _cause(err: BaseException) -> str:
    cause = err.__cause__ if isinstance(err, ActivityError) and err.__cause__ else err
    return str(cause) or type(cause).__name__


@workflow.defn(name=WORKFLOW_NAME)
class ChaosExperimentWorkflow:
    def __init__(self) -> None:
        self._journal: Journal | None = None
        self._abort: AbortRequest | None = None
        self._finished = False
        self._late_cancel = False

    # ------------------------------------------------------------ handlers
    @workflow.query
    def status(self) -> Journal | None:
        return self._journal

    @workflow.update
    async def abort(self, req: AbortRequest) -> str:
        self._request_abort(req)
        return f"abort requested by {req.identity}; rollbacks will run"

    @abort.validator
    def _validate_abort(self, req: AbortRequest) -> None:
        if self._finished:
            raise ValueError("the experiment has already finished")
        if not req.identity:
            raise ValueError("an abort needs the caller's identity")

    @workflow.signal
    def abort_signal(self, req: AbortRequest) -> None:
        self._request_abort(req)

    def _request_abort(self, req: AbortRequest) -> None:
        if self._abort is None and not self._finished:
            self._abort = req
            self._event("abort", f"abort requested by {req.identity}: {req.reason}")

    # ------------------------------------------------------------ helpers
    def _event(self, kind: str, message: str) -> None:
        if self._journal is not None:
            self._journal.events.append(Event(at=workflow.now(), kind=kind, message=message))
            workflow.logger.info("[%s] %s", kind, message)

    async def _wait(self, delay: timedelta) -> bool:
        """Durable sleep that wakes early on abort; True when an abort arrived."""
        if delay <= timedelta(0):
            return self._abort is not None
        try:
            await workflow.wait_condition(lambda: self._abort is not None, timeout=delay)
        except TimeoutError:
            pass
        return self._abort is not None

    async def _shielded(self, activity: str, arg: Any, result_type: type, **opts: Any) -> Any:
        """Run a rollback/report activity that a cancellation cannot interrupt.

        The activity is started, then awaited with ``workflow.wait`` (which does not
        cancel what it waits for); a cancellation arriving meanwhile is recorded and
        the wait resumes, so a cancel during the rollbacks never skips one."""
        handle = workflow.start_activity(activity, arg, result_type=result_type, **opts)
        while True:
            try:
                await workflow.wait([handle])
                break
            except asyncio.CancelledError:
                self._late_cancel = True
                self._event("cancel", "cancellation received during the rollbacks; they continue")
        return handle.result()

    async def _probe(self, probe: HttpProbe, phase: str) -> ProbeRecord:
        timeout = probe.timeout * probe.requests + timedelta(seconds=10)
        started = workflow.now()
        try:
            res: ProbeResult = await workflow.execute_activity(
                CA.PROBE,
                ProbeInput(probe=probe, phase=phase),  # type: ignore[arg-type]
                result_type=ProbeResult,
                start_to_close_timeout=timeout,
                retry_policy=RetryPolicy(maximum_attempts=2, initial_interval=timedelta(seconds=1)),
                # probes only read: on cancellation stop waiting, do not cancel them
                cancellation_type=workflow.ActivityCancellationType.ABANDON,
            )
            record = res.record
        except ActivityError as err:
            record = ProbeRecord(
                name=probe.name,
                phase=phase,  # type: ignore[arg-type]
                ok=False,
                detail=f"probe could not run: {_cause(err)}",
                started_at=started,
                finished_at=workflow.now(),
                requests=1,
                failures=1,
            )
        assert self._journal is not None
        self._journal.probes.append(record)
        return record

    async def _probe_all(self, exp: Experiment, phase: str) -> list[ProbeRecord]:
        if exp.steady_state is None:
            return []
        return list(await asyncio.gather(*(self._probe(p, phase) for p in exp.steady_state.probes)))

    # ------------------------------------------------------------ run
    @workflow.run
    async def run(self, inp: ChaosRunInput) -> ChaosResult:
        exp = inp.experiment
        seed = inp.seed if inp.seed is not None else exp.seed
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
        self._event("start", f"experiment {exp.title!r} started by {inp.actor} (seed {seed})")
        cancelled = False
        try:
            await self._execute(inp, exp, seed)
        except asyncio.CancelledError:
            cancelled = True
            j.status, j.reason = "interrupted", "the workflow was cancelled"
            self._event("cancel", "cancellation received; running rollbacks")
        except (ActivityError, ApplicationError) as err:
            j.status, j.reason = "failed", _cause(err)
            self._event("failure", j.reason)
        # ---------------------------------------------------------- rollbacks ALWAYS
        j.phase = "rollback"
        ok = await self._rollback(exp)
        if not ok:
            j.rollback_failed = True
            j.status = "failed"
            j.reason = (j.reason + "; " if j.reason else "") + "a rollback FAILED after retries"
        elif j.faults and not cancelled and not self._late_cancel:
            j.phase = "steady-state-after"
            try:
                after = await self._probe_all(exp, "after")
            except asyncio.CancelledError:
                self._late_cancel = True
                after = []
            if any(not r.ok for r in after):
                j.deviated = True
                self._event("deviation", "steady state not restored after the rollbacks")
        if self._late_cancel and not cancelled:
            cancelled = True
            if j.status == "running":
                j.status, j.reason = "interrupted", "the workflow was cancelled"
        if j.status == "running":
            j.status = "completed"
        j.phase = "done"
        j.finished_at = workflow.now()
        self._finished = True
        await self._store_report(j)
        if cancelled:
            raise asyncio.CancelledError()
        if j.rollback_failed:
            raise ApplicationError(
                f"chaos experiment {exp.title!r}: rollback failed; faults may still be in place "
                f"(see {j.report_md_key or 'the journal query'})",
                j.model_dump(mode="json"),
                type="RollbackFailed",
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
        protected = {
            "services": sorted(
                set(inp.protected.get("services", [])) | set(exp.protected.services)
            ),
            "environments": sorted(
                set(inp.protected.get("environments", [])) | set(exp.protected.environments)
            ),
        }
        plan: dict[str, list[Target]] = {}
        cache: dict[tuple[str, str, str], list[Target]] = {}
        for action in exp.actions():
            sel = action.target
            problems = protection_problems(sel, protected)
            if problems:
                raise ApplicationError(
                    "; ".join(problems), type="ProtectedTarget", non_retryable=True
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
                        retry_policy=RetryPolicy(maximum_attempts=3),
                    )
                    cache[ck] = res.candidates
                cands = cache[ck]
            targets = select_targets(unit, sel, cands, seed, action.name)
            if not targets:
                raise ApplicationError(
                    f"action {action.name!r}: no target matches {sel.service}/{sel.environment}"
                    f" version={sel.version or '*'} labels={sel.labels}",
                    type="NoTargets",
                    non_retryable=True,
                )
            plan[action.name] = targets
        return plan

    async def _execute(self, inp: ChaosRunInput, exp: Experiment, seed: int) -> None:
        j = self._journal
        assert j is not None
        j.phase = "plan"
        plan = await self._plan(inp, exp, seed)
        j.targets = plan
        self._event(
            "plan", "; ".join(f"{a}: {', '.join(t.id for t in ts)}" for a, ts in plan.items())
        )

        j.phase = "steady-state-before"
        before = await self._probe_all(exp, "before")
        if any(not r.ok for r in before):
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
                    key = f"{j.workflow_id}:{action.name}:{target.id}"
                    fault = FaultRecord(
                        action=action.name, fault=action.fault, target=target, key=key
                    )
                    j.faults.append(fault)  # recorded BEFORE injecting: a revert always follows
                    try:
                        res: InjectResult = await workflow.execute_activity(
                            CA.INJECT,
                            InjectInput(
                                key=key, action=action, target=target, protected=inp.protected
                            ),
                            result_type=InjectResult,
                            start_to_close_timeout=timedelta(seconds=120),
                            heartbeat_timeout=timedelta(seconds=15),
                            retry_policy=RetryPolicy(
                                maximum_attempts=3, non_retryable_error_types=["ProtectedTarget"]
                            ),
                            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                        )
                    except ActivityError as err:
                        fault.inject_error = _cause(err)
                        raise
                    fault.handle, fault.injected_at = res.handle, workflow.now()
                    self._event("inject", f"{action.fault} injected into {target.id} (step {i})")
                if await self._wait(action.pauses.after):
                    break

        if self._abort is None and j.faults:
            j.phase = "fault-window"
            await self._fault_window(exp)
        if self._abort is not None and j.status == "running":
            j.status, j.aborted_by = "aborted", self._abort.identity
            j.reason = f"aborted by {self._abort.identity}: {self._abort.reason}"

    async def _fault_window(self, exp: Experiment) -> None:
        j = self._journal
        assert j is not None
        c = exp.controls
        end = workflow.now() + c.duration
        stamps: list[float] = []
        good: list[float] = []
        total: list[float] = []
        while True:
            records = await self._probe_all(exp, "during")
            if records:
                bad = [r for r in records if not r.ok]
                if bad:
                    j.deviated = True
                    self._event("deviation", "; ".join(f"{r.name}: {r.detail}" for r in bad))
                    if c.abort_on_probe_failure:
                        j.status = "aborted"
                        j.reason = f"abort condition: probe {bad[0].name} out of tolerance ({bad[0].detail})"
                        self._event("abort", j.reason)
                        return
                now = workflow.now().timestamp()
                for r in records:
                    stamps.append(now)
                    good.append(float(r.requests - r.failures))
                    total.append(float(r.requests))
                if c.abort_burn_rate is not None:
                    step = c.probe_interval.total_seconds()
                    long_b, short_b, firing, engine = window_burn(
                        stamps,
                        good,
                        total,
                        c.slo_objective,
                        c.abort_burn_rate,
                        c.burn_window * step,
                        step,
                        now,
                    )
                    if firing:
                        j.deviated = True
                        j.status = "aborted"
                        j.reason = (
                            f"abort condition: error-rate burn {long_b:.2f} over the last "
                            f"{c.burn_window} probe rounds and {short_b:.2f} over the last round "
                            f"exceed {c.abort_burn_rate:g} ({engine})"
                        )
                        self._event("abort", j.reason)
                        return
            remaining = end - workflow.now()
            if remaining <= timedelta(0):
                return
            if await self._wait(min(c.probe_interval, remaining)):
                return

    async def _rollback(self, exp: Experiment) -> bool:
        j = self._journal
        assert j is not None
        c = exp.controls
        policy = RetryPolicy(
            maximum_attempts=c.rollback_attempts,
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=15),
        )
        ok = True
        for rec in reversed(j.faults):
            if rec.reverted_at is not None:
                continue
            params: dict[str, Any] = next(
                (a.params for a in exp.actions() if a.name == rec.action), {}
            )
            try:
                res: RevertResult = await self._shielded(
                    CA.REVERT,
                    RevertInput(
                        key=rec.key,
                        fault=rec.fault,
                        target=rec.target,
                        params=params,
                        handle=rec.handle,
                    ),
                    result_type=RevertResult,
                    start_to_close_timeout=c.rollback_timeout,
                    heartbeat_timeout=timedelta(seconds=15),
                    retry_policy=policy,
                )
                rec.reverted_at, rec.revert_error = workflow.now(), None
                j.rollbacks.append(
                    Event(
                        at=workflow.now(),
                        kind="revert",
                        message=f"{rec.fault} on {rec.target.id}: {res.detail}",
                    )
                )
            except ActivityError as err:
                ok = False
                rec.revert_error = _cause(err)
                j.rollbacks.append(
                    Event(
                        at=workflow.now(),
                        kind="revert-failed",
                        message=f"{rec.fault} on {rec.target.id}: {rec.revert_error}",
                    )
                )
                workflow.logger.error(
                    "revert of %s on %s FAILED: %s", rec.fault, rec.target.id, rec.revert_error
                )
        for rb in exp.rollbacks:
            try:
                res = await self._shielded(
                    CA.ROLLBACK,
                    RollbackInput(rollback=rb),
                    result_type=RevertResult,
                    start_to_close_timeout=c.rollback_timeout,
                    heartbeat_timeout=timedelta(seconds=15),
                    retry_policy=policy,
                )
                j.rollbacks.append(
                    Event(at=workflow.now(), kind="rollback", message=f"{rb.name}: {res.detail}")
                )
            except ActivityError as err:
                ok = False
                j.rollbacks.append(
                    Event(
                        at=workflow.now(),
                        kind="rollback-failed",
                        message=f"{rb.name}: {_cause(err)}",
                    )
                )
        return ok

    async def _store_report(self, j: Journal) -> None:
        try:
            res: ReportResult = await self._shielded(
                CA.REPORT,
                ReportInput(journal=j),
                result_type=ReportResult,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_attempts=5),
            )
        except ActivityError as err:
            self._event("report", f"the report could not be stored: {_cause(err)}")
            return
        j.report_json_key, j.report_md_key = res.json_key, res.md_key
        workflow.upsert_memo(
            {"report_json_key": res.json_key, "report_md_key": res.md_key, "status": j.status}
        )
        workflow.set_current_details(
            f"**{j.status}** (deviated: {j.deviated}) — report `{res.md_key}`, journal `{res.json_key}`"
        )
