"""Verified identity inside DeploymentWorkflow, on the real dev server with a real local
OIDC issuer (``oidc-provider-mock``: discovery + JWKS over loopback HTTP) and real tokens.

The worker runs the real ``identity.pin`` activity (discovery → JWKS, the policy file) and
the real ``audit.record`` activity (the hash-chained SQLite ledger); only the platform is
the in-memory fake of the workflow tests. Every attempt goes through a raw SDK client (no
codectl): forged signature, another issuer, wrong audience, expired, no MFA, no role, no
token, and the starter approving their own production release are each refused, change
nothing, and are each a ``denied`` record in the audit chain (which still verifies). A
starter without the role fails the run before anything is applied. A key rotation at the
issuer mid-run: the old token still verifies (pinned key), the new one verifies (refresh on
an unknown key), a forged one never. The histories replay (verification is deterministic)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from temporalio import activity
from temporalio.client import (
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.identity import identity_activities
from activities.ledger import Ledger
from activities.settings import Settings
from activities.slo import SloActivities
from code_foundation.names import A
from tests.identity.issuer import Issuer
from tests.waiting import wait_until_async
from tests.workflows.fakes import FakePlatform
from workflows import identity_gate
from workflows.client import data_converter, deployment_result
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.models import (
    ApproveInput,
    ControlInput,
    DeployInput,
    DeployStatus,
    RollbackInput,
)
from workflows.rollback import RollbackWorkflow
from workflows.spec import DeploymentSpec, parse_spec

MAX_AGE = 15  # seconds a token lives (short: the expiry case waits it out for real)
RM = ["release-managers"]
POLICY = """
version: 1
protected_environments: [production]
require_mfa: [production]
two_person: [production]
bindings:
  - {role: deployer, groups: [release-managers], environments: [production, staging]}
  - {role: approver, groups: [release-managers], environments: [production]}
  - {role: operator, groups: [release-managers], environments: [production]}
  - {role: viewer, groups: [viewers], environments: ["*", production]}
"""
GATES = """
      - set_weight: 30
      - pause: {until_approved: true, timeout: 4h}
      - set_weight: 60
      - pause: {until_approved: true, timeout: 4h}
"""
RECORDED = Path(__file__).parent / "recorded"


@dataclass
class Stack:
    env: WorkflowEnvironment
    issuer: Issuer
    settings: Settings
    fake: FakePlatform
    tq: str

    def ledger(self) -> Ledger:
        return Ledger(self.settings.effective_ledger_url())

    def decisions(self) -> list[tuple[str, str, str, str]]:
        """(actor, action, decision, reason) of every identity record in the chain."""
        out = []
        for r in self.ledger().audit_records():
            d = json.loads(r.detail_json)
            if r.action.startswith("identity."):
                out.append((r.actor, r.action, d["decision"], d["reason"]))
        return out


def spec(version: str, steps: str = "") -> DeploymentSpec:
    strategy = (
        f"strategy:\n  type: canary\n  canary:\n    steps:\n{steps}"
        if steps
        else "strategy: {type: rolling}\n"
    )
    return parse_spec(
        f"service: shop\nenvironment: production\nversion: {version}\n"
        f'artifact: {{command: ["{{python}}", "svc.py"]}}\n{strategy}'
    )


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    iss = Issuer(tmp_path_factory.mktemp("oidc"), max_age=MAX_AGE).start()
    try:
        yield iss
    finally:
        iss.stop()


@pytest_asyncio.fixture
async def stack(
    dev_env: WorkflowEnvironment, issuer: Issuer, tmp_path: Path
) -> AsyncIterator[Stack]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    settings = Settings(
        state_dir=tmp_path,
        identity_issuer=issuer.url,
        identity_audience="codectl",
        identity_policy=policy,
        identity_dev=True,
        identity_skew_seconds=0,
    )
    fake = FakePlatform()
    platform = [
        a for a in fake.activities() if activity._Definition.must_from_callable(a).name != A.AUDIT
    ]
    slo = SloActivities(settings)
    tq = f"tq-{uuid.uuid4()}"
    try:
        async with Worker(
            dev_env.client,
            task_queue=tq,
            workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
            activities=[*platform, slo.audit, *identity_activities(settings)],
        ):
            yield Stack(dev_env, issuer, settings, fake, tq)
    finally:
        identity_gate.enforce(False)  # other tests in this process run without identity


async def start(s: Stack, version: str, token: str | None, steps: str = "") -> WorkflowHandle:
    return await s.env.client.start_workflow(
        DeploymentWorkflow.run,
        DeployInput(
            spec=spec(version, steps),
            actor="self-asserted",
            token=token,
            set_search_attributes=False,
        ),
        id=f"deploy-shop-{uuid.uuid4()}",
        task_queue=s.tq,
    )


async def at_gate(handle: WorkflowHandle, n: int) -> DeployStatus:
    async def probe() -> DeployStatus | None:
        st: DeployStatus = await handle.query(DeploymentWorkflow.status)
        return st if st.waiting_for_approval and len(st.approvals) == n - 1 else None

    return await wait_until_async(probe, 30, f"approval gate {n}")


async def refused(handle: WorkflowHandle, token: str | None, identity: str = "mallory") -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(
            DeploymentWorkflow.approve, ApproveInput(identity=identity, token=token)
        )
    return str(info.value.cause)


def forged(token: str) -> str:
    """The same claims and header, signed with a key the issuer never had."""
    claims = jwt.decode(token, options={"verify_signature": False})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers=jwt.get_unverified_header(token))


async def test_every_bad_approval_is_refused_and_audited(stack: Stack, tmp_path: Path) -> None:
    s = stack
    first = await start(s, "v1", s.issuer.token("alice", RM))
    assert (await deployment_result(first)).outcome == "promoted"
    handle = await start(s, "v2", s.issuer.token("alice", RM), GATES)
    before = await at_gate(handle, 1)
    other = Issuer(tmp_path, max_age=MAX_AGE).start()  # a second, untrusted issuer
    try:
        foreign = other.token("bob", RM)
    finally:
        other.stop()
    expired = s.issuer.token("bob", RM)
    cases = {
        "forged": (forged(s.issuer.token("bob", RM)), "signature does not verify"),
        "other issuer": (foreign, "signature does not verify"),
        "wrong audience": (s.issuer.token("bob", RM, audience="other-app"), "audience"),
        "no mfa": (s.issuer.token("bob", RM, mfa=False), "multi-factor"),
        "no role": (s.issuer.token("carol", ["viewers"]), "lacks role approver"),
        "own release": (s.issuer.token("alice", RM), "two-person rule"),
        "no token": (None, "no token"),
    }
    for name, (token, why) in cases.items():
        reason = await refused(handle, token, identity="alice")
        assert why in reason, (name, reason)
    time.sleep(MAX_AGE + 1)
    assert "expired" in await refused(handle, expired)
    # a raw signal from someone without the role is ignored and audited
    await handle.signal(
        DeploymentWorkflow.pause,
        ControlInput(identity="alice", token=s.issuer.token("carol", ["viewers"])),
    )
    await handle.signal(DeploymentWorkflow.abort, ControlInput(identity="alice", reason="forged"))
    st = await at_gate(handle, 1)
    assert (
        st.approvals == before.approvals == []
        and not st.paused
        and s.fake.weights == {"v1": 70, "v2": 30}
    )

    ok = await handle.execute_update(
        DeploymentWorkflow.approve, ApproveInput(identity="x", token=s.issuer.token("dave", RM))
    )
    assert ok.accepted and ok.identity == "dave@example.com"
    await at_gate(handle, 2)
    denied = [d for d in s.decisions() if d[2] == "denied"]
    assert len(denied) == len(cases) + 3, denied  # + expired, the pause and the abort
    assert (
        "unverified",
        "identity.approve",
        "denied",
        "token refused: no token (log in with `codectl login`)",
    ) in denied
    assert any(d[0] == "carol@example.com" and d[1] == "identity.pause" for d in denied)
    allowed = [d[:2] for d in s.decisions() if d[2] == "allowed"]
    assert ("alice@example.com", "identity.deploy") in allowed
    assert ("dave@example.com", "identity.approve") in allowed
    assert s.ledger().verify_audit() is None  # the chain is intact
    await handle.execute_update(
        DeploymentWorkflow.approve, ApproveInput(identity="x", token=s.issuer.token("dave", RM))
    )
    res = await deployment_result(handle)
    assert res.outcome == "promoted"
    history = await handle.fetch_history()
    await Replayer(
        workflows=[DeploymentWorkflow, RollbackWorkflow], data_converter=data_converter()
    ).replay_workflow(history)
    if os.environ.get("CODE_RECORD_HISTORIES"):  # re-record the committed history
        RECORDED.mkdir(exist_ok=True)
        (RECORDED / "deployment_verified_approvals.json").write_text(history.to_json())


async def test_starter_without_role_fails_before_anything_is_applied(stack: Stack) -> None:
    s = stack
    for token, why in [
        (s.issuer.token("carol", ["viewers"]), "lacks role deployer"),
        (None, "no token"),
        (forged(s.issuer.token("alice", RM)), "signature does not verify"),
    ]:
        handle = await start(s, f"v-{uuid.uuid4().hex[:6]}", token)
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        assert why in str(info.value.cause), info.value.cause
        assert getattr(info.value.cause, "type", None) == "IdentityDenied"
    assert s.fake.ops == [] and s.fake.running == {}  # nothing applied, ever
    assert [d[2] for d in s.decisions()] == ["denied"] * 3


async def test_key_rotation_mid_run(stack: Stack) -> None:
    s = stack
    first = await start(s, "v1", s.issuer.token("alice", RM))
    assert (await deployment_result(first)).outcome == "promoted"
    handle = await start(s, "v2", s.issuer.token("alice", RM), GATES)
    await at_gate(handle, 1)
    old = s.issuer.token("dave", RM)  # signed with the key the run pinned
    old_forged = forged(old)
    s.issuer.rotate()  # new process: a new key; the old one is no longer published
    ok = await handle.execute_update(
        DeploymentWorkflow.approve, ApproveInput(identity="d", token=old)
    )
    assert ok.accepted  # the pinned old key still verifies it until it expires
    await at_gate(handle, 2)
    assert "signature does not verify" in await refused(handle, old_forged)
    new = s.issuer.token("erin", RM)  # the new key: unknown to the run until it refreshes
    ok = await handle.execute_update(
        DeploymentWorkflow.approve, ApproveInput(identity="e", token=new)
    )
    assert ok.accepted and ok.identity == "erin@example.com"
    assert (await deployment_result(handle)).outcome == "promoted"
    history = await handle.fetch_history()
    pins = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ].count(A.IDENTITY_PIN)
    assert pins >= 2  # pinned at start, refreshed on the rotated key
    await Replayer(
        workflows=[DeploymentWorkflow, RollbackWorkflow], data_converter=data_converter()
    ).replay_workflow(history)


async def test_committed_history_with_verified_approvals_replays() -> None:
    """No issuer, no worker setting: the pinned keys and policy are in the history, and
    verification is deterministic (the approvals verify again, with the run's own clock)."""
    history = WorkflowHistory.from_json(
        "verified", (RECORDED / "deployment_verified_approvals.json").read_text()
    )
    assert not identity_gate.enforcing()
    await Replayer(
        workflows=[DeploymentWorkflow, RollbackWorkflow], data_converter=data_converter()
    ).replay_workflow(history)


async def test_manual_rollback_checks_its_starter(stack: Stack) -> None:
    s = stack
    first = await start(s, "v1", s.issuer.token("alice", RM))
    assert (await deployment_result(first)).outcome == "promoted"

    async def rollback(token: str | None) -> WorkflowHandle:
        return await s.env.client.start_workflow(
            RollbackWorkflow.run,
            RollbackInput(
                service="shop", environment="production", token=token, set_search_attributes=False
            ),
            id=f"rollback-shop-{uuid.uuid4()}",
            task_queue=s.tq,
        )

    ops = list(s.fake.ops)
    denied = await rollback(s.issuer.token("carol", ["viewers"]))
    with pytest.raises(WorkflowFailureError) as info:
        await denied.result()
    assert "lacks role deployer" in str(info.value.cause)
    assert s.fake.ops == ops  # nothing touched
    allowed = await rollback(s.issuer.token("alice", RM))
    res = await allowed.result()
    assert res.outcome in ("rolled_back", "nothing_to_do")
    assert ("alice@example.com", "identity.rollback", "allowed") in [d[:3] for d in s.decisions()]
