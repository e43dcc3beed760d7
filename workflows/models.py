"""Public input/result models of the deployment workflows and their activities.

One pydantic model per workflow/activity input and result. Workflows, workers
and any SDK client exchange exactly these (through ``pydantic_data_converter``).
Secrets never appear here: specs carry secret *references*; activities return
only versions/hashes of resolved secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows.hooks_spec import HookResult
from workflows.lane_models import LanePolicy
from workflows.measure_spec import MeasurementResult
from workflows.notify_spec import NotificationRecord
from workflows.spec import DeploymentSpec, Platform, StrategyType

Outcome = Literal["promoted", "rolled_back", "aborted", "failed", "running"]
StepKind = Literal[
    "validate", "error_budget", "apply", "set_weight", "pause", "analysis", "switch", "promote"
]
"""What a step of a deployment does (``StepRecord.kind``)."""
Phase = Literal[
    StepKind,
    "starting",
    "waiting for approval",
    "waiting for error-budget override",
    "queued",
    "rolling back",
    "done",
]
"""``DeployStatus.phase``: the running step's kind, a wait, the compensation, or done."""
LedgerStatus = Literal[
    "intent", "in_progress", "promoted", "rolled_back", "aborted", "failed", "retired"
]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- workflows
class DeployInput(_M):
    spec: DeploymentSpec
    actor: str = "unknown"
    set_search_attributes: bool = True
    token: str | None = Field(None, repr=False, description="the caller's OIDC token (JWT)")


class StepRecord(_M):
    index: int
    kind: StepKind
    description: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = Field(
        "running",
        description="running | ok | failed | interrupted | error | inconclusive | marginal, "
        "or a gate's answer: 'approved by ID', 'overridden by ID', 'timed out (POLICY)'",
    )
    detail: str = ""


class AnalysisResult(_M):
    """One analysis interval. ``marginal``: the judge's score is between the marginal and
    pass thresholds. Raw series, queries and the judge's full output are in the artifact
    store under ``artifact_key`` (never in history)."""

    verdict: Literal["pass", "fail", "inconclusive", "marginal"]
    reasons: list[str] = Field(default_factory=list)
    canary: dict[str, float] = Field(default_factory=dict)
    stable: dict[str, float] = Field(default_factory=dict)
    artifact_key: str | None = None
    window_start: float = 0.0
    window_end: float = 0.0
    score: float | None = Field(None, description="judge score 0..100 (judge mode only)")
    judge_version: str | None = None
    provider: str | None = None


class DeployStatus(_M):
    workflow_id: str
    service: str
    environment: str
    version: str
    strategy: StrategyType
    phase: Phase = "starting"
    lane: str | None = Field(None, description="the release lane this run takes")
    queued_behind: str | None = Field(
        None, description="while queued: the workflow holding the lane"
    )
    current_step: int = -1
    total_steps: int = 0
    step_description: str = ""
    weights: dict[str, int] = Field(default_factory=dict)
    stable_version: str | None = None
    paused: bool = False
    waiting_for_approval: bool = False
    waiting_for_override: bool = False
    error_budget_remaining: float | None = None
    approvals: list[str] = Field(default_factory=list)
    last_analysis: AnalysisResult | None = None
    last_analysis_error: str | None = Field(
        None,
        description="the last metrics-backend error of the running analysis, with the failing query",
    )
    analysis_errors: int = Field(0, description="consecutive errored analysis intervals")
    steps: list[StepRecord] = Field(default_factory=list)
    hooks: list[HookResult] = Field(
        default_factory=list, description="lifecycle hook results, in the order they ran"
    )
    notifications: list[NotificationRecord] = Field(
        default_factory=list, description="events sent to notification sinks, with their state"
    )
    measurements: list[MeasurementResult] = Field(
        default_factory=list, description="Web/Job measurements of the analyses (last 200)"
    )
    outcome: Outcome = "running"
    reason: str = ""


class DeployResult(_M):
    workflow_id: str
    outcome: Outcome
    version: str
    previous_version: str | None
    reason: str = ""
    steps: list[StepRecord] = Field(default_factory=list)
    rollback_workflow_id: str | None = None


class ApproveInput(_M):
    identity: str = Field(min_length=1)
    comment: str = ""
    override: bool = Field(False, description="override a spent error budget (audited)")
    token: str | None = Field(None, repr=False, description="the caller's OIDC token (JWT)")


class ApproveResult(_M):
    accepted: bool
    identity: str
    message: str = ""


class ControlInput(_M):
    """pause / resume / abort, with the caller's identity."""

    identity: str = "unknown"
    reason: str = ""
    token: str | None = Field(None, repr=False, description="the caller's OIDC token (JWT)")


class RollbackInput(_M):
    service: str
    environment: str
    to_version: str | None = Field(None, description="default: last known good from the ledger")
    failed_version: str | None = None
    reason: str = ""
    actor: str = "unknown"
    set_search_attributes: bool = True
    platform: Platform = "local"
    namespace: str | None = None
    cluster: str | None = Field(None, description="the named cluster (None: the default)")
    lane_held: bool = Field(
        False, description="run under the caller's lane (a deployment's compensation)"
    )
    concurrency: LanePolicy = "queue"
    token: str | None = Field(None, repr=False, description="the caller's OIDC token (JWT)")


class RollbackResult(_M):
    workflow_id: str
    restored_version: str | None
    retired_version: str | None
    outcome: Literal["rolled_back", "nothing_to_do", "failed"]
    reason: str = ""


# ---------------------------------------------------------------- activities
class ValidateInput(_M):
    spec: DeploymentSpec


class ValidateResult(_M):
    ok: bool
    violations: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ApplyVersionInput(_M):
    spec: DeploymentSpec
    idempotency_key: str
    initial_weight: int | None = Field(
        None, description="for a first deployment: route this share immediately"
    )


class ApplyVersionResult(_M):
    service: str
    environment: str
    version: str
    changed: bool
    endpoint: str = ""
    instances: int = 0
    secret_versions: dict[str, str] = Field(default_factory=dict)


class SetTrafficInput(_M):
    service: str
    environment: str
    weights: dict[str, int]
    idempotency_key: str
    platform: Platform = "local"
    namespace: str | None = None
    cluster: str | None = Field(None, description="the named cluster (None: the default)")


class SetTrafficResult(_M):
    weights: dict[str, int]
    changed: bool


class RetireVersionInput(_M):
    service: str
    environment: str
    version: str
    idempotency_key: str
    force: bool = Field(False, description="retire even if it still holds traffic")
    platform: Platform = "local"
    namespace: str | None = None
    cluster: str | None = Field(None, description="the named cluster (None: the default)")


class RetireVersionResult(_M):
    version: str
    changed: bool


class DescribeInput(_M):
    service: str
    environment: str
    platform: Platform = "local"
    namespace: str | None = None
    cluster: str | None = Field(None, description="the named cluster (None: the default)")


class DescribeResult(_M):
    exists: bool
    weights: dict[str, int] = Field(default_factory=dict)
    versions: list[str] = Field(default_factory=list)
    healthy: dict[str, bool] = Field(default_factory=dict)
    endpoint: str = ""


class AnalyseInput(_M):
    service: str
    environment: str
    canary_version: str
    stable_version: str
    window_start: float
    window_end: float
    spec: DeploymentSpec
    step_index: int
    interval_index: int
    run_id: str
    platform: Platform = "local"
    cluster: str | None = Field(None, description="the named cluster (None: the default)")
    analysis_start: float | None = Field(
        None, description="start of the whole analysis (the growing window's origin)"
    )


class LedgerRecordInput(_M):
    service: str
    environment: str
    version: str
    status: LedgerStatus
    actor: str
    workflow_id: str
    strategy: str = Field("", description="the deployment's strategy, or 'rollback'")
    detail: str = ""
    spec: DeploymentSpec | None = None
    idempotency_key: str


class LedgerRecordResult(_M):
    release_id: int
    changed: bool


class LastGoodInput(_M):
    service: str
    environment: str
    exclude_version: str | None = None
    only_version: str | None = Field(None, description="the latest promoted record of this version")


class LastGoodResult(_M):
    version: str | None = None
    spec: DeploymentSpec | None = None
    workflow_id: str | None = None


class NoopInput(_M):
    key: str
