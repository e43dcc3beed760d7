"""In-memory stand-ins for the chaos activities, registered under the real
activity names, so the workflow's orchestration (rollbacks always, abort,
cancel, retries) runs on the time-skipping server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from chaos.batch import BatchRun, offsets
from chaos.blast import Target
from chaos.messages import (
    DiscoverInput,
    DiscoverResult,
    InjectInput,
    InjectResult,
    ProbeBatchInput,
    ProbeBatchResult,
    ProbeInput,
    ProbePhase,
    ProbeRecord,
    ProbeResult,
    ReportInput,
    ReportResult,
    RevertInput,
    RevertResult,
    RollbackInput,
)
from chaos.tolerance import Observation
from code_foundation.names import CA


@dataclass
class FakeChaos:
    instances: int = 3
    active: set[str] = field(default_factory=set)  # keys of faults in place
    log: list[str] = field(default_factory=list)
    probe_ok: Callable[[str, int], bool] = lambda phase, n: True
    probes: int = 0
    inject_error: str | None = None
    revert_failures: int = 0  # fail this many revert attempts
    revert_attempts: int = 0
    injected_event: bool = False
    revert_delay: float = 0.0  # real seconds each revert takes
    reverting: bool = False
    reports: list[ReportInput] = field(default_factory=list)

    def activities(self) -> list:
        f = self

        @activity.defn(name=CA.DISCOVER)
        async def discover(inp: DiscoverInput) -> DiscoverResult:
            s = inp.selector
            return DiscoverResult(
                candidates=[
                    Target(service=s.service, environment=s.environment, version="v1", index=i)
                    for i in range(f.instances)
                ]
            )

        @activity.defn(name=CA.INJECT)
        async def inject(inp: InjectInput) -> InjectResult:
            if f.inject_error:
                raise ApplicationError(f.inject_error, type="PlatformConflict", non_retryable=True)
            f.active.add(inp.key)
            f.injected_event = True
            f.log.append(f"inject {inp.action.fault} {inp.target.id}")
            return InjectResult(handle={"id": inp.key})

        @activity.defn(name=CA.REVERT)
        async def revert(inp: RevertInput) -> RevertResult:
            f.revert_attempts += 1
            f.reverting = True
            if f.revert_delay:
                await asyncio.sleep(f.revert_delay)
            if f.revert_attempts <= f.revert_failures:
                raise ApplicationError("agent unreachable", type="PlatformUnavailable")
            f.active.discard(inp.key)
            f.log.append(f"revert {inp.fault} {inp.target.id}")
            return RevertResult(detail="reverted")

        @activity.defn(name=CA.ROLLBACK)
        async def rollback(inp: RollbackInput) -> RevertResult:
            f.log.append(f"rollback {inp.rollback.name}")
            return RevertResult(detail="ok")

        def record(name: str, phase: ProbePhase, now: datetime) -> ProbeRecord:
            f.probes += 1
            ok = f.probe_ok(phase, f.probes)
            return ProbeRecord(
                name=name,
                phase=phase,
                ok=ok,
                detail="ok" if ok else "status 502 (want [200])",
                started_at=now,
                finished_at=now,
                status=200 if ok else 502,
                requests=1,
                failures=0 if ok else 1,
            )

        @activity.defn(name=CA.PROBE)
        async def probe(inp: ProbeInput) -> ProbeResult:
            rec = record(inp.probe.name, inp.phase, datetime.now(UTC))
            return ProbeResult(record=rec, observation=Observation(status=rec.status, requests=1))

        @activity.defn(name=CA.PROBE_BATCH)
        async def probe_batch(inp: ProbeBatchInput) -> ProbeBatchResult:
            """Every round of the batch at once, stamped on the batch's virtual timeline
            (the workflow's timer then paces the window: no real sleeping)."""
            run = BatchRun(inp)
            for off in offsets(inp):
                at = inp.start_ts + off
                stamp = datetime.fromtimestamp(at, UTC)
                if run.add([record(p.name, "during", stamp) for p in inp.probes], at):
                    break
            return run.result()

        @activity.defn(name=CA.REPORT)
        async def report(inp: ReportInput) -> ReportResult:
            f.reports.append(inp)
            wid = inp.journal.workflow_id
            return ReportResult(
                json_key=f"chaos/{wid}/journal.json", md_key=f"chaos/{wid}/report.md"
            )

        return [discover, inject, revert, rollback, probe, probe_batch, report]
