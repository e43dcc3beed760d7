"""The notification events of a chaos experiment (:mod:`workflows.run_notify`): the
experiment's ``notifications.sinks`` (names from the ``notify_sinks`` setting) hear
``chaos.started`` and the first ``chaos.deviated`` as the journal records them, then
``chaos.finished`` (outcome: the journal's status) or, when a rollback failed,
``chaos.rollback_failed`` instead. The event's service and environment are the first
action's target (as in the run's search attributes), its version the target's version
selector (``*`` for any). Deterministic; no command without sinks."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from chaos.messages import EventKind, Journal
    from chaos.model import Experiment
    from code_foundation.notify_ref import RunEventKind
    from workflows.run_notify import RunNotifier

_ON: dict[str, RunEventKind] = {"start": "chaos.started", "deviation": "chaos.deviated"}


class ChaosNotifier(RunNotifier):
    def saw(self, kind: EventKind, message: str) -> None:
        """A journal event: the start and the first deviation are notified."""
        if kind in _ON:
            self.once(_ON[kind], message)

    async def finish(self, j: Journal) -> None:
        await self.settle()
        if j.rollback_failed:
            await self.emit("chaos.rollback_failed", outcome="failed", reason=j.reason)
            return
        why = j.reason or ("steady state deviated" if j.deviated else "steady state held")
        await self.emit("chaos.finished", outcome=j.status, reason=why)


def notifier(exp: Experiment) -> ChaosNotifier:
    actions = exp.actions()
    sel = actions[0].target if actions else None
    return ChaosNotifier(
        exp.notifications,
        sel.service if sel else exp.title,
        sel.environment if sel else "",
        (sel.version or "*") if sel else "*",
    )
