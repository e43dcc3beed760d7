"""The one exception root of the project and the user-facing errors built on it.

Every error a user sees says what was wrong and what to do. Each error type
declares ``retryable`` (trying again may succeed) and ``exit_code`` (what
``codectl`` exits with). Activities raise these errors; one activity
interceptor (:func:`to_application_error`) turns them into Temporal
``ApplicationError(type=<class name>, non_retryable=not retryable)``, so
workflows branch on ``type`` without importing I/O code."""

from __future__ import annotations

from typing import ClassVar

from temporalio.exceptions import ApplicationError


class CodeError(Exception):
    """Root of every error raised by CODE. Not retryable unless a subclass says so."""

    exit_code: ClassVar[int] = 1
    retryable: bool = False


class SpecError(CodeError):
    """A spec, plan or experiment file is invalid. ``problems`` names every bad field."""

    exit_code = 2

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source} is invalid ({len(problems)} problem(s)):\n{lines}")


class ConfigError(CodeError):
    """The engine's own configuration is invalid or incomplete."""

    exit_code = 2


class ServerUnavailable(CodeError):
    """A server the engine needs (Temporal, agent, Vault, ...) cannot be reached; retry."""

    exit_code = 3
    retryable = True


class TargetRefused(CodeError):
    """A probe, load, soak or hook target is not allowed by the ``allowed_targets`` setting."""

    exit_code = 2


def is_retryable(exc: BaseException) -> bool:
    """Whether trying again may succeed: the error's own ``retryable`` (instance or class)."""
    return bool(getattr(exc, "retryable", False))


def to_application_error(exc: BaseException, what: str = "") -> ApplicationError:
    """The Temporal failure for ``exc``: an ``ApplicationError`` is returned unchanged; any
    other error becomes ``ApplicationError(type=<class name>, non_retryable=not retryable)``
    whose message is the error's own (prefixed with ``what`` when given)."""
    if isinstance(exc, ApplicationError):
        return exc
    message = f"{what}: {exc}" if what else str(exc)
    return ApplicationError(message, type=type(exc).__name__, non_retryable=not is_retryable(exc))
