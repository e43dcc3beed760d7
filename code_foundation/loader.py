"""The one document loader: YAML/JSON text, bytes or a file → a pydantic model,
or :class:`~code_foundation.errors.SpecError` naming every bad field.

A binary or non-UTF-8 file, malformed YAML/JSON and a document that is not a
mapping are refused with a one-line reason; nothing else is ever raised for bad
input (a missing file is a ``SpecError`` too)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from code_foundation.errors import SpecError

M = TypeVar("M", bound=BaseModel)


def _problem(err: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "is required"
    elif err["type"] == "extra_forbidden":
        msg = "is not a known field"
    return f"{loc or '(top level)'}: {msg}"


def problems_of(exc: ValidationError) -> list[str]:
    """One line per bad field (``path.to.field: what is wrong``), without repeats."""
    seen: list[str] = []
    for err in exc.errors():
        p = _problem(err)
        if p not in seen:
            seen.append(p)
    return seen


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text of ``data``, or ``SpecError`` for a binary or non-UTF-8 document."""
    if b"\x00" in data:
        raise SpecError(source, ["is a binary file, not a YAML or JSON document"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(
            source, [f"is not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r})"]
        ) from None


def read_text(path: str | Path) -> str:
    """The UTF-8 text of a file, or ``SpecError`` (missing, unreadable, binary, non-UTF-8)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise SpecError(str(p), ["cannot read the file: not found"]) from None
    except IsADirectoryError:
        raise SpecError(str(p), ["cannot read the file: it is a directory"]) from None
    except OSError as exc:
        raise SpecError(str(p), [f"cannot read the file: {exc.strerror or exc}"]) from None
    return decode_text(data, str(p))


def parse_document(text: str | bytes, source: str = "document", *, json_only: bool = False) -> Any:
    """Parse YAML (a superset of JSON) or, with ``json_only``, strict JSON."""
    if isinstance(text, bytes):
        text = decode_text(text, source)
    if "\x00" in text:
        raise SpecError(source, ["is a binary file, not a YAML or JSON document"])
    if json_only:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(
                source, [f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(source, [f"malformed YAML{where}: {problem}"]) from None


def validate_model(model: type[M], data: Any, source: str, *, what: str = "spec") -> M:
    """``model`` from a parsed document, or ``SpecError`` naming every bad field."""
    if not isinstance(data, Mapping):
        raise SpecError(source, [f"the document must be a mapping of {what} fields"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, problems_of(exc)) from None


def load_text(model: type[M], text: str | bytes, source: str = "spec", *, what: str = "spec") -> M:
    """Text or bytes (YAML or JSON) → ``model``, or ``SpecError``."""
    return validate_model(model, parse_document(text, source), source, what=what)


def load_file(model: type[M], path: str | Path, *, what: str = "spec") -> M:
    """A YAML/JSON file → ``model``, or ``SpecError``."""
    p = Path(path)
    text = read_text(p)
    return validate_model(
        model, parse_document(text, str(p), json_only=p.suffix == ".json"), str(p), what=what
    )
