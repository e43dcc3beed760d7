"""Analysis templates for ``codectl`` (see :mod:`workflows.templates`): read the folder
of the ``analysis_templates_dir`` setting (``CODE_ANALYSIS_TEMPLATES_DIR``; every
``*.yaml``/``*.yml``/``*.json`` file is one template) and resolve a spec's references
before it is validated and started, so the run records the resolved analysis.

:func:`resolve_spec_text` returns the text unchanged when the spec references no
template (nothing is read); otherwise the resolved document as JSON. A template that
cannot be read or is malformed, two templates with one name, a placeholder naming an
undeclared arg, a missing folder setting, a missing template or arg: ``SpecError``
(exit 2) naming it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from code_foundation.errors import SpecError
from code_foundation.loader import parse_document, read_text, validate_model
from workflows.templates import AnalysisTemplate, resolve, uses_templates

_ARG = re.compile(r"\{\{\s*args\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
SETTING = "analysis_templates_dir (CODE_ANALYSIS_TEMPLATES_DIR)"


def load_templates(folder: Path) -> dict[str, AnalysisTemplate]:
    if not folder.is_dir():
        raise SpecError(str(folder), [f"is not a folder ({SETTING})"])
    out: dict[str, AnalysisTemplate] = {}
    problems: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
            continue
        doc = parse_document(read_text(path), str(path), json_only=path.suffix == ".json")
        t = validate_model(AnalysisTemplate, doc, str(path), what="analysis template")
        if t.name in out:
            problems.append(f"{path}: a second template named {t.name!r}")
        used = set(_ARG.findall(json.dumps(t.analysis)))
        for name in sorted(used - set(t.args)):
            problems.append(f"{path}: {{{{args.{name}}}}} is not a declared arg")
        out[t.name] = t
    if problems:
        raise SpecError(str(folder), problems)
    return out


def resolve_spec_text(text: str, source: str, folder: Path | None = None) -> str:
    """The spec text with its template references resolved (unchanged without any);
    ``folder`` defaults to the ``analysis_templates_dir`` setting."""
    doc = parse_document(text, source)
    if not uses_templates(doc):
        return text
    if folder is None:
        from activities.settings import Settings

        folder = Settings().analysis_templates_dir
    if folder is None:
        raise SpecError(source, [f"references analysis templates but {SETTING} is not set"])
    return json.dumps(resolve(doc, load_templates(folder), source))
