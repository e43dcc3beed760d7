"""Taking and giving back a release lane from inside a workflow.

``LaneSession`` registers the ``lane_reply`` signal handler on the running workflow,
asks the lane by the ``lane.request`` activity (signal-with-start), and waits for the
lane's answer: ``granted`` or ``rejected`` (a ``queued`` answer only updates
:attr:`LaneSession.waiting`, e.g. "queued behind deploy-x (position 1)").
``release()`` signals the lane; if that fails, the lane's watch on this run frees it
when the run closes, so a lane is never leaked. Deterministic: workflow APIs only."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from code_foundation.error_types import NON_RETRYABLE
    from code_foundation.names import TASK_QUEUE, LaneA
    from workflows.inputs import parse_input
    from workflows.lane_models import (
        GRANT_SIGNAL,
        RELEASE_SIGNAL,
        HolderKind,
        LanePolicy,
        LaneRelease,
        LaneReply,
        LaneRequest,
        LaneRequestInput,
    )

REQUEST_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=list(NON_RETRYABLE),
)


class LaneSession:
    def __init__(
        self,
        lane: str,
        kind: HolderKind,
        policy: LanePolicy,
        description: str,
        token: str | None = None,
    ) -> None:
        # one engine = one task queue: workers on another queue (another installation,
        # or a test's own queue) have lanes of their own, served by their own workers
        queue = workflow.info().task_queue
        self.lane = lane if queue == TASK_QUEUE else f"{lane}@{queue}"
        self.kind: HolderKind = kind
        self.policy: LanePolicy = policy
        self.description = description
        self.token = token  # the holder's verified token: a supersede it causes carries it
        self.reply: LaneReply | None = None
        self.queued: LaneReply | None = None
        self.held = False
        self.requested = False
        workflow.set_signal_handler(GRANT_SIGNAL, self._on_reply)

    def _on_reply(self, raw: Any) -> None:
        try:
            reply = parse_input(LaneReply, raw, "lane reply")
        except ApplicationError:
            return
        if reply.state == "queued":
            if self.reply is None:
                self.queued = reply
        elif self.reply is None:
            self.reply = reply

    @property
    def waiting(self) -> str:
        """What the run is waiting for, for its status ("" when not waiting)."""
        if self.reply is not None or self.queued is None:
            return "" if self.reply is not None else f"waiting for lane {self.lane}"
        return f"queued behind {self.queued.holder} (position {self.queued.position})"

    async def acquire(
        self,
        service: str = "",
        environment: str = "",
        search_attributes: bool = True,
        stop: Callable[[], bool] | None = None,
    ) -> LaneReply | None:
        """Wait until the lane is granted or rejected and return the lane's answer; None
        when ``stop()`` became true first (the run then leaves the queue on release)."""
        info = workflow.info()
        req = LaneRequest(
            lane=self.lane,
            holder_id=info.workflow_id,
            holder_run_id=info.run_id,
            kind=self.kind,
            policy=self.policy,
            description=self.description,
            requested_at=workflow.now(),
            token=self.token,
        )
        self.requested = True
        await workflow.execute_activity(
            LaneA.REQUEST,
            LaneRequestInput(
                request=req,
                task_queue=info.task_queue,
                service=service,
                environment=environment,
                search_attributes=search_attributes,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=REQUEST_RETRY,
        )
        await workflow.wait_condition(
            lambda: self.reply is not None or (stop is not None and stop())
        )
        reply = self.reply
        self.held = reply is not None and reply.state == "granted"
        return reply

    async def release(self, outcome: str) -> None:
        """Give the lane back (or leave its queue); once, whatever happened before."""
        if not self.requested or (self.reply is not None and not self.held):
            return
        self.held = self.requested = False
        info = workflow.info()
        # if the signal fails, the lane's check frees it once this run closes
        with contextlib.suppress(FailureError):
            await workflow.get_external_workflow_handle(self.lane).signal(
                RELEASE_SIGNAL,
                LaneRelease(holder_id=info.workflow_id, holder_run_id=info.run_id, outcome=outcome),
            )
