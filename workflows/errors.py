"""The one exception root of the project and the user-facing errors built on it.

Every error a user sees says what was wrong and what to do. Temporal business
failures are raised as ``ApplicationError(type=<class name>)`` by activities so
that workflows can branch on ``type`` without importing I/O code."""

from __future__ import annotations


class CodeError(Exception):
    """Root of every error raised by CODE."""

    exit_code = 1


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
    """A server the engine needs (Temporal, agent, Vault, ...) cannot be reached."""

    exit_code = 3
