"""Kubernetes probes carried by an :class:`~chaos.model.HttpProbe` as a ``k8s://`` URL.

A Chaos Toolkit ``chaosk8s`` probe (``deployment_available_and_healthy``,
``pods_in_phase``, ``all_pods_healthy``) is imported as a probe whose URL is
``k8s://<check>/<namespace>?<arguments>``. The probe activity asks the Kubernetes
API (the engine's kube context, as its faults do) instead of sending HTTP, and
reports the check as a status: 200 when it holds, 503 when it does not, with the
reason as a JSON body, so the usual ``status`` tolerance judges it and the journal
records it like any probe. No workflow change: a probe is still a URL.

:func:`probe_target_problem` is the one URL check for probes: ``k8s://`` URLs must
name a known check with its required arguments; every other URL goes through
:func:`code_foundation.targets.target_problem` (the ``allowed_targets`` setting).
Pure: no I/O."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from code_foundation.targets import target_problem

SCHEME = "k8s"
HOLDS, FAILS = 200, 503

# CTK function -> (required arguments, optional arguments), names as chaosk8s documents them
CHECKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "deployment_available_and_healthy": (("name",), ("label_selector",)),
    "pods_in_phase": (("label_selector",), ("phase",)),
    "all_pods_healthy": ((), ()),
}


def is_k8s(url: str) -> bool:
    return url.startswith(f"{SCHEME}://")


def probe_url(check: str, namespace: str, args: dict[str, Any]) -> str:
    """``k8s://<check>/<namespace>?<args>`` (arguments sorted, so the URL is stable)."""
    query = urlencode(sorted((k, str(v)) for k, v in args.items()))
    return f"{SCHEME}://{check}/{namespace}" + (f"?{query}" if query else "")


def parse_probe_url(url: str) -> tuple[str, str, dict[str, str]]:
    """``(check, namespace, arguments)`` of a ``k8s://`` URL (ValueError when malformed)."""
    problem = _k8s_problem(url)
    if problem:
        raise ValueError(problem)
    parts = urlsplit(url)
    return parts.netloc, parts.path.strip("/"), dict(parse_qsl(parts.query))


def _k8s_problem(url: str) -> str | None:
    parts = urlsplit(url)
    check, ns = parts.netloc, parts.path.strip("/")
    if check not in CHECKS:
        return f"{url!r}: unknown kubernetes check {check!r} (known: {', '.join(sorted(CHECKS))})"
    if not ns or "/" in ns:
        return f"{url!r}: a kubernetes probe names one namespace: k8s://{check}/<namespace>"
    required, optional = CHECKS[check]
    args = dict(parse_qsl(parts.query))
    missing = [a for a in required if not args.get(a)]
    if missing:
        return f"{url!r}: kubernetes check {check!r} needs {', '.join(missing)}"
    unknown = sorted(set(args) - set(required) - set(optional))
    if unknown:
        return f"{url!r}: kubernetes check {check!r} takes no {', '.join(unknown)}"
    return None


def probe_target_problem(url: str) -> str | None:
    """Why a probe may not use ``url`` (None when it may)."""
    if is_k8s(url):
        return _k8s_problem(url)
    return target_problem(url)


def parse_label_selector(selector: str) -> dict[str, str] | None:
    """``"app=checkout,version=v1"`` -> a dict; None for set-based or malformed selectors."""
    out: dict[str, str] = {}
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        key, sep, value = term.partition("=")
        value = value.removeprefix("=")  # "==" is equality too
        if not sep or not key.strip() or any(c in term for c in "!() ") or "=" in value:
            return None
        out[key.strip()] = value.strip()
    return out or None
