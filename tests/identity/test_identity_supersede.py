"""``concurrency: supersede`` with identity on (real dev server, real local OIDC issuer,
real tokens): the lane's abort of the holder carries the superseder's verified token and
is decided as a ``deploy`` of the service (whoever may deploy here may supersede here),
audited. Before, the lane sent no token and the holder ignored the abort as unverified,
so the superseding run waited behind a holder that never left. A raw client's abort that
claims to come from a lane, without a token, is still ignored."""

from __future__ import annotations

import uuid

from temporalio.client import WorkflowHandle

from workflows.client import deployment_result
from workflows.deployment import DeploymentWorkflow
from workflows.models import ControlInput, DeployInput, DeployStatus
from workflows.spec import parse_spec

from .test_identity_workflow import (  # noqa: F401 - fixtures
    GATES,
    RM,
    Stack,
    at_gate,
    issuer,
    stack,
    start,
)


async def start_superseding(s: Stack, version: str, token: str) -> WorkflowHandle:
    spec = parse_spec(
        f"service: shop\nenvironment: production\nversion: {version}\n"
        'artifact: {command: ["{python}", "svc.py"]}\n'
        "concurrency: supersede\nstrategy: {type: rolling}\n"
    )
    return await s.env.client.start_workflow(
        DeploymentWorkflow.run,
        DeployInput(spec=spec, actor="self-asserted", token=token, set_search_attributes=False),
        id=f"deploy-shop-{uuid.uuid4()}",
        task_queue=s.tq,
    )


async def test_supersede_carries_the_superseders_token(stack: Stack) -> None:  # noqa: F811
    s = stack
    first = await start(s, "v1", s.issuer.token("alice", RM))
    assert (await deployment_result(first)).outcome == "promoted"
    holder = await start(s, "v2", s.issuer.token("alice", RM), GATES)
    await at_gate(holder, 1)

    # a raw client pretending to be a lane, with no token: ignored, audited
    await holder.signal(
        DeploymentWorkflow.abort, ControlInput(identity="lane:deploy-shop-x", reason="forged")
    )
    st: DeployStatus = await at_gate(holder, 1)
    assert st.outcome == "running" and s.fake.weights == {"v1": 70, "v2": 30}

    superseder = await start_superseding(s, "v3", s.issuer.token("bob", RM))
    held = await deployment_result(holder)
    assert held.outcome == "aborted" and held.rollback_workflow_id, held  # aborted = rolled back
    assert f"superseded by {superseder.id}" in held.reason, held.reason
    done = await deployment_result(superseder)
    assert done.outcome == "promoted", done
    assert s.fake.weights == {"v3": 100}

    decisions = [d for d in s.decisions() if d[1] in ("identity.abort", "identity.deploy")]
    # the forged lane abort is decided as a deploy too, and denied: it has no token
    assert ("unverified", "identity.deploy", "denied") in [d[:3] for d in decisions], decisions
    bob = [d[:3] for d in decisions if d[0] == "bob@example.com"]
    # bob's start of v3, then the supersede of v2 decided as his deploy
    assert bob == [("bob@example.com", "identity.deploy", "allowed")] * 2, decisions
    assert s.ledger().verify_audit() is None
