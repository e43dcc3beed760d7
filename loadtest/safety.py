"""Load is only ever sent where the target-safety check allows: loopback
(127.0.0.0/8, ::1, ``localhost``) by default. Host names other than ``localhost``
are refused without resolving them, so a DNS answer can never redirect load off
the machine. The check itself is :func:`code_foundation.targets.target_problem`."""

from __future__ import annotations

from code_foundation.errors import TargetRefused
from code_foundation.targets import loopback_problem

LOAD_SCHEMES = ("http", "https")
"""HTTP/1.1, plain or over TLS (HTTPS: the native engine, :mod:`loadtest.native`)."""


class NotLoopbackError(TargetRefused):
    """A load target is not a loopback address."""


def load_target_problem(url: str) -> str | None:
    """Why ``url`` is not an acceptable load target, or None when it is."""
    return loopback_problem(url, schemes=LOAD_SCHEMES)


def require_loopback(url: str) -> str:
    """Return ``url`` unchanged, or raise :class:`NotLoopbackError`."""
    problem = load_target_problem(url)
    if problem:
        raise NotLoopbackError(problem)
    return url
