"""The rollbacks of a ``ChaosExperimentWorkflow``, and its report, which no
cancellation can skip.

:class:`Shield` starts an activity and waits for it with ``workflow.wait`` (which
does not cancel what it waits for): a cancellation arriving meanwhile is remembered
(``late_cancel``) and the wait resumes. :func:`rollback_all` reverts every fault
that was, or may have been, injected (newest first, by its idempotency key), then
runs the experiment's explicit rollbacks; each is retried per
``controls.rollback_attempts`` and every outcome lands in ``journal.rollbacks``: a
revert or rollback that found nothing in place (never injected, already gone) is
``nothing-to-revert``, not a failure. :func:`failure_message` says which injected
faults may still be in place (only those whose revert failed) and which rollbacks
failed.
:func:`store_report` stores the journal + Markdown report and publishes their keys
(memo, current details). Deterministic: activities called by name."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from chaos.messages import (
        Event,
        EventKind,
        Journal,
        ReportInput,
        ReportResult,
        RevertInput,
        RevertResult,
        RollbackInput,
        faults_left,
    )
    from chaos.model import Experiment
    from code_foundation.error_types import NON_RETRYABLE
    from code_foundation.names import CA


def cause(err: BaseException) -> str:
    """The message of what failed inside an activity error."""
    inner = err.__cause__ if isinstance(err, ActivityError) and err.__cause__ else err
    return str(inner) or type(inner).__name__


class Shield:
    """Runs activities a cancellation cannot interrupt; ``late_cancel`` says one arrived."""

    def __init__(self, on_cancel: Callable[[], None]) -> None:
        self.late_cancel = False
        self._on_cancel = on_cancel

    async def run(self, activity: str, arg: Any, result_type: type, **opts: Any) -> Any:
        handle = workflow.start_activity(activity, arg, result_type=result_type, **opts)
        while True:
            try:
                await workflow.wait([handle])
                break
            except asyncio.CancelledError:
                self.late_cancel = True
                self._on_cancel()
        return handle.result()


async def rollback_all(shield: Shield, j: Journal, exp: Experiment) -> bool:
    """Revert every fault, then run the explicit rollbacks; False when one still
    failed after its retries."""
    c = exp.controls
    opts: dict[str, Any] = {
        "result_type": RevertResult,
        "start_to_close_timeout": c.rollback_timeout,
        "heartbeat_timeout": timedelta(seconds=15),
        "retry_policy": RetryPolicy(
            maximum_attempts=c.rollback_attempts,
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=15),
            non_retryable_error_types=list(NON_RETRYABLE),
        ),
    }

    def done(kind: EventKind, message: str) -> None:
        j.rollbacks.append(Event(at=workflow.now(), kind=kind, message=message))

    ok = True
    for rec in reversed(j.faults):
        if rec.reverted_at is not None:
            continue
        params: dict[str, Any] = next((a.params for a in exp.actions() if a.name == rec.action), {})
        where = f"{rec.fault} on {rec.target.id}"
        revert = RevertInput(
            key=rec.key, fault=rec.fault, target=rec.target, params=params, handle=rec.handle
        )
        try:
            res: RevertResult = await shield.run(CA.REVERT, revert, **opts)
            rec.reverted_at, rec.revert_error = workflow.now(), None
            rec.revert_outcome = res.outcome
            if res.outcome == "nothing_to_revert":
                done("nothing-to-revert", f"{where}: nothing to revert ({res.detail})")
            else:
                done("revert", f"{where}: {res.detail}")
        except ActivityError as err:
            ok = False
            rec.revert_error = cause(err)
            done("revert-failed", f"{where}: {rec.revert_error}")
            workflow.logger.error(
                "revert of %s on %s FAILED: %s", rec.fault, rec.target.id, rec.revert_error
            )
    for rb in exp.rollbacks:
        try:
            res = await shield.run(CA.ROLLBACK, RollbackInput(rollback=rb), **opts)
            if res.outcome == "nothing_to_revert":
                done("nothing-to-revert", f"{rb.name}: nothing to revert ({res.detail})")
            else:
                done("rollback", f"{rb.name}: {res.detail}")
        except ActivityError as err:
            ok = False
            done("rollback-failed", f"{rb.name}: {cause(err)}")
    return ok


def failure_message(j: Journal, title: str) -> str:
    """Why the rollbacks failed: the injected faults that may still be in place (named),
    then the explicit rollbacks that failed; and where the report is, with the command
    that fetches it."""
    left = faults_left(j)
    failed = [e.message for e in j.rollbacks if e.kind == "rollback-failed"]
    parts = []
    if left:
        parts.append("faults may still be in place: " + "; ".join(left))
    if failed:
        every = "" if left else " (every injected fault was reverted)"
        parts.append("rollback(s) failed" + every + ": " + "; ".join(failed))
    where = f"report {j.report_md_key}" if j.report_md_key else "the journal (status query)"
    return (
        f"chaos experiment {title!r}: rollback failed; {'; '.join(parts) or 'see the journal'} "
        f"(see {where}; fetch: codectl chaos report {j.workflow_id})"
    )


async def store_report(shield: Shield, j: Journal) -> str | None:
    """Store the report; the error when it could not be stored (the run goes on)."""
    try:
        res: ReportResult = await shield.run(
            CA.REPORT,
            ReportInput(journal=j),
            result_type=ReportResult,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(
                maximum_attempts=5, non_retryable_error_types=list(NON_RETRYABLE)
            ),
        )
    except ActivityError as err:
        return cause(err)
    j.report_json_key, j.report_md_key = res.json_key, res.md_key
    workflow.upsert_memo(
        {"report_json_key": res.json_key, "report_md_key": res.md_key, "status": j.status}
    )
    workflow.set_current_details(
        f"**{j.status}** (deviated: {j.deviated}) — report `{res.md_key}`, journal "
        f"`{res.json_key}` (fetch: `codectl chaos report {j.workflow_id}`)"
    )
    return None
