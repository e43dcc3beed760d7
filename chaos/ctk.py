"""Translate Chaos Toolkit experiments (JSON/YAML, the format of
https://chaostoolkit.org/reference/api/experiment/) into native experiment documents,
which :func:`chaos.model.import_chaostoolkit` then validates as an ``Experiment``
(this module does not import the model, so the two never import each other).

Mapped: ``title``, ``description``, ``tags``, ``configuration`` (inline values
and ``{type: env, key}``; ``${name}`` substitution), ``steady-state-hypothesis``
(HTTP probes with a tolerance), ``method`` (HTTP probes, catalogued python
actions, ``ref`` to an earlier activity, ``pauses``), ``rollbacks`` (python
``code.faults.restore`` / ``code.faults.remove_faults``) and the ``code``
extension (``extensions: [{name: code, controls, seed, protected}]``).

Supported providers: ``http`` probes (``url`` allowed by ``allowed_targets``,
``method``, ``headers``, ``timeout``, ``expected_status``, ``arguments``),
``python`` providers whose ``module`` is ``code.faults`` and ``func`` a catalogue
entry, and the ``chaosk8s`` actions and probes and the safeguards control of
:mod:`chaos.ctk_k8s`. Everything else is refused with the
JSON path of the offending element: ``process`` providers, other python modules,
probe tolerances, background activities, other controls, ``secrets``, URLs the
allow-list refuses."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from chaos import ctk_k8s
from chaos.catalogue import CATALOGUE, CTK_MODULE, ROLLBACK_ACTIONS, SELECTOR_KEYS, check_params
from code_foundation.errors import SpecError
from code_foundation.targets import target_problem

_TOP = {
    "version",
    "title",
    "description",
    "tags",
    "configuration",
    "secrets",
    "steady-state-hypothesis",
    "method",
    "rollbacks",
    "controls",
    "extensions",
    "contributions",
    "$schema",
}


class _Importer:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.problems: list[str] = []
        self.declared: dict[str, tuple[str, dict[str, Any]]] = {}  # name -> (kind, native)
        self.refused: set[str] = set()  # names of activities refused above (no cascade)
        self.scaled: set[str] = set()  # "<ns>/<deployment>" scaled by a chaosk8s action

    def bad(self, path: str, msg: str) -> None:
        self.problems.append(f"{path}: {msg}")

    # ------------------------------------------------------------ tolerance
    def tolerance(self, tol: Any, path: str) -> dict[str, Any] | None:
        if isinstance(tol, bool):
            self.bad(
                path,
                "a boolean tolerance only fits python probes; HTTP probes compare the status, body or a JSON path",
            )
            return None
        if isinstance(tol, int):
            return {"type": "status", "status": tol}
        if isinstance(tol, str):
            return {"type": "exact", "value": tol, "target": "body"}
        if isinstance(tol, list):
            if len(tol) == 2 and all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in tol
            ):
                return {"type": "range", "range": list(tol), "target": "status"}
            self.bad(path, "a sequence tolerance must be two numbers [lower, upper]")
            return None
        if isinstance(tol, dict):
            kind = tol.get("type")
            target = tol.get("target", "body")
            if kind == "probe":
                self.bad(
                    path + ".type",
                    "probe tolerances are not supported; use a range, regex or jsonpath tolerance",
                )
                return None
            if target not in ("body", "status"):
                self.bad(
                    path + ".target",
                    f"target {target!r} is not supported for HTTP probes (use body or status)",
                )
                return None
            if kind == "range":
                return {"type": "range", "range": tol.get("range"), "target": target}
            if kind == "regex":
                if target != "body":
                    self.bad(path + ".target", "a regex tolerance applies to the body")
                    return None
                return {"type": "regex", "pattern": tol.get("pattern")}
            if kind == "jsonpath":
                out = {"type": "jsonpath", "path": tol.get("path")}
                if "expect" in tol:
                    out["expect"] = tol["expect"]
                return out
            self.bad(
                path + ".type", f"tolerance type {kind!r} is not supported (range, regex, jsonpath)"
            )
            return None
        self.bad(path, f"unsupported tolerance {tol!r}")
        return None

    # ------------------------------------------------------------ providers
    def http_probe(
        self, act: dict[str, Any], path: str, tolerance_required: bool
    ) -> dict[str, Any] | None:
        prov = act["provider"]
        url = prov.get("url")
        if not isinstance(url, str):
            self.bad(path + ".provider.url", "an http provider needs a url")
            return None
        if "${" not in url:
            problem = target_problem(url)
            if problem:
                self.bad(path + ".provider.url", problem)
                return None
        unknown = set(prov) - {
            "type",
            "url",
            "method",
            "headers",
            "timeout",
            "expected_status",
            "arguments",
            "verify_tls",
        }
        for key in sorted(unknown):
            self.bad(f"{path}.provider.{key}", f"http provider field {key!r} is not supported")
        probe: dict[str, Any] = {
            "name": act.get("name"),
            "url": url,
            "method": str(prov.get("method", "GET")).upper(),
        }
        if prov.get("headers"):
            probe["headers"] = prov["headers"]
        timeout = prov.get("timeout")
        if isinstance(timeout, list):  # [connect, read]
            timeout = sum(float(t) for t in timeout)
        if timeout is not None:
            probe["timeout"] = timeout
        args = prov.get("arguments")
        if args:
            if probe["method"] == "GET":
                probe["url"] = url + ("&" if "?" in url else "?") + urlencode(args)
            else:
                probe["body"] = json.dumps(args)
        if "tolerance" in act:
            tol = self.tolerance(act["tolerance"], path + ".tolerance")
            if tol is None:
                return None
            probe["tolerance"] = tol
        elif tolerance_required:
            self.bad(path, "a steady-state probe must declare a tolerance")
            return None
        else:
            probe["tolerance"] = {"type": "status", "status": int(prov.get("expected_status", 200))}
        return probe

    def python_target(
        self, prov: dict[str, Any], path: str, allowed: dict[str, Any], where: str
    ) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        module, func = prov.get("module"), prov.get("func")
        if module != CTK_MODULE:
            self.bad(
                path + ".provider.module",
                f"python module {module!r} is not in CODE's fault catalogue; only {CTK_MODULE!r} "
                f"functions run ({', '.join(sorted(allowed))})",
            )
            return None
        if func not in allowed:
            self.bad(
                path + ".provider.func",
                f"{CTK_MODULE}.{func} is not allowed in {where} (allowed: {', '.join(sorted(allowed))})",
            )
            return None
        args = dict(prov.get("arguments") or {})
        selector = {k: args.pop(k) for k in SELECTOR_KEYS if k in args}
        for key in ("service", "environment"):
            if key not in selector:
                self.bad(
                    f"{path}.provider.arguments", f"{CTK_MODULE}.{func} needs argument {key!r}"
                )
                return None
        if isinstance(selector.get("mode"), int):
            selector["mode"] = f"fixed({selector['mode']})"
        return func, selector, args

    # ------------------------------------------------------------ activities
    def activity(self, act: Any, path: str, in_hypothesis: bool = False) -> dict[str, Any] | None:
        before = len(self.problems)
        got = self._activity(act, path, in_hypothesis)
        if got is None and len(self.problems) > before and isinstance(act, dict):
            self.refused.add(str(act.get("name")))
        return got

    def _activity(self, act: Any, path: str, in_hypothesis: bool) -> dict[str, Any] | None:
        if not isinstance(act, dict):
            self.bad(path, "an activity must be an object")
            return None
        if "ref" in act:
            ref = act["ref"]
            if ref in self.refused:
                return None
            if ref not in self.declared:
                self.bad(path + ".ref", f"ref {ref!r} names no activity declared before it")
                return None
            kind, native = self.declared[ref]
            if kind == "action":
                self.bad(
                    path + ".ref",
                    f"ref {ref!r} repeats an action; each fault is injected once (declare a new action)",
                )
                return None
            return {kind: native}
        if act.get("background"):
            self.bad(
                path + ".background",
                "background activities are not supported (CODE probes continuously during the fault instead)",
            )
            return None
        for key in ("secrets", "controls"):
            if act.get(key):
                self.bad(f"{path}.{key}", f"activity-level {key} are not supported")
                return None
        prov = act.get("provider")
        if not isinstance(prov, dict):
            self.bad(path + ".provider", "an activity needs a provider object")
            return None
        ptype = prov.get("type", "python")
        atype = act.get("type")
        if in_hypothesis and atype == "python":  # the spec's own minimal example
            atype = "probe"
        if atype not in ("probe", "action"):
            self.bad(path + ".type", f"activity type must be probe or action, got {atype!r}")
            return None
        if ptype == "process":
            self.bad(
                path + ".provider.type",
                "process providers are not supported: CODE never runs arbitrary executables; use an http probe or a code.faults action",
            )
            return None
        if ptype not in ("http", "python"):
            self.bad(path + ".provider.type", f"provider type {ptype!r} is unknown (http, python)")
            return None
        name = act.get("name")
        if not isinstance(name, str) or not name:
            self.bad(path + ".name", "an activity needs a name")
            return None
        if atype == "probe":
            if ptype == "python" and ctk_k8s.is_chaosk8s(prov.get("module")):
                probe = ctk_k8s.probe(act, path, self.bad)
                if probe is not None:
                    self.declared[name] = ("probe", probe)
                return {"probe": probe} if probe is not None else None
            if ptype != "http":
                self.bad(
                    path + ".provider.type",
                    "only http probes are supported (python probes run arbitrary code)",
                )
                return None
            probe = self.http_probe(act, path, tolerance_required=in_hypothesis)
            if probe is not None:
                self.declared[name] = ("probe", probe)
            return {"probe": probe} if probe is not None else None
        if ptype == "http":
            self.bad(
                path + ".provider.type",
                "http actions are not supported: faults come from the code.faults catalogue",
            )
            return None
        if ctk_k8s.is_chaosk8s(prov.get("module")):
            k8s = ctk_k8s.action(name, prov, path, self.bad)
            if k8s is None:
                return None
            if k8s["fault"] == "scale_down":
                t = k8s["target"]
                self.scaled.add(f"{t['environment']}/{t['service']}-{t['version']}")
            if act.get("pauses"):
                k8s["pauses"] = act["pauses"]
            self.declared[name] = ("action", k8s)
            return {"action": k8s}
        got = self.python_target(prov, path, CATALOGUE, "method actions")
        if got is None:
            return None
        func, selector, params = got
        for p in check_params(func, params):
            self.bad(f"{path}.provider.arguments", p)
        selector.setdefault("platform", CATALOGUE[func].platform)
        action: dict[str, Any] = {"name": name, "fault": func, "target": selector, "params": params}
        pauses = act.get("pauses")
        if pauses:
            action["pauses"] = pauses
        self.declared[name] = ("action", action)
        return {"action": action}

    def rollback(self, act: Any, path: str) -> dict[str, Any] | None:
        if not isinstance(act, dict) or not isinstance(act.get("provider"), dict):
            self.bad(path, "a rollback must be an action with a provider")
            return None
        prov = act["provider"]
        if prov.get("type", "python") == "python" and ctk_k8s.is_chaosk8s(prov.get("module")):
            ctk_k8s.rollback(act, path, self.scaled, self.bad)
            return None  # covered by CODE's own revert of the fault (or refused)
        if prov.get("type", "python") != "python":
            self.bad(
                path + ".provider.type",
                f"rollback provider {prov.get('type')!r} is not supported; use {CTK_MODULE}.restore or {CTK_MODULE}.remove_faults",
            )
            return None
        got = self.python_target(prov, path, ROLLBACK_ACTIONS, "rollbacks")
        if got is None:
            return None
        func, selector, extra = got
        if extra:
            self.bad(f"{path}.provider.arguments", f"unexpected arguments {sorted(extra)}")
            return None
        return {"name": act.get("name") or func, "action": func, "target": selector}

    # ------------------------------------------------------------ experiment
    def run(self) -> dict[str, Any]:
        d = self.data
        for key in sorted(set(d) - _TOP):
            self.bad(f"$.{key}", "unknown top-level element")
        if d.get("secrets"):
            self.bad(
                "$.secrets",
                "secrets are not imported; put secret references in the engine's secret store",
            )
        guards, freq = (
            ctk_k8s.controls(d["controls"], self.bad) if d.get("controls") else ([], None)
        )
        native: dict[str, Any] = {
            "title": d.get("title"),
            "description": d.get("description", ""),
            "tags": d.get("tags", []),
            "configuration": d.get("configuration", {}),
        }
        ssh = d.get("steady-state-hypothesis")
        if ssh is not None:
            probes = []
            for i, p in enumerate(ssh.get("probes") or []):
                got = self.activity(p, f"$.steady-state-hypothesis.probes[{i}]", in_hypothesis=True)
                if got:
                    probes.append(got["probe"])
            native["steady_state"] = {"title": ssh.get("title", "steady state"), "probes": probes}
        for gpath, g in guards:
            got = self.activity(g, gpath, in_hypothesis=True)
            if got:
                native.setdefault("steady_state", {"title": "safeguards", "probes": []})
                native["steady_state"]["probes"].append(got["probe"])
        method = []
        for i, a in enumerate(d.get("method") or []):
            got = self.activity(a, f"$.method[{i}]")
            if got:
                method.append(got)
        if not d.get("method"):
            self.bad("$.method", "the method must have at least one activity")
        native["method"] = method
        rollbacks = []
        for i, a in enumerate(d.get("rollbacks") or []):
            got = self.rollback(a, f"$.rollbacks[{i}]")
            if got:
                rollbacks.append(got)
        native["rollbacks"] = rollbacks
        for i, ext in enumerate(d.get("extensions") or []):
            if isinstance(ext, dict) and ext.get("name") == "code":
                for key in ("controls", "seed", "protected"):
                    if key in ext:
                        native[key] = ext[key]
                for key in sorted(set(ext) - {"name", "controls", "seed", "protected"}):
                    self.bad(f"$.extensions[{i}].{key}", "unknown field of the code extension")
        if guards:
            ctl = native.setdefault("controls", {})
            if isinstance(ctl, dict):
                ctl["abort_on_probe_failure"] = True
                if freq is not None:
                    ctl.setdefault("probe_interval", f"{freq:g}s")
        return native


def chaostoolkit_to_native(data: dict[str, Any], source: str = "experiment") -> dict[str, Any]:
    """Chaos Toolkit document -> native experiment document (validated by
    :func:`chaos.model.parse_experiment`), or :class:`SpecError` naming every refusal."""
    imp = _Importer(data)
    native = imp.run()
    if imp.problems:
        raise SpecError(source, imp.problems)
    return native
