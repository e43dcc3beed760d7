"""Waiting on a condition with a deadline, never on the clock alone.

``wait_until(predicate, timeout, what)`` polls a synchronous predicate;
``await wait_until_async(predicate, timeout, what)`` polls one that may return an
awaitable (an ``async def`` or a lambda calling one). Both return the first truthy value
the predicate produced, so a caller can keep what it waited for (a status, a response).
When ``timeout`` seconds pass first they raise ``TimeoutError`` naming ``what`` and the
last value or error seen.

``ignore``: exception types that mean "not yet" (a server still starting refuses
connections); any other exception propagates at once. ``proc``: a subprocess whose exit
ends the wait early with ``RuntimeError``. ``interval`` is only the polling period: a
condition met early returns early."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _exited(proc: Any, what: str) -> None:
    if proc is not None and proc.poll() is not None:
        raise RuntimeError(f"{what}: process exited with {proc.returncode}")


def _timeout(what: str, timeout: float, last: object) -> TimeoutError:
    return TimeoutError(f"{what}: not reached within {timeout}s (last seen: {last!r})")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
    proc: Any = None,
) -> T:
    """Poll ``predicate()`` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        _exited(proc, what)
        try:
            value = predicate()
        except ignore as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise _timeout(what, timeout, last)
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float,
    what: str,
    *,
    interval: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
    proc: Any = None,
) -> T:
    """Poll ``predicate()`` (awaited when it returns an awaitable) until it is truthy."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        _exited(proc, what)
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
        except ignore as exc:
            last = exc
        else:
            if value:
                return value  # type: ignore[return-value]
            last = value
        if time.monotonic() >= deadline:
            raise _timeout(what, timeout, last)
        await asyncio.sleep(interval)
