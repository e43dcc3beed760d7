"""A weekly certification over 4 weeks in the time-skipping test server, with the real
readiness activities (ledger, artifact store, publish) on a temporary state dir.

The time-skipping server implements neither Schedules nor visibility queries (both
``CreateSchedule`` and ``ListWorkflowExecutions`` answer UNIMPLEMENTED), so the schedule
itself is exercised on the dev server (``test_certify_stack``); here the workflow runs 4
times one skipped week apart, as the weekly schedule would start it. Each run compares
with the previous certificate; evidence Temporal would give is "not measured"."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.artifacts import LocalArtifactStore
from activities.interceptor import ErrorInterceptor
from activities.ledger import Ledger
from activities.readiness import readiness_activities
from activities.settings import Settings
from workflows.models import LedgerRecordInput
from workflows.readiness import ReadinessWorkflow
from workflows.readiness_models import Certificate, ReadinessInput, ReadinessResult


def record(ledger: Ledger, version: str, statuses: list[str], wid: str, strategy: str = "canary"):
    for s in statuses:
        ledger.record(
            LedgerRecordInput(
                service="wk",
                environment="dev",
                version=version,
                status=s,  # type: ignore[arg-type]
                actor="test",
                workflow_id=wid,
                strategy=strategy,
                idempotency_key=f"{wid}:{s}:{version}",
            )
        )


async def test_weekly_certification_over_four_weeks(
    ts_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path, temporal_ui_url="http://127.0.0.1:1")
    ledger = Ledger(settings.effective_ledger_url())
    tq = f"rdy-{uuid.uuid4().hex[:8]}"
    weeks: list[ReadinessResult] = []
    async with Worker(
        ts_env.client,
        task_queue=tq,
        workflows=[ReadinessWorkflow],
        activities=readiness_activities(settings),
        interceptors=[ErrorInterceptor()],
    ):
        for week in range(4):
            if week == 1:
                record(ledger, "v1", ["intent", "in_progress", "promoted"], "deploy-wk-v1")
            if week == 2:
                record(ledger, "v2", ["intent", "in_progress"], "deploy-wk-v2")
                record(ledger, "v2", ["rolled_back"], "rollback-wk-v2", "rollback")
                record(ledger, "v1", ["promoted"], "rollback-wk-v2", "rollback")
            res = await ts_env.client.execute_workflow(
                ReadinessWorkflow.run,
                ReadinessInput(service="wk", environment="dev", window="30d", crash_matrix=None),
                id=f"readiness-wk-dev-week{week}-{tq}",
                task_queue=tq,
                result_type=ReadinessResult,
                # without it the test server's pending default run-timeout timer (10 years)
                # is what the next skipped sleep jumps to
                execution_timeout=timedelta(hours=1),
            )
            weeks.append(res)
            await ts_env.sleep(timedelta(days=7))
    # time really skipped: each certificate's window ends a week after the previous one
    ends = [w.certificate.window_end for w in weeks]
    assert all(
        timedelta(days=6.9) < b - a < timedelta(days=8)
        for a, b in zip(ends, ends[1:], strict=False)
    )
    d = [w.certificate.category("delivery").score for w in weeks]
    assert d == [None, 1.0, 0.5, 0.5]
    assert weeks[0].certificate.previous_workflow_id is None
    for prev, cur in zip(weeks, weeks[1:], strict=False):
        assert cur.certificate.previous_workflow_id == prev.workflow_id
    assert "Delivery: not measured → 1.00 because" in weeks[1].certificate.diff[-1]
    line = next(x for x in weeks[2].certificate.diff if x.startswith("Delivery"))
    assert (
        line.startswith("Delivery: 1.00 → 0.50 because") and "change failure rate 0 → 0.5" in line
    )
    assert weeks[3].certificate.diff == []
    # week 0: nothing deployed -> delivery (required) not measured -> fail
    assert weeks[0].verdict == "fail" and "delivery: not measured" in weeks[0].reasons
    # Temporal evidence not measured here (no visibility), ledger evidence measured
    sec = weeks[3].certificate
    assert sec.figure("security.secrets_found").value is None  # type: ignore[union-attr]
    assert "visibility unavailable" in sec.figure("security.secrets_found").detail  # type: ignore[union-attr]
    assert sec.figure("security.audit_chain_intact").value == 1.0  # type: ignore[union-attr]
    # every run stored its files; latest.json is the 4th certificate, read back verified
    store = LocalArtifactStore(settings.effective_artifact_dir())
    for w in weeks:
        names = sorted(a.name for a in w.artifacts)
        assert names == ["certificate.html", "certificate.json", "certificate.md"]
        for a in w.artifacts:
            assert store.get(a.key, a.version_id)
    latest = Certificate.model_validate_json(store.get("readiness/wk/dev/latest.json"))
    assert latest.workflow_id == weeks[3].workflow_id
    assert len(store.versions("readiness/wk/dev/latest.json")) == 4
    ledger.close()
