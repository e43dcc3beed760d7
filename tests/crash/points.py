"""Crash points, found from a run's history rather than written down.

Contract: :func:`discover` reads the history of a finished run and of its child
workflows (a deployment's compensating rollback) and returns its crash points in
schedule order: ``before`` every scheduled activity (a step boundary: the previous step
is done and the next one has just been scheduled) and ``mid`` every platform-changing
activity (:data:`PLATFORM_CHANGING`), the latter tied to the agent journal's ``begin``
line the activity wrote (the k-th begin after the run started). :func:`wait_for` blocks
until a live run reaches a point: the n-th ``ActivityTaskScheduled`` of that activity in
that workflow, and for ``mid`` the k-th journal begin line of the same op too."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from code_foundation.names import CA, A

PLATFORM_CHANGING = (
    A.PLATFORM_APPLY,
    A.PLATFORM_TRAFFIC,
    A.PLATFORM_RETIRE,
    CA.INJECT,
    CA.REVERT,
)
FOLLOWED_CHILDREN = ("DeploymentWorkflow", "RollbackWorkflow")


@dataclass(frozen=True)
class CrashPoint:
    role: str  # the workflow type whose history holds the activity
    activity: str
    n: int  # 1-based occurrence of ``activity`` in that workflow
    phase: str  # before | mid
    begin_index: int = -1  # mid: the begin line (0-based, after the run started)
    op: str = ""  # mid: the agent op of that begin line
    bound_s: float = 0.0  # how long Temporal waits to retry it after a lost attempt

    @property
    def label(self) -> str:
        where = "" if self.role == "main" else f" [{self.role}]"
        return f"{self.phase} {self.activity}#{self.n}{where}"


@dataclass
class Scheduled:
    role: str
    activity: str
    n: int
    t: float
    t_done: float | None
    bound_s: float = 0.0  # the heartbeat timeout, else the start-to-close timeout


async def _events(client: Any, workflow_id: str) -> list[Any]:
    handle = client.get_workflow_handle(workflow_id)
    return list((await handle.fetch_history()).events)


async def scheduled(client: Any, workflow_id: str) -> list[Scheduled]:
    """Every scheduled activity of the run and its followed children, in time order."""
    out: list[Scheduled] = []
    todo = [("main", workflow_id)]
    while todo:
        role, wid = todo.pop(0)
        events = await _events(client, wid)
        counts: dict[str, int] = {}
        by_id: dict[int, Scheduled] = {}
        for e in events:
            t = e.event_time.ToDatetime().timestamp()
            if e.HasField("activity_task_scheduled_event_attributes"):
                a = e.activity_task_scheduled_event_attributes
                name = a.activity_type.name
                counts[name] = counts.get(name, 0) + 1
                hb, sc = a.heartbeat_timeout.ToTimedelta(), a.start_to_close_timeout.ToTimedelta()
                bound = (hb if hb.total_seconds() > 0 else sc).total_seconds()
                s = Scheduled(role, name, counts[name], t, None, bound)
                by_id[e.event_id] = s
                out.append(s)
            elif e.HasField("activity_task_completed_event_attributes"):
                done = by_id.get(e.activity_task_completed_event_attributes.scheduled_event_id)
                if done is not None:
                    done.t_done = t
            elif e.HasField("child_workflow_execution_started_event_attributes"):
                a = e.child_workflow_execution_started_event_attributes
                if a.workflow_type.name in FOLLOWED_CHILDREN:
                    todo.append((a.workflow_type.name, a.workflow_execution.workflow_id))
    return sorted(out, key=lambda s: s.t)


class Journal:
    """The agent's op journal (``ops.jsonl``) read from an offset: its begin lines."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "ops.jsonl"
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def begins(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                raw = f.read()
        except OSError:
            return []
        lines = raw.split(b"\n")[:-1]  # a partial last line is not read yet
        out = []
        for line in lines:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("phase") == "begin":
                out.append(e)
        return out


OPS = {A.PLATFORM_APPLY: ("apply", "restore"), A.PLATFORM_TRAFFIC: ("traffic",),
       A.PLATFORM_RETIRE: ("retire",)}  # fmt: skip


def discover(acts: list[Scheduled], begins: list[dict[str, Any]]) -> list[CrashPoint]:
    """Crash points of a reference run: its scheduled activities, and the journal begin
    lines after it started (each platform-changing activity claims the next unclaimed
    begin line of its op written while it was scheduled)."""
    points: list[CrashPoint] = []
    claimed: set[int] = set()
    for s in acts:
        points.append(CrashPoint(s.role, s.activity, s.n, "before", bound_s=s.bound_s))
        if s.activity not in PLATFORM_CHANGING:
            continue
        end = s.t_done if s.t_done is not None else float("inf")
        ops = OPS.get(s.activity)
        for i, b in enumerate(begins):
            if i in claimed or (ops is not None and b.get("op") not in ops):
                continue
            if s.t - 0.05 <= float(b["ts"]) <= end + 0.05:
                claimed.add(i)
                mid = CrashPoint(s.role, s.activity, s.n, "mid", i, str(b["op"]), s.bound_s)
                points.append(mid)
                break
    return points


async def _reached(client: Any, workflow_id: str, point: CrashPoint) -> bool:
    todo = [("main", workflow_id)]
    while todo:
        role, wid = todo.pop(0)
        try:
            events = await _events(client, wid)
        except Exception:  # noqa: BLE001, S112 - not started yet, or the server is restarting
            continue
        n = 0
        for e in events:
            if e.HasField("activity_task_scheduled_event_attributes"):
                name = e.activity_task_scheduled_event_attributes.activity_type.name
                if role == point.role and name == point.activity:
                    n += 1
                    if n >= point.n:
                        return True
            elif e.HasField("child_workflow_execution_started_event_attributes"):
                a = e.child_workflow_execution_started_event_attributes
                if a.workflow_type.name in FOLLOWED_CHILDREN:
                    todo.append((a.workflow_type.name, a.workflow_execution.workflow_id))
    return False


async def wait_for(
    client: Any, workflow_id: str, point: CrashPoint, journal: Journal, timeout: float = 120
) -> float:
    """Block until the run reaches ``point``; the time it did."""
    deadline = time.monotonic() + timeout
    if point.phase == "mid":
        while True:  # the journal line comes right after the scheduled event: poll it fast
            begins = journal.begins()
            if len(begins) > point.begin_index:
                return time.time()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{point.label}: begin line {point.begin_index} never came")
            await asyncio.sleep(0.005)
    while not await _reached(client, workflow_id, point):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{point.label} never reached")
        await asyncio.sleep(0.05)
    return time.time()
