"""Notification delivery that never fails or delays the run it reports on.

:func:`emit` (called by a deployment at its lifecycle points, only when its spec has
``notifications.sinks``: no command otherwise, so histories without them replay
unchanged) numbers the event, records it in ``DeployStatus.notifications`` and starts a
``NotifyWorkflow`` child with ``ParentClosePolicy.ABANDON`` whose id is
``notify/<event id>`` (``REJECT_DUPLICATE``: one event is delivered by one workflow,
ever). The run waits only for the child's start; a background task updates the
record when the delivery ends while the run still goes on.

``NotifyWorkflow`` delivers to every sink concurrently: ``notify.deliver`` tries, then
durable timers between tries (``backoff`` doubling up to ``max_backoff``); after
``attempts`` tries it gives up (the last try counts the give-up in the worker's
metrics) and returns every sink's state. Deterministic: I/O only in the activity."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from code_foundation.names import NotifyA, W
    from workflows.models import DeployStatus
    from workflows.notify_spec import (
        DeliverInput,
        DeliverResult,
        Event,
        EventKind,
        NotificationRecord,
        NotifyInput,
        NotifyResult,
        Sink,
        wants,
    )
    from workflows.spec import DeploymentSpec


@workflow.defn(name=W.NOTIFY)
class NotifyWorkflow:
    @workflow.run
    async def run(self, inp: NotifyInput) -> NotifyResult:
        got = await asyncio.gather(*(self._one(inp, s) for s in inp.sinks))
        return NotifyResult(event_id=inp.event.id, deliveries=list(got))

    async def _one(self, inp: NotifyInput, sink: str | Sink) -> DeliverResult:
        pol = inp.delivery
        wait = pol.backoff
        name = sink if isinstance(sink, str) else sink.name
        res = DeliverResult(sink=name, message="not tried")
        for attempt in range(1, pol.attempts + 1):
            try:
                res = await workflow.execute_activity(
                    NotifyA.DELIVER,
                    DeliverInput(
                        event=inp.event, sink=sink, attempt=attempt, final=attempt == pol.attempts
                    ),
                    result_type=DeliverResult,
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
            except ActivityError as err:  # a lost worker: counts as a failed try
                res = DeliverResult(sink=name, attempts=attempt, message=str(err.cause or err))
            if res.state != "failed" or attempt == pol.attempts:
                break
            await workflow.sleep(wait)
            wait = min(wait * 2, pol.max_backoff)
        return res


def event_id(kind: str, seq: int) -> str:
    info = workflow.info()
    return f"{info.workflow_id}/{info.run_id}/{kind}/{seq}"


def enabled(spec: DeploymentSpec, kind: EventKind) -> bool:
    n = spec.notifications
    return n is not None and bool(n.sinks) and wants(n.events, kind)


async def emit(
    spec: DeploymentSpec,
    status: DeployStatus,
    kind: EventKind,
    *,
    previous: str | None = None,
    step: int | None = None,
    outcome: str | None = None,
    reason: str = "",
) -> None:
    """Start the delivery of one event (nothing when the spec does not ask for it)."""
    n = spec.notifications
    if n is None or not enabled(spec, kind):
        return
    seq = len(status.notifications) + 1
    event = Event(
        id=event_id(kind, seq),
        kind=kind,
        time=workflow.now(),
        workflow_id=workflow.info().workflow_id,
        service=spec.service,
        environment=spec.environment,
        version=spec.version,
        previous_version=previous,
        step=step,
        outcome=outcome,
        reason=reason[:1000],
    )
    rec = NotificationRecord(id=event.id, kind=kind)
    status.notifications.append(rec)
    await start_delivery(
        NotifyInput(event=event, sinks=list(n.sinks), delivery=n.delivery),
        rec,
        f"notify {kind} of {spec.service} {spec.version}",
    )


async def start_delivery(inp: NotifyInput, rec: NotificationRecord, summary: str) -> None:
    """Start the abandoned ``NotifyWorkflow`` child for ``inp.event`` (id ``notify/<event
    id>``, never reused: the same event is never sent twice) and keep ``rec`` up to date
    with its outcome; every run kind that notifies (deployments, releases, chaos, soak)
    delivers through here."""
    try:
        handle = await workflow.start_child_workflow(
            W.NOTIFY,
            inp,
            id=f"notify/{inp.event.id}",
            result_type=NotifyResult,
            task_queue=workflow.info().task_queue,
            parent_close_policy=ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=summary,
        )
    except WorkflowAlreadyStartedError as exc:  # never twice: the id is taken
        rec.state, rec.detail = "not started", str(exc)[:300]
        return
    _watch(handle, rec)


def _watch(handle: ChildWorkflowHandle[Any, NotifyResult], rec: NotificationRecord) -> None:
    async def wait() -> None:
        try:
            res: NotifyResult = await handle
        except ChildWorkflowError as exc:  # recorded, never raised
            rec.state, rec.detail = "gave up", str(exc)[:300]
            return
        failed = [d for d in res.deliveries if d.state in ("failed", "refused")]
        rec.state = "gave up" if failed else "delivered"
        rec.detail = "; ".join(
            f"{d.sink}: {d.state} after {d.attempts} try(ies) ({d.message})" for d in res.deliveries
        )[:500]

    asyncio.create_task(wait())  # the workflow's own event loop holds it until the run ends
