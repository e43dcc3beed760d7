"""The failure policy of a release: after a failed gate or target, or an abort,
``rollback_all`` restores every target this release promoted (child
``RollbackWorkflow``s, in parallel, each audited with who caused it),
``rollback_wave`` only those of the failed wave, and ``halt`` waits for a decision
(``abort``: roll back everything; ``resume``: leave it as it is). Deterministic."""

from __future__ import annotations

import asyncio
from typing import Protocol

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from code_foundation.names import W
    from workflows.models import ControlInput, RollbackInput, RollbackResult
    from workflows.pipeline_spec import PipelineSpec
    from workflows.release_models import ReleaseStatus, TargetCell


class ReleaseHost(Protocol):
    progress: ReleaseStatus
    resumed_halt: bool

    @property
    def actor(self) -> str: ...

    @property
    def search_attributes_on(self) -> bool: ...

    @property
    def abort_request(host) -> ControlInput | None: ...

    def note(host, text: str) -> None: ...

    async def audit(host, actor: str, action: str, detail: dict[str, str]) -> None: ...


async def apply_failure_policy(
    host: ReleaseHost, p: PipelineSpec, reason: str, aborted: bool
) -> None:
    """The pipeline's failure policy after ``reason`` (an abort always rolls back)."""
    st = host.progress
    st.gate = None
    host.note(reason)
    who = host.abort_request.identity if host.abort_request else host.actor
    if aborted and host.abort_request is not None:
        await host.audit(who, "release.abort", {"reason": host.abort_request.reason[:500]})
    policy = p.failure_policy
    if policy == "halt" and not aborted:
        st.phase = "halted"
        st.gate = "halted: abort rolls back every changed target, resume leaves them"
        host.resumed_halt = False
        await workflow.wait_condition(lambda: host.abort_request is not None or host.resumed_halt)
        st.gate = None
        if host.abort_request is None:
            st.outcome, st.phase, st.reason = "halted", "done", f"halted: {reason}"
            return
        who, aborted = host.abort_request.identity, True
        await host.audit(who, "release.abort", {"reason": host.abort_request.reason[:500]})
        policy = "rollback_all"
    changed = [c for c in st.cells if c.phase == "promoted"]
    if policy == "rollback_wave":
        changed = [c for c in changed if c.stage == st.stage and c.wave == st.wave]
    st.phase = "rolling back"
    await asyncio.gather(*(_restore(host, c, reason, who) for c in changed))
    st.outcome = "aborted" if aborted else ("rolled_back" if changed else "failed")
    st.phase = "done"
    restored = ", ".join(f"{c.stage}/{c.target}" for c in changed) or "nothing to restore"
    st.reason = f"{reason}; restored: {restored}"


async def _restore(host: ReleaseHost, c: TargetCell, reason: str, who: str) -> None:
    st = host.progress
    await host.audit(who, "release.rollback", {"target": f"{c.stage}/{c.target}"})
    child_id = f"{st.release_id}-rollback-{c.stage}-{c.target}"
    try:
        rb: RollbackResult = await workflow.execute_child_workflow(
            W.ROLLBACK,
            RollbackInput(
                service=st.service,
                environment=c.environment,
                to_version=c.previous_version,
                failed_version=c.version,
                reason=f"release {st.release_id}: {reason}"[:1000],
                actor=who,
                set_search_attributes=host.search_attributes_on,
                platform=c.platform,  # type: ignore[arg-type]
                cluster=c.placement,
            ),
            id=child_id,
            result_type=RollbackResult,
            static_summary=f"restore {c.target} after release {st.release_id}",
        )
    except ChildWorkflowError as err:
        c.reason = f"rollback failed: {err.cause or err}"
        return
    c.phase, c.rollback_workflow_id = "restored", child_id
    c.weights = {rb.restored_version: 100} if rb.restored_version else {}
    c.reason = f"restored {rb.restored_version or 'nothing'}"
