"""Identity enforcement inside workflows: every human action's token is verified and
decided here, deterministically, and every decision is audited server-side.

Contract: a workflow keeps one :class:`IdentityGuard`. :meth:`IdentityGuard.admit` is the
first step of a run (behind ``workflow.patched("identity")``, so histories recorded before
it replay unchanged): it pins the worker's :class:`~workflows.identity.IdentityConfig`
(keys + policy) with the ``identity.pin`` activity; when identity is not configured
enforcement stays off and nothing else changes. When it is on, the starter's token is
verified and decided, and a denied starter fails the run (``IdentityDenied``) before
anything is applied. :meth:`IdentityGuard.check` answers any later action (approve,
override, pause, resume, abort): verify (refreshing the pinned keys once when no pinned key
verifies the signature — rotation; a forged token stays refused), decide with
:func:`~workflows.policy.decide`, apply an ``approvers:`` list on top, then record the
decision (allowed or denied, principal, claims used, action, reason) with ``audit.record``
in the hash-chained log. Tokens never reach an activity, a status or an audit record.

:func:`admit_run` is the one-call helper for workflows that only need the starter check
(rollback, release, chaos, soak)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from code_foundation.error_types import IDENTITY_DENIED, NON_RETRYABLE
    from code_foundation.names import A
    from workflows.identity import IdentityConfig, TokenRejected, verify
    from workflows.inputs import parse_input
    from workflows.models import ApproveInput, ControlInput, DeployStatus
    from workflows.policy import Decision, Principal, decide
    from workflows.slo import AuditInput, AuditResult
    from workflows.spec import DeploymentSpec

PATCH = "identity"
_ENFORCE: dict[str, bool] = {"on": False}


def enforce(on: bool) -> None:
    """Turn enforcement on for the new runs of this process (the worker does, from its
    settings, when it registers :mod:`activities.identity`). A replay follows its history
    whatever this says: the ``identity`` marker is there exactly when the run enforced."""
    _ENFORCE["on"] = on


def enforcing() -> bool:
    return _ENFORCE["on"]


_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
    non_retryable_error_types=list(NON_RETRYABLE),
)


class IdentityPinInput(BaseModel):
    """``identity.pin``: ``refresh`` re-fetches the issuer's JWKS now (a rotated key)."""

    model_config = ConfigDict(extra="forbid")
    refresh: bool = False


@dataclass
class Checked:
    """One decided request: the verified principal (None when the token failed)."""

    decision: Decision
    principal: Principal | None = None


@dataclass
class IdentityGuard:
    """The identity state of one run (keys and policy pinned at its start)."""

    cfg: IdentityConfig | None = None
    resolved: bool = False
    starter: str | None = None
    starter_token: str | None = field(default=None, repr=False)
    """the verified starter's token: a lane's supersede carries it to the run it aborts"""
    decisions: list[Decision] = field(default_factory=list)

    @property
    def on(self) -> bool:
        return self.cfg is not None and self.cfg.enabled

    async def enforced(self) -> bool:
        """Whether this run enforces identity (a handler that arrives before the run has
        pinned its keys waits for that; it never slips through unverified)."""
        if not self.resolved:
            await workflow.wait_condition(lambda: self.resolved)
        return self.on

    async def _pin(self, refresh: bool) -> None:
        fresh = await workflow.execute_activity(
            A.IDENTITY_PIN,
            IdentityPinInput(refresh=refresh),
            result_type=IdentityConfig,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_RETRY,
        )
        self.cfg = fresh if self.cfg is None else self.cfg.merged(fresh)

    async def admit(
        self, token: str | None, action: str, environment: str, service: str, subject: str
    ) -> Principal | None:
        """The run's first step: pin, then check its starter. ``None`` when identity is
        off; the starter's principal when allowed; raises ``IdentityDenied`` when not."""
        try:
            if workflow.info().parent is not None:
                return None  # a child runs under its parent's (already checked) authority
            # a new run follows this worker's setting; a replay follows its history's marker
            if not (enforcing() or workflow.unsafe.is_replaying()) or not workflow.patched(PATCH):
                return None
            await self._pin(False)
        finally:
            self.resolved = True
        if not self.on:
            return None
        got = await self.check(token, action, environment, service, subject)
        if got.principal is None or not got.decision.allowed:
            raise ApplicationError(
                f"{action} refused: {got.decision.reason}",
                type=IDENTITY_DENIED,
                non_retryable=True,
            )
        self.starter, self.starter_token = got.principal.id, token
        return got.principal

    async def check(
        self,
        token: str | None,
        action: str,
        environment: str,
        service: str,
        subject: str,
        *,
        approvers: list[str] | None = None,
        claimed: str = "",
        rule: Callable[[Principal], str | None] | None = None,
    ) -> Checked:
        """Verify and decide one request, and audit the decision."""
        cfg = self._cfg()
        principal: Principal | None = None
        try:
            try:
                principal = verify(token, cfg, workflow.now())
            except TokenRejected as exc:
                if not exc.unknown_key:
                    raise
                await self._pin(True)  # the issuer may have rotated its keys
                cfg = self._cfg()
                principal = verify(token, cfg, workflow.now())
        except TokenRejected as exc:
            decision = Decision(allowed=False, action=action, reason=f"token refused: {exc.reason}")
        else:
            decision = decide(
                cfg.policy, principal, action, environment, service, starter=self.starter
            )
            if decision.allowed and approvers and not (principal.names() & set(approvers)):
                decision = decision.model_copy(
                    update={
                        "allowed": False,
                        "reason": f"{principal.id} is not in the approvers list "
                        f"({', '.join(approvers)})",
                    }
                )
            problem = rule(principal) if decision.allowed and rule is not None else None
            if problem:
                decision = decision.model_copy(update={"allowed": False, "reason": problem})
        await self.audit(decision, subject, claimed)
        return Checked(decision, principal)

    def _cfg(self) -> IdentityConfig:
        if self.cfg is None:
            raise ApplicationError("identity keys are not pinned", type=IDENTITY_DENIED)
        return self.cfg

    def precheck(
        self, token: str | None, action: str, environment: str, service: str
    ) -> Decision | None:
        """The decision :meth:`check` would reach, without I/O (an Update validator's):
        None when no pinned key verifies the token (:meth:`check` refreshes the keys
        first, in the handler)."""
        cfg = self._cfg()
        try:
            principal = verify(token, cfg, workflow.now())
        except TokenRejected as exc:
            if exc.unknown_key:
                return None
            return Decision(allowed=False, action=action, reason=f"token refused: {exc.reason}")
        return decide(cfg.policy, principal, action, environment, service, starter=self.starter)

    async def audit(self, decision: Decision, subject: str, claimed: str = "") -> None:
        """``decision`` as one record of the hash-chained audit log."""
        self.decisions.append(decision)
        await workflow.execute_activity(
            A.AUDIT,
            audit_input(decision, subject, claimed),
            result_type=AuditResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_RETRY,
        )


def audit_input(decision: Decision, subject: str, claimed: str = "") -> AuditInput:
    """The audit record of one decision (never a token)."""
    detail: dict[str, str] = {
        "decision": "allowed" if decision.allowed else "denied",
        "reason": decision.reason[:500],
        "roles": ",".join(decision.roles),
        "workflow_id": workflow.info().workflow_id,
        **{f"claim.{k}": v[:200] for k, v in decision.claims.items()},
    }
    if claimed:
        detail["claimed_identity"] = claimed[:200]
    return AuditInput(
        actor=decision.principal or "unverified",
        action=f"identity.{decision.action}",
        subject=subject,
        detail=detail,
    )


_REJECTIONS: dict[str, Callable[[AuditInput], None] | None] = {"sink": None}


def audit_rejections(sink: Callable[[AuditInput], None] | None) -> None:
    """Where this process's workers record the denials Update validators reject (the
    worker registers a ledger writer with :mod:`activities.identity`). Temporal keeps no
    trace of a rejected Update, so no activity can audit it: the validator hands the
    record to this sink, which writes it outside the workflow and never feeds back."""
    _REJECTIONS["sink"] = sink


def report_rejected(decision: Decision, subject: str, claimed: str = "") -> None:
    """Audit a denial an Update validator rejects (live only: a rejected Update is never
    in a history, so a replay never calls this)."""
    sink = _REJECTIONS["sink"]
    if sink is not None and not workflow.unsafe.is_replaying():
        record = audit_input(decision, subject, claimed)
        record.detail["rejected_by"] = "update validator"
        sink(record)


def denied(checked: Checked) -> ApplicationError:
    """The failure a refused Update answers with (nothing changed)."""
    return ApplicationError(
        f"{checked.decision.action} refused: {checked.decision.reason}",
        type=IDENTITY_DENIED,
        non_retryable=True,
    )


async def admit_run(
    token: str | None, action: str, environment: str, service: str, subject: str
) -> IdentityGuard:
    """For any workflow: the starter check as its first step (see
    :meth:`IdentityGuard.admit`); keep the guard to check later actions."""
    guard = IdentityGuard()
    await guard.admit(token, action, environment, service, subject)
    return guard


async def admit_chaos(token: str | None, experiment: Any) -> None:
    """A chaos run's first step: its starter needs ``chaos-operator`` on every
    service/environment the experiment's actions target (checked and audited one by one;
    the first denial fails the run before anything is discovered or injected)."""
    targets = sorted({(a.target.service, a.target.environment) for a in experiment.actions()})
    guard = IdentityGuard()
    for n, (service, environment) in enumerate(targets or [("*", "*")]):
        subject = f"chaos {experiment.title!r} on {service}/{environment}"
        if n == 0:
            if await guard.admit(token, "chaos", environment, service, subject) is None:
                return  # identity off (or a child run): nothing more to check
            continue
        got = await guard.check(token, "chaos", environment, service, subject)
        if got.principal is None or not got.decision.allowed:
            raise denied(got)


async def admit_soak(token: str | None, plan: Any) -> None:
    """A soak's first step (not its continued runs): ``soak-operator`` on the target's
    service/environment; a URL target needs the role unscoped (``*``)."""
    t = plan.target
    service, environment = (t.service, t.environment) if t.service else ("*", "*")
    subject = f"soak {plan.name!r} on {t.describe()}"
    await admit_run(token, "soak", environment, service, subject)


# ---------------------------------------------------------------- deployments
def subject_of(spec: DeploymentSpec) -> str:
    return f"{spec.service}/{spec.environment}@{spec.version}"


async def admit_deployment(
    guard: IdentityGuard, token: str | None, spec: DeploymentSpec, status: DeployStatus
) -> Principal | None:
    """A deployment's first step: a denied starter fails the run, nothing applied."""
    try:
        return await guard.admit(token, "deploy", spec.environment, spec.service, subject_of(spec))
    except ApplicationError as err:
        status.outcome, status.phase, status.reason = "failed", "done", err.message
        await workflow.wait_condition(workflow.all_handlers_finished)
        raise


async def approve_checked(
    guard: IdentityGuard,
    spec: DeploymentSpec,
    inp: ApproveInput,
    state_problem: Callable[[DeploymentSpec, ApproveInput, Any], str | None],
    state: Any,
) -> ApproveInput:
    """An ``approve``/override Update: the verified input (identity = the principal, no
    token), or ``IdentityDenied`` after the denial is audited (nothing changed).
    ``state_problem`` is the gate's own rule (approvers list, something waiting)."""
    pol = spec.error_budget
    approvers = (
        ((pol.override_approvers if pol else []) or spec.approvals.approvers)
        if inp.override
        else spec.approvals.approvers
    )

    def rule(who: Principal) -> str | None:
        name = next((n for n in sorted(who.names()) if n in approvers), who.id)
        return state_problem(spec, inp.model_copy(update={"identity": name, "token": None}), state)

    got = await guard.check(
        inp.token,
        "override" if inp.override else "approve",
        spec.environment,
        spec.service,
        subject_of(spec),
        approvers=approvers,
        claimed=inp.identity,
        rule=rule,
    )
    if got.principal is None or not got.decision.allowed:
        raise denied(got)
    return inp.model_copy(update={"identity": got.principal.id, "token": None})


async def control_checked(
    guard: IdentityGuard, spec: DeploymentSpec, inp: ControlInput, what: str
) -> tuple[ControlInput | None, str]:
    """A pause/resume/abort Signal checked on arrival: the verified input, or None and
    the reason (the caller ignores it; the denial is audited). A lane's supersede
    (``identity`` ``lane:<superseder>``) carries the superseder's token and is decided as a
    ``deploy`` of this service: whoever may deploy here may supersede a deployment here."""
    action = "deploy" if what == "abort" and inp.identity.startswith("lane:") else what
    got = await guard.check(
        inp.token, action, spec.environment, spec.service, subject_of(spec), claimed=inp.identity
    )
    if got.principal is None or not got.decision.allowed:
        return None, got.decision.reason
    return inp.model_copy(update={"identity": got.principal.id, "token": None}), ""


class _ControlHost(Protocol):
    @property
    def spec(self) -> DeploymentSpec: ...

    def note(self, text: str) -> None: ...


async def control_input(
    guard: IdentityGuard, host: _ControlHost, raw: Any, what: str
) -> ControlInput | None:
    """A pause/resume/abort Signal's argument, or None (noted in the status) when it is
    malformed or, with identity on, refused (the refusal is audited)."""
    try:
        inp = parse_input(ControlInput, raw, what)
    except ApplicationError as err:
        host.note(f"ignored a malformed {what} signal: {err.message}")
        return None
    if not await guard.enforced():
        return inp
    checked, why = await control_checked(guard, host.spec, inp, what)
    if checked is None:
        host.note(f"ignored a {what} signal: {why}")
    return checked
