"""The ``chaostoolkit-kubernetes`` (``chaosk8s``) activities CODE honours, and the
Chaos Toolkit controls it can honour, translated for :mod:`chaos.ctk`.

Actions (argument names as chaosk8s documents them):

* ``chaosk8s.pod.actions.terminate_pods`` -> fault ``delete_pod`` on the
  kubernetes platform. ``ns`` (default ``default``) is the environment;
  ``label_selector`` (``k=v[,k=v]``) must name ``app=<service>``; ``version=`` and
  other labels narrow the pods. ``all: true`` -> mode ``all``; ``mode: fixed`` with
  ``qty`` -> ``fixed(qty)``; ``mode: percentage`` with ``qty`` -> ``percent(qty)``;
  ``rand`` is accepted (CODE always picks with the experiment's seed). Refused:
  ``name_pattern``, ``grace_period`` other than -1/0 (CODE deletes with grace 0),
  ``order`` other than ``alphabetic``.
* ``chaosk8s.deployment.actions.scale_deployment`` (``name``, ``replicas``, ``ns``)
  -> fault ``scale_down`` (``replicas``) of the Deployment ``name``, which must be
  ``<service>-<version>`` (the name CODE gives a version's Deployment; split at
  the last ``-``). A rollback ``scale_deployment`` of a Deployment the method scaled
  is accepted and left to CODE's own revert (it scales back to the recorded count).

Probes -> ``k8s://`` probes (:mod:`chaos.k8s_probes`), judged as status 200:
``chaosk8s.deployment.probes.deployment_available_and_healthy`` (``name``, ``ns``,
``label_selector``), ``chaosk8s.pod.probes.pods_in_phase`` (``label_selector``,
``phase``, ``ns``) and ``chaosk8s.pod.probes.all_pods_healthy`` (``ns``); the
``raise_on_*`` flags are accepted (a probe never raises in CODE, it fails its
tolerance). Tolerance ``true`` (or none) = the check holds; ``false`` = it fails.

Controls: ``chaosaddons.controls.safeguards`` (its ``probes``) becomes steady-state
probes with ``abort_on_probe_failure`` (probed through the fault window; the
smallest ``frequency`` becomes ``probe_interval``). Any other control is refused
with its JSON path. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaos.k8s_probes import CHECKS, FAILS, HOLDS, parse_label_selector, probe_url

Bad = Callable[[str, str], None]

POD_ACTIONS, DEPLOYMENT_ACTIONS = "chaosk8s.pod.actions", "chaosk8s.deployment.actions"
ACTIONS = {(POD_ACTIONS, "terminate_pods"), (DEPLOYMENT_ACTIONS, "scale_deployment")}
PROBES = {
    ("chaosk8s.deployment.probes", "deployment_available_and_healthy"),
    ("chaosk8s.pod.probes", "pods_in_phase"),
    ("chaosk8s.pod.probes", "all_pods_healthy"),
}
SAFEGUARDS = "chaosaddons.controls.safeguards"
_RAISE_FLAGS = {
    "deployment_available_and_healthy": "raise_on_unavailable",
    "pods_in_phase": "raise_on_invalid_phase",
    "all_pods_healthy": "raise_on_any_unhealthy",
}


def is_chaosk8s(module: Any) -> bool:
    return isinstance(module, str) and (module == "chaosk8s" or module.startswith("chaosk8s."))


def _unsupported(
    kind: str, pairs: set[tuple[str, str]], module: Any, func: Any, path: str, bad: Bad
) -> None:
    known = "the chaosk8s " + kind + " CODE honours: "
    known += ", ".join(sorted(f"{m}.{f}" for m, f in pairs))
    if module not in {m for m, _ in pairs}:
        bad(
            path + ".provider.module",
            f"python module {module!r} is not in CODE's fault catalogue; {known}",
        )
    else:
        bad(path + ".provider.func", f"{module}.{func} is not supported; {known}")


def _selector(sel: Any, path: str, bad: Bad) -> dict[str, Any] | None:
    labels = parse_label_selector(sel) if isinstance(sel, str) else None
    if labels is None:
        bad(path, f"label_selector {sel!r} must be equality terms k=v[,k=v]")
        return None
    service = labels.pop("app", None)
    if not service:
        bad(path, "label_selector must name the service as app=<service>")
        return None
    out: dict[str, Any] = {"service": service}
    if "version" in labels:
        out["version"] = labels.pop("version")
    if labels:
        out["labels"] = labels
    return out


def action(name: str, prov: dict[str, Any], path: str, bad: Bad) -> dict[str, Any] | None:
    """A chaosk8s action -> a native action, or None (with every problem reported)."""
    module, func = prov.get("module"), prov.get("func")
    if (module, func) not in ACTIONS:
        _unsupported("actions", ACTIONS, module, func, path, bad)
        return None
    args = dict(prov.get("arguments") or {})
    apath = path + ".provider.arguments"
    ns = args.pop("ns", "default")
    errs = [0]

    def no(key: str, msg: str) -> None:
        errs[0] += 1
        bad(f"{apath}.{key}", msg)

    if func == "scale_deployment":
        dep, replicas = args.pop("name", None), args.pop("replicas", None)
        for key in sorted(args):
            no(key, f"scale_deployment takes no argument {key!r} (name, replicas, ns)")
        if not isinstance(dep, str) or "-" not in dep.strip("-"):
            no("name", f"name {dep!r} must be a Deployment CODE names <service>-<version>")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            no("replicas", f"replicas must be a whole number >= 0, got {replicas!r}")
        if errs[0]:
            return None
        service, version = str(dep).rsplit("-", 1)
        target = {"platform": "kubernetes", "service": service, "environment": ns}
        target["version"] = version
        return {
            "name": name,
            "fault": "scale_down",
            "target": target,
            "params": {"replicas": replicas},
        }
    sel = _selector(args.pop("label_selector", None), apath + ".label_selector", bad)
    if args.pop("name_pattern", None) is not None:
        no("name_pattern", "name_pattern is not supported: CODE selects pods by label_selector")
    if args.pop("grace_period", -1) not in (-1, 0):
        no("grace_period", "CODE deletes pods with grace period 0; use -1 (default) or 0")
    if args.pop("order", "alphabetic") != "alphabetic":
        no("order", "only order 'alphabetic' is supported (CODE picks with the seed)")
    args.pop("rand", None)
    everything, mode, qty = args.pop("all", False), args.pop("mode", "fixed"), args.pop("qty", 1)
    for key in sorted(args):
        no(key, f"terminate_pods argument {key!r} is not supported")
    if isinstance(qty, bool) or not isinstance(qty, int | float) or qty <= 0:
        no("qty", f"qty must be a positive number, got {qty!r}")
    if mode not in ("fixed", "percentage"):
        no("mode", f"mode must be fixed or percentage, got {mode!r}")
    if sel is None or errs[0]:
        return None
    if everything is True:
        blast = "all"
    elif mode == "percentage":
        blast = f"percent({qty:g})"
    else:
        blast = f"fixed({int(qty)})"
    target = {"platform": "kubernetes", "environment": ns, "mode": blast, **sel}
    return {"name": name, "fault": "delete_pod", "target": target, "params": {}}


def probe(act: dict[str, Any], path: str, bad: Bad) -> dict[str, Any] | None:
    """A chaosk8s probe -> a native ``k8s://`` probe, or None."""
    prov = act["provider"]
    module, func = prov.get("module"), prov.get("func")
    if (module, func) not in PROBES:
        _unsupported("probes", PROBES, module, func, path, bad)
        return None
    args = dict(prov.get("arguments") or {})
    ns = str(args.pop("ns", "default"))
    args.pop(_RAISE_FLAGS[func], None)
    required, optional = CHECKS[func]
    problems = 0
    for key in sorted(set(args) - set(required) - set(optional)):
        bad(f"{path}.provider.arguments.{key}", f"{func} argument {key!r} is not supported")
        problems += 1
    for key in required:
        if not args.get(key):
            bad(f"{path}.provider.arguments", f"{func} needs argument {key!r}")
            problems += 1
    if "label_selector" in args and parse_label_selector(str(args["label_selector"])) is None:
        bad(f"{path}.provider.arguments.label_selector", "only k=v[,k=v] selectors are supported")
        problems += 1
    tol = act.get("tolerance", True)
    if not isinstance(tol, bool):
        bad(path + ".tolerance", "a kubernetes probe's tolerance is true (holds) or false (fails)")
        problems += 1
    if problems:
        return None
    out: dict[str, Any] = {
        "name": act.get("name"),
        "url": probe_url(func, ns, args),
        "tolerance": {"type": "status", "status": HOLDS if tol else FAILS},
    }
    if prov.get("timeout") is not None:
        out["timeout"] = prov["timeout"]
    return out


def rollback(act: dict[str, Any], path: str, scaled: set[str], bad: Bad) -> bool:
    """True when a chaosk8s rollback is covered by CODE's own revert (else reported)."""
    prov = act["provider"]
    module, func = prov.get("module"), prov.get("func")
    args = prov.get("arguments") or {}
    key = f"{args.get('ns', 'default')}/{args.get('name')}"
    if (module, func) == (DEPLOYMENT_ACTIONS, "scale_deployment") and key in scaled:
        return True
    bad(
        path + ".provider",
        f"{module}.{func} is not supported as a rollback; CODE reverts every fault it "
        "injected itself (scale_deployment of a Deployment the method scaled is accepted)",
    )
    return False


def controls(items: Any, bad: Bad) -> tuple[list[tuple[str, Any]], float | None]:
    """Safeguard probes (path, CTK probe) to import and the smallest frequency; every
    other control is reported with its JSON path."""
    probes: list[tuple[str, Any]] = []
    freq: float | None = None
    for i, ctl in enumerate(items if isinstance(items, list) else []):
        path = f"$.controls[{i}]"
        prov = ctl.get("provider") if isinstance(ctl, dict) else None
        module = prov.get("module") if isinstance(prov, dict) else None
        if module != SAFEGUARDS:
            bad(
                path + ".provider.module",
                f"Chaos Toolkit controls are python extensions and {module!r} is not run; "
                f"CODE honours {SAFEGUARDS} (probes that abort the run) and the 'code' "
                "extension's controls",
            )
            continue
        arguments = (prov.get("arguments") if isinstance(prov, dict) else None) or {}
        for j, p in enumerate(arguments.get("probes") or []):
            ppath = f"{path}.provider.arguments.probes[{j}]"
            if isinstance(p, dict):
                p = {k: v for k, v in p.items() if k not in ("background", "frequency")}
                f = ctl["provider"]["arguments"]["probes"][j].get("frequency")
                if isinstance(f, int | float) and not isinstance(f, bool) and f > 0:
                    freq = f if freq is None else min(freq, f)
            probes.append((ppath, p))
    if not isinstance(items, list):
        bad("$.controls", "controls must be a list")
    return probes, freq
