"""The ``Platform`` protocol every deployment target implements, and its errors.

A platform applies a version (start it and wait until healthy), moves traffic
between versions, retires a version and describes a service. Every operation is
idempotent: a repeated call with the same input finds the work done and answers
``changed=False``. Failures raise :class:`PlatformError`; ``retryable`` tells
the activity layer whether Temporal should retry (``ApplicationError`` with
``type=<class name>``, ``non_retryable=not retryable``).

:class:`SampleSource` is the narrower seam canary analysis and error budgets read:
per-version request windows (:class:`WindowSample`) of a service's router."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from code_foundation.errors import CodeError
from workflows.models import (
    ApplyVersionInput,
    ApplyVersionResult,
    DescribeInput,
    DescribeResult,
    RetireVersionInput,
    RetireVersionResult,
    SetTrafficInput,
    SetTrafficResult,
)


class PlatformError(CodeError):
    """A platform operation failed. ``retryable``: trying again may succeed."""

    retryable: bool = False
    exit_code = 1

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class PlatformUnavailable(PlatformError):
    """The platform (agent, API server) cannot be reached or answered 5xx; retry."""

    retryable = True
    exit_code = 3


class UnhealthyVersion(PlatformError):
    """The version started but never passed its health check; retrying will not help."""

    retryable = False


class PlatformConflict(PlatformError):
    """The request conflicts with the platform's state (traffic still on a version,
    unknown version, bad weights); retrying will not help."""

    retryable = False


class WindowSample(BaseModel):
    """Requests one version served through the router in a time window."""

    count: int = 0
    errors: int = 0
    latencies_ms: list[float] = Field(default_factory=list)

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0


@runtime_checkable
class SampleSource(Protocol):
    async def fetch_samples(
        self, service: str, env: str, since: float, until: float
    ) -> Mapping[str, WindowSample]:
        """version -> its requests in ``[since, until]``; raises :class:`PlatformError`."""
        ...


@runtime_checkable
class Platform(SampleSource, Protocol):
    async def apply_version(self, inp: ApplyVersionInput) -> ApplyVersionResult: ...

    async def set_traffic(self, inp: SetTrafficInput) -> SetTrafficResult: ...

    async def retire_version(self, inp: RetireVersionInput) -> RetireVersionResult: ...

    async def describe(self, inp: DescribeInput) -> DescribeResult: ...


class SecretResolutionFailed(PlatformError):
    """A secret reference of the spec could not be resolved; nothing was applied."""
