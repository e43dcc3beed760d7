"""Compensation of a deployment that failed, was aborted or was cancelled: audit
the abort, close the open step records, then — when something was applied and
the spec's rollback policy asks for it — restore the last known good version
through a child ``RollbackWorkflow`` (found by the same search attributes as the
deployment). A failed rollback fails the deployment with ``RollbackFailed``.
Deterministic: the child workflow and the ledger/audit activities only."""

from __future__ import annotations

import asyncio
from typing import Literal

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from code_foundation.error_types import ROLLBACK_FAILED
    from code_foundation.names import SA_ENVIRONMENT, SA_KIND, SA_OUTCOME, SA_SERVICE, SA_VERSION, W
    from workflows.deployment.gates import audit
    from workflows.deployment.host import Aborted, DeploymentHost
    from workflows.models import DeployResult, LedgerStatus, RollbackInput, RollbackResult
    from workflows.spec import DeploymentSpec


async def compensate(
    host: DeploymentHost, spec: DeploymentSpec, exc: BaseException
) -> DeployResult:
    """The deployment's result after ``exc`` ended its rollout."""
    status = host.progress
    wid = workflow.info().workflow_id
    reason = reason_of(exc)
    aborted = isinstance(exc, (Aborted, asyncio.CancelledError))
    outcome: Literal["aborted", "failed"] = "aborted" if aborted else "failed"
    abort = host.abort_request
    if aborted and abort is not None and workflow.patched("audit-aborts"):
        try:
            await audit(host, abort.identity, "deployment.abort", {"reason": abort.reason[:500]})
        except ActivityError:
            workflow.logger.warning("could not audit the abort")
    for rec in status.steps:
        if rec.finished_at is None:
            host.end_step(rec, "interrupted", reason)
    policy = spec.rollback.on_abort if aborted else spec.rollback.on_failure
    if not host.applied or not policy:
        await ledger_quietly(host, outcome, reason)
        return DeployResult(
            workflow_id=wid,
            outcome=outcome,
            version=spec.version,
            previous_version=host.previous,
            reason=reason,
        )
    status.phase = "rolling back"
    where = f"{spec.environment}-{spec.cluster}" if spec.cluster else spec.environment
    child_id = f"rollback-{spec.service}-{where}-from-{spec.version}"
    try:
        rb: RollbackResult = await workflow.execute_child_workflow(
            W.ROLLBACK,
            RollbackInput(
                service=spec.service,
                environment=spec.environment,
                to_version=host.previous,
                failed_version=spec.version,
                reason=reason,
                actor=host.actor,
                set_search_attributes=host.search_attributes_on,
                platform=spec.platform,
                namespace=spec.namespace,
                cluster=spec.cluster,
                lane_held=True,
            ),
            id=child_id,
            result_type=RollbackResult,
            task_queue=workflow.info().task_queue,
            search_attributes=rollback_attributes(spec) if host.search_attributes_on else None,
            static_summary=f"rollback {spec.service} in {spec.environment} from {spec.version}",
        )
    except ChildWorkflowError as err:
        await ledger_quietly(host, "failed", f"{reason}; rollback failed: {reason_of(err)}")
        raise ApplicationError(
            f"{reason}; ROLLBACK FAILED: {reason_of(err)}",
            type=ROLLBACK_FAILED,
            non_retryable=True,
        ) from None
    if rb.restored_version:
        status.weights = {rb.restored_version: 100}
    return DeployResult(
        workflow_id=wid,
        outcome="aborted" if aborted else "rolled_back",
        version=spec.version,
        previous_version=host.previous,
        reason=f"{reason}; restored {rb.restored_version}",
        rollback_workflow_id=child_id,
    )


async def ledger_quietly(host: DeploymentHost, status: LedgerStatus, detail: str) -> None:
    """Record in the ledger; a ledger that stays down is logged, not raised."""
    try:
        await host.ledger(status, detail)
    except ActivityError:
        workflow.logger.warning("could not record %s in the ledger", status)


def rollback_attributes(spec: DeploymentSpec) -> TypedSearchAttributes:
    """The compensating rollback is found by the same filters as its deployment."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_SERVICE, spec.service),
            SearchAttributePair(SA_ENVIRONMENT, spec.environment),
            SearchAttributePair(SA_VERSION, spec.version),
            SearchAttributePair(SA_KIND, "rollback"),
            SearchAttributePair(SA_OUTCOME, "running"),
        ]
    )


def reason_of(exc: BaseException) -> str:
    """The innermost message of an activity/child failure (``cancelled`` for a cancel)."""
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    cur: BaseException | None = exc
    while isinstance(cur, (ActivityError, ChildWorkflowError)) and cur.__cause__ is not None:
        cur = cur.__cause__
    return str(cur) if cur is not None else str(exc)
