"""Production-readiness certificates: the models (pure, no I/O).

* :class:`Certificate` (``schema_version = "code.certificate/v1"``) holds one
  :class:`Category` per area (Delivery, Reliability, Performance, Soak, Observability,
  Security, Recovery). A category is *measured* (a ``score`` in ``[0, 1]`` with the formula
  that produced it) or ``"not measured"`` (``score`` is ``None``, never a number). Every
  :class:`Figure` carries :class:`Evidence` links: workflow ids (with Web UI links), ledger
  audit rows (``audit:<seq>``), artifact keys with version and SHA-256, files with SHA-256.
* :class:`Rules` (a rules/suite file) declare which categories are required and their
  thresholds, and bounds on single figures; the verdict is ``pass`` only when every rule
  holds (a required category that is not measured fails) — never an average.
* :class:`Evidence bundle models <EvidenceBundle>` are what the activities gather; the
  formulas in :mod:`workflows.readiness_formulas` turn a bundle into a certificate.
* :class:`ReadinessInput` / :class:`ReadinessResult` are the workflow's input and result;
  :class:`Suite` the optional runs (soak, chaos experiments, load) done first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chaos.model import Experiment
from code_foundation.durations import Duration, human
from loadtest.soak_models import SoakPlan
from workflows.readiness_targets import LatencyTarget

SCHEMA: Literal["code.certificate/v1"] = "code.certificate/v1"
CATEGORIES = (
    "delivery",
    "reliability",
    "performance",
    "soak",
    "observability",
    "security",
    "recovery",
)
Category_ = Literal[
    "delivery", "reliability", "performance", "soak", "observability", "security", "recovery"
]
NOT_MEASURED = "not measured"
_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# ---------------------------------------------------------------- evidence
class Evidence(_M):
    kind: Literal["workflow", "ledger", "artifact", "file", "prometheus", "setting"]
    ref: str = Field(description="workflow id, audit:<seq>, artifact key, path, query, setting")
    url: str | None = Field(None, description="Web UI link of a workflow")
    sha256: str | None = None
    version_id: str | None = None
    note: str = ""


class Figure(_M):
    name: str = Field(description="stable key, e.g. change_failure_rate")
    label: str
    value: float | None = Field(None, description="None: not measured")
    unit: str = ""
    formula: str = ""
    detail: str = ""
    ok: bool | None = Field(None, description="against its declared target, when one applies")
    evidence: list[Evidence] = Field(default_factory=list)

    @property
    def measured(self) -> bool:
        return self.value is not None


class Category(_M):
    name: Category_
    score: float | None = Field(None, description="None: not measured")
    formula: str = ""
    summary: str = NOT_MEASURED
    figures: list[Figure] = Field(default_factory=list)

    @property
    def measured(self) -> bool:
        return self.score is not None


class RuleOutcome(_M):
    rule: str
    passed: bool
    reason: str = ""


class SuiteRun(_M):
    kind: Literal["soak", "chaos", "load"]
    name: str
    workflow_id: str
    outcome: str = Field(description="pass | fail | aborted | completed | failed | ...")
    reason: str = ""
    url: str | None = None


class Certificate(_M):
    schema_version: Literal["code.certificate/v1"] = SCHEMA
    service: str
    environment: str
    window_start: datetime
    window_end: datetime
    generated_at: datetime
    workflow_id: str = ""
    url: str | None = None
    categories: list[Category]
    verdict: Literal["pass", "fail"]
    reasons: list[str] = Field(default_factory=list, description="why it failed, one per rule")
    rules: list[RuleOutcome] = Field(default_factory=list)
    suite: list[SuiteRun] = Field(default_factory=list)
    previous_workflow_id: str | None = None
    diff: list[str] = Field(default_factory=list)

    def category(self, name: str) -> Category:
        return next(c for c in self.categories if c.name == name)

    def figure(self, dotted: str) -> Figure | None:
        """``"delivery.change_failure_rate"`` -> that figure (None if absent)."""
        cat, _, fig = dotted.partition(".")
        return next((f for f in self.category(cat).figures if f.name == fig), None)


# ---------------------------------------------------------------- rules and targets
class FigureRule(_M):
    figure: str = Field(description="<category>.<figure>, e.g. security.secrets_found")
    max: float | None = None
    min: float | None = None
    required: bool = Field(True, description="not measured fails the rule")


class Rules(_M):
    required: dict[Category_, float] = Field(
        default_factory=lambda: {"delivery": 0.8},  # type: ignore[arg-type]
        description="category -> minimum score; a required category not measured fails",
    )
    figures: list[FigureRule] = Field(
        default_factory=lambda: [
            FigureRule(figure="security.audit_chain_intact", min=1),
            FigureRule(figure="security.secrets_found", max=0),
        ]
    )
    targets: list[str] = Field(default_factory=list, description="e.g. 'p95 < 200ms at 100 rps'")
    rto: Duration = Field(default=human("15m"), description="a rollback slower than this misses")
    slo_files: list[str] = Field(default_factory=list, description="OpenSLO files (paths)")

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        for t in v:
            LatencyTarget.parse(t)
        return v

    def latency_targets(self) -> list[LatencyTarget]:
        return [LatencyTarget.parse(t) for t in self.targets]


class Suite(_M):
    """Runs done before gathering: a soak, chaos experiments, and a load test at the target
    rate (a short soak plan whose ``name`` starts with ``load``; it counts for Performance)."""

    name: str = Field("suite", pattern=_NAME)
    rules: Rules = Field(default_factory=Rules)
    soak: SoakPlan | None = None
    chaos: list[Experiment] = Field(default_factory=list)
    load: SoakPlan | None = None


# ---------------------------------------------------------------- evidence bundle
class LedgerEvent(_M):
    """One audit-chain record of a release status change (``release.<status>``)."""

    seq: int
    ts: datetime
    status: str
    version: str
    workflow_id: str
    strategy: str = ""
    detail: str = ""


class RunInfo(_M):
    """A workflow execution seen through Temporal visibility."""

    workflow_id: str
    run_id: str = ""
    workflow_type: str
    status: str = Field(description="Temporal execution status name, e.g. COMPLETED")
    start_time: datetime
    close_time: datetime | None = None
    kind: str = ""
    url: str | None = None
    environment: str = Field("", description="the CodeEnvironment search attribute")
    parent_id: str | None = Field(None, description="the parent workflow of a child run")


class IdentityDecision(_M):
    """One audited identity decision about the service (an ``identity.<action>`` record)."""

    seq: int
    ts: datetime
    workflow_id: str
    action: str = Field(description="deploy, rollback, chaos, soak, approve, override, ...")
    actor: str = Field(description="the verified principal, or 'unverified'")
    allowed: bool


class ChaosRun(_M):
    workflow_id: str
    title: str
    status: str
    deviated: bool
    reason: str = ""
    started_at: datetime
    finished_at: datetime | None = None
    faults: int = 0
    rollbacks: int = 0
    rollback_failed: bool = False
    journal: Evidence


class SoakRun(_M):
    workflow_id: str
    name: str = ""
    verdict: str
    reason: str = ""
    started_at: datetime
    rate: float = 0.0
    achieved_rate: float = 0.0
    completed: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    p99_drift: float | None = Field(None, description="last 'p99 drift' check value")
    error_creep: float | None = None
    rss_slope_mb_h: float | None = None
    slice_p99: list[float] = Field(default_factory=list)
    kind: Literal["soak", "load"] = "soak"
    artifacts: list[Evidence] = Field(default_factory=list)


class SecurityFacts(_M):
    audit_records: int | None = None
    audit_broken_at: int | None = Field(None, description="seq of the first broken record")
    audit_head_hash: str = ""
    histories_scanned: list[str] = Field(default_factory=list)
    secrets_checked: int = Field(0, description="secret values looked for")
    secret_hits: list[str] = Field(default_factory=list, description="workflow ids + where")
    scan_note: str = Field("", description="why the scan could not run, if it could not")
    payloads: int = 0
    payloads_encrypted: int = 0
    encryption_configured: bool = False
    temporal_tls: bool | None = None
    temporal_mtls: bool | None = None
    policy_checked: list[str] = Field(default_factory=list, description="versions checked")
    policy_violations: list[str] = Field(default_factory=list)
    identity_enabled: bool | None = Field(None, description="None: not known")
    identity_decisions: list[IdentityDecision] = Field(default_factory=list)


class SloFacts(_M):
    name: str
    objective: float
    window_seconds: float = 30 * 86400.0
    good_query: str = ""
    total_query: str = ""
    source: str = Field(description="file path the SLO came from")
    sha256: str = ""
    rules_expected: list[str] = Field(default_factory=list)
    rules_loaded: list[str] = Field(default_factory=list)
    budget_remaining: float | None = None
    budget_source: str = ""
    firing: list[str] = Field(default_factory=list)
    availability: float | None = Field(None, description="good / total over the window")
    availability_events: float | None = Field(None, description="total events of the window")
    availability_query: str = ""
    availability_error: str = Field("", description="why it could not be measured")


class ObservabilityFacts(_M):
    prometheus: str | None = Field(None, description="Prometheus URL (None: not configured)")
    prometheus_error: str = ""
    slos: list[SloFacts] = Field(default_factory=list)


class CrashMatrix(_M):
    correct: int
    total: int
    evidence: Evidence


class EvidenceBundle(_M):
    service: str
    environment: str
    window_start: datetime
    window_end: datetime
    ui_base: str = Field("", description="Web UI base: <ui>/namespaces/<ns>/workflows/")
    ledger: list[LedgerEvent] = Field(default_factory=list)
    runs: list[RunInfo] = Field(default_factory=list)
    chaos: list[ChaosRun] = Field(default_factory=list)
    soaks: list[SoakRun] = Field(default_factory=list)
    security: SecurityFacts = Field(default_factory=SecurityFacts)
    observability: ObservabilityFacts = Field(default_factory=ObservabilityFacts)
    crash_matrix: CrashMatrix | None = None

    def merged(self, *parts: EvidenceBundle) -> EvidenceBundle:
        """This bundle with the lists and the facts each part gathered added."""
        out = self.model_copy(deep=True)
        for p in parts:
            out.ledger += p.ledger
            out.runs += p.runs
            out.chaos += p.chaos
            out.soaks += p.soaks
            out.crash_matrix = p.crash_matrix or out.crash_matrix
            out.ui_base = p.ui_base or out.ui_base
            blank = SecurityFacts()
            out.security = out.security.model_copy(
                update={k: v for k, v in p.security if v != getattr(blank, k)}
            )
            if p.observability.prometheus or p.observability.slos:
                out.observability = p.observability
        return out


# ---------------------------------------------------------------- workflow + activities
class ReadinessInput(_M):
    service: str = Field(pattern=_NAME)
    environment: str = Field(pattern=_NAME)
    window: Duration = human("30d")
    suite: Suite | None = None
    rules: Rules | None = Field(None, description="overrides suite.rules")
    actor: str = "unknown"
    crash_matrix: str | None = Field("artifacts/crash-matrix.md", description="path, if any")

    def effective_rules(self) -> Rules:
        return self.rules or (self.suite.rules if self.suite else Rules())


class GatherInput(_M):
    service: str
    environment: str
    window_start: datetime
    window_end: datetime
    rules: Rules = Field(default_factory=Rules)
    crash_matrix: str | None = None
    exclude_workflow_ids: list[str] = Field(default_factory=list)


class PublishInput(_M):
    certificate: Certificate
    bundle: EvidenceBundle


class PublishedArtifact(_M):
    name: str
    key: str
    version_id: str
    sha256: str
    size: int


class PublishResult(_M):
    artifacts: list[PublishedArtifact] = Field(default_factory=list)


class PreviousInput(_M):
    service: str
    environment: str


class PreviousResult(_M):
    certificate: Certificate | None = None


class ReadinessResult(_M):
    workflow_id: str
    verdict: Literal["pass", "fail"]
    reasons: list[str] = Field(default_factory=list)
    certificate: Certificate
    artifacts: list[PublishedArtifact] = Field(default_factory=list)
