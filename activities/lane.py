"""Activities of release lanes: reaching the lane workflow, and telling whether a
holder's run is still open so that a lane is freed however its holder ends.

Both talk to Temporal itself through the worker's client (``activity.client()``).
``lane.request`` starts the lane if absent and signals it; it is idempotent (the lane
recognises a repeated request by the requester's workflow id and run id).
``lane.watch_holder`` returns the holder run's status (``RUNNING`` while open)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry import context as otel_context
from temporalio import activity
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from code_foundation.errors import ServerUnavailable
from code_foundation.names import SA_ENVIRONMENT, SA_KIND, SA_SERVICE, LaneA, W
from workflows.lane_models import (
    ACQUIRE_SIGNAL,
    LaneInput,
    LaneRequestInput,
    LaneWatchInput,
    LaneWatchResult,
)


@contextlib.contextmanager
def _own_trace() -> Iterator[None]:
    """A lane serves many runs: what it does is traced on its own, not in the trace of
    whichever deployment happened to start it (no tracing context is propagated)."""
    token = otel_context.attach(otel_context.Context())
    try:
        yield
    finally:
        otel_context.detach(token)


class LaneActivities:
    @activity.defn(name=LaneA.REQUEST)
    async def request(self, inp: LaneRequestInput) -> None:
        req = inp.request
        pairs = [SearchAttributePair(SA_KIND, "lane")]
        if inp.service:
            pairs.append(SearchAttributePair(SA_SERVICE, inp.service))
        if inp.environment:
            pairs.append(SearchAttributePair(SA_ENVIRONMENT, inp.environment))
        client = activity.client()
        # start-if-absent, then signal (two idempotent calls rather than signal-with-start,
        # which the time-skipping test server does not handle); a lane that ended idle
        # between the two is started again
        for _ in range(3):
            with _own_trace(), contextlib.suppress(WorkflowAlreadyStartedError):
                await client.start_workflow(
                    W.LANE,
                    LaneInput(lane=req.lane),
                    id=req.lane,
                    task_queue=inp.task_queue,
                    search_attributes=TypedSearchAttributes(pairs)
                    if inp.search_attributes
                    else None,
                    static_summary=f"release lane {req.lane}",
                )
            try:
                with _own_trace():
                    await client.get_workflow_handle(req.lane).signal(ACQUIRE_SIGNAL, req)
                return
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
        raise ServerUnavailable(f"could not reach release lane {req.lane} (it kept closing)")

    @activity.defn(name=LaneA.WATCH)
    async def watch_holder(self, inp: LaneWatchInput) -> LaneWatchResult:
        """The holder run's status now (``RUNNING`` while it is open)."""
        handle = activity.client().get_workflow_handle(inp.holder_id, run_id=inp.holder_run_id)
        try:
            desc = await handle.describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            status = "NOT_FOUND"
        else:
            status = desc.status.name if desc.status else "UNKNOWN"
        return LaneWatchResult(
            holder_id=inp.holder_id, holder_run_id=inp.holder_run_id, status=status
        )


def lane_activities() -> list[Callable[..., Any]]:
    acts = LaneActivities()
    return [acts.request, acts.watch_holder]
