"""The gates of a deployment: approval (a pause until an ``approve`` Update, with
its timeout policy), the SLO error-budget gate (waits for an audited override
while the budget is spent) and the audit record of every human action.

:func:`approve_problem` is the ``approve`` validator's rule: who may approve or
override, and only while something waits for it. Deterministic: timers, the
``slo.error_budget`` and ``audit.record`` activities, called by name."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from code_foundation.error_types import APPROVAL_TIMEOUT, ERROR_BUDGET_EXHAUSTED
    from code_foundation.names import A
    from workflows.deployment.host import RETRY, SHORT, ApprovalState, DeploymentHost
    from workflows.models import ApproveInput, StepRecord
    from workflows.slo import AuditInput, AuditResult, BudgetInput, BudgetResult
    from workflows.spec import DeploymentSpec, PauseSpec


def approve_problem(
    spec: DeploymentSpec | None, inp: ApproveInput, state: ApprovalState
) -> str | None:
    """Why ``inp`` may not be accepted now (``None``: it may)."""
    if spec is None:
        return "the deployment has not started yet"
    if inp.override:
        pol = spec.error_budget
        allowed = (pol.override_approvers if pol else []) or spec.approvals.approvers
        if allowed and inp.identity not in allowed:
            return (
                f"{inp.identity!r} may not override the error budget of {spec.service}; "
                f"allowed: {', '.join(allowed)}"
            )
        if not state.waiting_override:
            return "nothing is waiting for an error-budget override right now"
        return None
    approvers = spec.approvals.approvers
    if approvers and inp.identity not in approvers:
        return (
            f"{inp.identity!r} may not approve {spec.service}; "
            f"approvers are: {', '.join(approvers)}"
        )
    if not state.waiting_approval:
        return "nothing is waiting for approval right now"
    return None


async def audit(host: DeploymentHost, actor: str, action: str, detail: dict[str, str]) -> None:
    """One entry in the hash-chained audit log (``audit.record``)."""
    spec = host.spec
    await workflow.execute_activity(
        A.AUDIT,
        AuditInput(
            actor=actor,
            action=action,
            subject=f"{spec.service}/{spec.environment}@{spec.version}",
            detail={**detail, "workflow_id": workflow.info().workflow_id},
        ),
        result_type=AuditResult,
        start_to_close_timeout=SHORT,
        retry_policy=RETRY,
    )


async def error_budget_gate(host: DeploymentHost, spec: DeploymentSpec) -> None:
    """While the service's SLO budget is spent, wait for an audited override
    (``approve --override``)."""
    pol = spec.error_budget
    if pol is None or not workflow.patched("error-budget-gate"):
        return
    status, state = host.progress, host.approvals
    rec = host.begin_step(-1, "error_budget", f"error budget of SLO {pol.slo}")
    res = await workflow.execute_activity(
        A.BUDGET,
        BudgetInput(
            service=spec.service,
            environment=spec.environment,
            slo=pol.slo,
            objective=pol.objective,
            window_seconds=pol.window.total_seconds(),
            good_query=pol.good_query,
            total_query=pol.total_query,
            platform=spec.platform,
        ),
        result_type=BudgetResult,
        start_to_close_timeout=timedelta(minutes=2),
        retry_policy=RETRY,
    )
    status.error_budget_remaining = res.remaining
    if res.remaining > pol.min_remaining:
        host.end_step(rec, "ok", f"{res.remaining:.1%} of the error budget left ({res.source})")
        return
    state.waiting_override = True
    status.waiting_for_override = True
    status.phase = "waiting for error-budget override"
    host.note(
        f"error budget of {pol.slo} is spent ({res.remaining:.1%} left); "
        "an approver must override (codectl approve --override)"
    )
    try:
        await workflow.wait_condition(
            lambda: state.override_by is not None or host.abort_request is not None,
            timeout=pol.override_timeout,
        )
    except TimeoutError:
        host.end_step(rec, "failed", "no override")
        raise ApplicationError(
            f"error budget of {pol.slo} is spent and no override arrived "
            f"within {pol.override_timeout}",
            type=ERROR_BUDGET_EXHAUSTED,
            non_retryable=True,
        ) from None
    finally:
        state.waiting_override = False
        status.waiting_for_override = False
    host.check_abort()
    host.end_step(
        rec,
        f"overridden by {state.override_by}",
        f"{res.remaining:.1%} of the error budget left",
    )


async def wait_approval(host: DeploymentHost, pause: PauseSpec, label: str) -> str:
    """Wait for an ``approve`` Update; the step outcome (``approved by X`` or
    ``timed out (P)``). A timeout with ``on_timeout: rollback`` raises."""
    status, state = host.progress, host.approvals
    seen = state.seq
    state.waiting_approval = True
    status.waiting_for_approval = True
    status.phase = "waiting for approval"
    try:
        await workflow.wait_condition(
            lambda: state.seq > seen or host.abort_request is not None,
            timeout=pause.timeout,
        )
    except TimeoutError:
        if pause.on_timeout == "rollback":
            raise ApplicationError(
                f"no approval for {label} within {pause.timeout}",
                type=APPROVAL_TIMEOUT,
                non_retryable=True,
            ) from None
        return f"timed out ({pause.on_timeout})"
    finally:
        state.waiting_approval = False
        status.waiting_for_approval = False
    host.check_abort()
    return f"approved by {state.approved_by[-1]}"


async def pause_step(host: DeploymentHost, pause: PauseSpec, rec: StepRecord, label: str) -> None:
    """A strategy's pause: timed, or until approved."""
    if pause.duration is not None and not pause.until_approved:
        await host.sleep(pause.duration)
        host.end_step(rec, "ok")
        return
    outcome = await wait_approval(host, pause, label)
    host.end_step(rec, outcome)
