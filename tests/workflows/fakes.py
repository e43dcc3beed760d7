"""In-memory stand-ins for the deployment activities, registered under the real
activity names, so workflow logic runs on the time-skipping server. Only the
orchestration is under test here; real platforms are tested elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import activity
from temporalio.exceptions import ApplicationError

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
    NoopInput,
    RetireVersionInput,
    RetireVersionResult,
    SetTrafficInput,
    SetTrafficResult,
    ValidateInput,
    ValidateResult,
)
from workflows.slo import AuditInput, AuditResult
from workflows.spec import DeploymentSpec


@dataclass
class FakePlatform:
    running: dict[str, DeploymentSpec] = field(default_factory=dict)
    weights: dict[str, int] = field(default_factory=dict)
    ops: list[tuple[str, str]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    releases: list[LedgerRecordInput] = field(default_factory=list)
    bad_versions: set[str] = field(default_factory=set)
    analysis_calls: int = 0
    fail_apply: bool = False
    audits: list[AuditInput] = field(default_factory=list)

    def activities(self) -> list:
        p = self

        @activity.defn(name=A.VALIDATE_SPEC)
        async def validate(inp: ValidateInput) -> ValidateResult:
            bad = ["labels: missing team" for _ in [0] if inp.spec.labels.get("reject") == "yes"]
            return ValidateResult(ok=not bad, violations=bad)

        @activity.defn(name=A.PLATFORM_APPLY)
        async def apply(inp: ApplyVersionInput) -> ApplyVersionResult:
            if p.fail_apply:
                raise ApplicationError("unhealthy", type="UnhealthyVersion", non_retryable=True)
            changed = inp.idempotency_key not in p.keys
            if changed:
                p.keys.add(inp.idempotency_key)
                p.ops.append(("apply", inp.spec.version))
            p.running[inp.spec.version] = inp.spec
            if inp.initial_weight is not None:
                p.weights = {inp.spec.version: inp.initial_weight}
            return ApplyVersionResult(
                service=inp.spec.service,
                environment=inp.spec.environment,
                version=inp.spec.version,
                changed=changed,
                instances=1,
            )

        @activity.defn(name=A.PLATFORM_TRAFFIC)
        async def traffic(inp: SetTrafficInput) -> SetTrafficResult:
            p.weights = {v: w for v, w in inp.weights.items()}
            p.ops.append(("traffic", repr(sorted(inp.weights.items()))))
            return SetTrafficResult(weights=p.weights, changed=True)

        @activity.defn(name=A.PLATFORM_RETIRE)
        async def retire(inp: RetireVersionInput) -> RetireVersionResult:
            changed = p.running.pop(inp.version, None) is not None
            p.weights.pop(inp.version, None)
            if changed:
                p.ops.append(("retire", inp.version))
            return RetireVersionResult(version=inp.version, changed=changed)

        @activity.defn(name=A.PLATFORM_DESCRIBE)
        async def describe(inp: DescribeInput) -> DescribeResult:
            return DescribeResult(
                exists=bool(p.running),
                weights=dict(p.weights),
                versions=sorted(p.running),
                healthy={v: True for v in p.running},
            )

        @activity.defn(name=A.ANALYSE)
        async def analyse(inp: AnalyseInput) -> AnalysisResult:
            p.analysis_calls += 1
            bad = inp.canary_version in p.bad_versions
            return AnalysisResult(
                verdict="fail" if bad else "pass",
                reasons=["error rate 30%" if bad else "ok"],
                window_start=inp.window_start,
                window_end=inp.window_end,
            )

        @activity.defn(name=A.LEDGER_RECORD)
        async def record(inp: LedgerRecordInput) -> LedgerRecordResult:
            p.releases.append(inp)
            return LedgerRecordResult(release_id=len(p.releases), changed=True)

        @activity.defn(name=A.LEDGER_LAST_GOOD)
        async def last_good(inp: LastGoodInput) -> LastGoodResult:
            latest: dict[str, LedgerRecordInput] = {}
            for r in p.releases:  # the latest status of each version wins
                latest[r.version] = r
            promoted = [
                r
                for r in p.releases
                if r.status == "promoted" and latest[r.version].status == "promoted"
            ]
            for r in reversed(promoted):
                if inp.only_version and r.version != inp.only_version:
                    continue
                if inp.exclude_version and r.version == inp.exclude_version:
                    continue
                return LastGoodResult(version=r.version, spec=r.spec, workflow_id=r.workflow_id)
            return LastGoodResult()

        @activity.defn(name=A.NOOP)
        async def noop(inp: NoopInput) -> NoopInput:
            return inp

        @activity.defn(name="audit.record")  # approvals and overrides are audited
        async def audit(inp: AuditInput) -> AuditResult:
            p.audits.append(inp)
            return AuditResult(seq=len(p.audits) - 1, hash="0" * 64)

        # release lanes are Temporal itself, not a platform: the real lane activities
        lanes = lane_activities()
        return [
            validate,
            apply,
            traffic,
            retire,
            describe,
            analyse,
            record,
            last_good,
            noop,
            audit,
            *lanes,
        ]
