"""Typed client helpers for releases: :func:`release_result` awaits a release's handle
and returns its ``ReleaseResult`` whether it was released (COMPLETED) or ended rolled
back, failed, aborted or halted (FAILED with type ``ReleaseNotPromoted``, the result as
``details[0]``: :mod:`workflows.outcome`). Any other failure (an invalid pipeline, a
refused starter, cancelled, terminated) is re-raised. Pure apart from awaiting the handle."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowFailureError

from code_foundation.error_types import RELEASE_NOT_PROMOTED
from workflows.outcome import result_from_failure
from workflows.release_models import ReleaseResult


def release_result_from_failure(exc: BaseException | None) -> ReleaseResult | None:
    """The ``ReleaseResult`` a not-released run failed with, or None."""
    return result_from_failure(exc, ReleaseResult, (RELEASE_NOT_PROMOTED,))


async def release_result(handle: Any, **kwargs: Any) -> ReleaseResult:
    """The structured result of the release behind ``handle`` (``kwargs`` go to
    ``handle.result``), released or not."""
    try:
        raw = await handle.result(**kwargs)
    except WorkflowFailureError as exc:
        result = release_result_from_failure(exc)
        if result is None:
            raise
        return result
    return raw if isinstance(raw, ReleaseResult) else ReleaseResult.model_validate(raw)
