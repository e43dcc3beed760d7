"""``codectl audit`` (typer sub-app ``audit_app``, mounted by :mod:`workers.cli.root`):
``audit verify`` verifies the ledger's hash chain (``rust_core.verify_chain``) at
``Settings().effective_ledger_url()``; prints OK, or the first broken record and exits 1
(3 if the ledger cannot be read). Output, errors included, goes to stdout. ``audit list
[--actor X] [--denied]`` lists records (identity decisions: principal, claims, reason)."""

from __future__ import annotations

import json
from typing import Any

import typer

from code_foundation.errors import CodeError
from workers.cli.common import console, fail, mask_url
from workers.cli.output import OUTPUT_HELP, check_output, emit

audit_app = typer.Typer(help="Inspect the release ledger's audit chain.", no_args_is_help=True)


@audit_app.callback()
def _audit() -> None:
    """Inspect the release ledger's audit chain."""  # keeps `verify` a sub-command


@audit_app.command("verify")
def verify(output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP)) -> None:
    """Verify every audit record hashes its predecessor; exit 1 at the first broken link."""
    from activities.ledger import Ledger
    from activities.settings import Settings

    check_output(output)
    url = Settings().effective_ledger_url()
    try:
        ledger = Ledger(url)
        records = ledger.audit_records()
        broken = ledger.verify_audit()
    except CodeError as exc:
        raise fail(exc, out=console) from None
    except Exception as exc:  # noqa: BLE001 - a CLI says what failed, not a traceback
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise fail(
            f"cannot read the ledger: {type(exc).__name__}: {first}", 3, out=console
        ) from None
    safe_url = mask_url(url)
    if output == "json":
        doc = {"ok": broken is None, "records": len(records), "broken_seq": broken}
        emit("code.audit.verify/v1", {**doc, "ledger": safe_url})
        raise typer.Exit(0 if broken is None else 1)
    if broken is None:
        console.print(f"OK: {len(records)} record(s) verified in {safe_url}")
        return
    rec = next((r for r in records if r.seq == broken), None)
    what = (
        f"seq {broken} ({rec.ts.isoformat()} {rec.actor} {rec.action} {rec.subject})"
        if rec is not None
        else f"seq {broken} (missing)"
    )
    console.print(
        f"[red]BROKEN[/red]: first broken link at {what} in {safe_url}; records from "
        f"seq {broken} on cannot be trusted"
    )
    raise typer.Exit(1)


@audit_app.command("list")
def list_records(
    actor: str = typer.Option(None, "--actor", help="only this actor (or claimed identity)"),
    denied: bool = typer.Option(False, "--denied", help="only denied identity decisions"),
    action: str = typer.Option(None, "--action", help="only actions starting with this"),
    limit: int = typer.Option(50, "--limit", help="the newest N records"),
    output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
) -> None:
    """List audit records, newest last (identity decisions carry principal, claims, reason)."""
    from activities.ledger import Ledger
    from activities.settings import Settings

    check_output(output)
    try:
        records = Ledger(Settings().effective_ledger_url()).audit_records()
    except Exception as exc:  # noqa: BLE001 - a CLI says what failed, not a traceback
        raise fail(f"cannot read the ledger: {type(exc).__name__}", 3, out=console) from None

    def detail(r: Any) -> dict[str, Any]:
        try:
            got = json.loads(r.detail_json or "{}")
        except ValueError:
            return {}
        return got if isinstance(got, dict) else {}

    def keep(r: Any) -> bool:
        d = detail(r)
        if actor and actor not in (r.actor, d.get("claimed_identity")):
            return False
        if denied and d.get("decision") != "denied" and "rejected" not in r.action:
            return False
        return not action or r.action.startswith(action)

    rows = [r for r in records if keep(r)][-limit:]
    if output == "json":
        emit(
            "code.audit.list/v1",
            {
                "records": [
                    {
                        "seq": r.seq,
                        "ts": r.ts.isoformat(),
                        "actor": r.actor,
                        "action": r.action,
                        "subject": r.subject,
                        "detail": detail(r),
                    }
                    for r in rows
                ]
            },
        )
        return
    for r in rows:
        d = detail(r)
        verdict = d.get("decision", "")
        console.print(
            f"{r.seq:>5} {r.ts.isoformat(timespec='seconds')} {r.actor} {r.action} {r.subject}"
            + (f" [{'red' if verdict == 'denied' else 'green'}]{verdict}[/]" if verdict else "")
            + (f": {d['reason']}" if d.get("reason") else ""),
            soft_wrap=True,
        )
