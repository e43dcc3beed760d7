"""Lifecycle hooks of a deployment (after Flagger's webhooks): the spec's ``hooks:`` list,
the activity's input/result models, and the pure helpers both sides share.

A hook runs ``at`` one point of the run:

* gates (``confirm_rollout`` before anything is applied, ``confirm_traffic_increase``
  before each canary/rolling weight increase, ``confirm_promotion`` before promotion)
  are polled every ``interval`` until they pass; past ``deadline`` the run follows
  ``on_timeout`` (``fail``: the run fails and compensates; ``proceed``: it goes on);
* checks (``pre_rollout`` after apply, ``rollout`` after every step, ``post_rollout``
  after promotion, ``rollback`` after a compensation) are tried ``retries + 1`` times,
  ``retry_interval`` apart; a failed ``pre_rollout``/``rollout`` check fails the run
  (which compensates); ``post_rollout`` and ``rollback`` results are recorded only (the
  run's outcome is already decided).

Exactly one of ``http`` (method, URL, headers, secret headers, a ``${field}`` body
template, success on status / JSON path / regex) or ``command`` (argv list — never a
shell — env, workdir, expected exit code). Secret headers and env hold *references*
(``env:NAME``, ``file:/path``, ``vault:...``), resolved by the activity only: values
never reach history. Every result keeps at most :data:`EXCERPT_LIMIT` characters of
the response. Pure: no I/O."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from code_foundation.durations import Duration, human

HookPoint = Literal[
    "confirm_rollout",
    "pre_rollout",
    "rollout",
    "confirm_traffic_increase",
    "confirm_promotion",
    "post_rollout",
    "rollback",
]
GATES: frozenset[str] = frozenset(
    {"confirm_rollout", "confirm_traffic_increase", "confirm_promotion"}
)
"""Hook points that hold the run until they pass (or their deadline)."""
RECORD_ONLY: frozenset[str] = frozenset({"post_rollout", "rollback"})
"""Hook points whose failure is recorded but never changes the outcome."""
EXCERPT_LIMIT = 512
FIELDS = (
    "workflow_id",
    "service",
    "environment",
    "version",
    "previous_version",
    "platform",
    "hook",
    "point",
    "step",
    "weight",
    "attempt",
)
"""The run's fields a body template (``${field}``) and a command's env (``CODE_HOOK_*``) see."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


class HttpSuccess(_Model):
    """When an HTTP hook passes: every condition given must hold."""

    status: list[int] = Field(
        default_factory=list, description="accepted status codes (default: any 2xx)"
    )
    json_path: str | None = Field(
        None, description="dotted path into the JSON body, e.g. $.result.ok or items[0].state"
    )
    equals: Any = Field(None, description="the value expected at json_path (default: truthy)")
    regex: str | None = Field(None, description="the body must match this regular expression")

    @model_validator(mode="after")
    def _regex(self) -> HttpSuccess:
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(
                    f"success.regex is not a valid regular expression ({exc})"
                ) from None
        if self.json_path is not None:
            parse_path(self.json_path)
        return self


class HttpHook(_Model):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "POST"
    url: str = Field(pattern=r"^https?://", description="must be allowed by allowed_targets")
    headers: dict[str, str] = Field(default_factory=dict)
    secret_headers: dict[str, str] = Field(
        default_factory=dict,
        description="header -> secret reference, optionally after a literal prefix: "
        "'Bearer env:HOOK_TOKEN'",
    )
    body: str | None = Field(
        None,
        description="body template with ${field} placeholders (workflow_id service environment "
        "version previous_version platform hook point step weight attempt); default for "
        "POST/PUT/PATCH: those fields as JSON",
    )
    success: HttpSuccess = Field(default_factory=HttpSuccess)


class CommandHook(_Model):
    argv: list[str] = Field(
        min_length=1, description="argv; '{python}' is the worker's Python; never a shell"
    )
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, str] = Field(default_factory=dict, description="env var -> reference")
    workdir: str | None = None
    exit_code: int = Field(0, description="the exit code that passes")


class Hook(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    at: HookPoint
    http: HttpHook | None = None
    command: CommandHook | None = None
    timeout: Duration = Field(human("10s"), description="one attempt's time limit")
    retries: int = Field(0, ge=0, le=20, description="checks: further attempts after a failure")
    retry_interval: Duration = human("5s")
    interval: Duration = Field(human("10s"), description="gates: time between polls")
    deadline: Duration = Field(human("10m"), description="gates: stop polling after this")
    on_timeout: Literal["fail", "proceed"] = "fail"

    @model_validator(mode="after")
    def _one_kind(self) -> Hook:
        if (self.http is None) == (self.command is None):
            raise ValueError(f"hook {self.name!r}: set exactly one of http or command")
        for what in ("timeout", "interval", "deadline"):
            if getattr(self, what).total_seconds() <= 0:
                raise ValueError(f"hook {self.name!r}: {what} must be positive")
        return self

    @property
    def gate(self) -> bool:
        return self.at in GATES

    @property
    def kind(self) -> Literal["http", "command"]:
        return "http" if self.http is not None else "command"


def hooks_problem(hooks: list[Hook]) -> str | None:
    """Why a spec's hook list is refused (None when it is fine)."""
    names = [h.name for h in hooks]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        return f"hook names must be unique (repeated: {', '.join(dup)})"
    return None


# ---------------------------------------------------------------- activity models
class HookContext(_Model):
    """The run's fields a hook call sees (no secrets)."""

    workflow_id: str
    service: str
    environment: str
    version: str
    previous_version: str | None = None
    platform: str = "local"
    hook: str = ""
    point: HookPoint
    step: int = -1
    weight: int | None = None
    attempt: int = 1

    def fields(self) -> dict[str, str]:
        """Every field as text (None as an empty string)."""
        return {k: "" if v is None else str(v) for k, v in self.model_dump().items()}


class HookCallInput(_Model):
    hook: Hook
    context: HookContext


class HookCallResult(_Model):
    """One attempt's answer. ``passed=False`` is a hook failure, not an activity error."""

    passed: bool
    status: str = Field(description="passed | failed | error (could not call)")
    code: int | None = Field(None, description="HTTP status or exit code")
    duration_ms: float = 0.0
    excerpt: str = Field("", max_length=EXCERPT_LIMIT)
    message: str = ""


class HookResult(_Model):
    """What the status shows of one hook at one point (its last attempt)."""

    name: str
    point: HookPoint
    kind: Literal["http", "command"]
    step: int = -1
    status: str = Field(
        description="running | passed | failed | error | timed out (fail) | timed out (proceed)"
    )
    attempts: int = 0
    code: int | None = None
    duration_ms: float = 0.0
    excerpt: str = Field("", max_length=EXCERPT_LIMIT)
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


# ---------------------------------------------------------------- pure helpers
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_path(path: str) -> list[str | int]:
    """``$.a.b[0].c`` (or ``a.b[0].c``) -> ``["a", "b", 0, "c"]``; ValueError if malformed."""
    p = path.strip()
    p = p[1:] if p.startswith("$") else p
    p = p[1:] if p.startswith(".") else p
    if not p:
        return []
    out: list[str | int] = []
    pos = 0
    while pos < len(p):
        if p[pos] == ".":
            pos += 1
        m = _SEGMENT.match(p, pos)
        if m is None:
            raise ValueError(f"json_path {path!r} is malformed near position {pos}")
        out.append(int(m.group(2)) if m.group(2) is not None else m.group(1))
        pos = m.end()
    return out


_MISSING = object()


def lookup(doc: Any, path: str) -> Any:
    """The value at ``path`` in ``doc``, or :data:`MISSING` when the path does not exist."""
    cur = doc
    for seg in parse_path(path):
        in_list = isinstance(seg, int) and isinstance(cur, list) and -len(cur) <= seg < len(cur)
        in_dict = isinstance(seg, str) and isinstance(cur, dict) and seg in cur
        if not (in_list or in_dict):
            return MISSING
        cur = cur[seg]
    return cur


MISSING: Any = _MISSING


def excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks a cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
