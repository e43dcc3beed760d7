"""A run that did not reach its goal ends as a FAILED workflow execution that
carries its structured result; these helpers build that failure and read it back.

A deployment whose outcome is not ``promoted`` fails with an ``ApplicationError``
of type ``DeploymentNotPromoted`` (``DeploymentFailed`` when it failed with nothing applied)
whose ``details[0]`` is the ``DeployResult`` as JSON, so the Web UI's status column
and Failures filter show it, while callers still get the result (a ``DeploymentFailed``
run, which changed nothing, stays an error for them, as before):
:func:`deploy_result_from_failure` walks ``WorkflowFailureError`` /
``ChildWorkflowError`` / ``ActivityError`` causes to that ``ApplicationError`` and
rebuilds the model. :func:`result_from_failure` is the same for any pydantic result
(e.g. a release's). Pure: no I/O, safe inside workflows."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

from code_foundation.error_types import DEPLOYMENT_FAILED, DEPLOYMENT_NOT_PROMOTED
from workflows.models import DeployResult

M = TypeVar("M", bound=BaseModel)

NOT_PROMOTED = DEPLOYMENT_NOT_PROMOTED
"""The failure type of a deployment that ran and did not promote."""

RESULT_FAILURE_TYPES: tuple[str, ...] = (DEPLOYMENT_NOT_PROMOTED,)
"""Failure types read back as a result. ``DeploymentFailed`` (nothing was applied) carries
its result too, for the Web UI, but stays an error for callers, as it always was."""

_MAX_DEPTH = 16  # cause chains are short; a cycle must not loop forever


def not_promoted_failure(
    result: BaseModel, error_type: str = DEPLOYMENT_NOT_PROMOTED, *, applied: bool = True
) -> ApplicationError:
    """The non-retryable failure a run raises to end FAILED with ``result`` as its details.
    A ``failed`` outcome with nothing applied is typed ``DeploymentFailed``, as it was
    before this patch (callers get an error, not a result)."""
    if not applied and getattr(result, "outcome", None) == "failed":
        error_type = DEPLOYMENT_FAILED
    reason = str(getattr(result, "reason", "") or getattr(result, "outcome", "not promoted"))
    return ApplicationError(
        reason, result.model_dump(mode="json"), type=error_type, non_retryable=True
    )


def _causes(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and len(seen) < _MAX_DEPTH and all(exc is not s for s in seen):
        seen.append(exc)
        nxt = getattr(exc, "cause", None)  # temporalio FailureError / WorkflowFailureError
        exc = nxt if isinstance(nxt, BaseException) else exc.__cause__
    return seen


def result_from_failure(
    exc: BaseException | None,
    model: type[M],
    types: tuple[str, ...] = RESULT_FAILURE_TYPES,
) -> M | None:
    """The ``model`` carried by the first ``ApplicationError`` of one of ``types`` in
    ``exc``'s cause chain, or None when there is none (or its details do not parse)."""
    for err in _causes(exc):
        if not isinstance(err, ApplicationError) or err.type not in types:
            continue
        details: tuple[Any, ...] = tuple(err.details or ())
        if not details:
            return None
        first = details[0]
        if isinstance(first, model):
            return first
        try:
            return model.model_validate(first)
        except ValidationError:
            return None
    return None


def deploy_result_from_failure(exc: BaseException | None) -> DeployResult | None:
    """The ``DeployResult`` a not-promoted deployment failed with, or None."""
    return result_from_failure(exc, DeployResult)
