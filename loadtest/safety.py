"""Load is only ever sent where the target-safety check allows: the process-wide
``allowed_targets`` allow-list (:func:`code_foundation.targets.current_allowed`),
which is loopback (127.0.0.0/8, ::1, ``localhost``) by default. Host names are
matched without resolving them, so a DNS answer can never redirect load elsewhere.
The check itself is :func:`code_foundation.targets.target_problem`; a refusal names
the setting that would allow the host."""

from __future__ import annotations

from collections.abc import Sequence

from code_foundation.errors import TargetRefused
from code_foundation.targets import target_problem

LOAD_SCHEMES = ("http", "https")
"""HTTP/1.1, plain or over TLS (HTTPS: the native engine, :mod:`loadtest.native`)."""


class NotLoopbackError(TargetRefused):
    """A load target is not allowed by ``allowed_targets`` (loopback only by default)."""


TargetNotAllowed = NotLoopbackError


def load_target_problem(url: str, allowed: Sequence[str] | None = None) -> str | None:
    """Why ``url`` is not an acceptable load target, or None when it is."""
    return target_problem(url, allowed, schemes=LOAD_SCHEMES)


def require_allowed(url: str, allowed: Sequence[str] | None = None) -> str:
    """Return ``url`` unchanged, or raise :class:`NotLoopbackError`."""
    problem = load_target_problem(url, allowed)
    if problem:
        raise NotLoopbackError(problem)
    return url


require_loopback = require_allowed  # the historical name, same check
