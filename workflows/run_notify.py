"""Notification events of chaos experiments and soak tests, delivered the way a
deployment's are (:mod:`workflows.notify`): each event is numbered, recorded and handed
to a ``NotifyWorkflow`` child (``ParentClosePolicy.ABANDON``, id ``notify/<event id>``,
``REJECT_DUPLICATE``); the run waits only for the child's start, so a sink that is down
never delays or fails it.

:class:`RunNotifier` does nothing (no command at all) unless the experiment's or plan's
``notifications.sinks`` names a sink (from the ``notify_sinks`` setting) that wants the
event; the first event then asks ``workflow.patched(PATCH)``, so histories recorded
before these events replay as they ran. Event ids are
``<workflow id>/<run id>/<kind>/<seq>`` (a continued soak run has its own run id).

Chaos: ``chaos.started`` (admitted), ``chaos.deviated`` (the first deviation of the
steady state, wherever it is seen), ``chaos.finished`` (outcome: the journal's status)
or, instead, ``chaos.rollback_failed`` (critical). Soak: ``soak.check_breached`` (the
breach that ends the soak) and ``soak.finished`` (outcome: the verdict)."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from code_foundation.notify_ref import NotifyRef, RunEventKind
    from loadtest.soak_models import SoakPlan
    from workflows.notify import event_id, start_delivery
    from workflows.notify_spec import (
        DeliveryPolicy,
        Event,
        NotificationRecord,
        NotifyInput,
    )

PATCH = "run-notify"


class RunNotifier:
    """The events of one run (a chaos experiment or one soak run)."""

    def __init__(self, ref: NotifyRef | None, service: str, environment: str, version: str):
        self.ref = ref
        self.service, self.environment, self.version = service, environment, version
        self.records: list[NotificationRecord] = []
        self._sent: set[str] = set()
        self._pending: list[asyncio.Task[None]] = []
        self._patched: bool | None = None

    def wants(self, kind: RunEventKind) -> bool:
        ref = self.ref
        if ref is None or not ref.sinks or (ref.events and kind not in ref.events):
            return False
        if self._patched is None:  # asked once, at the first event the run wants
            self._patched = workflow.patched(PATCH)
        return self._patched

    async def emit(
        self, kind: RunEventKind, *, outcome: str | None = None, reason: str = ""
    ) -> None:
        """Start the delivery of one event (nothing when the run does not ask for it)."""
        if self.ref is None or not self.wants(kind):
            return
        seq = len(self.records) + 1
        event = Event(
            id=event_id(kind, seq),
            kind=kind,
            time=workflow.now(),
            workflow_id=workflow.info().workflow_id,
            service=self.service,
            environment=self.environment,
            version=self.version,
            outcome=outcome,
            reason=reason[:1000],
        )
        rec = NotificationRecord(id=event.id, kind=kind)
        self.records.append(rec)
        await start_delivery(
            NotifyInput(event=event, sinks=list(self.ref.sinks), delivery=DeliveryPolicy()),
            rec,
            f"notify {kind} of {self.service}",
        )

    def once(self, kind: RunEventKind, reason: str) -> None:
        """From synchronous code: emit ``kind`` the first time only (as a task that
        :meth:`settle` awaits)."""
        if kind in self._sent or not self.wants(kind):
            return
        self._sent.add(kind)
        self._pending.append(asyncio.create_task(self.emit(kind, reason=reason)))

    async def settle(self) -> None:
        """Wait until every event asked for from synchronous code has been started."""
        while self._pending:
            await self._pending.pop(0)


def soak_notifier(plan: SoakPlan, versions: list[str]) -> RunNotifier:
    """The events of a soak: service and environment of its target (a URL target: the
    URL and ``*``), version the versions the target ran when resolved."""
    t = plan.target
    return RunNotifier(
        plan.notifications,
        t.service or t.describe(),
        t.environment or "*",
        ",".join(versions) or "*",
    )
