"""``DeploymentSpec``: what a user asks CODE to deploy, and how.

YAML in (:func:`parse_spec`), JSON Schema out (:func:`spec_json_schema`).
Validation names every bad field; :class:`code_foundation.errors.SpecError` carries
them. Strategies follow Argo Rollouts: ``canary`` with ``set_weight``,
``pause`` (timed or until approved) and ``analysis`` steps; ``blue_green``;
``rolling``. Pure: no I/O."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from code_foundation.durations import Duration, format_duration, human
from code_foundation.loader import load_text
from workflows.analysis_spec import AnalysisMetric as AnalysisMetric  # re-exported
from workflows.analysis_spec import AnalysisSpec, BackgroundAnalysis, Thresholds
from workflows.analysis_spec import OnInconclusive as OnInconclusive  # re-exported
from workflows.hooks_spec import Hook, hooks_problem
from workflows.lane_models import LanePolicy, lane_id, lane_target
from workflows.notify_spec import Notifications

Platform = Literal["local", "kubernetes"]
StrategyType = Literal["rolling", "blue_green", "canary"]

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,62}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


class HealthCheck(_Model):
    """HTTP readiness check the platform waits for before sending traffic."""

    path: str = Field("/healthz", pattern=r"^/")
    timeout: Duration = Field(
        default=human("30s"), description="give up waiting for health after this"
    )
    interval: Duration = human("500ms")


class Artifact(_Model):
    """What to run: a command (local platform) or a container image (Kubernetes)."""

    command: list[str] | None = Field(
        None,
        min_length=1,
        description="argv; '{python}' is replaced by the agent's Python; PORT is set in the env",
    )
    workdir: str | None = Field(None, description="relative paths resolve against the spec file")
    image: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="env var -> secret reference, e.g. vault:kv/data/app#db_password",
    )
    port: int = Field(8080, ge=1, le=65535, description="container port (Kubernetes)")

    @model_validator(mode="after")
    def _one_of(self) -> Artifact:
        if not self.command and not self.image:
            raise ValueError("set artifact.command (local platform) or artifact.image")
        return self


class PauseSpec(_Model):
    duration: Duration | None = Field(None, description="timed pause; omit to wait for approval")
    until_approved: bool = False
    timeout: Duration | None = Field(None, description="how long to wait for an approval")
    on_timeout: Literal["rollback", "promote", "continue"] = "rollback"

    @model_validator(mode="after")
    def _shape(self) -> PauseSpec:
        if self.duration is None and not self.until_approved:
            self.until_approved = True  # Argo: `pause: {}` waits indefinitely for promotion
        if self.duration is not None and self.duration.total_seconds() <= 0:
            raise ValueError("pause.duration must be positive")
        return self


class Step(_Model):
    """Exactly one of ``set_weight``, ``pause`` or ``analysis``."""

    set_weight: int | None = Field(None, ge=0, le=100)
    pause: PauseSpec | None = None
    analysis: AnalysisSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict) and "setWeight" in data:
            data = {**data, "set_weight": data["setWeight"]}
            del data["setWeight"]
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        given = [k for k in ("set_weight", "pause", "analysis") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "each step needs exactly one of set_weight, pause, analysis"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    def describe(self) -> str:
        if self.set_weight is not None:
            return f"set_weight {self.set_weight}%"
        if self.pause is not None:
            if self.pause.duration is not None:
                return f"pause {format_duration(self.pause.duration)}"
            return "pause until approved"
        return "analysis"


class CanaryStrategy(_Model):
    steps: list[Step] = Field(
        min_length=1, max_length=100, description="at most 100: a run's history stays bounded"
    )
    analysis: BackgroundAnalysis | None = Field(
        None, description="background analysis from a step to promotion (off by default)"
    )

    @model_validator(mode="after")
    def _background_start(self) -> CanaryStrategy:
        if self.analysis is not None and self.analysis.start_at_step >= len(self.steps):
            raise ValueError(
                f"analysis.start_at_step {self.analysis.start_at_step} is past the last step "
                f"(index {len(self.steps) - 1})"
            )
        return self


class BlueGreenStrategy(_Model):
    pre_promotion_analysis: AnalysisSpec | None = None
    auto_promote: bool = True
    auto_promote_after: Duration | None = None
    scale_down_delay: Duration = human("0s")


class RollingStrategy(_Model):
    max_surge: int = Field(1, ge=1)
    step_pause: Duration = human("0s")


class Strategy(_Model):
    type: StrategyType = "canary"
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None
    rolling: RollingStrategy | None = None

    @model_validator(mode="after")
    def _matching(self) -> Strategy:
        if self.type == "canary" and self.canary is None:
            raise ValueError("strategy.type canary needs strategy.canary.steps")
        if self.type == "blue_green" and self.blue_green is None:
            self.blue_green = BlueGreenStrategy()
        if self.type == "rolling" and self.rolling is None:
            self.rolling = RollingStrategy()
        return self


class Approvals(_Model):
    approvers: list[str] = Field(default_factory=list, description="identities allowed to approve")
    required_before_promotion: bool = False
    timeout: Duration = human("1h")


class ErrorBudgetPolicy(_Model):
    """Error-budget policy: while the service's SLO budget is spent, a
    deployment waits for an explicit override approval (audited) before it applies."""

    slo: str = Field(description="name of the OpenSLO SLO (metadata.name) guarding this service")
    objective: float = Field(0.99, gt=0, lt=1, description="the SLO target, e.g. 0.99")
    window: Duration = Field(default=human("30d"), description="the SLO's rolling time window")
    good_query: str | None = Field(
        None, description="PromQL counter of good events (Prometheus backend)"
    )
    total_query: str | None = Field(
        None, description="PromQL counter of all events (Prometheus backend)"
    )
    min_remaining: float = Field(
        0.0, ge=-1, le=1, description="gate when the remaining budget is <= this"
    )
    override_approvers: list[str] = Field(
        default_factory=list, description="who may override (default: approvals.approvers)"
    )
    override_timeout: Duration = Field(
        default=human("24h"), description="give up (fail) without an override"
    )


class RollbackPolicy(_Model):
    on_failure: bool = True
    on_abort: bool = True
    to: Literal["last_known_good"] = "last_known_good"


class DeploymentSpec(_Model):
    """One release of one service to one environment."""

    service: str = Field(pattern=_NAME, max_length=40)
    environment: str = Field(pattern=_NAME, max_length=30)
    version: str = Field(pattern=_VERSION)
    platform: Platform = "local"
    namespace: str | None = Field(None, pattern=_NAME)
    cluster: str | None = Field(
        None,
        pattern=_NAME,
        max_length=30,
        description="the named cluster (a local agent of `codectl dev --clusters`, or a kube "
        "context); default: the one configured platform",
    )
    concurrency: LanePolicy = Field(
        "queue",
        description="when another run holds this service's release lane: queue (wait your "
        "turn), supersede (abort the holder, which rolls back, then go) or reject (fail now)",
    )
    labels: dict[str, str] = Field(default_factory=dict)
    artifact: Artifact
    replicas: int = Field(1, ge=1, le=100)
    health_check: HealthCheck = Field(default_factory=HealthCheck)
    strategy: Strategy = Field(default_factory=lambda: Strategy(type="rolling"))
    analysis_defaults: Thresholds = Field(default_factory=Thresholds)
    approvals: Approvals = Field(default_factory=Approvals)
    rollback: RollbackPolicy = Field(default_factory=RollbackPolicy)
    error_budget: ErrorBudgetPolicy | None = Field(
        None, description="SLO error-budget gate (off by default)"
    )
    hooks: list[Hook] = Field(
        default_factory=list, description="lifecycle hooks (docs/hooks.md); none by default"
    )
    notifications: Notifications | None = Field(
        None, description="where this run's events go (docs/hooks.md); none by default"
    )

    @model_validator(mode="after")
    def _hooks(self) -> DeploymentSpec:
        problem = hooks_problem(self.hooks)
        if problem:
            raise ValueError(problem)
        return self

    def workflow_id(self) -> str:
        where = f"{self.environment}-{self.cluster}" if self.cluster else self.environment
        return f"deploy-{self.service}-{where}-{self.version}"

    def lane_id(self) -> str:
        """The release lane of this service/environment/platform target."""
        return lane_id(self.service, self.environment, self.lane_target())

    def lane_target(self) -> str:
        target = lane_target(self.platform, self.namespace)
        return f"{target}_{self.cluster}" if self.cluster else target  # one lane per cluster


def parse_spec(text: str | bytes, source: str = "spec") -> DeploymentSpec:
    """Parse YAML/JSON text into a validated spec or raise SpecError naming every bad field."""
    return load_text(DeploymentSpec, text, source)


def spec_json_schema() -> dict[str, Any]:
    return DeploymentSpec.model_json_schema(mode="validation")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
