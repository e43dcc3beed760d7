"""Readiness formulas on a hand-built evidence bundle: DORA figures from ledger records,
"not measured" where there is no evidence, the verdict from the declared rules, the diff
against a previous certificate, and the renderers (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workflows.readiness_formulas import certify
from workflows.readiness_models import (
    NOT_MEASURED,
    ChaosRun,
    Evidence,
    EvidenceBundle,
    FigureRule,
    LatencyTarget,
    LedgerEvent,
    Rules,
    RunInfo,
    SoakRun,
    SuiteRun,
)
from workflows.readiness_report import render_html, render_markdown

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def ev(seq: int, minutes: float, status: str, version: str, wid: str, strategy: str = "canary"):
    return LedgerEvent(
        seq=seq,
        ts=T0 + timedelta(minutes=minutes),
        status=status,
        version=version,
        workflow_id=wid,
        strategy=strategy,
    )


def bundle(**kw) -> EvidenceBundle:
    return EvidenceBundle(
        service="demo",
        environment="dev",
        window_start=T0 - timedelta(days=29),
        window_end=T0 + timedelta(days=1),
        ui_base="http://ui/namespaces/default/workflows/",
        **kw,
    )


LEDGER = [
    ev(0, 0, "intent", "v1", "d1"),
    ev(1, 1, "in_progress", "v1", "d1"),
    ev(2, 5, "promoted", "v1", "d1"),
    ev(3, 10, "intent", "v2", "d2"),
    ev(4, 11, "in_progress", "v2", "d2"),
    ev(5, 14, "rolled_back", "v2", "rollback-demo-dev-from-v2", "rollback"),
    ev(6, 14.5, "promoted", "v1", "rollback-demo-dev-from-v2", "rollback"),
    ev(7, 20, "intent", "v3", "d3"),
    ev(8, 21, "in_progress", "v3", "d3"),
    ev(9, 23, "promoted", "v3", "d3"),
    ev(10, 30, "intent", "v4", "d4"),  # still running: not counted
]


def test_delivery_and_recovery_from_the_ledger() -> None:
    rb_start = T0 + timedelta(minutes=13)
    runs = [
        RunInfo(
            workflow_id="rollback-demo-dev-from-v2",
            workflow_type="RollbackWorkflow",
            status="COMPLETED",
            start_time=rb_start,
        )
    ]
    cert = certify(bundle(ledger=LEDGER, runs=runs), Rules(), generated_at=T0)
    d = cert.category("delivery")
    fig = {f.name: f for f in d.figures}
    assert fig["deployments"].value == 3
    assert fig["change_failure_rate"].value == 1 / 3
    assert d.score == 1 - 1 / 3
    assert fig["deploy_frequency"].value == 3 / 30
    assert fig["lead_time_median"].value == 240.0  # median(5 min, 3 min)
    assert fig["time_to_restore_median"].value == 3.5 * 60  # in_progress 11 -> restored 14.5
    refs = {e.ref for e in fig["change_failure_rate"].evidence}
    assert refs == {"d2", "audit:5"}
    r = cert.category("recovery")
    assert r.score == 1.0
    assert cert.figure("recovery.rollback_time_median").value == 90.0  # 13 -> 14.5 min
    assert cert.verdict == "fail"  # 0.67 < 0.8 and security not measured
    assert any(x.startswith("delivery: 0.67 < 0.8") for x in cert.reasons)
    assert "security.audit_chain_intact: not measured" in cert.reasons


def test_no_evidence_is_not_measured_never_a_number() -> None:
    cert = certify(bundle(), Rules(required={}, figures=[]), generated_at=T0)
    for c in cert.categories:
        assert c.score is None, c.name
        assert all(f.value is None for f in c.figures if f.name != "crash_matrix"), c.name
    assert cert.verdict == "pass"  # nothing required
    md = render_markdown(cert)
    assert md.count(NOT_MEASURED) >= 7
    assert "0.00" not in md


def test_targets_soak_chaos_and_suite_rules() -> None:
    assert LatencyTarget.parse("p95 < 200ms at 100 rps").at_rps == 100
    j = Evidence(kind="artifact", ref="chaos/c1/journal.json", sha256="ab" * 32)
    chaos = [
        ChaosRun(
            workflow_id="c1",
            title="kill-stable",
            status="completed",
            deviated=False,
            started_at=T0,
            faults=1,
            rollbacks=1,
            journal=j,
        ),
        ChaosRun(
            workflow_id="c2",
            title="latency",
            status="completed",
            deviated=True,
            started_at=T0,
            faults=1,
            rollbacks=1,
            journal=j,
        ),
    ]
    soaks = [
        SoakRun(
            workflow_id="s1",
            verdict="pass",
            started_at=T0,
            rate=100,
            achieved_rate=99.5,
            p50_ms=3,
            p95_ms=150,
            p99_ms=250,
            slice_p99=[200, 250],
        ),
        SoakRun(workflow_id="s2", verdict="fail", reason="p99 drift", started_at=T0, p99_drift=0.8),
    ]
    rules = Rules(
        required={"reliability": 0.5, "performance": 1.0},
        figures=[FigureRule(figure="soak.p99_drift_max", max=0.5)],
        targets=["p95 < 200ms at 100 rps", "p99 < 200ms"],
    )
    suite = [SuiteRun(kind="soak", name="s", workflow_id="x-soak", outcome="fail", reason="boom")]
    cert = certify(bundle(chaos=chaos, soaks=soaks), rules, generated_at=T0, suite=suite)
    assert cert.category("reliability").score == 0.5
    assert cert.category("soak").score == 0.5
    perf = cert.category("performance")
    assert perf.score == 0.5  # p95 met at 99.5 rps, p99 missed
    assert cert.verdict == "fail"
    assert cert.reasons[0].startswith("suite soak x-soak ended fail: boom")
    assert any(r.startswith("performance: 0.50 < 1") for r in cert.reasons)
    assert any(r.startswith("soak.p99_drift_max = 0.8") for r in cert.reasons)
    html = render_html(cert, bundle(chaos=chaos, soaks=soaks))
    assert 'id="plot-soak-p99"' in html and "<polyline" in html
    assert "src=" not in html and "<link" not in html  # self-contained: nothing fetched

    # the next certificate: one more chaos run deviated
    chaos3 = [
        *chaos,
        ChaosRun(
            workflow_id="c3",
            title="kill-stable",
            status="completed",
            deviated=True,
            started_at=T0 + timedelta(days=1),
            journal=j,
        ),
    ]
    nxt = certify(bundle(chaos=chaos3, soaks=soaks), rules, generated_at=T0, previous=cert)
    line = next(x for x in nxt.diff if x.startswith("Reliability"))
    assert line.startswith("Reliability: 0.50 → 0.33 because")
    assert "chaos `kill-stable` deviated (c3)" in line
