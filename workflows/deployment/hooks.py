"""The workflow side of lifecycle hooks (:mod:`workflows.hooks_spec`): where they run
and what their answers do.

:func:`run_point` runs every hook of the spec configured ``at`` one point, in spec
order: a gate (``confirm_*``) is polled every ``interval`` until it passes, and past
its ``deadline`` follows ``on_timeout`` (``fail`` raises ``HookGateTimedOut``,
``proceed`` notes it and goes on); a check is tried ``retries + 1`` times and a failed
``pre_rollout``/``rollout`` check raises ``HookFailed`` (the run compensates);
``post_rollout``/``rollback`` results are recorded only. Every result is in
``DeployStatus.hooks`` (and, for ``rollout``, the step's detail).

The same lifecycle points emit the run's notification events (:mod:`workflows.notify`):
``deployment.started`` at ``confirm_rollout``, ``deployment.step_finished`` after each
step's ``rollout`` hooks, ``deployment.promoted`` at ``post_rollout``,
``deployment.rolled_back``/``failed``/``aborted`` after a compensation, and
``deployment.waiting_for_approval`` when an approval gate starts waiting
(:func:`wait_approval`).

Replay: with no hook configured at a point and no notification sinks, nothing here
issues a command, so runs of specs without them (every committed history) have exactly
their old command order.
Deterministic: the ``hooks.run`` activity does the I/O; waits are durable timers that
an abort cuts short."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from code_foundation.error_types import HOOK_FAILED, HOOK_GATE_TIMED_OUT, NON_RETRYABLE
    from code_foundation.names import A
    from workflows.deployment import gates
    from workflows.deployment.compensation import compensate
    from workflows.deployment.host import DeploymentHost
    from workflows.hooks_spec import (
        RECORD_ONLY,
        Hook,
        HookCallInput,
        HookCallResult,
        HookContext,
        HookPoint,
        HookResult,
    )
    from workflows.models import DeployResult, StepRecord
    from workflows.notify import emit
    from workflows.notify_spec import EventKind
    from workflows.spec import DeploymentSpec, PauseSpec

# infrastructure retries only (a worker lost mid-call): a hook's own failure is an answer
CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
    non_retryable_error_types=list(NON_RETRYABLE),
)


def at(spec: DeploymentSpec, point: HookPoint) -> list[Hook]:
    """The spec's hooks configured at ``point``, in spec order."""
    return [h for h in spec.hooks if h.at == point]


async def run_point(
    host: DeploymentHost,
    point: HookPoint,
    step: int = -1,
    weight: int | None = None,
    rec: StepRecord | None = None,
) -> None:
    """Run every hook at ``point`` (nothing at all when none is configured), and emit
    the point's notification event."""
    if point in _BEFORE:
        await _emit(host, _BEFORE[point])
    for hook in at(host.spec, point):
        result = HookResult(
            name=hook.name,
            point=point,
            kind=hook.kind,
            step=step,
            status="running",
            started_at=workflow.now(),
        )
        host.progress.hooks.append(result)
        if hook.gate:
            await _gate(host, hook, result, weight)
        else:
            await _check(host, hook, result, weight)
        if rec is not None:
            rec.detail = "; ".join(
                p for p in (rec.detail, f"hook {hook.name}: {result.status}") if p
            )
    if point == "rollout":
        await _emit(
            host, "deployment.step_finished", step=step, outcome=rec.outcome if rec else None
        )


_BEFORE: dict[str, EventKind] = {
    "confirm_rollout": "deployment.started",
    "post_rollout": "deployment.promoted",
}
_FINAL: dict[str, EventKind] = {
    "rolled_back": "deployment.rolled_back",
    "failed": "deployment.failed",
    "aborted": "deployment.aborted",
}


async def _emit(
    host: DeploymentHost,
    kind: EventKind,
    step: int | None = None,
    outcome: str | None = None,
    reason: str = "",
) -> None:
    st = host.progress
    await emit(
        host.spec, st, kind, previous=host.previous, step=step, outcome=outcome, reason=reason
    )


async def wait_approval(host: DeploymentHost, pause: PauseSpec, label: str) -> str:
    """:func:`~workflows.deployment.gates.wait_approval`, announced first."""
    await _emit(host, "deployment.waiting_for_approval", reason=label)
    return await gates.wait_approval(host, pause, label)


async def compensated(
    host: DeploymentHost, spec: DeploymentSpec, exc: BaseException
) -> DeployResult:
    """:func:`~workflows.deployment.compensation.compensate`, then the ``rollback`` hooks
    (only when something was rolled back)."""
    result = await compensate(host, spec, exc)
    if result.outcome in _FINAL:
        await _emit(host, _FINAL[result.outcome], outcome=result.outcome, reason=result.reason)
    if result.rollback_workflow_id is not None and at(spec, "rollback"):
        await run_point(host, "rollback")
    return result


async def _call(
    host: DeploymentHost, hook: Hook, weight: int | None, attempt: int, step: int
) -> HookCallResult:
    spec = host.spec
    ctx = HookContext(
        workflow_id=workflow.info().workflow_id,
        service=spec.service,
        environment=spec.environment,
        version=spec.version,
        previous_version=host.previous,
        platform=spec.platform,
        hook=hook.name,
        point=hook.at,
        step=step,
        weight=weight,
        attempt=attempt,
    )
    res: HookCallResult = await workflow.execute_activity(
        A.HOOK_RUN,
        HookCallInput(hook=hook, context=ctx),
        result_type=HookCallResult,
        start_to_close_timeout=hook.timeout + timedelta(seconds=10),
        retry_policy=CALL_RETRY,
        summary=f"hook {hook.name} ({hook.at})",
    )
    return res


def _record(result: HookResult, res: HookCallResult, attempt: int) -> None:
    result.attempts = attempt
    result.code = res.code
    result.duration_ms = res.duration_ms
    result.excerpt = res.excerpt
    result.message = res.message
    result.status = res.status


async def _check(host: DeploymentHost, hook: Hook, result: HookResult, weight: int | None) -> None:
    for attempt in range(1, hook.retries + 2):
        res = await _call(host, hook, weight, attempt, result.step)
        _record(result, res, attempt)
        if res.passed or attempt > hook.retries:
            break
        host.note(f"hook {hook.name} ({hook.at}) attempt {attempt} {res.status}: {res.message}")
        await host.sleep(hook.retry_interval)
    result.finished_at = workflow.now()
    if result.status != "passed" and hook.at not in RECORD_ONLY:
        raise ApplicationError(
            f"hook {hook.name} ({hook.at}) failed after {result.attempts} attempt(s): "
            f"{result.message}",
            type=HOOK_FAILED,
            non_retryable=True,
        )


async def _gate(host: DeploymentHost, hook: Hook, result: HookResult, weight: int | None) -> None:
    deadline = workflow.now() + hook.deadline
    attempt = 0
    while True:
        attempt += 1
        res = await _call(host, hook, weight, attempt, result.step)
        _record(result, res, attempt)
        if res.passed:
            result.finished_at = workflow.now()
            host.note(f"gate hook {hook.name} ({hook.at}) passed after {attempt} poll(s)")
            return
        left = deadline - workflow.now()
        if left <= timedelta(0):
            break
        host.note(f"waiting for gate hook {hook.name} ({hook.at}): {res.message}")
        await host.sleep(min(hook.interval, left))
    result.finished_at = workflow.now()
    result.status = f"timed out ({hook.on_timeout})"
    why = f"gate hook {hook.name} ({hook.at}) did not pass within {hook.deadline}: {result.message}"
    if hook.on_timeout == "fail":
        raise ApplicationError(why, type=HOOK_GATE_TIMED_OUT, non_retryable=True)
    host.note(why + "; proceeding (on_timeout: proceed)")
