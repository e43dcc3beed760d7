"""Real reorderings of the real workflow classes, for the negative replay controls.

:func:`plan_swap` reads a committed history and finds two consecutively scheduled
activities of different types, A then B (the first such pair, or the last one, deep in
the run after its timers, signals and child workflows). :class:`SwapActivities` is a worker
interceptor that, when the real workflow class schedules A at that point, schedules B
(with B's recorded input) first: the command stream a refactor that swapped those two
calls in the workflow's code would produce. It touches nothing but the order of
``start_activity`` calls, so it works for every workflow type and does not depend on how
a workflow's modules are split. Replaying the committed history with the real class and
this interceptor must fail with a nondeterminism error; without it the class replays
cleanly (``tests/workflows/test_replay.py``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.common import RawValue
from temporalio.worker import (
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)


@dataclass(frozen=True)
class Swap:
    index: int  # position of A among the run's scheduled activities (0-based)
    first: str  # A: the activity type the history has at ``index``
    second: str  # B: the one scheduled right after it, moved before A
    second_args: tuple[Payload, ...]


def plan_swap(history: WorkflowHistory, which: str = "first") -> Swap:
    """The ``first`` or ``last`` adjacent pair of scheduled activities of different types."""
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    swaps = [
        Swap(i, a.activity_type.name, b.activity_type.name, tuple(b.input.payloads))
        for i, (a, b) in enumerate(zip(scheduled, scheduled[1:], strict=False))
        if a.activity_type.name != b.activity_type.name
    ]
    assert swaps, f"{history.workflow_id}: no two different activities to swap"
    return swaps[0] if which == "first" else swaps[-1]


class SwapActivities(Interceptor):
    """Schedules ``swap.second`` just before the real workflow's call number
    ``swap.index`` (which is ``swap.first`` in the history)."""

    def __init__(self, swap: Swap) -> None:
        self.swap = swap

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        swap = self.swap

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(_Outbound(outbound, swap))

        return Inbound


class _Outbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, swap: Swap) -> None:
        super().__init__(next)
        self._swap = swap
        self._calls = 0

    def start_activity(self, input: StartActivityInput) -> Any:
        if self._calls == self._swap.index:
            moved = dataclasses.replace(
                input,
                activity=self._swap.second,
                args=[RawValue(p) for p in self._swap.second_args],
                activity_id=None,
                arg_types=None,
                ret_type=None,
            )
            self.next.start_activity(moved)
        self._calls += 1
        return self.next.start_activity(input)
