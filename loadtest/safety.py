"""Load is only ever sent to loopback: 127.0.0.0/8, ::1 or ``localhost``.

Host names other than ``localhost`` are refused without resolving them, so a
DNS answer can never redirect load off the machine."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from workflows.errors import CodeError


class NotLoopbackError(CodeError):
    """A load target is not a loopback address."""

    exit_code = 2


def loopback_problem(url: str) -> str | None:
    """Return why ``url`` is not an acceptable load target, or None when it is."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"{url!r} is not a valid URL ({exc})"
    if parts.scheme not in ("http",):
        return (
            f"{url!r}: only plain http:// targets are supported (got {parts.scheme or 'no'} scheme)"
        )
    if not host:
        return f"{url!r} has no host"
    if host.lower() == "localhost":
        return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return (
            f"{url!r}: load may only target loopback (127.0.0.0/8, ::1, localhost); "
            f"host name {host!r} is refused"
        )
    if not ip.is_loopback:
        return (
            f"{url!r}: load may only target loopback (127.0.0.0/8, ::1, localhost); {host} is not"
        )
    return None


def require_loopback(url: str) -> str:
    """Return ``url`` unchanged, or raise :class:`NotLoopbackError`."""
    problem = loopback_problem(url)
    if problem:
        raise NotLoopbackError(problem)
    return url
