"""Workflow, Update and Signal inputs that always decode, validated inside the workflow.

Workflows declare their inputs as ``Any`` so that the data converter never fails to
decode what a client sent (a decode failure would fail every workflow task and leave
the run stuck RUNNING). :func:`parse_input` then validates with the same pydantic
model the typed clients use and, on error, raises a non-retryable ``ApplicationError``
of type ``SpecError`` whose message names every bad field: the run fails at once,
with nothing applied."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

from code_foundation import error_types
from code_foundation.loader import problems_of

M = TypeVar("M", bound=BaseModel)


def parse_input(model: type[M], raw: Any, what: str) -> M:
    """``raw`` (a decoded JSON value, or already a ``model``) as ``model``; else fail."""
    if isinstance(raw, model):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump(mode="json")
    if not isinstance(raw, dict):
        problems = [f"(top level): expected a JSON object, got {type(raw).__name__}"]
    else:
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            problems = problems_of(exc)
    lines = "; ".join(problems)
    raise ApplicationError(
        f"{what} is invalid ({len(problems)} problem(s)): {lines}",
        {"problems": problems},
        type=error_types.SPEC_ERROR,
        non_retryable=True,
    )


def parse_for_validator(model: type[M], raw: Any, what: str) -> M:
    """:func:`parse_input` for Update validators: a malformed argument is rejected with a
    ``ValueError`` naming its fields (the Update fails, nothing enters history)."""
    try:
        return parse_input(model, raw, what)
    except ApplicationError as err:
        raise ValueError(err.message) from None
