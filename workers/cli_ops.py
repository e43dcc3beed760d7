"""Operations sub-commands of ``codectl`` (mounted by ``workers/cli.py``):

* ``slo_app`` (``codectl slo``): ``rules SLO.yaml [-o FILE]`` generates Prometheus
  recording rules and multi-window burn-rate alerts; ``override WORKFLOW_ID`` sends
  the audited error-budget override (``approve`` update with ``override=true``).
* ``codec_app`` (``codectl codec``): ``keygen`` / ``rotate`` a JSON keyring.
* ``codec_server`` (``codectl codec-server``): the Temporal codec server with a
  shared-token check, for the Web UI.

Rejected approvals: the Update validator rejects a non-approver before anything is
written to the workflow history (so a stranger cannot make the workflow do work), and
a validator cannot run activities; :func:`approve` therefore records every rejection
in the ledger's hash-chained audit log from the caller's side
(``deployment.approval_rejected`` / ``deployment.override_rejected``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer

slo_app = typer.Typer(
    help="SLOs: burn-rate rules and error-budget overrides.", no_args_is_help=True
)
codec_app = typer.Typer(help="Payload encryption keyrings.", no_args_is_help=True)


def audit_rejection(
    settings: Any, workflow_id: str, actor: str, reason: str, override: bool
) -> None:
    """Append a rejected approval/override to the ledger's audit chain (best effort)."""
    from activities.ledger import Ledger

    action = "deployment.override_rejected" if override else "deployment.approval_rejected"
    Ledger(settings.effective_ledger_url()).audit(
        actor, action, workflow_id, {"reason": reason[:500]}
    )


async def approve(
    client: Any,
    settings: Any,
    workflow_id: str,
    actor: str,
    comment: str = "",
    override: bool = False,
) -> tuple[bool, str]:
    """Send the ``approve`` update; a rejection is audited. Returns (accepted, message)."""
    from temporalio.client import WorkflowUpdateFailedError

    from workflows.models import ApproveInput, ApproveResult

    try:
        res = await client.get_workflow_handle(workflow_id).execute_update(
            "approve",
            ApproveInput(identity=actor, comment=comment, override=override),
            result_type=ApproveResult,
        )
    except WorkflowUpdateFailedError as exc:
        reason = str(exc.cause)
        try:
            await asyncio.to_thread(audit_rejection, settings, workflow_id, actor, reason, override)
        except Exception as audit_exc:  # noqa: BLE001 - the rejection stands; say the audit failed
            reason += f" (could not audit the rejection: {audit_exc})"
        return False, reason
    return True, res.message


@slo_app.callback()
def _slo() -> None:
    """SLOs: burn-rate rules and error-budget overrides."""


@slo_app.command("rules")
def rules(
    slo_file: Path = typer.Argument(..., help="OpenSLO YAML (kind: SLO documents)"),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="write here (e.g. deploy/prometheus/slo-rules.yaml)"
    ),
) -> None:
    """Generate Prometheus recording rules + SRE Workbook multi-window burn-rate alerts."""
    from code_foundation.errors import SpecError
    from workflows.slo import parse_slos, rules_yaml

    try:
        text = slo_file.read_text()
        slos = parse_slos(text, str(slo_file))
    except OSError as exc:
        typer.echo(f"error: cannot read {slo_file}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    except SpecError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    out = rules_yaml(slos)
    if output is None:
        typer.echo(out, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(out)
    typer.echo(f"wrote {len(slos)} SLO(s) to {output}")


@slo_app.command("override")
def override(
    workflow_id: str,
    comment: str = typer.Option("", help="why"),
    actor: str = typer.Option(None, help="your identity"),
) -> None:
    """Override a spent error budget for one waiting deployment (audited)."""
    from activities.settings import Settings
    from workers.cli import client_for, identity, run_async

    settings = Settings()

    async def go() -> tuple[bool, str]:
        client = await client_for(settings)
        return await approve(
            client, settings, workflow_id, actor or identity(), comment, override=True
        )

    ok, msg = run_async(go())
    typer.echo(("override accepted: " if ok else "override rejected: ") + msg, err=not ok)
    raise typer.Exit(0 if ok else 1)


@codec_app.callback()
def _codec() -> None:
    """Payload encryption keyrings."""


@codec_app.command("keygen")
def keygen(path: Path, key_id: str = typer.Option("k1", "--id")) -> None:
    """Write a new keyring with one random AES-256 key (mode 0600)."""
    from workers.codec import Keyring

    if path.exists():
        typer.echo(f"error: {path} exists; use `codectl codec rotate`", err=True)
        raise typer.Exit(2)
    _write_ring(path, Keyring.generate(key_id).to_json())


@codec_app.command("rotate")
def rotate(path: Path, key_id: str = typer.Option(..., "--id", help="id of the new key")) -> None:
    """Add a new key that becomes primary; old keys stay for decryption."""
    from workers.codec import Keyring

    ring = Keyring.from_file(path)
    if key_id in ring.keys:
        typer.echo(f"error: key id {key_id!r} already in {path}", err=True)
        raise typer.Exit(2)
    _write_ring(path, ring.rotated(key_id).to_json())


def _write_ring(path: Path, data: dict[str, Any]) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    typer.echo(f"keyring {path}: primary {data['primary']}, {len(data['keys'])} key(s)")


def codec_server(
    port: int = typer.Option(8288, "--port"),
    host: str = typer.Option("127.0.0.1", "--host"),
    token_file: Path = typer.Option(..., "--token-file", help="file holding the shared token"),
    keyring: Path | None = typer.Option(
        None, "--keyring", help="default: CODE_CODEC_KEYRING / Vault"
    ),
    origin: list[str] = typer.Option([], "--origin", help="Web UI origin(s) allowed (CORS)"),
) -> None:
    """Serve the Temporal codec-server protocol (/encode, /decode) behind a shared token."""
    from activities.settings import Settings
    from workers.codec import EncryptionCodec, Keyring, keyring_from_settings
    from workers.codec_server import read_token, serve

    settings = Settings()
    try:
        ring = Keyring.from_file(keyring) if keyring else keyring_from_settings(settings)
    except (OSError, ValueError, KeyError) as exc:
        typer.echo(f"error: cannot load the keyring: {exc}", err=True)
        raise typer.Exit(2) from None
    if ring is None:
        typer.echo(
            "error: no keyring: pass --keyring or set CODE_CODEC_KEYRING / CODE_CODEC_VAULT_PATH",
            err=True,
        )
        raise typer.Exit(2)
    try:
        token = read_token(token_file)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    origins = origin or [settings.codec_server_origin]

    async def main() -> None:
        runner = await serve(EncryptionCodec(ring), token, origins, host, port)
        typer.echo(f"codec server on http://{host}:{port} (origins: {', '.join(origins)})")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
