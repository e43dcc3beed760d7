"""What a deployment does before it changes anything: validate the spec (manifest
policy), take the service's release lane, and read the stable version — from the
ledger's last known good, checked against what the platform actually runs — once
the lane is held, so a queued run never starts from a stale picture.

Deterministic: activities are called by name."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from code_foundation.error_types import POLICY_VIOLATION
    from code_foundation.names import A
    from workflows.deployment.host import RETRY, SHORT, DeploymentHost
    from workflows.lane_session import LaneSession
    from workflows.models import (
        DescribeInput,
        DescribeResult,
        LastGoodInput,
        LastGoodResult,
        ValidateInput,
        ValidateResult,
    )
    from workflows.spec import DeploymentSpec


class LaneRejected(Exception):
    """``concurrency: reject`` and the lane is held: the run fails, nothing applied."""


async def validate(host: DeploymentHost, spec: DeploymentSpec) -> None:
    """The spec's manifests pass the policy, or the run fails (PolicyViolation)."""
    rec = host.begin_step(-1, "validate", "validate spec and manifests")
    val = await workflow.execute_activity(
        A.VALIDATE_SPEC,
        ValidateInput(spec=spec),
        result_type=ValidateResult,
        start_to_close_timeout=SHORT,
        retry_policy=RETRY,
    )
    if not val.ok:
        host.end_step(rec, "failed", "; ".join(val.violations))
        raise ApplicationError(
            "validation failed: " + "; ".join(val.violations),
            type=POLICY_VIOLATION,
            non_retryable=True,
        )
    host.end_step(rec, "ok", "; ".join(val.warnings))


async def take_lane(
    host: DeploymentHost, spec: DeploymentSpec, token: str | None = None
) -> LaneSession:
    """Wait for this service's release lane (or leave its queue on an abort). The session
    is the host's from the start, so its status shows the queue while it waits. ``token``:
    the verified starter's, which a supersede this run causes carries to the holder."""
    status = host.progress
    desc = f"deploy {spec.version}"
    lane = LaneSession(spec.lane_id(), "deployment", spec.concurrency, desc, token)
    host.lane_session = lane
    status.lane, status.phase = lane.lane, "queued"
    reply = await lane.acquire(
        spec.service,
        spec.environment,
        host.search_attributes_on,
        stop=lambda: host.abort_request is not None,
    )
    if reply is not None and reply.state == "rejected":
        raise LaneRejected(reply.reason)
    return lane


async def snapshot_stable(host: DeploymentHost, spec: DeploymentSpec) -> str | None:
    """The version serving now that the ledger knows as good (or, failing that, the one
    the platform serves): what a canary is measured against and a rollback restores."""
    status = host.progress
    lkg = await workflow.execute_activity(
        A.LEDGER_LAST_GOOD,
        LastGoodInput(
            service=spec.service, environment=spec.environment, exclude_version=spec.version
        ),
        result_type=LastGoodResult,
        start_to_close_timeout=SHORT,
        retry_policy=RETRY,
    )
    state = await workflow.execute_activity(
        A.PLATFORM_DESCRIBE,
        DescribeInput(
            service=spec.service,
            environment=spec.environment,
            platform=spec.platform,
            namespace=spec.namespace,
            cluster=spec.cluster,
        ),
        result_type=DescribeResult,
        start_to_close_timeout=SHORT,
        retry_policy=RETRY,
    )
    stable = lkg.version if lkg.version and lkg.version in state.versions else None
    if stable is None and state.weights:
        # the platform serves something the ledger does not know as good: keep it as stable
        serving = [v for v, w in sorted(state.weights.items()) if w > 0 and v != spec.version]
        stable = serving[0] if serving else None
    status.stable_version = stable
    status.weights = dict(state.weights)
    return stable
