"""``DeploymentSpec``: what a user asks CODE to deploy, and how.

YAML in (:func:`parse_spec`), JSON Schema out (:func:`spec_json_schema`).
Validation names every bad field; :class:`workflows.errors.SpecError` carries
them. Strategies follow Argo Rollouts: ``canary`` with ``set_weight``,
``pause`` (timed or until approved) and ``analysis`` steps; ``blue_green``;
``rolling``. Pure: no I/O."""

from __future__ import annotations

import re
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workflows.durations import Duration, format_duration
from workflows.errors import SpecError

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,62}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


class HealthCheck(_Model):
    """HTTP readiness check the platform waits for before sending traffic."""

    path: str = Field("/healthz", pattern=r"^/")
    timeout: Duration = Field(default="30s", description="give up waiting for health after this")
    interval: Duration = "500ms"


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


class Thresholds(_Model):
    """Simple canary-vs-stable thresholds (the backbone analysis)."""

    max_error_rate: float = Field(0.05, ge=0, le=1, description="absolute canary error rate")
    max_error_rate_increase: float = Field(
        0.01, ge=0, le=1, description="canary error rate minus stable error rate"
    )
    max_p99_latency_ms: float | None = Field(None, gt=0)
    max_p99_latency_ratio: float = Field(1.5, gt=0, description="canary p99 / stable p99")
    min_requests: int = Field(20, ge=0, description="fewer canary requests = inconclusive")


class AnalysisSpec(_Model):
    interval: Duration = "30s"
    count: int = Field(1, ge=1, le=1000)
    warmup: Duration = "0s"
    thresholds: Thresholds = Field(default_factory=Thresholds)
    failure_limit: int = Field(0, ge=0, description="failed intervals tolerated")
    inconclusive_limit: int = Field(1, ge=0)
    on_inconclusive: Literal["rollback", "promote", "pause"] = "rollback"


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
    steps: list[Step] = Field(min_length=1)


class BlueGreenStrategy(_Model):
    pre_promotion_analysis: AnalysisSpec | None = None
    auto_promote: bool = True
    auto_promote_after: Duration | None = None
    scale_down_delay: Duration = "0s"


class RollingStrategy(_Model):
    max_surge: int = Field(1, ge=1)
    step_pause: Duration = "0s"


class Strategy(_Model):
    type: Literal["rolling", "blue_green", "canary"] = "canary"
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
    timeout: Duration = "1h"


class RollbackPolicy(_Model):
    on_failure: bool = True
    on_abort: bool = True
    to: Literal["last_known_good"] = "last_known_good"


class DeploymentSpec(_Model):
    """One release of one service to one environment."""

    service: str = Field(pattern=_NAME, max_length=40)
    environment: str = Field(pattern=_NAME, max_length=30)
    version: str = Field(pattern=_VERSION)
    platform: Literal["local", "kubernetes"] = "local"
    namespace: str | None = Field(None, pattern=_NAME)
    labels: dict[str, str] = Field(default_factory=dict)
    artifact: Artifact
    replicas: int = Field(1, ge=1, le=100)
    health_check: HealthCheck = Field(default_factory=HealthCheck)
    strategy: Strategy = Field(default_factory=lambda: Strategy(type="rolling"))
    analysis_defaults: Thresholds = Field(default_factory=Thresholds)
    approvals: Approvals = Field(default_factory=Approvals)
    rollback: RollbackPolicy = Field(default_factory=RollbackPolicy)

    def workflow_id(self) -> str:
        return f"deploy-{self.service}-{self.environment}-{self.version}"


def _problem(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "is required"
    elif err["type"] == "extra_forbidden":
        msg = "is not a known field"
    return f"{loc or '(top level)'}: {msg}"


def problems_of(exc: ValidationError) -> list[str]:
    seen: list[str] = []
    for err in exc.errors():
        p = _problem(err)
        if p not in seen:
            seen.append(p)
    return seen


def parse_spec(text: str, source: str = "spec") -> DeploymentSpec:
    """Parse YAML/JSON text into a validated spec or raise SpecError naming every bad field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(source, [f"malformed YAML{where}: {problem}"]) from None
    if not isinstance(data, dict):
        raise SpecError(source, ["the document must be a mapping of spec fields"])
    try:
        return DeploymentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, problems_of(exc)) from None


def spec_json_schema() -> dict[str, Any]:
    return DeploymentSpec.model_json_schema(mode="validation")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
