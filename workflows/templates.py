"""Analysis templates (after Argo's AnalysisTemplate): named, reusable analysis
definitions with typed args, referenced from a spec and resolved *before* the run
starts, so the spec a run records (its history, the ledger) holds the resolved
analysis and a rejudge of it is exact. Pure: the files are read by the caller
(:mod:`workers.cli.templates`).

A template document::

    name: http-latency
    args:
      route: {type: string}
      max_ratio: {type: number, default: 1.5}
    analysis:                      # any AnalysisSpec fields; {{args.NAME}} placeholders
      interval: 30s
      metrics:
        - {name: p99, source: latency_ms}
      thresholds: {max_p99_latency_ratio: "{{args.max_ratio}}"}

A reference, wherever an analysis goes (``steps[].analysis``, ``strategy.canary.analysis``,
``blue_green.pre_promotion_analysis``): ``{template: http-latency, args: {route: /api}}``;
other keys given beside ``template`` override the template's. A value that is exactly
``"{{args.x}}"`` takes the arg's typed value; inside a longer string it is its text. A
missing template, a missing or unknown arg, or an arg of the wrong type is a
``SpecError`` naming it (``codectl validate`` exits 2)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from code_foundation.errors import SpecError

ArgType = Literal["string", "number", "integer", "boolean", "duration"]
_PLACEHOLDER = re.compile(r"\{\{\s*args\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "duration": (str, int, float),
}


class TemplateArg(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ArgType = "string"
    default: Any = None
    description: str = ""


class AnalysisTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    args: dict[str, TemplateArg] = Field(default_factory=dict)
    analysis: dict[str, Any]


def uses_templates(doc: Any) -> bool:
    """Whether a spec document references any template."""
    return bool(_references(doc))


def _references(doc: Any) -> list[tuple[str, dict[str, Any], str]]:
    """``(where, parent, key)`` of every analysis that references a template."""
    out: list[tuple[str, dict[str, Any], str]] = []
    strategy = doc.get("strategy") if isinstance(doc, dict) else None
    if not isinstance(strategy, dict):
        return out
    canary = strategy.get("canary")
    if isinstance(canary, dict):
        for i, step in enumerate(canary.get("steps") or []):
            if isinstance(step, dict) and _is_ref(step.get("analysis")):
                out.append((f"strategy.canary.steps[{i}].analysis", step, "analysis"))
        if _is_ref(canary.get("analysis")):
            out.append(("strategy.canary.analysis", canary, "analysis"))
    bg = strategy.get("blue_green")
    if isinstance(bg, dict) and _is_ref(bg.get("pre_promotion_analysis")):
        out.append(("strategy.blue_green.pre_promotion_analysis", bg, "pre_promotion_analysis"))
    return out


def _is_ref(v: Any) -> bool:
    return isinstance(v, dict) and "template" in v


def resolve(doc: Any, templates: dict[str, AnalysisTemplate], source: str) -> Any:
    """``doc`` with every template reference replaced by its resolved analysis (in place),
    or ``SpecError`` naming every missing template or arg."""
    problems: list[str] = []
    for where, parent, key in _references(doc):
        ref = dict(parent[key])
        name = str(ref.pop("template"))
        given = ref.pop("args", None) or {}
        t = templates.get(name)
        if t is None:
            known = ", ".join(sorted(templates)) or "none"
            problems.append(f"{where}: no analysis template named {name!r} (known: {known})")
            continue
        if not isinstance(given, dict):
            problems.append(f"{where}.args: must be a mapping of arg name to value")
            continue
        values, bad = _args(t, given, where)
        problems += bad
        if bad:
            continue
        parent[key] = {**_substitute(t.analysis, values), **ref}
    if problems:
        raise SpecError(source, problems)
    return doc


def _args(
    t: AnalysisTemplate, given: dict[str, Any], where: str
) -> tuple[dict[str, Any], list[str]]:
    values: dict[str, Any] = {}
    bad: list[str] = []
    for extra in sorted(set(given) - set(t.args)):
        bad.append(f"{where}.args.{extra}: template {t.name!r} has no arg {extra!r}")
    for name, arg in t.args.items():
        if name in given:
            v = given[name]
        elif arg.default is not None:
            v = arg.default
        else:
            bad.append(f"{where}.args.{name}: missing (template {t.name!r} needs it)")
            continue
        ok = isinstance(v, _TYPES[arg.type]) and not (
            arg.type in ("number", "integer") and isinstance(v, bool)
        )
        if not ok:
            bad.append(f"{where}.args.{name}: must be of type {arg.type} (got {v!r})")
            continue
        values[name] = v
    return values, bad


def _substitute(v: Any, values: dict[str, Any]) -> Any:
    if isinstance(v, dict):
        return {k: _substitute(x, values) for k, x in v.items()}
    if isinstance(v, list):
        return [_substitute(x, values) for x in v]
    if isinstance(v, str):
        whole = _PLACEHOLDER.fullmatch(v.strip())
        if whole:
            return values.get(whole.group(1), v)
        return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), v)
    return v
