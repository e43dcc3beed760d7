"""Identity/policy coverage of a readiness certificate on the real dev server, with the real
local OIDC issuer, real tokens and the real audit chain: two chaos runs of ``shop/staging``
(one started by a ``chaos-operator`` with a verified token, one with no token, refused)
and a ``ReadinessWorkflow`` over them: coverage is 1 of 2, the allowed run's evidence is
its ``identity.chaos`` audit row (recomputed here from the ledger), the refused run is
named without a verified identity and its denial is counted. With identity not
configured the figure is "not measured", never a number."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.identity import identity_activities
from activities.interceptor import ErrorInterceptor
from activities.ledger import Ledger
from activities.readiness import ReadinessActivities, readiness_activities
from activities.settings import Settings
from activities.slo import SloActivities
from chaos.messages import ChaosRunInput
from code_foundation.names import CA, SA_ENVIRONMENT, SA_SERVICE
from tests.identity.issuer import Issuer, identity_settings
from tests.identity.test_identity_runs import POLICY, experiment, reaches, refused
from tests.waiting import wait_until_async
from workflows import identity_gate
from workflows.chaos import ChaosExperimentWorkflow
from workflows.readiness import ReadinessWorkflow
from workflows.readiness_formulas import certify
from workflows.readiness_models import GatherInput, ReadinessInput, ReadinessResult, Rules

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    iss = Issuer(tmp_path_factory.mktemp("oidc-readiness")).start()
    try:
        yield iss
    finally:
        iss.stop()


async def test_identity_coverage_from_audited_decisions(
    dev_env: WorkflowEnvironment, issuer: Issuer, tmp_path: Path
) -> None:
    settings = identity_settings(tmp_path, issuer, POLICY, temporal_ui_url="http://127.0.0.1:1")
    tq = f"rdy-id-{uuid.uuid4().hex[:8]}"
    client = dev_env.client
    attrs = TypedSearchAttributes(
        [SearchAttributePair(SA_SERVICE, "shop"), SearchAttributePair(SA_ENVIRONMENT, "staging")]
    )

    async def start(token: str | None) -> str:
        h = await client.start_workflow(
            ChaosExperimentWorkflow.run,
            ChaosRunInput(
                experiment=experiment(), actor="self", token=token, set_search_attributes=False
            ),
            id=f"chaos-{uuid.uuid4()}",
            task_queue=tq,
            search_attributes=attrs,
        )
        return h.id

    try:
        async with Worker(
            client,
            task_queue=tq,
            workflows=[ChaosExperimentWorkflow, ReadinessWorkflow],
            activities=[
                SloActivities(settings).audit,
                *identity_activities(settings),
                *readiness_activities(settings),
            ],
            interceptors=[ErrorInterceptor()],
        ):
            ok_id = await start(issuer.token("alice", ["sre"]))
            await reaches(client.get_workflow_handle(ok_id), CA.DISCOVER)
            bad_id = await start(None)
            assert "no token" in await refused(client.get_workflow_handle(bad_id))

            async def visible() -> bool:
                q = f'CodeService = "shop" AND WorkflowId IN ("{ok_id}", "{bad_id}")'
                return len([w async for w in client.list_workflows(q)]) == 2

            await wait_until_async(visible, 30, "both chaos runs visible")  # type: ignore[arg-type]
            res = await client.execute_workflow(  # type: ignore[call-overload]
                ReadinessWorkflow.run,
                ReadinessInput(
                    service="shop",
                    environment="staging",
                    window=timedelta(days=1),
                    crash_matrix=None,
                ),
                id=f"readiness-shop-staging-{tq}",
                task_queue=tq,
                result_type=ReadinessResult,
            )
    finally:
        identity_gate.enforce(False)

    # recomputed from the audit chain: the allowed decision of ok_id, the denied of bad_id
    ledger = Ledger(settings.effective_ledger_url())
    rows = [r for r in ledger.audit_records() if r.action == "identity.chaos"]
    ledger.close()
    allowed = [r for r in rows if ok_id in r.detail_json and '"allowed"' in r.detail_json]
    denied = [r for r in rows if bad_id in r.detail_json and '"denied"' in r.detail_json]
    assert len(allowed) == 1 and allowed[0].actor != "unverified" and len(denied) == 1
    cert = res.certificate
    cover = cert.figure("security.identity_coverage")
    assert cover is not None and cover.value == 0.5 and cover.ok is False, cover
    assert "1 of 2 runs verified" in cover.detail and bad_id in cover.detail
    assert "identity.<action> record" in cover.formula
    refs = {(e.kind, e.ref) for e in cover.evidence}
    assert ("ledger", f"audit:{allowed[0].seq}") in refs and ("workflow", bad_id) in refs
    assert ("workflow", ok_id) not in refs
    denials = cert.figure("security.identity_denials")
    assert denials is not None and denials.value == 1.0
    assert [e.ref for e in denials.evidence] == [f"audit:{denied[0].seq}"]
    sec = cert.category("security")
    assert sec.score is not None and sec.score < 1.0  # the coverage check failed

    # identity not configured: not measured (the same chain, a worker without identity)
    off = ReadinessActivities(Settings(state_dir=tmp_path))
    now = datetime.now(UTC)
    part = await off.ledger(
        GatherInput(
            service="shop",
            environment="staging",
            window_start=now - timedelta(days=1),
            window_end=now,
        )
    )
    assert part.security.identity_enabled is False and part.security.identity_decisions
    fig = certify(part, Rules(), generated_at=now).figure("security.identity_coverage")
    assert fig is not None and fig.value is None and "identity not configured" in fig.detail
