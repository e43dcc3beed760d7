"""pause / resume / abort of a deployment, as Updates and as the older Signals.

Contract: the Updates ``pause``, ``resume`` and ``abort`` (what codectl sends) take a
:class:`~workflows.models.ControlInput` and answer a :class:`ControlResult`. Their
validator (:func:`validate`) rejects a malformed argument, and — identity on — verifies the
caller's token against the run's pinned keys and decides the ``operator`` policy
deterministically: a denial is rejected before the Update is accepted (nothing enters the
history, nothing changes) and is audited through
:func:`~workflows.identity_gate.report_rejected`. What a validator cannot decide without
I/O (a token no pinned key verifies: the issuer may have rotated; a run still pinning its
keys) is accepted and decided by the handler (:func:`on_update`), which refreshes the keys,
audits the decision and fails the Update with ``IdentityDenied`` when it is refused. The
Signals of the same names stay for older clients and histories: checked on arrival and
ignored with an audit record when refused (:func:`on_signal`, unchanged behaviour).
:func:`apply` is the one place the three actions change the run's state."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import workflows.identity_gate as identity_gate  # the real module: its sinks and flags
    from code_foundation.error_types import IDENTITY_DENIED
    from workflows.inputs import parse_for_validator, parse_input
    from workflows.models import ControlInput
    from workflows.spec import DeploymentSpec

Action = Literal["pause", "resume", "abort"]


class ControlResult(BaseModel):
    """What a pause/resume/abort Update did: ``accepted=False`` when it changed nothing
    (an abort already requested)."""

    model_config = ConfigDict(extra="forbid")
    accepted: bool
    identity: str
    message: str


class ControlHost(Protocol):
    guard: identity_gate.IdentityGuard
    hold: bool
    abort_req: ControlInput | None

    @property
    def spec(self) -> DeploymentSpec: ...

    def note(self, text: str) -> None: ...


def apply(host: ControlHost, what: str, inp: ControlInput) -> ControlResult:
    """The action's effect on the run (``inp.identity`` is the verified principal when
    identity is on)."""
    who = inp.identity
    if what == "pause":
        host.hold = True
        host.note(f"paused by {who}")
        return ControlResult(accepted=True, identity=who, message="paused")
    if what == "resume":
        host.hold = False
        host.note(f"resumed by {who}")
        return ControlResult(accepted=True, identity=who, message="resumed")
    if host.abort_req is not None:
        return ControlResult(
            accepted=False, identity=who, message=f"already aborted by {host.abort_req.identity}"
        )
    host.abort_req = inp
    host.note(f"abort requested by {who}: {inp.reason}")
    return ControlResult(accepted=True, identity=who, message="abort requested")


async def on_signal(host: ControlHost, raw: Any, what: str) -> None:
    """A pause/resume/abort Signal: applied, or ignored (noted; a refusal audited)."""
    inp = await identity_gate.control_input(host.guard, host, raw, what)
    if inp is not None:
        apply(host, what, inp)


def validate(host: ControlHost, raw: Any) -> None:
    """The Updates' validator (read-only, no I/O but the rejection's audit record); the
    action is the Update's name."""
    info = workflow.current_update_info()
    what = info.name if info is not None else "control"
    inp = parse_for_validator(ControlInput, raw, what)
    if not host.guard.on:  # identity off, or the run is still pinning: the handler decides
        return
    spec = host.spec
    decision = host.guard.precheck(inp.token, what, spec.environment, spec.service)
    if decision is not None and not decision.allowed:
        identity_gate.report_rejected(decision, identity_gate.subject_of(spec), inp.identity)
        raise ValueError(f"{what} refused: {decision.reason}")


async def on_update(host: ControlHost, raw: Any, what: str) -> ControlResult:
    """The Updates' handler: verified, decided and audited again (keys refreshed on an
    unknown key), then applied; a refusal fails the Update and changes nothing."""
    inp = parse_input(ControlInput, raw, what)
    if await host.guard.enforced():
        checked, why = await identity_gate.control_checked(host.guard, host.spec, inp, what)
        if checked is None:
            raise ApplicationError(
                f"{what} refused: {why}", type=IDENTITY_DENIED, non_retryable=True
            )
        inp = checked
    return apply(host, what, inp)
