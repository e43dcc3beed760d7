"""``ReleaseLaneWorkflow``: one long-lived workflow per (service, environment, target)
that lets one workflow at a time change that target (the lock-manager pattern of
temporalio/samples-python ``resource_locking``).

Contract:
- Requesters reach the lane by signal-with-start (activity ``lane.request``) with a
  :class:`LaneRequest`; the lane answers each with a ``lane_reply`` signal to the
  requester's run: ``queued`` (holder and position), ``granted`` or ``rejected``.
- Policies: ``queue`` waits in FIFO order; ``reject`` is refused at once when the lane
  is held or has a queue; ``supersede`` asks the holder to abort (a deployment's
  ``abort`` signal, which rolls back) and goes to the front of the queue.
- A held lane is always released: by the holder's ``release`` signal, or — whatever way
  the holder ends (completed, failed, cancelled, terminated, timed out) — by a periodic
  check (``lane.watch_holder``, every 5 s doubling to 120 s while held) that finds the
  holder's run closed. A timer, not a long-running activity, so time-skipping works.
- A request repeated by an activity retry is recognised by (workflow id, run id).
- History stays bounded: continue-as-new after ``max_grants_per_run`` grants or when
  the server suggests it; the lane ends as soon as nothing holds or waits for it
  (after ``idle_timeout_s`` if set), so no lane workflow outlives its work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from code_foundation.error_types import NON_RETRYABLE
    from code_foundation.names import LaneA, W
    from workflows.inputs import parse_input
    from workflows.lane_models import (
        GRANT_SIGNAL,
        LaneEvent,
        LaneInput,
        LaneRelease,
        LaneReply,
        LaneRequest,
        LaneState,
        LaneWatchInput,
        LaneWatchResult,
    )
    from workflows.models import ControlInput

WATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=list(NON_RETRYABLE),
)
CHECK_FIRST = timedelta(seconds=5)
CHECK_MAX = timedelta(seconds=120)


def _same(a: LaneRequest | None, holder_id: str, run_id: str) -> bool:
    return a is not None and a.holder_id == holder_id and a.holder_run_id == run_id


@workflow.defn(name=W.LANE)
class ReleaseLaneWorkflow:
    def __init__(self) -> None:
        self._state = LaneState(lane="")
        self._inbox: list[tuple[str, Any]] = []

    # ---------------------------------------------------------------- handlers
    @workflow.signal(name="acquire")
    def acquire(self, raw: Any) -> None:
        self._inbox.append(("acquire", raw))

    @workflow.signal(name="release")
    def release(self, raw: Any) -> None:
        self._inbox.append(("release", raw))

    @workflow.query
    def state(self) -> LaneState:
        return self._state

    # ---------------------------------------------------------------- helpers
    def _log(self, what: str) -> None:
        self._state.recent = [*self._state.recent, LaneEvent(at=workflow.now(), what=what)][-20:]

    async def _reply(self, req: LaneRequest, reply: LaneReply) -> bool:
        """Tell a requester; False when its run is gone (it is then dropped)."""
        try:
            await workflow.get_external_workflow_handle(
                req.holder_id, run_id=req.holder_run_id
            ).signal(GRANT_SIGNAL, reply)
        except FailureError as err:  # the run is closed or unknown
            self._log(f"{req.holder_id} is gone ({err.message}); dropped")
            return False
        return True

    async def _on_acquire(self, raw: Any) -> None:
        try:
            req = parse_input(LaneRequest, raw, "lane acquire request")
        except ApplicationError as err:
            self._log(f"ignored a malformed acquire request: {err.message}")
            return
        s = self._state
        if _same(s.holder, req.holder_id, req.holder_run_id):
            await self._reply(req, LaneReply(lane=s.lane, state="granted", holder=req.holder_id))
            return
        if any(_same(q, req.holder_id, req.holder_run_id) for q in s.queue):
            return  # a retried request: already queued and told
        if s.holder is None and not s.queue:
            await self._grant(req)
            return
        ahead = s.holder.holder_id if s.holder else s.queue[0].holder_id
        if req.policy == "reject":
            self._log(f"rejected {req.holder_id}: lane held by {ahead}")
            await self._reply(
                req,
                LaneReply(
                    lane=s.lane,
                    state="rejected",
                    holder=ahead,
                    reason=f"{s.lane} is held by {ahead} (concurrency: reject)",
                ),
            )
            return
        if req.policy == "supersede":
            s.queue.insert(0, req)
            if s.holder is not None and s.holder.kind in ("deployment", "release"):
                self._log(f"{req.holder_id} supersedes {s.holder.holder_id}: abort sent")
                try:
                    await workflow.get_external_workflow_handle(
                        s.holder.holder_id, run_id=s.holder.holder_run_id
                    ).signal(
                        "abort",
                        ControlInput(
                            identity=f"lane:{req.holder_id}",
                            reason=f"superseded by {req.holder_id}",
                            token=req.token,
                        ),
                    )
                except FailureError as err:
                    self._log(f"abort of {s.holder.holder_id} failed: {err.message}")
        else:
            s.queue.append(req)
        pos = next(i for i, q in enumerate(s.queue, 1) if q.holder_id == req.holder_id)
        self._log(f"queued {req.holder_id} at {pos} behind {ahead}")
        if not await self._reply(
            req, LaneReply(lane=s.lane, state="queued", holder=ahead, position=pos)
        ):
            s.queue = [q for q in s.queue if not _same(q, req.holder_id, req.holder_run_id)]

    async def _grant(self, req: LaneRequest) -> None:
        s = self._state
        s.holder = req
        if not await self._reply(
            req, LaneReply(lane=s.lane, state="granted", holder=req.holder_id)
        ):
            s.holder = None
            return
        s.granted_total += 1
        self._log(f"granted to {req.holder_id}")

    def _free(self, holder_id: str, run_id: str, why: str) -> None:
        s = self._state
        if _same(s.holder, holder_id, run_id):
            s.holder = None
            self._log(f"released by {holder_id} ({why})")
        before = len(s.queue)
        s.queue = [q for q in s.queue if not _same(q, holder_id, run_id)]
        if len(s.queue) != before:
            self._log(f"{holder_id} left the queue ({why})")

    async def _check_holder(self) -> None:
        """Ask Temporal whether the holder's run is still open; free the lane if not."""
        h = self._state.holder
        if h is None:
            return
        res = await workflow.execute_activity(
            LaneA.WATCH,
            LaneWatchInput(holder_id=h.holder_id, holder_run_id=h.holder_run_id),
            result_type=LaneWatchResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=WATCH_RETRY,
        )
        if res.status != "RUNNING":
            self._free(res.holder_id, res.holder_run_id, f"its run is {res.status.lower()}")

    # ---------------------------------------------------------------- run
    @workflow.run
    async def run(self, raw: Any) -> LaneState:
        inp = parse_input(LaneInput, raw, "lane input")
        self._state = inp.state or LaneState(lane=inp.lane)
        grants_at_start = self._state.granted_total
        check = CHECK_FIRST
        while True:
            idle = self._state.holder is None and not self._state.queue
            holder = self._state.holder
            if idle and not self._inbox and inp.idle_timeout_s == 0 and await self._drained():
                break
            try:
                await workflow.wait_condition(
                    lambda: bool(self._inbox),
                    timeout=timedelta(seconds=inp.idle_timeout_s) if idle else check,
                )
            except TimeoutError:
                if idle and not self._inbox and await self._drained():
                    break
                if not idle:
                    await self._check_holder()
                    check = min(check * 2, CHECK_MAX)
            while self._inbox:
                kind, raw_msg = self._inbox.pop(0)
                if kind == "acquire":
                    await self._on_acquire(raw_msg)
                else:
                    try:
                        rel = parse_input(LaneRelease, raw_msg, "lane release")
                    except ApplicationError as err:
                        self._log(f"ignored a malformed release: {err.message}")
                        continue
                    self._free(rel.holder_id, rel.holder_run_id, rel.outcome or "released")
            while self._state.holder is None and self._state.queue:
                await self._grant(self._state.queue.pop(0))
            if self._state.holder is not holder:
                check = CHECK_FIRST  # a new holder: look at it soon, then less often
            many = self._state.granted_total - grants_at_start >= inp.max_grants_per_run
            if (many or workflow.info().is_continue_as_new_suggested()) and not self._inbox:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    LaneInput(
                        lane=inp.lane,
                        state=self._state,
                        idle_timeout_s=inp.idle_timeout_s,
                        max_grants_per_run=inp.max_grants_per_run,
                    )
                )
        # nothing held, nobody waiting: the lane ends (the next request starts it again)
        self._log("idle: lane closed")
        return self._state

    async def _drained(self) -> bool:
        """True when no signal is left to handle: a request that arrives while the lane
        is about to end is kept (the end is given up), never lost."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        return not self._inbox
