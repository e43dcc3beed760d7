"""Payload-encryption commands of ``codectl`` (mounted by :mod:`workers.cli.root`):

* ``codec_app`` (``codectl codec``): ``keygen`` / ``rotate`` a JSON keyring (mode 0600).
* :func:`codec_server` (``codectl codec-server``): the Temporal codec server for the Web
  UI, behind a shared-token check.

The keyring and token files are read through :mod:`code_foundation.loader`: a missing,
binary, non-UTF-8 or malformed file exits 2 with the reason. The codec itself lives in
:mod:`workers.codec`, the server in :mod:`workers.codec_server`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from code_foundation.errors import CodeError, SpecError
from code_foundation.loader import parse_document, read_text
from workers.cli.common import fail, run_async

if TYPE_CHECKING:
    from workers.codec import Keyring

codec_app = typer.Typer(help="Payload encryption keyrings.", no_args_is_help=True)


def read_keyring(path: Path) -> Keyring:
    """A keyring file (JSON), or ``SpecError`` saying why it cannot be used."""
    from workers.codec import Keyring

    data = parse_document(read_text(path), str(path), json_only=True)
    try:
        return Keyring.from_json(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SpecError(str(path), [f"not a keyring: {exc}"]) from None


@codec_app.callback()
def _codec() -> None:
    """Payload encryption keyrings."""


@codec_app.command("keygen")
def keygen(path: Path, key_id: str = typer.Option("k1", "--id")) -> None:
    """Write a new keyring with one random AES-256 key (mode 0600)."""
    from workers.codec import Keyring

    if path.exists():
        raise fail(f"{path} exists; use `codectl codec rotate`", 2)
    _write_ring(path, Keyring.generate(key_id).to_json())


@codec_app.command("rotate")
def rotate(path: Path, key_id: str = typer.Option(..., "--id", help="id of the new key")) -> None:
    """Add a new key that becomes primary; old keys stay for decryption."""
    try:
        ring = read_keyring(path)
    except CodeError as exc:
        raise fail(exc) from None
    if key_id in ring.keys:
        raise fail(f"key id {key_id!r} already in {path}", 2)
    _write_ring(path, ring.rotated(key_id).to_json())


def _write_ring(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    typer.echo(f"keyring {path}: primary {data['primary']}, {len(data['keys'])} key(s)")


def codec_server(
    port: int = typer.Option(8288, "--port"),
    host: str = typer.Option("127.0.0.1", "--host"),
    token_file: Path | None = typer.Option(
        None,
        "--token-file",
        help="file holding the shared token (default: OIDC tokens "
        "with the viewer role, when identity is configured)",
    ),
    keyring: Path | None = typer.Option(
        None, "--keyring", help="default: CODE_CODEC_KEYRING / Vault"
    ),
    origin: list[str] = typer.Option([], "--origin", help="Web UI origin(s) allowed (CORS)"),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="serve HTTPS (TLS 1.2+)"),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="the certificate's key"),
) -> None:
    """Serve the Temporal codec-server protocol (/encode, /decode) behind a shared token
    or, with identity configured, OIDC tokens giving the viewer role."""
    from activities.identity import IdentitySource
    from activities.settings import Settings
    from workers.codec import EncryptionCodec, keyring_from_settings
    from workers.codec_server import Authorizer, oidc_authorizer, read_token, serve
    from workers.tls import server_context

    settings = Settings()
    try:
        ring = read_keyring(keyring) if keyring else keyring_from_settings(settings)
    except SpecError as exc:  # a missing, binary or non-UTF-8 keyring file: its reason
        raise fail(exc) from None
    except (CodeError, OSError, ValueError, KeyError) as exc:
        raise fail(f"cannot load the keyring: {exc}", 2) from None
    if ring is None:
        raise fail(
            "no keyring: pass --keyring or set CODE_CODEC_KEYRING / CODE_CODEC_VAULT_PATH", 2
        )
    token: str | Authorizer
    try:
        if token_file is None:
            source = IdentitySource(settings)
            if not source.configured:
                raise fail("pass --token-file, or configure identity (CODE_IDENTITY_*)", 2)
            token = oidc_authorizer(source)
        else:
            read_text(token_file)  # refuses a missing, binary or non-UTF-8 file with the reason
            token = read_token(token_file)
    except CodeError as exc:
        raise fail(exc) from None
    except (OSError, ValueError) as exc:
        raise fail(str(exc), 2) from None
    origins = origin or [settings.codec_server_origin]

    async def main() -> None:
        tls = server_context(tls_cert, tls_key or tls_cert) if tls_cert else None
        runner = await serve(EncryptionCodec(ring), token, origins, host, port, tls)
        scheme = "https" if tls else "http"
        typer.echo(f"codec server on {scheme}://{host}:{port} (origins: {', '.join(origins)})")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        run_async(main())
