"""Inputs and results exchanged by ``ChaosExperimentWorkflow``, its activities
and clients (one pydantic model per input/result), and the journal.

The journal records the run: status ``completed | failed | aborted |
interrupted`` (plus ``running`` while it runs), whether the steady state
deviated, every probe result with timestamps, every injection and revert.
Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chaos.blast import Target
from chaos.model import Action, Experiment, HttpProbe, RollbackAction, Selector
from chaos.tolerance import Observation

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
    "revert-failed",
    "rollback",
    "rollback-failed",
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
    faults: list[FaultRecord] = Field(default_factory=list)
    rollbacks: list[Event] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    rollback_failed: bool = False
    report_json_key: str | None = None
    report_md_key: str | None = None


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


class RollbackInput(_M):
    rollback: RollbackAction


class ProbeInput(_M):
    probe: HttpProbe
    phase: ProbePhase


class ProbeResult(_M):
    record: ProbeRecord
    observation: Observation


class ReportInput(_M):
    journal: Journal


class ReportResult(_M):
    json_key: str
    md_key: str
