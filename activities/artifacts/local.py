"""``LocalArtifactStore``: versions as numbered files plus a sidecar checksum JSON under
one directory (``<dir>/<key>.versions/<000001>`` and ``<000001>.json``; a version exists
once its sidecar does). Blocking."""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from activities.artifacts.base import (
    ArtifactCorrupted,
    ArtifactNotFound,
    ArtifactRef,
    ArtifactStoreUnavailable,
    check_key,
    sha256_hex,
    verify,
)


class LocalArtifactStore:
    """Versions as numbered files plus a sidecar checksum JSON, under one directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _dir(self, key: str) -> Path:
        return self.root / f"{check_key(key)}.versions"

    def _numbers(self, d: Path) -> builtins.list[int]:
        if not d.is_dir():
            return []
        return sorted(int(p.stem) for p in d.glob("*.json") if p.stem.isdigit())

    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> ArtifactRef:
        d = self._dir(key)
        tmp = ""
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            digest = sha256_hex(data)
            while True:  # claim the next number atomically (link fails if taken)
                existing = [int(p.name) for p in d.iterdir() if p.name.isdigit()]
                n = max(existing, default=0) + 1
                try:
                    os.link(tmp, d / f"{n:06d}")
                    break
                except FileExistsError:
                    continue
            os.unlink(tmp)
            meta = {
                "sha256": digest,
                "size": len(data),
                "content_type": content_type,
                "created_at": datetime.now(UTC).isoformat(),
            }
            side_tmp = d / f".tmp-{n:06d}.json"
            side_tmp.write_text(json.dumps(meta))
            os.replace(side_tmp, d / f"{n:06d}.json")
        except OSError as exc:
            if tmp:  # a half-written file is never left to be mistaken for data
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise ArtifactStoreUnavailable(
                f"cannot write artifact {key} under {self.root}: {exc.strerror or exc}"
            ) from exc
        return ArtifactRef(key=key, version_id=str(n), sha256=digest, size=len(data))

    def _meta(self, key: str, n: int) -> dict[str, Any]:
        try:
            meta: dict[str, Any] = json.loads((self._dir(key) / f"{n:06d}.json").read_text())
            return meta
        except (OSError, ValueError) as exc:
            raise ArtifactCorrupted(f"artifact {key} version {n}: unreadable sidecar") from exc

    def get(self, key: str, version_id: str | None = None) -> bytes:
        numbers = self._numbers(self._dir(key))
        if not numbers:
            raise ArtifactNotFound(f"artifact {key} not found in {self.root}")
        if version_id is None:
            n = numbers[-1]
        elif version_id.isdigit() and int(version_id) in numbers:
            n = int(version_id)
        else:
            raise ArtifactNotFound(f"artifact {key} has no version {version_id!r}")
        try:
            data = (self._dir(key) / f"{n:06d}").read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactCorrupted(f"artifact {key} version {n}: data file missing") from exc
        return verify(key, str(n), data, self._meta(key, n).get("sha256"))

    def list(self, prefix: str = "") -> builtins.list[str]:
        if not self.root.is_dir():
            return []
        keys = []
        for d in self.root.rglob("*.versions"):
            if d.is_dir() and self._numbers(d):
                key = d.relative_to(self.root).as_posix().removesuffix(".versions")
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def versions(self, key: str) -> builtins.list[ArtifactRef]:
        out = []
        for n in self._numbers(self._dir(key)):
            meta = self._meta(key, n)
            out.append(
                ArtifactRef(
                    key=key, version_id=str(n), sha256=meta["sha256"], size=int(meta["size"])
                )
            )
        return out
