"""``PipelineSpec``: one service promoted through ordered stages of targets, in waves,
with gates between them, and one failure policy.

YAML in (:func:`load_pipeline` / :func:`parse_pipeline`, through
``code_foundation.loader``), JSON Schema out (:func:`pipeline_json_schema`,
``codectl schema --kind pipeline``). Field-level errors come from pydantic;
:func:`pipeline_problems` adds the cross-references (unknown cluster against the
configured ones, empty or duplicate waves, unknown or cyclic stage dependencies, a
deploy window that never opens, an approval without approvers) and
:func:`check_pipeline` raises one ``SpecError`` naming every problem. A target's
``DeploymentSpec`` is :meth:`PipelineSpec.target_spec`. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from code_foundation.durations import Duration, human
from code_foundation.errors import SpecError
from code_foundation.loader import load_file, load_text, problems_of
from workflows.notify_spec import Notifications
from workflows.release_window import DeployWindow
from workflows.spec import (
    Approvals,
    Artifact,
    DeploymentSpec,
    ErrorBudgetPolicy,
    HealthCheck,
    Platform,
    RollbackPolicy,
    Strategy,
    Thresholds,
)

FailurePolicy = Literal["rollback_all", "rollback_wave", "halt"]
_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


# ---------------------------------------------------------------- gates
class BakeGate(_Model):
    """Hold for ``duration`` and watch the stage's SLO every ``interval``: a burn-rate
    window firing, or the remaining error budget at or below ``min_remaining``, fails."""

    type: Literal["bake"] = "bake"
    duration: Duration
    interval: Duration = human("5m")
    slo: ErrorBudgetPolicy | None = Field(
        None, description="the SLO to watch; without it the bake is a plain hold"
    )
    max_firing: int = Field(0, ge=0, description="burn-rate windows firing tolerated")


class ApprovalGate(_Model):
    """Wait for ``approve`` (Update on the release) by one of ``approvers``."""

    type: Literal["approval"] = "approval"
    approvers: list[str] = Field(default_factory=list)
    timeout: Duration = human("24h")
    on_timeout: Literal["fail", "continue"] = "fail"


class WindowGate(_Model):
    """Hold until a deploy window is open (``max_wait``: give up after that long)."""

    type: Literal["window"] = "window"
    window: DeployWindow
    max_wait: Duration | None = None


class ErrorBudgetGate(_Model):
    """The stage's error budget must not be spent (remaining > ``min_remaining``)."""

    type: Literal["error_budget"] = "error_budget"
    slo: ErrorBudgetPolicy


class ChildGate(_Model):
    """A chaos experiment or soak test as a gate: a child workflow, passed by its verdict
    (chaos: completed without deviation; soak: verdict pass). ``input`` is the child's
    own input document (``ChaosInput`` / ``SoakInput``)."""

    type: Literal["chaos", "soak"]
    input: dict[str, Any]
    timeout: Duration = human("48h")


Gate = Annotated[
    BakeGate | ApprovalGate | WindowGate | ErrorBudgetGate | ChildGate,
    Field(discriminator="type"),
]


def gate_label(gate: Any) -> str:
    if isinstance(gate, BakeGate):
        return f"bake {gate.duration}" + (f" watching {gate.slo.slo}" if gate.slo else "")
    if isinstance(gate, ApprovalGate):
        return f"approval by {', '.join(gate.approvers) or 'nobody'}"
    if isinstance(gate, WindowGate):
        return f"window {gate.window.describe()}"
    if isinstance(gate, ErrorBudgetGate):
        return f"error budget of {gate.slo.slo}"
    return f"{gate.type} gate"


# ---------------------------------------------------------------- targets, waves, stages
class Target(_Model):
    """One place a stage deploys to, with its own overrides."""

    name: str | None = Field(None, pattern=_NAME, description="default: the cluster name")
    environment: str = Field(pattern=_NAME, max_length=30)
    cluster: str = Field(
        "local", pattern=_NAME, max_length=30, description="a configured cluster (local agent)"
    )
    platform: Platform = "local"
    namespace: str | None = Field(None, pattern=_NAME)
    kube_context: str | None = Field(
        None, pattern=_NAME, description="Kubernetes: the kube context (default: the cluster name)"
    )
    replicas: int | None = Field(None, ge=1, le=100)
    env: dict[str, str] = Field(default_factory=dict, description="merged into artifact.env")
    strategy: Strategy | str | None = Field(
        None, description="an inline strategy, or the name of one in the pipeline's strategies"
    )

    @property
    def key(self) -> str:
        return self.name or self.cluster

    def placement(self) -> str | None:
        """The ``DeploymentSpec.cluster``: the agent's cluster name, or the kube context."""
        if self.platform == "kubernetes":
            return self.kube_context or self.cluster
        return None if self.cluster == "local" else self.cluster


class Wave(_Model):
    targets: list[str] = Field(description="target names deployed together")
    max_parallel: int | None = Field(None, ge=1, description="default: all at once")
    gates: list[Gate] = Field(default_factory=list, description="after this wave, before the next")


class Stage(_Model):
    name: str = Field(pattern=_NAME)
    depends_on: list[str] | None = Field(
        None, description="stages that must finish first (default: the stage before)"
    )
    targets: list[Target] = Field(min_length=1)
    waves: list[Wave] | None = Field(None, description="default: one wave of every target")
    gates: list[Gate] = Field(default_factory=list, description="before the stage starts")
    after: list[Gate] = Field(default_factory=list, description="after its last wave")

    def target(self, key: str) -> Target:
        return next(t for t in self.targets if t.key == key)

    def effective_waves(self) -> list[Wave]:
        return self.waves or [Wave(targets=[t.key for t in self.targets])]


class Template(_Model):
    """The deployment every target starts from (service, environment, version and the
    placement come from the pipeline, the target and the release)."""

    artifact: Artifact
    replicas: int = Field(1, ge=1, le=100)
    labels: dict[str, str] = Field(default_factory=dict)
    health_check: HealthCheck = Field(default_factory=HealthCheck)
    strategy: Strategy = Field(default_factory=lambda: Strategy(type="rolling"))
    analysis_defaults: Thresholds = Field(default_factory=Thresholds)
    approvals: Approvals = Field(default_factory=Approvals)
    rollback: RollbackPolicy = Field(default_factory=RollbackPolicy)


class PipelineSpec(_Model):
    """A release pipeline of one service."""

    service: str = Field(pattern=_NAME, max_length=40)
    deployment: Template
    strategies: dict[str, Strategy] = Field(default_factory=dict)
    stages: list[Stage] = Field(min_length=1)
    failure_policy: FailurePolicy = "rollback_all"
    notifications: Notifications | None = Field(
        None, description="release started / stage started / stage finished / finished events"
    )

    def order(self) -> list[Stage]:
        """Stages in execution order (dependencies first, else as written)."""
        done: list[str] = []
        left = list(self.stages)
        while left:
            ready = [s for s in left if all(d in done for d in self.deps(s))]
            if not ready:
                raise ValueError("stage dependencies form a cycle")
            done.append(ready[0].name)
            left.remove(ready[0])
        return [next(s for s in self.stages if s.name == n) for n in done]

    def deps(self, stage: Stage) -> list[str]:
        if stage.depends_on is not None:
            return list(stage.depends_on)
        i = [s.name for s in self.stages].index(stage.name)
        return [self.stages[i - 1].name] if i > 0 else []

    def target_spec(self, stage: Stage, target: Target, version: str) -> DeploymentSpec:
        """The ``DeploymentSpec`` of one target of this release."""
        t = self.deployment
        strategy = t.strategy
        if isinstance(target.strategy, str):
            strategy = self.strategies[target.strategy]
        elif target.strategy is not None:
            strategy = target.strategy
        artifact = t.artifact.model_copy(update={"env": {**t.artifact.env, **target.env}})
        labels = {**t.labels, "code.release/stage": stage.name}
        return DeploymentSpec(
            service=self.service,
            environment=target.environment,
            version=version,
            platform=target.platform,
            namespace=target.namespace,
            cluster=target.placement(),
            labels=labels,
            artifact=artifact,
            replicas=target.replicas or t.replicas,
            health_check=t.health_check,
            strategy=strategy,
            analysis_defaults=t.analysis_defaults,
            approvals=t.approvals,
            rollback=t.rollback,
        )


# ---------------------------------------------------------------- cross-checks
def _gate_problems(where: str, gates: Iterable[Any], now: datetime) -> list[str]:
    out: list[str] = []
    for i, g in enumerate(gates):
        at = f"{where}.gates[{i}]"
        if isinstance(g, ApprovalGate) and not g.approvers:
            out.append(f"{at}: an approval gate needs at least one approver")
        if isinstance(g, WindowGate) and g.window.next_open(now) is None:
            out.append(f"{at}: the deploy window {g.window.describe()} never opens")
        if isinstance(g, BakeGate) and g.interval.total_seconds() <= 0:
            out.append(f"{at}: bake interval must be positive")
    return out


def pipeline_problems(
    p: PipelineSpec,
    clusters: Iterable[str] | None,
    now: datetime,
    kube_contexts: Iterable[str] | None = None,
) -> list[str]:
    """Every cross-reference problem of ``p`` (empty: it is fine). ``clusters``: the
    configured cluster names (None: do not check); ``kube_contexts``: the kubeconfig's
    contexts, which Kubernetes targets name (None: do not check). ``now``: the caller's
    clock (a workflow passes ``workflow.now()``; this module never reads the clock)."""
    known = set(clusters) if clusters is not None else None
    contexts = set(kube_contexts) if kube_contexts is not None else None
    out: list[str] = []
    names = [s.name for s in p.stages]
    out += [
        f"stages: stage {n!r} is defined twice" for n in sorted(set(names)) if names.count(n) > 1
    ]
    for si, stage in enumerate(p.stages):
        at = f"stages[{si}] ({stage.name})"
        for d in stage.depends_on or []:
            if d not in names:
                out.append(f"{at}.depends_on: unknown stage {d!r}")
            elif d == stage.name:
                out.append(f"{at}.depends_on: a stage cannot depend on itself")
        keys = [t.key for t in stage.targets]
        out += [
            f"{at}.targets: target {k!r} is defined twice"
            for k in sorted(set(keys))
            if keys.count(k) > 1
        ]
        for ti, t in enumerate(stage.targets):
            if known is not None and t.platform == "local" and t.cluster not in known:
                out.append(
                    f"{at}.targets[{ti}]: unknown cluster {t.cluster!r} "
                    f"(configured: {', '.join(sorted(known)) or 'none'})"
                )
            ctx = t.placement()  # kubernetes: a context; bare local: the worker's default
            named = t.platform == "kubernetes" and (t.kube_context or ctx != "local")
            if contexts is not None and named and ctx not in contexts:
                out.append(
                    f"{at}.targets[{ti}]: unknown kube context {ctx!r} "
                    f"(the kubeconfig has: {', '.join(sorted(contexts)) or 'none'})"
                )
            if isinstance(t.strategy, str) and t.strategy not in p.strategies:
                out.append(f"{at}.targets[{ti}]: unknown strategy {t.strategy!r}")
        listed: list[str] = []
        for wi, wave in enumerate(stage.effective_waves()):
            if not wave.targets:
                out.append(f"{at}.waves[{wi}]: an empty wave")
            for k in wave.targets:
                if k not in keys:
                    out.append(f"{at}.waves[{wi}]: unknown target {k!r}")
                elif k in listed:
                    out.append(f"{at}.waves[{wi}]: target {k!r} is in more than one wave")
                listed.append(k)
            out += _gate_problems(f"{at}.waves[{wi}]", wave.gates, now)
        missing = [k for k in keys if k not in listed]
        if missing:
            out.append(f"{at}.waves: targets in no wave: {', '.join(missing)}")
        out += _gate_problems(at, stage.gates, now)
        out += _gate_problems(f"{at}.after", stage.after, now)
    if not any("depends_on: unknown" in o for o in out):
        try:
            p.order()
        except ValueError:
            out.append("stages: depends_on forms a cycle (" + ", ".join(names) + ")")
    return out


def check_pipeline(
    p: PipelineSpec,
    source: str = "pipeline",
    clusters: Iterable[str] | None = None,
    *,
    now: datetime,
    kube_contexts: Iterable[str] | None = None,
) -> PipelineSpec:
    problems = pipeline_problems(p, clusters, now, kube_contexts)
    if problems:
        raise SpecError(source, problems)
    return p


def parse_pipeline(
    text: str | bytes,
    source: str = "pipeline",
    clusters: Iterable[str] | None = None,
    *,
    now: datetime,
) -> PipelineSpec:
    """YAML/JSON text → a checked pipeline, or ``SpecError`` naming every problem."""
    doc = load_text(PipelineSpec, text, source, what="pipeline")
    return check_pipeline(doc, source, clusters, now=now)


def load_pipeline(
    path: str | Path,
    clusters: Iterable[str] | None = None,
    *,
    now: datetime,
    kube_contexts: Iterable[str] | None = None,
) -> PipelineSpec:
    doc = load_file(PipelineSpec, path, what="pipeline")
    return check_pipeline(doc, str(path), clusters, now=now, kube_contexts=kube_contexts)


def validate_pipeline(raw: Any, source: str = "pipeline", *, now: datetime) -> PipelineSpec:
    """A decoded document → pipeline (used on workflow inputs; clusters are not known)."""
    try:
        p = PipelineSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(source, problems_of(exc)) from None
    return check_pipeline(p, source, now=now)


def pipeline_json_schema() -> dict[str, Any]:
    return PipelineSpec.model_json_schema(mode="validation")
