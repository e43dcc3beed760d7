"""The gates of a release pipeline, between waves and stages: bake time (a hold that
watches the stage's SLO every interval and fails on a burn-rate breach or a spent
budget), approval (an ``approve`` Update by one of the gate's approvers, with a
timeout), deploy window (hold until the calendar allows), the error-budget gate and a
chaos experiment or soak test run as a child workflow and passed by its verdict.

A gate returns normally when it passes and raises :class:`GateFailed` when it does
not; an abort ends any wait at once (:class:`ReleaseAborted`). Deterministic: timers,
``slo.error_budget`` and child workflows, called by name."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any, Protocol

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from code_foundation.error_types import NON_RETRYABLE
    from code_foundation.names import A, W
    from workflows.pipeline_spec import (
        ApprovalGate,
        BakeGate,
        ChildGate,
        ErrorBudgetGate,
        Stage,
        WindowGate,
        gate_label,
    )
    from workflows.release_models import ReleaseStatus
    from workflows.slo import BudgetInput, BudgetResult
    from workflows.spec import ErrorBudgetPolicy

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
    non_retryable_error_types=list(NON_RETRYABLE),
)


class GateFailed(Exception):
    """A gate did not pass: the release fails and applies its failure policy."""


class ReleaseAborted(Exception):
    """Someone aborted the release."""


class ApprovalState:
    def __init__(self) -> None:
        self.gate: ApprovalGate | None = None
        self.seq = 0
        self.approved_by: list[str] = []


class ReleaseHost(Protocol):
    progress: ReleaseStatus
    approvals: ApprovalState

    @property
    def aborted(self) -> bool: ...

    def note(self, text: str) -> None: ...

    def check_abort(self) -> None: ...


async def hold(host: ReleaseHost, duration: timedelta) -> None:
    """A durable timer that an abort cuts short (raising ReleaseAborted)."""
    if duration.total_seconds() > 0:
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: host.aborted, timeout=duration)
    host.check_abort()


async def run_gate(host: ReleaseHost, stage: Stage, gate: Any, index: str) -> None:
    host.progress.gate = gate_label(gate)
    host.note(f"gate {index}: {gate_label(gate)}")
    try:
        if isinstance(gate, BakeGate):
            await _bake(host, stage, gate)
        elif isinstance(gate, ApprovalGate):
            await _approval(host, gate)
        elif isinstance(gate, WindowGate):
            await _window(host, gate)
        elif isinstance(gate, ErrorBudgetGate):
            await _budget_gate(host, stage, gate)
        elif isinstance(gate, ChildGate):
            await _child(host, stage, gate, index)
    finally:
        host.progress.gate = None
    host.note(f"gate {index} passed: {gate_label(gate)}")


async def _budgets(
    host: ReleaseHost, stage: Stage, slo: ErrorBudgetPolicy
) -> list[tuple[str, BudgetResult]]:
    """The SLO's error budget in every environment/platform of the stage."""
    out: list[tuple[str, BudgetResult]] = []
    seen: set[tuple[str, str]] = set()
    for t in stage.targets:
        if (t.environment, t.platform) in seen:
            continue
        seen.add((t.environment, t.platform))
        res = await workflow.execute_activity(
            A.BUDGET,
            BudgetInput(
                service=host.progress.service,
                environment=t.environment,
                slo=slo.slo,
                objective=slo.objective,
                window_seconds=slo.window.total_seconds(),
                good_query=slo.good_query,
                total_query=slo.total_query,
                platform=t.platform,
            ),
            result_type=BudgetResult,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        out.append((t.environment, res))
    return out


async def _bake(host: ReleaseHost, stage: Stage, gate: BakeGate) -> None:
    start = workflow.now()
    end = start + gate.duration
    while True:
        now = workflow.now()
        if now >= end:
            return
        step = min(gate.interval, end - now)
        host.progress.gate = f"bake {gate.duration}: {end - now} left"
        await hold(host, step)
        if gate.slo is None:
            continue
        for env, res in await _budgets(host, stage, gate.slo):
            spent = res.remaining <= gate.slo.min_remaining
            if len(res.firing) > gate.max_firing or spent:
                why = ", ".join(res.firing) or f"{res.remaining:.1%} of the budget left"
                raise GateFailed(
                    f"bake of {stage.name} failed after {workflow.now() - start}: "
                    f"SLO {gate.slo.slo} breached in {env} ({why})"
                )


async def _approval(host: ReleaseHost, gate: ApprovalGate) -> None:
    state = host.approvals
    seen = state.seq
    state.gate = gate
    host.progress.waiting_for_approval = True
    host.progress.approvers = list(gate.approvers)
    try:
        await workflow.wait_condition(
            lambda: state.seq > seen or host.aborted, timeout=gate.timeout
        )
    except TimeoutError:
        if gate.on_timeout == "fail":
            raise GateFailed(f"no approval within {gate.timeout}") from None
        host.note(f"approval timed out after {gate.timeout}: continuing (on_timeout)")
        return
    finally:
        state.gate = None
        host.progress.waiting_for_approval = False
        host.progress.approvers = []
    host.check_abort()
    host.note(f"approved by {state.approved_by[-1]}")


async def _window(host: ReleaseHost, gate: WindowGate) -> None:
    started = workflow.now()
    while True:
        now = workflow.now()
        opening = gate.window.next_open(now)
        if opening is None:
            raise GateFailed(f"the deploy window {gate.window.describe()} never opens")
        if opening <= now:
            return
        if gate.max_wait is not None and opening - started > gate.max_wait:
            raise GateFailed(
                f"the deploy window opens at {opening}, after max_wait {gate.max_wait}"
            )
        host.progress.gate = f"window closed; opens at {opening.isoformat()}"
        await hold(host, opening - now)


async def _budget_gate(host: ReleaseHost, stage: Stage, gate: ErrorBudgetGate) -> None:
    for env, res in await _budgets(host, stage, gate.slo):
        if res.remaining <= gate.slo.min_remaining:
            raise GateFailed(
                f"error budget of {gate.slo.slo} in {env} is spent ({res.remaining:.1%} left)"
            )


async def _child(host: ReleaseHost, stage: Stage, gate: ChildGate, index: str) -> None:
    kind = W.CHAOS if gate.type == "chaos" else W.SOAK
    child_id = f"{workflow.info().workflow_id}-{stage.name}-{gate.type}-{index}"
    try:
        res: dict[str, Any] = await workflow.execute_child_workflow(
            kind,
            gate.input,
            id=child_id,
            result_type=dict,
            execution_timeout=gate.timeout,
        )
    except ChildWorkflowError as err:
        raise GateFailed(f"{gate.type} gate {child_id} failed: {err.cause or err}") from None
    if gate.type == "chaos":
        ok = res.get("status") == "completed" and not res.get("deviated")
    else:
        ok = res.get("verdict") == "pass"
    if not ok:
        raise GateFailed(f"{gate.type} gate {child_id}: {res.get('reason') or 'did not pass'}")
