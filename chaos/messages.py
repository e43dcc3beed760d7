"""Inputs and results exchanged by ``ChaosExperimentWorkflow``, its activities
and clients (one pydantic model per input/result), and the journal.

The journal records the run: status ``completed | failed | aborted |
interrupted`` (plus ``running`` while it runs), whether the steady state
deviated, every probe result with timestamps, every injection and revert.
A revert or rollback that found nothing in place (the fault was never injected, or
is already gone) has the outcome ``nothing_to_revert`` (event ``nothing-to-revert``),
which is not a failure; :func:`faults_left` names the injected faults a failed revert
may have left in place. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chaos.blast import Target
from chaos.model import Action, Controls, Experiment, HttpProbe, RollbackAction, Selector
from chaos.tolerance import Observation

RevertOutcome = Literal["reverted", "nothing_to_revert"]
Status = Literal["running", "completed", "failed", "aborted", "interrupted"]
ProbePhase = Literal["before", "method", "during", "after"]
JournalPhase = Literal[
    "starting",
    "plan",
    "steady-state-before",
    "method",
    "fault-window",
    "rollback",
    "steady-state-after",
    "done",
]
EventKind = Literal[
    "start",
    "plan",
    "inject",
    "deviation",
    "abort",
    "cancel",
    "failure",
    "report",
    "revert",
    "nothing-to-revert",
    "revert-failed",
    "rollback",
    "rollback-failed",
    "ignored",
    "lost",
]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- workflow
class ChaosRunInput(_M):
    experiment: Experiment
    actor: str = "unknown"
    seed: int | None = Field(None, description="overrides experiment.seed")
    protected: dict[str, list[str]] = Field(
        default_factory=dict, description="engine-wide protected services/environments"
    )
    set_search_attributes: bool = True
    token: str | None = Field(None, repr=False, description="the starter's OIDC token (JWT)")


class AbortRequest(_M):
    identity: str
    reason: str = "manual abort"


class ProbeRecord(_M):
    name: str
    phase: ProbePhase
    ok: bool
    detail: str
    started_at: datetime
    finished_at: datetime
    status: int | None = None
    latency_ms: float = 0.0
    requests: int = 0
    failures: int = 0


class ProbeTally(_M):
    """How much probing a phase did: every round and probe is counted here, also those
    whose records were aggregated to keep the journal bounded."""

    rounds: int = 0
    probes: int = 0
    requests: int = 0
    failures: int = 0
    out_of_tolerance: int = 0

    def add(self, records: list[ProbeRecord]) -> None:
        """Count one probe round."""
        self.rounds += 1
        self.probes += len(records)
        self.requests += sum(r.requests for r in records)
        self.failures += sum(r.failures for r in records)
        self.out_of_tolerance += sum(1 for r in records if not r.ok)

    def merge(self, other: ProbeTally) -> None:
        self.rounds += other.rounds
        self.probes += other.probes
        self.requests += other.requests
        self.failures += other.failures
        self.out_of_tolerance += other.out_of_tolerance


class FaultRecord(_M):
    action: str
    fault: str
    target: Target
    key: str
    handle: dict[str, Any] = Field(default_factory=dict)
    injected_at: datetime | None = None
    inject_error: str | None = None
    reverted_at: datetime | None = None
    revert_error: str | None = None
    revert_outcome: RevertOutcome | None = None


class Event(_M):
    at: datetime
    kind: EventKind
    message: str


class Journal(_M):
    workflow_id: str
    title: str
    actor: str
    status: Status = "running"
    phase: JournalPhase = "starting"
    deviated: bool = False
    reason: str = ""
    aborted_by: str | None = None
    seed: int = 0
    started_at: datetime
    finished_at: datetime | None = None
    targets: dict[str, list[Target]] = Field(default_factory=dict)
    probes: list[ProbeRecord] = Field(default_factory=list)
    during: ProbeTally = Field(
        default_factory=ProbeTally, description="every probe of the fault window, counted"
    )
    faults: list[FaultRecord] = Field(default_factory=list)
    rollbacks: list[Event] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    rollback_failed: bool = False
    report_json_key: str | None = None
    report_md_key: str | None = None


def faults_left(j: Journal) -> list[str]:
    """The faults that were (or may have been) injected and whose revert failed:
    ``"<fault> on <target>: <error>"`` each."""
    return [
        f"{f.fault} on {f.target.id}: {f.revert_error}"
        for f in j.faults
        if f.revert_error is not None and f.reverted_at is None
    ]


class ChaosResult(_M):
    workflow_id: str
    status: Status
    deviated: bool
    reason: str
    report_json_key: str | None
    report_md_key: str | None
    journal: Journal


# ---------------------------------------------------------------- activities
class DiscoverInput(_M):
    selector: Selector


class DiscoverResult(_M):
    candidates: list[Target]


class InjectInput(_M):
    key: str = Field(description="idempotency key: workflow id + action + target")
    action: Action
    target: Target
    protected: dict[str, list[str]] = Field(default_factory=dict)


class InjectResult(_M):
    handle: dict[str, Any]


class RevertInput(_M):
    key: str
    fault: str
    target: Target
    params: dict[str, Any] = Field(default_factory=dict)
    handle: dict[str, Any] = Field(
        default_factory=dict, description="empty when the inject outcome is unknown"
    )


class RevertResult(_M):
    detail: str
    outcome: RevertOutcome = Field(
        "reverted", description="nothing_to_revert: never injected or already gone"
    )


class RollbackInput(_M):
    rollback: RollbackAction


class ProbeInput(_M):
    probe: HttpProbe
    phase: ProbePhase


class ProbeResult(_M):
    record: ProbeRecord
    observation: Observation


class BurnTail(_M):
    """The fault window's burn series still inside the long burn window (carried from one
    probe batch to the next)."""

    stamps: list[float] = Field(default_factory=list)
    good: list[float] = Field(default_factory=list)
    total: list[float] = Field(default_factory=list)


class ProbeBatchInput(_M):
    """Probe rounds of the fault window at ``start + k * interval`` for every offset below
    ``span_s`` (and one at ``span_s`` when ``final``), each judged by
    :func:`chaos.abort.judge_round`; the batch stops at the first round that aborts."""

    probes: list[HttpProbe] = Field(min_length=1)
    controls: Controls
    start_ts: float = Field(description="workflow time of the batch start (fakes' timeline)")
    span_s: float = Field(ge=0)
    final: bool = False
    keep_rounds: int = Field(0, ge=0, description="rounds whose records come back in full")
    series: BurnTail = Field(default_factory=BurnTail)


class ProbeBatchResult(_M):
    """Records (the first ``keep_rounds`` rounds and an aborting round in full, the rest
    aggregated per probe), the tally of every round, deviations (capped), the abort."""

    records: list[ProbeRecord] = Field(default_factory=list)
    tally: ProbeTally = Field(default_factory=ProbeTally)
    deviations: list[str] = Field(default_factory=list)
    deviated_rounds: int = 0
    abort: str | None = None
    series: BurnTail = Field(default_factory=BurnTail)
    partial: bool = Field(False, description="cut short by a cancellation (manual abort)")


class ReportInput(_M):
    journal: Journal


class ReportResult(_M):
    json_key: str
    md_key: str
