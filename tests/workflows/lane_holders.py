"""A minimal lane holder for the lane tests: takes the lane, holds it for a while
(or until aborted), records when it got it, and gives it back."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.lane_session import LaneSession


class HoldInput(BaseModel):
    lane: str
    policy: str = "queue"
    hold_s: float = 60.0
    kind: str = "deployment"


class HoldResult(BaseModel):
    state: str
    granted_at: float | None = None
    released_at: float | None = None
    aborted_by: str = ""
    queued_behind: str = ""


@workflow.defn(name="LaneTestHolder")
class LaneTestHolder:
    def __init__(self) -> None:
        self._abort = ""
        self._session: LaneSession | None = None

    @workflow.signal
    def abort(self, inp: Any) -> None:
        self._abort = str((inp or {}).get("identity", "?")) if isinstance(inp, dict) else "?"

    @workflow.query
    def waiting(self) -> str:
        return self._session.waiting if self._session else ""

    @workflow.query
    def lane_state(self) -> str:
        """ "granted"/"rejected" once answered, "queued" while in line, "" before."""
        s = self._session
        if s is None:
            return ""
        if s.reply is not None:
            return s.reply.state
        return "queued" if s.queued is not None else ""

    @workflow.run
    async def run(self, inp: HoldInput) -> HoldResult:
        s = self._session = LaneSession(inp.lane, inp.kind, inp.policy, "test holder")  # type: ignore[arg-type]
        reply = await s.acquire(search_attributes=False)
        assert reply is not None
        behind = s.queued.holder if s.queued and s.queued.holder else ""
        if reply.state != "granted":
            return HoldResult(state=reply.state, queued_behind=reply.holder or "")
        granted = workflow.now().timestamp()
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: bool(self._abort), timeout=timedelta(seconds=inp.hold_s)
            )
        released = workflow.now().timestamp()
        await s.release("done")
        return HoldResult(
            state="granted",
            granted_at=granted,
            released_at=released,
            aborted_by=self._abort,
            queued_behind=behind,
        )
