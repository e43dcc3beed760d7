"""Notification events of a release: ``release.started``, ``release.stage_started``,
``release.stage_finished`` (``outcome`` passed or failed) and ``release.finished``
(``outcome`` the release's), each delivered by a ``NotifyWorkflow`` child exactly like a
deployment's (:mod:`workflows.notify`): ``ParentClosePolicy.ABANDON``, id
``notify/<event id>`` with ``REJECT_DUPLICATE``, a sink that stays down never fails
or delays the release.

Only when the pipeline has ``notifications.sinks`` (no command otherwise, so histories
recorded without them replay unchanged). An event's id is
``<release id>/<run id>/<kind>/<seq>`` with ``seq`` counting the release's events from 1
across continue-as-new (the count is carried in ``ReleaseStatus.notifications``), so
the same event never goes out under two ids. ``environment`` is the stage's
environments (comma-separated; ``*`` for the release as a whole). Deterministic."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.notify import event_id, start_delivery
    from workflows.notify_spec import (
        Event,
        EventKind,
        NotificationRecord,
        NotifyInput,
        wants,
    )
    from workflows.pipeline_spec import PipelineSpec, Stage
    from workflows.release_models import ReleaseStatus


def stage_environments(stage: Stage | None) -> str:
    if stage is None:
        return "*"
    return ",".join(sorted({t.environment for t in stage.targets}))


async def emit(
    p: PipelineSpec,
    st: ReleaseStatus,
    kind: EventKind,
    *,
    stage: Stage | None = None,
    outcome: str | None = None,
    reason: str = "",
) -> None:
    """Start the delivery of one event (nothing when the pipeline does not ask for it)."""
    n = p.notifications
    if n is None or not n.sinks or not wants(n.events, kind):
        return
    seq = len(st.notifications) + 1
    event = Event(
        id=event_id(kind, seq),
        kind=kind,
        time=workflow.now(),
        workflow_id=workflow.info().workflow_id,
        service=st.service,
        environment=stage_environments(stage),
        version=st.version,
        step=None,
        outcome=outcome,
        reason=(f"stage {stage.name}" + (f": {reason}" if reason else "") if stage else reason)[
            :1000
        ],
    )
    rec = NotificationRecord(id=event.id, kind=kind)
    st.notifications.append(rec)
    where = f" {stage.name}" if stage else ""
    await start_delivery(
        NotifyInput(event=event, sinks=list(n.sinks), delivery=n.delivery),
        rec,
        f"notify {kind}{where} of {st.service} {st.version}",
    )
