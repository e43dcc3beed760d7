"""``activities.observability.observe``: activity completions → domain metrics
(outcomes by strategy, rollbacks, aborts, idempotent replays counted once)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from activities.observability import DomainMetrics, observe
from workflows.models import AnalyseInput, AnalysisResult, LedgerRecordInput, LedgerRecordResult
from workflows.slo import BudgetResult  # noqa: F401 - models importable without I/O


def rec(version: str, status: str, strategy: str, detail: str = "") -> LedgerRecordInput:
    return LedgerRecordInput(
        service="svc",
        environment="prod",
        version=version,
        status=status,  # type: ignore[arg-type]
        actor="a",
        workflow_id="w",
        strategy=strategy,
        detail=detail,
        idempotency_key=f"{version}{status}",
    )


def test_observe_maps_completions_to_metrics() -> None:
    reg = CollectorRegistry()
    m = DomainMetrics(reg)
    ok = LedgerRecordResult(release_id=1, changed=True)
    same = LedgerRecordResult(release_id=1, changed=False)
    observe("ledger.record", rec("v2", "intent", "canary"), ok, 0.1, m)
    observe("ledger.record", rec("v2", "promoted", "canary"), ok, 0.1, m)
    observe("ledger.record", rec("v2", "promoted", "canary"), same, 0.1, m)  # idempotent replay
    observe("ledger.record", rec("v3", "intent", "blue_green"), ok, 0.1, m)
    observe("ledger.record", rec("v3", "rolled_back", "rollback", "analysis failed"), ok, 0.1, m)
    observe("ledger.record", rec("v2", "promoted", "rollback", "restored by rollback"), ok, 0.1, m)
    observe("ledger.record", rec("v4", "intent", "rolling"), ok, 0.1, m)
    observe(
        "ledger.record", rec("v4", "rolled_back", "rollback", "aborted by bob: oops"), ok, 0.1, m
    )
    inp = AnalyseInput.model_construct(service="svc", environment="prod")
    observe(
        "analysis.run", inp, AnalysisResult(verdict="fail", window_start=10, window_end=70), 0.3, m
    )
    observe("platform.set_traffic", None, None, 0.2, m)

    def v(name: str, **labels: str) -> float:
        return reg.get_sample_value(name, labels) or 0.0

    base = {"service": "svc", "environment": "prod"}
    assert v("code_deployments_total", **base, strategy="canary", outcome="promoted") == 1
    assert v("code_deployments_total", **base, strategy="blue_green", outcome="rolled_back") == 1
    assert v("code_deployments_total", **base, strategy="rolling", outcome="aborted") == 1
    assert v("code_rollbacks_total", **base) == 1
    assert v("code_analysis_verdicts_total", **base, verdict="fail") == 1
    assert v("code_analysis_window_seconds_sum") == 60
    assert v("code_step_duration_seconds_count", step="set_traffic") == 1
