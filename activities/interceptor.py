"""The one error path of activities: a worker interceptor that turns every
:class:`~code_foundation.errors.CodeError` an activity raises into the Temporal failure
``ApplicationError(type=<class name>, non_retryable=not retryable)``
(:func:`code_foundation.errors.to_application_error`).

Activities therefore raise the project's own errors and never build an
``ApplicationError`` by hand. The failure keeps the error's message, traceback and
cause, so it reads in the Web UI as if the activity had raised it; an ``ApplicationError``
and any other exception pass through unchanged (Temporal's default conversion applies).

* :class:`ErrorInterceptor` — add it to a ``Worker``'s ``interceptors=`` (the engine's
  worker does: ``workers.worker.build_worker``; so does every test worker hosting real
  activities).
* :func:`application_errors` — the mapping as a context manager (what the interceptor runs).
* :func:`mapped` — an activity callable with the mapping applied, for calling activities
  outside a worker (``ActivityEnvironment``, direct calls in tests).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from code_foundation.errors import CodeError, to_application_error

P = ParamSpec("P")
R = TypeVar("R")


@contextlib.contextmanager
def application_errors() -> Iterator[None]:
    """Inside the block a :class:`CodeError` leaves as its ``ApplicationError`` (same
    message, traceback and cause); everything else leaves unchanged."""
    try:
        yield
    except CodeError as exc:
        failure = to_application_error(exc)
        raise failure.with_traceback(exc.__traceback__) from exc.__cause__


class _ErrorInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        with application_errors():
            return await self.next.execute_activity(input)


class ErrorInterceptor(Interceptor):
    """Worker interceptor: every activity's ``CodeError`` becomes its ``ApplicationError``."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ErrorInbound(next)


def mapped(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """``fn`` (an async activity) raising what a worker with :class:`ErrorInterceptor`
    would report: for calls outside a worker."""

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        with application_errors():
            return await fn(*args, **kwargs)

    return call
