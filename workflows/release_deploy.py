"""One target of a release: its ``DeploymentWorkflow`` as a child of the release (id
``deploy-<service>-<env>[-<cluster>]-<version>``, through that target's own release
lane, ``ParentClosePolicy.REQUEST_CANCEL``, linked in the Web UI's Relationships tab),
and what it did written into the target's matrix cell. A deployment that does not
promote ends FAILED carrying its ``DeployResult`` (:mod:`workflows.outcome`): the cell
gets that result either way. Deterministic."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ChildWorkflowError
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from code_foundation.names import SA_ENVIRONMENT, SA_KIND, SA_OUTCOME, SA_SERVICE, SA_VERSION, W
    from workflows.models import DeployInput, DeployResult
    from workflows.outcome import deploy_result_from_failure
    from workflows.pipeline_spec import PipelineSpec, Stage
    from workflows.release_models import ReleaseInput, TargetCell


async def deploy_target(
    inp: ReleaseInput,
    p: PipelineSpec,
    stage: Stage,
    c: TargetCell,
    children: dict[str, ChildWorkflowHandle[Any, Any]],
) -> None:
    """Run ``c``'s deployment to its end (its handle in ``children`` while it runs)."""
    spec = p.target_spec(stage, stage.target(c.target), inp.version)
    c.workflow_id, c.phase = spec.workflow_id(), "running"
    attrs = None
    if inp.set_search_attributes:
        attrs = TypedSearchAttributes(
            [
                SearchAttributePair(SA_SERVICE, spec.service),
                SearchAttributePair(SA_ENVIRONMENT, spec.environment),
                SearchAttributePair(SA_VERSION, spec.version),
                SearchAttributePair(SA_KIND, "deployment"),
                SearchAttributePair(SA_OUTCOME, "running"),
            ]
        )
    try:
        handle = await workflow.start_child_workflow(
            W.DEPLOYMENT,
            DeployInput(
                spec=spec, actor=inp.actor, set_search_attributes=inp.set_search_attributes
            ),
            id=spec.workflow_id(),
            result_type=DeployResult,
            parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
            search_attributes=attrs,
            static_summary=f"{stage.name}: {spec.service} {spec.version} to {c.target}",
        )
    except Exception as exc:  # noqa: BLE001 - e.g. the id is taken by a direct deploy
        c.phase, c.reason = "failed", f"could not start {spec.workflow_id()}: {exc}"
        return
    children[c.target + "@" + stage.name] = handle
    try:
        res: DeployResult = await handle
    except ChildWorkflowError as err:
        carried = deploy_result_from_failure(err)  # a not-promoted run carries its result
        if carried is None:
            c.phase, c.reason = "failed", str(err.cause or err)
            return
        res = carried
    c.previous_version = res.previous_version
    c.phase = res.outcome if res.outcome != "running" else "failed"
    c.reason = res.reason
    c.weights = {res.version: 100} if res.outcome == "promoted" else {}
