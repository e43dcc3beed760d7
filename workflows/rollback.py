"""``RollbackWorkflow``: put a service back on its last known good version.

Idempotent from any state: ensures the target version runs (re-applying it
from its recorded spec when needed), sends it all traffic, retires every other
version, and records the outcome in the ledger. Started as a child by
``DeploymentWorkflow`` or directly (``codectl rollback``). ``rolled_back`` and
``nothing_to_do`` complete; a rollback that cannot finish fails (``RollbackImpossible``,
or the activity's error), so a failed rollback is always a FAILED run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import workflows.identity_gate as identity_gate  # the real module: its enforce flag
    from code_foundation.error_types import (
        LANE_BUSY,
        NON_RETRYABLE,
        ROLLBACK_FAILED,
        ROLLBACK_IMPOSSIBLE,
    )
    from code_foundation.names import SA_OUTCOME, A, W
    from workflows.inputs import parse_input
    from workflows.lane_models import lane_id, lane_target
    from workflows.lane_session import LaneSession
    from workflows.models import (
        ApplyVersionInput,
        ApplyVersionResult,
        DescribeInput,
        DescribeResult,
        LastGoodInput,
        LastGoodResult,
        LedgerRecordInput,
        LedgerRecordResult,
        LedgerStatus,
        RetireVersionInput,
        RetireVersionResult,
        RollbackInput,
        RollbackResult,
        SetTrafficInput,
        SetTrafficResult,
    )
    from workflows.outcome import not_promoted_failure
    from workflows.spec import DeploymentSpec, Platform

# rollbacks must always finish: retry for a long time, never give up on transient errors
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
    non_retryable_error_types=list(NON_RETRYABLE),
)
SHORT = timedelta(seconds=30)


@workflow.defn(name=W.ROLLBACK)
class RollbackWorkflow:
    def __init__(self) -> None:
        self._phase = "starting"

    @workflow.query
    def status(self) -> str:
        return self._phase

    @workflow.run
    async def run(self, raw: Any) -> RollbackResult:
        inp = parse_input(RollbackInput, raw, "rollback input")
        # a manual rollback's starter is verified first (a deployment's child: its parent was)
        subject = f"{inp.service}/{inp.environment}@{inp.to_version or 'last-known-good'}"
        await identity_gate.admit_run(inp.token, "rollback", inp.environment, inp.service, subject)
        lane: LaneSession | None = None
        if not inp.lane_held and workflow.patched("release-lanes"):
            # a manual rollback changes the platform: it takes the lane like a deployment
            lane = LaneSession(
                lane_id(inp.service, inp.environment, _lane_target(inp)),
                "rollback",
                inp.concurrency,
                f"rollback to {inp.to_version or 'last known good'}",
            )
            self._phase = f"waiting for lane {lane.lane}"
            reply = await lane.acquire(inp.service, inp.environment, inp.set_search_attributes)
            if reply is not None and reply.state == "rejected":
                raise ApplicationError(reply.reason, type=LANE_BUSY, non_retryable=True)
        try:
            return await self._rollback(inp)
        finally:
            if lane is not None:
                await lane.release("done")

    async def _rollback(self, inp: RollbackInput) -> RollbackResult:
        wid = workflow.info().workflow_id
        key = f"{wid}:{workflow.info().run_id}"
        self._phase = "describing platform"
        state = await workflow.execute_activity(
            A.PLATFORM_DESCRIBE,
            DescribeInput(
                service=inp.service,
                environment=inp.environment,
                platform=inp.platform,
                namespace=inp.namespace,
                cluster=inp.cluster,
            ),
            result_type=DescribeResult,
            start_to_close_timeout=SHORT,
            retry_policy=RETRY,
        )
        failed = inp.failed_version
        if failed is None and inp.to_version is None and state.weights:
            # manual rollback: roll back from whatever serves most traffic now
            failed = max(sorted(state.weights), key=lambda v: state.weights[v])
        self._phase = "finding last known good"
        lkg = await workflow.execute_activity(
            A.LEDGER_LAST_GOOD,
            LastGoodInput(
                service=inp.service,
                environment=inp.environment,
                exclude_version=failed if inp.to_version is None else None,
            ),
            result_type=LastGoodResult,
            start_to_close_timeout=SHORT,
            retry_policy=RETRY,
        )
        target = inp.to_version or lkg.version
        spec = lkg.spec if lkg.version == target else None
        if target and spec is None:
            # --to VERSION: look up that version's recorded spec
            found = await workflow.execute_activity(
                A.LEDGER_LAST_GOOD,
                LastGoodInput(
                    service=inp.service, environment=inp.environment, only_version=target
                ),
                result_type=LastGoodResult,
                start_to_close_timeout=SHORT,
                retry_policy=RETRY,
            )
            spec = found.spec
        if spec is not None and inp.cluster is not None:  # restore on this cluster
            spec = spec.model_copy(update={"cluster": inp.cluster})
        platform = spec.platform if spec else inp.platform
        namespace = spec.namespace if spec else inp.namespace
        inp = inp.model_copy(update={"failed_version": failed})
        if target is None:
            # nothing was ever good: take the failed version out of service, that's all we can do
            retired = None
            if inp.failed_version and inp.failed_version in state.versions:
                await self._retire(inp, inp.failed_version, platform, namespace, key, force=True)
                retired = inp.failed_version
            await self._record(inp, inp.failed_version, "rolled_back", key, "no known good version")
            return self._done(
                inp,
                RollbackResult(
                    workflow_id=wid,
                    restored_version=None,
                    retired_version=retired,
                    outcome="nothing_to_do" if retired is None else "rolled_back",
                    reason="no last known good version recorded",
                ),
            )
        if target not in state.versions or not state.healthy.get(target, False):
            if spec is None:
                raise ApplicationError(
                    f"cannot restore {inp.service} {target}: it is not running and the ledger has no spec for it",
                    type=ROLLBACK_IMPOSSIBLE,
                    non_retryable=True,
                )
            self._phase = f"starting {target}"
            await workflow.execute_activity(
                A.PLATFORM_APPLY,
                ApplyVersionInput(
                    spec=spec, idempotency_key=f"{key}:apply-{target}", initial_weight=None
                ),
                result_type=ApplyVersionResult,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=RETRY,
            )
        self._phase = f"routing all traffic to {target}"
        await workflow.execute_activity(
            A.PLATFORM_TRAFFIC,
            SetTrafficInput(
                service=inp.service,
                environment=inp.environment,
                weights={target: 100},
                idempotency_key=f"{key}:traffic",
                platform=platform,
                namespace=namespace,
                cluster=inp.cluster,
            ),
            result_type=SetTrafficResult,
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=10),  # a dead worker is noticed in 10 s
            retry_policy=RETRY,
        )
        retired_versions = [v for v in state.versions if v != target]
        for v in retired_versions:
            self._phase = f"retiring {v}"
            await self._retire(inp, v, platform, namespace, key)
        if inp.failed_version and inp.failed_version != target:
            await self._record(inp, inp.failed_version, "rolled_back", key, inp.reason)
        await self._record(
            inp, target, "promoted", key, f"restored by rollback: {inp.reason}", spec=spec
        )
        self._phase = "done"
        retired = (
            inp.failed_version
            if inp.failed_version in retired_versions
            else (retired_versions[0] if retired_versions else None)
        )
        return self._done(
            inp,
            RollbackResult(
                workflow_id=wid,
                restored_version=target,
                retired_version=retired,
                outcome="rolled_back",
                reason=inp.reason,
            ),
        )

    def _done(self, inp: RollbackInput, res: RollbackResult) -> RollbackResult:
        if inp.set_search_attributes:
            workflow.upsert_search_attributes([SA_OUTCOME.value_set(res.outcome)])
        if res.outcome == "failed" and workflow.patched("not-promoted-fails"):
            # never reached today (a rollback that cannot finish raises); a failed outcome
            # would end FAILED carrying its result, like a deployment (workflows.outcome)
            raise not_promoted_failure(res, ROLLBACK_FAILED)
        return res

    async def _retire(
        self,
        inp: RollbackInput,
        version: str,
        platform: Platform,
        namespace: str | None,
        key: str,
        force: bool = False,
    ) -> None:
        await workflow.execute_activity(
            A.PLATFORM_RETIRE,
            RetireVersionInput(
                service=inp.service,
                environment=inp.environment,
                version=version,
                idempotency_key=f"{key}:retire-{version}",
                platform=platform,
                namespace=namespace,
                cluster=inp.cluster,
                force=force,
            ),
            result_type=RetireVersionResult,
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=10),  # a dead worker is noticed in 10 s
            retry_policy=RETRY,
        )

    async def _record(
        self,
        inp: RollbackInput,
        version: str | None,
        status: LedgerStatus,
        key: str,
        detail: str,
        spec: DeploymentSpec | None = None,
    ) -> None:
        if version is None:
            return
        await workflow.execute_activity(
            A.LEDGER_RECORD,
            LedgerRecordInput(
                service=inp.service,
                environment=inp.environment,
                version=version,
                status=status,
                actor=inp.actor,
                workflow_id=workflow.info().workflow_id,
                strategy="rollback",
                detail=detail[:2000],
                spec=spec,
                idempotency_key=f"{key}:ledger-{status}-{version}",
            ),
            result_type=LedgerRecordResult,
            start_to_close_timeout=SHORT,
            retry_policy=RETRY,
        )


def _lane_target(inp: RollbackInput) -> str:
    """The lane target of a rollback: the platform (and namespace), per cluster."""
    target = lane_target(inp.platform, inp.namespace)
    return f"{target}_{inp.cluster}" if inp.cluster else target
