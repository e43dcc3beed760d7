"""``SoakTestWorkflow``: hold steady open-model load for hours, slice by slice.

Each slice is one heartbeating activity (:data:`SoakA.SLICE`) that generates
load for ``plan.slice`` and returns its merged-able stats (rust_core sketches)
and the target's resource samples. Between slices the workflow runs the checks
of :mod:`loadtest.checks` (SLO burn rates, p99 drift and error creep against
the baseline, RSS trend); the first breach ends the soak with ``verdict=fail``
and the reason. Slice results are keyed by slice index and added once only, so
a retried slice (worker crash) is never double counted. Slices are paced to
the plan's timeline with durable timers. Every ``plan.slices_per_run`` slices
(or when Temporal suggests it) the workflow continues-as-new, carrying the
merged histograms (base64) and per-slice summaries in :class:`SoakCarry`: every run's
history stays bounded (a 24 h soak of 5-minute slices: six runs of ~500 events).
The run input is ``Any``, validated with :func:`workflows.inputs.parse_input` (a bad one
fails the run with ``SpecError``); a malformed ``abort`` signal is ignored and noted in
``status.notes``.
At the end a report activity renders PNG + HTML + Markdown into the artifact
store. Signals: ``abort``. Query: ``status``. Sinks named in ``plan.notifications`` hear
``soak.check_breached`` and ``soak.finished`` (:mod:`workflows.run_notify`)."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from code_foundation.error_types import NON_RETRYABLE
from code_foundation.names import SoakA, W

with workflow.unsafe.imports_passed_through():
    import workflows.identity_gate as identity_gate  # the real module: its enforce flag
    from loadtest import checks
    from loadtest.soak_models import (
        CheckReport,
        ResolveTargetInput,
        ResolveTargetResult,
        SliceInput,
        SliceResult,
        SoakCarry,
        SoakInput,
        SoakPlan,
        SoakReportInput,
        SoakReportResult,
        SoakResult,
        SoakStatus,
        Verdict,
    )
    from loadtest.stats import LoadStats
    from workflows.inputs import parse_input
    from workflows.run_notify import soak_notifier

MAX_NOTES = 20


@workflow.defn(name=W.SOAK)
class SoakTestWorkflow:
    def __init__(self) -> None:
        self._status: SoakStatus | None = None
        self._abort = ""
        self._plan_seconds = 0.0
        self._notes: list[str] = []

    @workflow.signal
    def abort(self, raw: Any) -> None:
        """``raw``: the reason (a string, may be empty); anything else is ignored, and noted
        in the status."""
        if raw is not None and not isinstance(raw, str):
            if len(self._notes) < MAX_NOTES:
                self._notes.append(
                    f"ignored a malformed abort signal: expected a reason string,"
                    f" got {type(raw).__name__}"
                )
            if self._status is not None:
                self._status.notes = list(self._notes)
            return
        self._abort = raw or "aborted by request"

    @workflow.query
    def status(self) -> SoakStatus | None:
        return self._status

    @workflow.run
    async def run(self, raw: Any) -> SoakResult:
        inp = parse_input(SoakInput, raw, "the soak input")
        plan = inp.plan
        info = workflow.info()
        wid = info.workflow_id
        carry = inp.carry
        if carry is None:  # the first run (a continued one was admitted when it began)
            await identity_gate.admit_soak(inp.token, plan)
            carry = SoakCarry(started_at=workflow.now().timestamp())
        self._carry = carry
        self._plan_seconds = plan.duration.total_seconds()
        self._status = SoakStatus(
            workflow_id=wid,
            name=plan.name,
            target=plan.target.describe(),
            phase="resolving" if not carry.url else "running",
            slices_total=plan.n_slices,
            slices_done=len(carry.counted),
            runs=carry.runs,
            planned_rate=plan.rate,
            last_check=carry.last_check,
            notes=list(self._notes),
        )
        if not carry.url:
            resolved: ResolveTargetResult = await workflow.execute_activity(
                SoakA.RESOLVE,
                ResolveTargetInput(target=plan.target),
                result_type=ResolveTargetResult,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(
                    maximum_attempts=5, non_retryable_error_types=list(NON_RETRYABLE)
                ),
            )
            carry.url, carry.versions = resolved.url, resolved.versions
        slice_s = plan.slice_s
        this_run = 0
        while carry.next_slice < plan.n_slices and not carry.breach and not self._abort:
            suggested = this_run > 0 and workflow.info().is_continue_as_new_suggested()
            if this_run >= plan.slices_per_run or suggested:
                self._set_phase("continuing as new")
                carry.runs += 1
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(SoakInput(plan=plan, carry=carry, actor=inp.actor))
            index = carry.next_slice
            self._set_phase(f"slice {index + 1}/{plan.n_slices}")
            try:
                result = await self._run_slice(plan, carry, wid, index)
            except ActivityError as exc:  # retries exhausted: the soak fails, with a report
                cause = exc.cause.message if exc.cause is not None else str(exc)  # type: ignore[attr-defined]
                carry.breach = CheckReport(
                    slice_index=index,
                    at_s=workflow.now().timestamp() - carry.started_at,
                    breach=True,
                    reason=f"slice {index} failed after retries: {cause}",
                )
                carry.last_check = carry.breach
                break
            if result is None:  # aborted mid-slice
                break
            self._absorb(plan, carry, result)
            this_run += 1
            carry.next_slice = index + 1
            if carry.breach or carry.next_slice >= plan.n_slices:
                break
            # pace to the plan's timeline (a slice that ended early waits; late ones do not)
            due = carry.started_at + carry.next_slice * slice_s
            wait = due - workflow.now().timestamp()
            if wait > 0:
                self._set_phase("waiting for next slice")
                with contextlib.suppress(TimeoutError):  # then the slice is due
                    await workflow.wait_condition(lambda: bool(self._abort), timeout=wait)

        if self._abort:
            carry.aborted = self._abort
        verdict: Verdict = "fail" if carry.breach else ("aborted" if carry.aborted else "pass")
        reason = carry.breach.reason if carry.breach else carry.aborted
        notify = soak_notifier(plan, carry.versions)  # sinks named in plan.notifications
        if carry.breach:
            await notify.emit("soak.check_breached", outcome=verdict, reason=reason)
        self._set_phase("reporting")
        report: SoakReportResult | None = None
        try:
            report = await workflow.execute_activity(
                SoakA.REPORT,
                SoakReportInput(
                    workflow_id=wid, plan=plan, carry=carry, verdict=verdict, reason=reason
                ),
                result_type=SoakReportResult,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(
                    maximum_attempts=3, non_retryable_error_types=list(NON_RETRYABLE)
                ),
            )
        except ActivityError as exc:  # the verdict stands without a report
            workflow.logger.warning("soak report failed: %s", exc)
        if self._status is not None:
            self._status.verdict = verdict
            self._status.reason = reason
        await notify.emit("soak.finished", outcome=verdict, reason=reason)
        self._set_phase("done")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return SoakResult(
            workflow_id=wid,
            verdict=verdict,
            reason=reason,
            slices=len(carry.counted),
            runs=carry.runs,
            totals=carry.totals.summary(),
            stats=carry.totals,
            last_check=carry.last_check,
            summaries=carry.slices,
            trend=carry.trend,
            report=report,
        )

    # ---------------------------------------------------------------- helpers
    def _set_phase(self, phase: str) -> None:
        st, carry = self._status, self._carry
        if st is None:
            return
        now = workflow.now().timestamp()
        plan_total = st.slices_total
        st.phase = phase
        st.elapsed_s = max(0.0, now - carry.started_at)
        st.slices_done = len(carry.counted)
        st.runs = carry.runs
        st.totals = carry.totals.summary() if carry.counted else {}
        st.last_check = carry.last_check
        if carry.slices:
            st.current_rate = carry.slices[-1].achieved_rate
        st.remaining_s = max(0.0, self._plan_seconds - st.elapsed_s) if plan_total else 0.0

    async def _run_slice(
        self, plan: SoakPlan, carry: SoakCarry, wid: str, index: int
    ) -> SliceResult | None:
        length = plan.slice_length(index)
        rc = plan.checks.resources
        inp = SliceInput(
            workflow_id=wid,
            index=index,
            url=carry.url,
            scenario=plan.scenario,
            rate=plan.rate,
            duration_s=length,
            max_vus=plan.max_vus,
            slo_latency_ms=plan.checks.slo.latency_ms if plan.checks.slo else None,
            target=plan.target,
            versions=carry.versions,
            sample_every_s=rc.sample_every.total_seconds() if rc else 0.0,
            prometheus_query=rc.prometheus_query if rc else None,
        )
        grace = plan.scenario.timeout.total_seconds() + 30
        handle = workflow.start_activity(
            SoakA.SLICE,
            inp,
            result_type=SliceResult,
            start_to_close_timeout=timedelta(seconds=length + grace),
            heartbeat_timeout=timedelta(seconds=max(10.0, min(30.0, length / 2 + 5))),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=5,
                non_retryable_error_types=list(NON_RETRYABLE),
            ),
        )
        await workflow.wait_condition(lambda: handle.done() or bool(self._abort))
        if not handle.done():
            handle.cancel()
            with contextlib.suppress(BaseException):  # cancelled on abort; nothing to count
                await handle
            return None
        return handle.result()

    def _absorb(self, plan: SoakPlan, carry: SoakCarry, result: SliceResult) -> None:
        """Add one slice exactly once (keyed by index), then run the checks."""
        if result.index in carry.counted:
            return
        carry.counted.append(result.index)
        start_s = result.index * plan.slice_s
        end_s = start_s + plan.slice_length(result.index)
        stats: LoadStats = result.stats
        carry.totals = carry.totals.merge(stats)
        if end_s <= plan.baseline.total_seconds() + 1e-6:
            carry.baseline = carry.baseline.merge(stats)
        carry.slices.append(
            checks.summarize(result.index, start_s, end_s, result.attempt, stats, result.resources)
        )
        # resource samples are placed on the soak's timeline relative to the slice start
        origin = (stats.started_at or 0.0) - start_s
        carry.trend = checks.thin(carry.trend + checks.trend_points(result.resources, origin))
        at_s = max(end_s, workflow.now().timestamp() - carry.started_at)
        report = checks.evaluate(
            plan, carry, stats, result.index, end_s, growth_floor=workflow.patched("rss-floor")
        )
        report.at_s = at_s
        carry.last_check = report
        if report.breach:
            carry.breach = report
