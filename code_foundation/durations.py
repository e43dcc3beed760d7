"""Human durations ("30s", "5m", "1h30m", "1d", plain seconds, ISO 8601) as
``timedelta`` fields for pydantic models."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: Any) -> Any:
    """Turn "1h30m"/"45s"/90 into a timedelta; leave other values to pydantic."""
    if isinstance(value, bool):
        raise ValueError("a duration cannot be a boolean")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text:
            raise ValueError("a duration cannot be empty")
        if text.startswith("P"):
            return text  # ISO 8601, pydantic parses it
        pos, total = 0, 0.0
        for m in _PART.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNIT[m.group(2)]
            pos = m.end()
        if pos != len(text):
            raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 5m, 1h30m, 2d)")
        return timedelta(seconds=total)
    return value


def human(text: str) -> Any:
    """A duration default as users write it ("30s"): the model's ``validate_default``
    parses it, and the JSON Schema shows it as written."""
    return text


def format_duration(td: timedelta) -> str:
    secs = td.total_seconds()
    if secs and secs == int(secs):
        s = int(secs)
        out = ""
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            if s >= size:
                out += f"{s // size}{unit}"
                s %= size
        return out
    return f"{secs:g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda td: td.total_seconds(), return_type=float, when_used="json"),
]
