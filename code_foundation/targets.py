"""The one target-safety check: where probes, load, soak and hooks may send traffic.

``allowed`` is a list of entries: ``loopback`` (127.0.0.0/8, ::1, ``localhost``),
an IP address, a CIDR (``10.0.0.0/8``), an exact host name, or a suffix pattern
(``*.svc.cluster.local``). The default is loopback only. Host names are never
resolved here, so a DNS answer cannot redirect traffic: a name is allowed only if
an entry names it (or its suffix).

The process-wide allow-list (what ``target_problem`` checks when no list is given)
is, in order: what :func:`configure` set (the worker and ``codectl`` set it from the
``allowed_targets`` setting), else ``$CODE_ALLOWED_TARGETS`` (comma-separated or a
JSON list), else loopback only."""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Sequence
from urllib.parse import urlsplit

LOOPBACK = "loopback"
DEFAULT_ALLOWED: tuple[str, ...] = (LOOPBACK,)
SETTING = "allowed_targets (CODE_ALLOWED_TARGETS)"
ENV = "CODE_ALLOWED_TARGETS"

_configured: tuple[str, ...] | None = None


def parse_entries(raw: str | Sequence[str]) -> tuple[str, ...]:
    """``"a, b"``, ``'["a", "b"]'`` or a sequence -> a tuple of stripped entries."""
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            items = json.loads(text)
            if not isinstance(items, list):
                raise ValueError(f"{ENV} must be a JSON list or comma-separated entries")
        else:
            items = text.split(",")
    else:
        items = list(raw)
    return tuple(str(e).strip() for e in items if str(e).strip())


def configure(entries: Sequence[str] | None) -> None:
    """Set the process-wide allow-list (None: back to ``$CODE_ALLOWED_TARGETS``/loopback).

    Raises ``ValueError`` naming every bad entry."""
    global _configured
    if entries is None:
        _configured = None
        return
    got = parse_entries(entries)
    bad = [p for p in (entry_problem(e) for e in got) if p]
    if bad:
        raise ValueError("; ".join(bad))
    _configured = got or DEFAULT_ALLOWED


def current_allowed() -> tuple[str, ...]:
    """The allow-list in force for this process."""
    if _configured is not None:
        return _configured
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT_ALLOWED
    try:
        got = parse_entries(raw)
    except ValueError:
        return DEFAULT_ALLOWED  # an unreadable variable allows nothing more than loopback
    if any(entry_problem(e) for e in got):
        return DEFAULT_ALLOWED
    return got or DEFAULT_ALLOWED


def entry_problem(entry: str) -> str | None:
    """Why ``entry`` is not a valid allow-list entry (None when it is)."""
    e = entry.strip().lower()
    if not e:
        return "an allowed_targets entry cannot be empty"
    if e == LOOPBACK or e.startswith("*."):
        return None
    if "/" in e:
        try:
            ipaddress.ip_network(e, strict=False)
        except ValueError as exc:
            return f"{entry!r} is not a CIDR ({exc})"
        return None
    if any(c in e for c in " :@?#"):
        try:
            ipaddress.ip_address(e)
        except ValueError:
            return f"{entry!r} is not a host, IP address, CIDR or *.suffix pattern"
    return None


def _host_allowed(host: str, allowed: Sequence[str]) -> bool:
    h = host.lower().rstrip(".")
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(h)
    except ValueError:
        ip = None
    for raw in allowed:
        e = raw.strip().lower()
        if e == LOOPBACK:
            if h == "localhost" or (ip is not None and ip.is_loopback):
                return True
        elif e.startswith("*."):
            if ip is None and (h.endswith(e[1:]) and len(h) > len(e) - 1):
                return True
        elif "/" in e:
            if ip is not None and ip in ipaddress.ip_network(e, strict=False):
                return True
        elif ip is not None:
            try:
                if ip == ipaddress.ip_address(e):
                    return True
            except ValueError:
                continue
        elif h == e:
            return True
    return False


def target_problem(
    url: str,
    allowed: Sequence[str] | None = None,
    *,
    schemes: Sequence[str] = ("http", "https"),
    what: str = "target",
) -> str | None:
    """Why traffic may not be sent to ``url`` (None when it may).

    ``allowed`` defaults to :func:`current_allowed`. With the loopback-only list the
    message says the host "is not loopback" and names the setting that would allow it."""
    if allowed is None:
        allowed = current_allowed()
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        return f"{url!r} is not a valid URL ({exc})"
    if parts.scheme not in schemes:
        want = " or ".join(f"{s}://" for s in schemes)
        return f"{url!r}: a {what} must be a {want} URL (got {parts.scheme or 'no'} scheme)"
    if not host:
        return f"{url!r} has no host"
    if _host_allowed(host, allowed):
        return None
    shown = host if _is_ip(host) else repr(host)
    if tuple(allowed) == DEFAULT_ALLOWED:
        return (
            f"{url!r}: host {shown} is not loopback; {what}s may only go to 127.0.0.0/8, "
            f"::1 or localhost unless {SETTING} allows more"
        )
    return f"{url!r}: host {shown} is not allowed by {SETTING} ({', '.join(allowed)})"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def loopback_problem(url: str, *, schemes: Sequence[str] = ("http", "https")) -> str | None:
    """:func:`target_problem` with the default (loopback-only) allow-list."""
    return target_problem(url, DEFAULT_ALLOWED, schemes=schemes)
