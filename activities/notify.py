"""The ``notify.deliver`` activity: one try of one event to one sink (see
:mod:`workflows.notify_spec` for the payloads and the signature).

A named sink is looked up in the ``notify_sinks`` setting; the URL must pass
:func:`code_foundation.targets.target_problem` (``allowed_targets``); a webhook's HMAC
key is resolved from its secret reference here and never leaves the activity. A sink
that answers non-2xx, times out or refuses the connection is an *answer*
(``state="failed"``), never an activity error: the ``NotifyWorkflow`` retries with
backoff. On the ``final`` try a failure is a give-up: logged and counted in
``code_notifications_total{sink,kind,result="gave_up"}`` (``delivered`` / ``refused``
are counted too). :func:`send` is the same delivery for ``codectl notify test``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client import Counter
from temporalio import activity

from activities.secrets import SecretError, SecretSource
from activities.settings import Settings
from code_foundation import targets
from code_foundation.names import NotifyA
from workflows.notify_spec import (
    DeliverInput,
    DeliverResult,
    Event,
    Sink,
    body_bytes,
    payload,
    signature,
    target_url,
    wants,
)

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "code_notifications_total",
    "Notification deliveries by sink and result (delivered, gave_up, refused)",
    ["sink", "kind", "result"],
)


class UnknownSink(LookupError):
    pass


def find_sink(settings: Settings, sink: str | Sink) -> Sink:
    if isinstance(sink, Sink):
        return sink
    for s in settings.notify_sinks:
        if s.name == sink:
            return s
    known = ", ".join(s.name for s in settings.notify_sinks) or "none"
    raise UnknownSink(f"no notification sink named {sink!r} in notify_sinks (known: {known})")


async def send(
    settings: Settings, sink: Sink, event: Event, secrets: SecretSource | None = None
) -> DeliverResult:
    """Send ``event`` to ``sink`` once (no retries)."""
    url = target_url(sink)
    problem = targets.target_problem(url, what="notification sink")
    if problem:
        return DeliverResult(sink=sink.name, state="refused", message=problem)
    body = body_bytes(payload(sink, event))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "code-notify/1",
        "X-Code-Event-Id": event.id,
        "X-Code-Event": event.kind,
        **sink.headers,
    }
    if sink.kind == "webhook" and sink.secret:
        if secrets is None:
            from activities.secrets import SecretResolver

            secrets = SecretResolver.from_settings(settings)
        try:
            values, _ = await secrets.aresolve({"key": sink.secret})
        except SecretError as exc:
            return DeliverResult(sink=sink.name, state="refused", message=str(exc))
        ts = str(int(time.time()))
        headers["X-Code-Timestamp"] = ts
        headers["X-Code-Signature"] = signature(values["key"].encode(), ts, body)
    timeout = sink.timeout.total_seconds()
    try:
        async with httpx.AsyncClient(timeout=timeout, verify=settings.tls_verify()) as c:
            r = await c.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return DeliverResult(sink=sink.name, message=f"{type(exc).__name__}: {exc}"[:300])
    ok = 200 <= r.status_code < 300
    return DeliverResult(
        sink=sink.name,
        state="delivered" if ok else "failed",
        code=r.status_code,
        message=f"status {r.status_code}",
    )


class NotifyActivities:
    def __init__(self, settings: Settings, secrets: Callable[[], SecretSource] | None = None):
        self.settings = settings
        self._secrets = secrets

    @activity.defn(name=NotifyA.DELIVER)
    async def deliver(self, inp: DeliverInput) -> DeliverResult:
        try:
            sink = find_sink(self.settings, inp.sink)
        except UnknownSink as exc:
            name = inp.sink if isinstance(inp.sink, str) else inp.sink.name
            DELIVERIES.labels(sink=name, kind="unknown", result="refused").inc()
            return DeliverResult(sink=name, state="refused", message=str(exc))
        if not wants(sink.events, inp.event.kind):
            return DeliverResult(sink=sink.name, state="skipped", message="event filtered")
        res = await send(self.settings, sink, inp.event, self._secrets() if self._secrets else None)
        res.attempts = inp.attempt
        result: str | None = None
        if res.state == "delivered":
            result = "delivered"
        elif res.state == "refused":
            result = "refused"
        elif inp.final:
            result = "gave_up"
            log.warning(
                "notification %s to %s gave up after %d tries: %s",
                inp.event.id,
                sink.name,
                inp.attempt,
                res.message,
            )
        if result:
            DELIVERIES.labels(sink=sink.name, kind=sink.kind, result=result).inc()
        return res


def notify_activities(settings: Settings) -> list[Callable[..., Any]]:
    return [NotifyActivities(settings).deliver]
