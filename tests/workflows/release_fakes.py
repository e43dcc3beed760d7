"""In-memory platform with one state per (environment, cluster), registered under the
real activity names, so release pipelines run on the time-skipping server: every
cluster has its own versions, weights and journal of calls. A scripted SLO budget
(``breach_after`` checks) and the audit log complete it. Lanes are the real ones."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import activity

from activities.lane import lane_activities
from code_foundation.names import A
from workflows.models import (
    AnalyseInput,
    AnalysisResult,
    ApplyVersionInput,
    ApplyVersionResult,
    DescribeInput,
    DescribeResult,
    LastGoodInput,
    LastGoodResult,
    LedgerRecordInput,
    LedgerRecordResult,
    RetireVersionInput,
    RetireVersionResult,
    SetTrafficInput,
    SetTrafficResult,
    ValidateInput,
    ValidateResult,
)
from workflows.slo import AuditInput, AuditResult, BudgetInput, BudgetResult
from workflows.spec import DeploymentSpec


@dataclass
class Cluster:
    running: dict[str, DeploymentSpec] = field(default_factory=dict)
    weights: dict[str, int] = field(default_factory=dict)
    journal: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class MultiFake:
    clusters: dict[str, Cluster] = field(default_factory=dict)
    releases: list[LedgerRecordInput] = field(default_factory=list)
    audits: list[AuditInput] = field(default_factory=list)
    bad_versions: set[str] = field(default_factory=set)
    budget_checks: int = 0
    breach_after: int | None = None  # the n-th budget check (1-based) reports a breach

    def at(self, environment: str, cluster: str | None) -> Cluster:
        return self.clusters.setdefault(f"{environment}/{cluster or 'local'}", Cluster())

    def seed(self, environment: str, cluster: str | None, version: str) -> None:
        """``version`` runs with all traffic there, and the ledger knows it as good."""
        c = self.at(environment, cluster)
        spec = DeploymentSpec.model_validate(
            {
                "service": "shop",
                "environment": environment,
                "version": version,
                "cluster": cluster,
                "artifact": {"command": ["x"]},
            }
        )
        c.running[version], c.weights = spec, {version: 100}
        self.releases.append(
            LedgerRecordInput(
                service="shop",
                environment=environment,
                version=version,
                status="promoted",
                actor="seed",
                workflow_id="seed",
                spec=spec,
                idempotency_key=f"seed-{environment}-{cluster}",
            )
        )

    def activities(self) -> list:
        f = self

        @activity.defn(name=A.VALIDATE_SPEC)
        async def validate(inp: ValidateInput) -> ValidateResult:
            return ValidateResult(ok=True)

        @activity.defn(name=A.PLATFORM_APPLY)
        async def apply(inp: ApplyVersionInput) -> ApplyVersionResult:
            c = f.at(inp.spec.environment, inp.spec.cluster)
            c.journal.append(("apply", inp.spec.version))
            c.running[inp.spec.version] = inp.spec
            if inp.initial_weight is not None:
                c.weights = {inp.spec.version: inp.initial_weight}
            return ApplyVersionResult(
                service=inp.spec.service,
                environment=inp.spec.environment,
                version=inp.spec.version,
                changed=True,
                instances=1,
            )

        @activity.defn(name=A.PLATFORM_TRAFFIC)
        async def traffic(inp: SetTrafficInput) -> SetTrafficResult:
            c = f.at(inp.environment, inp.cluster)
            c.journal.append(("traffic", repr(sorted(inp.weights.items()))))
            c.weights = dict(inp.weights)
            return SetTrafficResult(weights=c.weights, changed=True)

        @activity.defn(name=A.PLATFORM_RETIRE)
        async def retire(inp: RetireVersionInput) -> RetireVersionResult:
            c = f.at(inp.environment, inp.cluster)
            c.journal.append(("retire", inp.version))
            changed = c.running.pop(inp.version, None) is not None
            c.weights.pop(inp.version, None)
            return RetireVersionResult(version=inp.version, changed=changed)

        @activity.defn(name=A.PLATFORM_DESCRIBE)
        async def describe(inp: DescribeInput) -> DescribeResult:
            c = f.at(inp.environment, inp.cluster)
            return DescribeResult(
                exists=bool(c.running),
                weights=dict(c.weights),
                versions=sorted(c.running),
                healthy={v: True for v in c.running},
            )

        @activity.defn(name=A.ANALYSE)
        async def analyse(inp: AnalyseInput) -> AnalysisResult:
            f.at(inp.environment, inp.spec.cluster).journal.append(("analyse", inp.canary_version))
            bad = inp.canary_version in f.bad_versions
            return AnalysisResult(
                verdict="fail" if bad else "pass",
                reasons=["error rate 30%" if bad else "ok"],
                window_start=inp.window_start,
                window_end=inp.window_end,
            )

        @activity.defn(name=A.LEDGER_RECORD)
        async def record(inp: LedgerRecordInput) -> LedgerRecordResult:
            f.releases.append(inp)
            return LedgerRecordResult(release_id=len(f.releases), changed=True)

        @activity.defn(name=A.LEDGER_LAST_GOOD)
        async def last_good(inp: LastGoodInput) -> LastGoodResult:
            mine = [r for r in f.releases if r.environment == inp.environment]
            latest = {r.version: r for r in mine}
            for r in reversed(mine):
                if r.status != "promoted" or latest[r.version].status != "promoted":
                    continue
                if inp.only_version and r.version != inp.only_version:
                    continue
                if inp.exclude_version and r.version == inp.exclude_version:
                    continue
                return LastGoodResult(version=r.version, spec=r.spec, workflow_id=r.workflow_id)
            return LastGoodResult()

        @activity.defn(name=A.BUDGET)
        async def budget(inp: BudgetInput) -> BudgetResult:
            f.budget_checks += 1
            breach = f.breach_after is not None and f.budget_checks >= f.breach_after
            return BudgetResult(
                slo=inp.slo,
                remaining=0.2 if breach else 0.9,
                firing=["1h/5m 14.4x"] if breach else [],
                source="scripted",
            )

        @activity.defn(name=A.AUDIT)
        async def audit(inp: AuditInput) -> AuditResult:
            f.audits.append(inp)
            return AuditResult(seq=len(f.audits) - 1, hash="0" * 64)

        return [
            validate,
            apply,
            traffic,
            retire,
            describe,
            analyse,
            record,
            last_good,
            budget,
            audit,
            *lane_activities(),
        ]
