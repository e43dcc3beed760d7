"""``codectl artifacts``: read any stored artifact (chaos journals and reports, soak
reports, release bundles, analysis data) from the configured store (local or S3).

    codectl artifacts list [PREFIX] [--output json]
    codectl artifacts versions KEY [--output json]
    codectl artifacts get KEY [--version V] [--out PATH | --out -]

``get`` writes the plain file (the latest version, or ``--version``), verified
against its recorded SHA-256: never the store's internal ``KEY.versions/000001``
layout. ``--out`` defaults to the key's file name in the current directory; ``-``
writes to stdout. JSON output schemas: ``code.artifacts.list/v1`` ({"schema",
"prefix", "keys": [str]}) and ``code.artifacts.versions/v1`` ({"schema", "key",
"versions": [{"key", "version_id", "sha256", "size"}]}).

Exit codes: 0 ok, 1 not found or corrupted, 2 invalid input, 3 the store is unreachable."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import typer

from activities.artifacts import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactStore,
    ArtifactStoreUnavailable,
    store_from_settings,
)
from activities.settings import Settings
from workers.cli.common import console, err
from workers.cli.output import emit

LIST_SCHEMA = "code.artifacts.list/v1"
VERSIONS_SCHEMA = "code.artifacts.versions/v1"
Output = Literal["text", "json"]

artifacts_app = typer.Typer(
    help="List and fetch stored artifacts (reports, journals, bundles).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def get_command(key: str) -> str:
    """The command that fetches ``key`` as a plain file."""
    return f"codectl artifacts get {key}"


def _store() -> ArtifactStore:
    return store_from_settings(Settings())


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}")
    if isinstance(exc, ArtifactStoreUnavailable):
        return typer.Exit(3)
    if isinstance(exc, ArtifactNotFound | ArtifactCorrupted):
        return typer.Exit(1)
    return typer.Exit(2)


def fetch(store: ArtifactStore, key: str, dest: Path, version: str | None = None) -> Path:
    """Write ``key`` (verified) to ``dest`` (a file, or a directory to put it in)."""
    data = store.get(key, version)
    if dest.is_dir():
        dest = dest / key.rsplit("/", 1)[-1]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


@artifacts_app.command("list")
def list_cmd(
    prefix: str = typer.Argument("", help="key prefix, e.g. chaos/<workflow-id>/"),
    output: Output = typer.Option("text", "--output", "-o", help="text or json"),
) -> None:
    """List stored artifact keys under a prefix."""
    try:
        keys = _store().list(prefix)
    except (ArtifactError, ArtifactStoreUnavailable) as exc:
        raise _fail(exc) from None
    if output == "json":
        emit(LIST_SCHEMA, {"prefix": prefix, "keys": keys})
        return
    for k in keys:
        console.print(k, highlight=False)
    if not keys:
        err.print(f"no artifacts under {prefix!r}")


@artifacts_app.command("versions")
def versions_cmd(
    key: str,
    output: Output = typer.Option("text", "--output", "-o", help="text or json"),
) -> None:
    """List the stored versions of a key, oldest first."""
    try:
        refs = _store().versions(key)
    except (ArtifactError, ArtifactStoreUnavailable) as exc:
        raise _fail(exc) from None
    if output == "json":
        emit(VERSIONS_SCHEMA, {"key": key, "versions": [r.model_dump() for r in refs]})
        return
    for r in refs:
        console.print(f"{r.version_id}  {r.size:>10}  sha256 {r.sha256}", highlight=False)


@artifacts_app.command("get")
def get_cmd(
    key: str,
    version: str | None = typer.Option(None, "--version", help="a version id (default: latest)"),
    out: str | None = typer.Option(
        None, "--out", help="file or directory to write (default: the key's file name); - = stdout"
    ),
) -> None:
    """Fetch an artifact as a plain file (verified against its SHA-256)."""
    store = _store()
    try:
        if out == "-":
            sys.stdout.buffer.write(store.get(key, version))
            sys.stdout.flush()
            return
        target = Path(out) if out else Path(key.rsplit("/", 1)[-1])
        if out and out.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        dest = fetch(store, key, target, version)
    except (ArtifactError, ArtifactStoreUnavailable) as exc:
        raise _fail(exc) from None
    err.print(f"wrote {dest}")
