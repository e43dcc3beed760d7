"""``notifications:`` of a chaos experiment or a soak plan: which configured sinks hear
about the run (pure model; the sinks themselves live in the ``notify_sinks`` setting,
and the delivery is :mod:`workflows.run_notify`).

A deployment spec may also define sinks inline (``workflows.notify_spec``); an
experiment or a plan names them only, so one definition (URL, secret reference) serves
every run. ``events`` filters the run's events (empty: every one)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

RunEventKind = Literal[
    "chaos.started",
    "chaos.deviated",
    "chaos.finished",
    "chaos.rollback_failed",
    "soak.check_breached",
    "soak.finished",
]

SinkName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]


class NotifyRef(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    sinks: list[SinkName] = Field(
        default_factory=list, description="sink names from the notify_sinks setting"
    )
    events: list[RunEventKind] = Field(default_factory=list, description="default: every event")
