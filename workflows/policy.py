"""Access policy: roles bound to subjects or groups, scoped by environment and service
patterns, and the one decision function every workflow (and the codec server) uses.

Contract (pure, deterministic, no I/O; the same answer for the same inputs):

* :class:`Policy` is the YAML document (``codectl policy check FILE``; an invalid one is a
  ``SpecError`` naming every field). Roles: ``viewer``, ``deployer``, ``approver``,
  ``operator`` (pause/resume/abort/cancel), ``chaos-operator``, ``soak-operator``,
  ``budget-override``, ``admin`` (every role).
* :func:`decide` answers one request: allowed only when a binding gives the principal the
  action's role for that environment and service. **Deny by default in protected
  environments**: there a binding counts only when one of its environment patterns is not the
  bare ``*`` (the environment must be named, or matched by a narrower pattern). ``require_mfa``
  environments need ``mfa``/``otp``/``hwk`` in the token's ``amr``. The **two-person rule**
  (``two_person`` environments): the starter of a run may not approve it.
  A spec's ``approvers:`` list is applied on top by the caller (a narrower rule)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal[
    "viewer",
    "deployer",
    "approver",
    "operator",
    "chaos-operator",
    "soak-operator",
    "budget-override",
    "admin",
]
Action = Literal[
    "view",
    "deploy",
    "rollback",
    "release",
    "approve",
    "override",
    "pause",
    "resume",
    "abort",
    "cancel",
    "chaos",
    "soak",
]
ACTION_ROLE: dict[str, Role] = {
    "view": "viewer",
    "deploy": "deployer",
    "rollback": "deployer",
    "release": "deployer",
    "approve": "approver",
    "override": "budget-override",
    "pause": "operator",
    "resume": "operator",
    "abort": "operator",
    "cancel": "operator",
    "chaos": "chaos-operator",
    "soak": "soak-operator",
}
MFA_METHODS = frozenset({"mfa", "otp", "hwk"})


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Principal(_M):
    """Who a verified token says the caller is (only verified tokens make one)."""

    sub: str
    email: str | None = None
    groups: list[str] = Field(default_factory=list)
    amr: list[str] = Field(default_factory=list)
    issuer: str = ""

    @property
    def id(self) -> str:
        """The name a human reads (the e-mail when the token has one, else the subject)."""
        return self.email or self.sub

    def names(self) -> set[str]:
        """Every name an approvers list or a binding may use for this principal."""
        return {n for n in (self.sub, self.email) if n}


class Binding(_M):
    role: Role
    subjects: list[str] = Field(default_factory=list, description="sub or email")
    groups: list[str] = Field(default_factory=list)
    environments: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    services: list[str] = Field(default_factory=lambda: ["*"], min_length=1)

    @model_validator(mode="after")
    def _someone(self) -> Binding:
        if not self.subjects and not self.groups:
            raise ValueError("a binding names at least one subject or group")
        return self

    def holds(self, who: Principal) -> bool:
        return bool(who.names() & set(self.subjects)) or bool(set(who.groups) & set(self.groups))

    def covers(self, environment: str, service: str, protected: bool) -> bool:
        envs = [p for p in self.environments if not (protected and p == "*")]
        return any(fnmatchcase(environment, p) for p in envs) and any(
            fnmatchcase(service, p) for p in self.services
        )


class Policy(_M):
    """The access policy document (``deploy/examples/policies/``)."""

    version: Literal[1] = 1
    protected_environments: list[str] = Field(
        default_factory=lambda: ["production", "prod-*"],
        description="deny by default: a bare '*' binding does not reach these",
    )
    require_mfa: list[str] = Field(default_factory=list, description="environment patterns")
    two_person: list[str] = Field(
        default_factory=lambda: ["production", "prod-*"],
        description="the starter may not approve their own run here",
    )
    bindings: list[Binding] = Field(default_factory=list)


class Decision(_M):
    """One audited answer: what was asked, by whom, the claims used, yes or no and why."""

    allowed: bool
    action: str
    reason: str
    principal: str | None = None
    roles: list[str] = Field(default_factory=list)
    claims: dict[str, str] = Field(default_factory=dict, description="the claims the rule used")


def _matches(environment: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(environment, p) for p in patterns)


def roles_of(policy: Policy, who: Principal, environment: str, service: str) -> list[str]:
    """The roles ``who`` holds for ``service`` in ``environment`` (sorted)."""
    protected = _matches(environment, policy.protected_environments)
    got = {
        b.role
        for b in policy.bindings
        if b.holds(who) and b.covers(environment, service, protected)
    }
    return sorted(got)


def decide(
    policy: Policy,
    who: Principal,
    action: str,
    environment: str,
    service: str,
    *,
    starter: str | None = None,
) -> Decision:
    """May ``who`` do ``action`` on ``service`` in ``environment``? ``starter``: the
    principal id of whoever started the run (for the two-person rule)."""
    roles = roles_of(policy, who, environment, service)
    claims = {"sub": who.sub, "groups": ",".join(who.groups), "amr": ",".join(who.amr)}
    if who.email:
        claims["email"] = who.email
    need = ACTION_ROLE.get(action)

    def answer(ok: bool, reason: str) -> Decision:
        return Decision(
            allowed=ok, action=action, reason=reason, principal=who.id, roles=roles, claims=claims
        )

    where = f"{service} in {environment}"
    if need is None:
        return answer(False, f"unknown action {action!r}")
    if need not in roles and "admin" not in roles:
        protected = _matches(environment, policy.protected_environments)
        extra = " (a protected environment: a binding must name it)" if protected else ""
        return answer(False, f"{who.id} lacks role {need} for {where}{extra}")
    if _matches(environment, policy.require_mfa) and not (MFA_METHODS & set(who.amr)):
        return answer(
            False, f"{environment} requires multi-factor authentication (amr: mfa/otp/hwk)"
        )
    if (
        action == "approve"
        and starter is not None
        and _matches(environment, policy.two_person)
        and (starter in who.names() or starter == who.id)
    ):
        return answer(False, f"two-person rule: {who.id} started this run and may not approve it")
    return answer(True, f"{who.id} holds {need if need in roles else 'admin'} for {where}")
