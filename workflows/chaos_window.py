"""The fault window of a ``ChaosExperimentWorkflow`` run as probe batches, so a window of
any length is a bounded history.

Each batch is one heartbeating activity (:data:`CA.PROBE_BATCH`) that runs the steady-
state probes for about ten minutes of rounds (:func:`chaos.batch.batch_rounds`; at most
:data:`chaos.batch.MAX_BATCHES` batches per window), judges every round with the abort
conditions and stops at the first that aborts, and returns the condensed records, the
tally of every round and the burn series still inside the long burn window (carried to
the next batch). Between batches a durable timer paces the window to its timeline (a
batch that returned early waits), so a fake batch in a time-skipping test and a real one
cover the same virtual time. A manual abort cancels the batch in flight (its rounds so
far come back and are kept); a workflow cancellation cancels it and propagates.

A batch is not retried (that would start its rounds over, off the timeline): one whose
worker was lost (heartbeat timeout) is noted and the window goes on from the next round
due, as the probe loop skipped the rounds no worker ran. A batch that failed otherwise
(or a lost last round) counts as one round of probes that could not run (out of
tolerance: it aborts when ``abort_on_probe_failure``). The journal keeps at most
:data:`MAX_WINDOW_RECORDS` full records of the window (then one aggregated record per
probe and batch) and :data:`MAX_DEVIATION_EVENTS` deviation events; ``journal.during``
counts every round. Deterministic: the activity is called by name."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from chaos.batch import BatchRun, batch_rounds
    from chaos.messages import (
        BurnTail,
        EventKind,
        Journal,
        ProbeBatchInput,
        ProbeBatchResult,
        ProbeRecord,
    )
    from chaos.model import Experiment
    from code_foundation.error_types import NON_RETRYABLE
    from code_foundation.names import CA
    from workflows.chaos_rollbacks import cause

BATCHES_PATCH = "chaos-probe-batches"
# a chaos run's discovery and injection ride out a restart of the agent (about 45 s of
# retries, as a deployment's platform calls do) instead of failing the experiment
PLATFORM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=8,
    non_retryable_error_types=list(NON_RETRYABLE),
)
MAX_WINDOW_RECORDS = 1000
MAX_DEVIATION_EVENTS = 50


class FaultWindow:
    """Runs the window; reports through the workflow's journal and callbacks."""

    def __init__(
        self,
        journal: Journal,
        event: Callable[[EventKind, str], None],
        aborts: Callable[[str], None],
        abort_requested: Callable[[], bool],
        wait: Callable[[timedelta], Awaitable[bool]],
    ) -> None:
        self.j = journal
        self._event = event
        self._aborts = aborts
        self._abort_requested = abort_requested
        self._wait = wait
        self._kept = 0
        self._deviation_events = 0
        self._capped = False

    async def run(self, exp: Experiment) -> None:
        if exp.steady_state is None:
            return
        probes = exp.steady_state.probes
        c = exp.controls
        step = c.probe_interval.total_seconds()
        duration = c.duration.total_seconds()
        span_full = batch_rounds(duration, step) * step
        origin = workflow.now()
        tail = BurnTail()
        offset = 0.0
        while True:
            final = offset + span_full >= duration
            span = duration - offset if final else span_full
            room = max(0, MAX_WINDOW_RECORDS - self._kept) // len(probes)
            inp = ProbeBatchInput(
                probes=probes,
                controls=c,
                start_ts=workflow.now().timestamp(),
                span_s=max(0.0, span),
                final=final,
                keep_rounds=room,
                series=tail,
            )
            res = await self._batch(inp)
            if res is None:  # its worker was lost: go on from now, on the rounds' grid
                late = (workflow.now() - origin).total_seconds()
                offset = min(duration, max(offset + step, math.ceil(late / step) * step))
                continue
            self._absorb(res)
            if res.abort is not None:
                self._aborts(res.abort)
                return
            if res.partial or self._abort_requested():
                return
            # pace to the window's timeline: a batch that returned early waits
            if await self._wait(origin + timedelta(seconds=offset + span) - workflow.now()):
                return
            if final:
                return
            tail = res.series
            offset += span_full

    async def _batch(self, inp: ProbeBatchInput) -> ProbeBatchResult | None:
        per_round = max(p.timeout * p.requests for p in inp.probes)
        handle = workflow.start_activity(
            CA.PROBE_BATCH,
            inp,
            result_type=ProbeBatchResult,
            start_to_close_timeout=timedelta(seconds=inp.span_s)
            + per_round * 2
            + timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=10),
            # not retried: a retry would start the batch's rounds over, off the timeline
            retry_policy=RetryPolicy(maximum_attempts=1),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        try:
            await workflow.wait_condition(lambda: handle.done() or self._abort_requested())
        except asyncio.CancelledError:
            handle.cancel()  # probes only read: the rollbacks need not wait for them
            raise
        manual = not handle.done()
        if manual:
            handle.cancel()
        try:
            return await handle
        except ActivityError as err:
            if manual:
                self._event("abort", "the probe batch in flight was cancelled by the abort")
                return ProbeBatchResult(partial=True)
            if isinstance(err.cause, TimeoutError) and not (inp.final and inp.span_s == 0):
                self._event(
                    "lost",
                    f"a probe batch was lost ({cause(err)}): its rounds were not probed;"
                    " the fault window goes on",
                )
                return None
            return self._could_not_run(inp, cause(err))

    def _could_not_run(self, inp: ProbeBatchInput, why: str) -> ProbeBatchResult:
        """A batch that failed after its retries: one round of probes that could not run."""
        now = workflow.now()
        run = BatchRun(inp.model_copy(update={"keep_rounds": 1}))
        records = [
            ProbeRecord(
                name=p.name,
                phase="during",
                ok=False,
                detail=f"probe could not run: {why}",
                started_at=now,
                finished_at=now,
                requests=1,
                failures=1,
            )
            for p in inp.probes
        ]
        run.add(records, now.timestamp())
        return run.result()

    def _absorb(self, res: ProbeBatchResult) -> None:
        j = self.j
        j.probes.extend(res.records)
        self._kept += len(res.records)
        j.during.merge(res.tally)
        if res.deviated_rounds:
            j.deviated = True
        dropped = res.deviated_rounds - len(res.deviations)
        for message in res.deviations:
            if self._deviation_events < MAX_DEVIATION_EVENTS:
                self._deviation_events += 1
                self._event("deviation", message)
            else:
                dropped += 1
        if dropped > 0 and not self._capped:
            self._capped = True
            self._event(
                "deviation",
                "further deviating rounds are not listed; journal.during counts them all",
            )
