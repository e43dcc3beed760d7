"""Notifications of a deployment: sinks, events, and the exact bytes each sink gets.
Pure: no I/O (the delivery is :mod:`activities.notify`, the workflows
:mod:`workflows.notify`).

Sinks (``Sink``) are defined in the ``notify_sinks`` setting (referenced by name) or
inline in a spec's ``notifications.sinks``:

* ``webhook``: the event as compact JSON (sorted keys), signed when ``secret`` (a
  secret *reference*: ``env:NAME``, ``file:/path``, ``vault:...``) is set:
  ``X-Code-Timestamp: <unix seconds>`` and
  ``X-Code-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>." + raw body)>``
  (:func:`signature`); receivers recompute it over the raw body they got and refuse
  timestamps older than a few minutes (replay). ``X-Code-Event-Id`` and
  ``X-Code-Event`` carry the id and kind.
* ``slack``: an incoming-webhook payload (``text`` + one mrkdwn ``section`` block).
* ``alertmanager``: ``POST <url>/api/v2/alerts`` with one alert
  (``labels.alertname`` = ``Code`` + the event in CamelCase, ``service``,
  ``environment``, ``version``, ``severity``, ``event_id``; ``annotations.summary`` /
  ``description``; ``startsAt``).

An event's id is ``<workflow id>/<run id>/<kind>/<seq>`` (``seq`` counts the
run's events from 1): it comes from the run's history, so a redelivery carries the same
id and the same event is never sent with two ids."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from code_foundation.durations import Duration, human

EventKind = Literal[
    "deployment.started",
    "deployment.step_finished",
    "deployment.waiting_for_approval",
    "deployment.promoted",
    "deployment.rolled_back",
    "deployment.failed",
    "deployment.aborted",
    "release.started",
    "release.stage_started",
    "release.stage_finished",
    "release.finished",
    "chaos.started",
    "chaos.deviated",
    "chaos.finished",
    "chaos.rollback_failed",
    "soak.check_breached",
    "soak.finished",
    "test",
]
SinkKind = Literal["webhook", "slack", "alertmanager"]
ALERTS_PATH = "/api/v2/alerts"
SEVERITY: dict[str, str] = {
    "deployment.rolled_back": "warning",
    "deployment.failed": "critical",
    "deployment.aborted": "warning",
    "chaos.deviated": "warning",
    "chaos.rollback_failed": "critical",
    "soak.check_breached": "warning",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


class Sink(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    kind: SinkKind = "webhook"
    url: str = Field(pattern=r"^https?://", description="must be allowed by allowed_targets")
    secret: str | None = Field(
        None, description="webhook: HMAC key as a secret reference (env:NAME, file:/p, vault:..)"
    )
    headers: dict[str, str] = Field(default_factory=dict)
    events: list[EventKind] = Field(default_factory=list, description="default: every event")
    timeout: Duration = human("5s")


class DeliveryPolicy(_Model):
    attempts: int = Field(4, ge=1, le=20, description="tries per sink before giving up")
    backoff: Duration = Field(human("1s"), description="first wait between tries (doubles)")
    max_backoff: Duration = human("30s")


class Notifications(_Model):
    """``notifications:`` of a spec: where its events go."""

    sinks: list[str | Sink] = Field(
        default_factory=list, description="sink names from the notify_sinks setting, or inline"
    )
    events: list[EventKind] = Field(default_factory=list, description="default: every event")
    delivery: DeliveryPolicy = Field(default_factory=DeliveryPolicy)


class Event(_Model):
    id: str
    kind: EventKind
    time: datetime
    workflow_id: str
    service: str
    environment: str
    version: str
    previous_version: str | None = None
    step: int | None = None
    outcome: str | None = None
    reason: str = ""

    def summary(self) -> str:
        what = self.kind.removeprefix("deployment.").replace("_", " ")
        step = f" (step {self.step})" if self.step is not None and self.step >= 0 else ""
        return f"{self.service} {self.version} in {self.environment}: {what}{step}"


class NotifyInput(_Model):
    event: Event
    sinks: list[str | Sink]
    delivery: DeliveryPolicy = Field(default_factory=DeliveryPolicy)


class DeliverInput(_Model):
    event: Event
    sink: str | Sink
    attempt: int = 1
    final: bool = Field(False, description="the last try: a failure is a give-up (counted)")


class DeliverResult(_Model):
    sink: str
    state: Literal["delivered", "failed", "skipped", "refused"] = "failed"
    code: int | None = None
    attempts: int = 1
    message: str = ""


class NotifyResult(_Model):
    event_id: str
    deliveries: list[DeliverResult] = Field(default_factory=list)


class NotificationRecord(_Model):
    """What the deployment's status shows of one event's delivery."""

    id: str
    kind: EventKind
    state: str = Field("sending", description="sending | delivered | gave up | not started")
    detail: str = ""


# ---------------------------------------------------------------- payloads (pure)
def body_bytes(payload: Any) -> bytes:
    """The exact bytes sent (and signed): compact JSON with sorted keys."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``<timestamp>.`` + the raw body."""
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def payload(sink: Sink, event: Event) -> Any:
    """The JSON document ``sink`` gets for ``event``."""
    data = event.model_dump(mode="json")
    if sink.kind == "webhook":
        return data
    if sink.kind == "slack":
        text = f"*{event.summary()}*" + (f"\n{event.reason}" if event.reason else "")
        return {
            "text": event.summary(),
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": f"`{event.id}`"}],
                },
            ],
        }
    name = "".join(p.capitalize() for p in event.kind.replace(".", "_").split("_"))
    return [
        {
            "labels": {
                "alertname": f"Code{name}",
                "service": event.service,
                "environment": event.environment,
                "version": event.version,
                "severity": SEVERITY.get(event.kind, "info"),
                "event_id": event.id,
            },
            "annotations": {
                "summary": event.summary(),
                "description": event.reason or event.summary(),
                "workflow_id": event.workflow_id,
            },
            "startsAt": data["time"],
        }
    ]


def target_url(sink: Sink) -> str:
    if sink.kind == "alertmanager":
        return sink.url.rstrip("/") + ALERTS_PATH
    return sink.url


def wants(events: list[EventKind], kind: EventKind) -> bool:
    """An empty filter takes every event."""
    return not events or kind in events or kind == "test"
