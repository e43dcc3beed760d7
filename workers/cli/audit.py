"""``codectl audit`` (typer sub-app ``audit_app``, mounted by :mod:`workers.cli.root`):
``audit verify`` verifies the ledger's hash chain (``rust_core.verify_chain``) at
``Settings().effective_ledger_url()``; prints OK, or the first broken record and exits 1
(3 if the ledger cannot be read). Output, errors included, goes to stdout."""

from __future__ import annotations

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
