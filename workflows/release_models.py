"""Public models of release pipelines: the ``ReleaseWorkflow`` input, its ``status``
Query (the stage × target matrix and the current gate), its result, and what a
continue-as-new carries over. Pure pydantic."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows.notify_spec import NotificationRecord
from workflows.pipeline_spec import PipelineSpec

CellPhase = Literal[
    "pending", "running", "promoted", "failed", "rolled_back", "aborted", "skipped", "restored"
]
ReleaseOutcome = Literal["running", "promoted", "failed", "rolled_back", "aborted", "halted"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


def release_id(service: str, version: str) -> str:
    return f"release-{service}-{version}"


class TargetCell(_M):
    """One target of one stage: what the release did there."""

    stage: str
    target: str
    wave: int
    environment: str
    cluster: str
    platform: str = "local"
    placement: str | None = Field(None, description="DeploymentSpec.cluster of the target")
    version: str
    phase: CellPhase = "pending"
    workflow_id: str | None = Field(None, description="the child DeploymentWorkflow")
    previous_version: str | None = None
    weights: dict[str, int] = Field(default_factory=dict)
    reason: str = ""
    rollback_workflow_id: str | None = None


class ReleaseEvent(_M):
    at: datetime
    what: str


class ReleaseStatus(_M):
    release_id: str
    service: str
    version: str
    failure_policy: str
    phase: str = "starting"
    stage: str | None = None
    wave: int | None = None
    gate: str | None = Field(None, description="the gate the release waits at now")
    paused: bool = False
    waiting_for_approval: bool = False
    approvers: list[str] = Field(default_factory=list, description="of the gate waiting now")
    cells: list[TargetCell] = Field(default_factory=list)
    done_stages: list[str] = Field(default_factory=list)
    aborted_by: str | None = None
    outcome: ReleaseOutcome = "running"
    reason: str = ""
    events: list[ReleaseEvent] = Field(default_factory=list, description="the last 30")
    notifications: list[NotificationRecord] = Field(
        default_factory=list, description="the release's notification events (ids, delivery)"
    )


class ReleaseInput(_M):
    pipeline: PipelineSpec
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,62}$")
    actor: str = "unknown"
    set_search_attributes: bool = True
    token: str | None = Field(
        None, repr=False, description="the starter's OIDC token (checked per environment)"
    )
    max_history_events: int | None = Field(
        None, ge=50, description="continue-as-new at a stage boundary past this many events"
    )
    carry: ReleaseStatus | None = Field(None, description="set by continue-as-new only")


class ReleaseResult(_M):
    release_id: str
    outcome: ReleaseOutcome
    version: str
    reason: str = ""
    cells: list[TargetCell] = Field(default_factory=list)
