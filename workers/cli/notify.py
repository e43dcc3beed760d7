"""``codectl notify``: notification sinks (mounted by :mod:`workers.cli.root`).

* ``codectl notify test SINK``: send one ``test`` event to the sink named ``SINK`` in
  the ``notify_sinks`` setting, once, from this process (signed like every webhook
  delivery). Exit 0 when the sink answered 2xx, 1 when it failed (status or
  connection), 2 when there is no such sink or its URL/secret is refused.
* ``codectl notify sinks``: the configured sinks (secrets are references, shown as
  they are)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import typer

from workers.cli.common import console, fail, run_async

notify_app = typer.Typer(help="Notification sinks: list them, send a test event.")


@notify_app.callback()
def _notify() -> None:
    """Notification sinks: list them, send a test event."""


@notify_app.command("test")
def test(
    sink: str = typer.Argument(..., help="a sink name from the notify_sinks setting"),
    output: str = typer.Option("text", "--output", "-o", help="text or json"),
) -> None:
    """Send one test event to SINK and say what it answered."""
    from activities.notify import UnknownSink, find_sink, send
    from activities.settings import Settings
    from workflows.notify_spec import Event

    settings = Settings()
    try:
        target = find_sink(settings, sink)
    except UnknownSink as exc:
        raise fail(str(exc), 2) from None
    now = datetime.now(UTC)
    event = Event(
        id=f"codectl/test/{uuid.uuid4()}",
        kind="test",
        time=now,
        workflow_id="codectl-notify-test",
        service="code",
        environment="test",
        version="0",
        reason=f"test event from codectl notify test {sink}",
    )
    res = run_async(send(settings, target, event), any_error=True)
    if output == "json":
        console.print_json(json.dumps({"event_id": event.id, **res.model_dump(mode="json")}))
    else:
        console.print(f"{sink} ({target.kind}): {res.state} — {res.message}", soft_wrap=True)
    if res.state == "refused":
        raise typer.Exit(2)
    if res.state != "delivered":
        raise typer.Exit(1)


@notify_app.command("sinks")
def sinks() -> None:
    """List the sinks of the notify_sinks setting."""
    from activities.settings import Settings

    configured = Settings().notify_sinks
    if not configured:
        console.print(
            "no notification sinks configured: set notify_sinks in the settings file "
            "(CODE_CONFIG) or CODE_NOTIFY_SINKS, or give a spec `notifications:` (docs/hooks.md)"
        )
    for s in configured:
        events = ", ".join(s.events) or "every event"
        signed = " signed" if s.kind == "webhook" and s.secret else ""
        console.print(f"{s.name}: {s.kind}{signed} {s.url} ({events})", soft_wrap=True)
