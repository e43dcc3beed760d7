"""The artifact-store seam: the :class:`ArtifactStore` protocol, :class:`ArtifactRef`,
the error classes and the key and checksum rules both stores share (see
:mod:`activities.artifacts` for the contract)."""

from __future__ import annotations

import builtins
import hashlib
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from code_foundation.errors import CodeError, ServerUnavailable


class ArtifactRef(BaseModel):
    key: str
    version_id: str
    sha256: str
    size: int


class ArtifactError(CodeError):
    """An artifact operation failed (bad key, ...)."""


class ArtifactNotFound(ArtifactError):
    """No such key or version."""


class ArtifactCorrupted(ArtifactError):
    """Stored bytes do not match the checksum recorded when they were written."""


class ArtifactAccessDenied(ArtifactError):
    """The store refused the credentials (403): wrong keys or missing permissions."""


class ArtifactStoreUnavailable(ServerUnavailable):
    """The artifact store (S3 endpoint, directory) cannot be reached."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_key(key: str) -> str:
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or any(p in ("", ".", "..") or p.endswith(".versions") for p in parts)
    ):
        raise ArtifactError(
            f"invalid artifact key {key!r}: use a relative '/'-separated path without "
            "'.', '..', empty segments or segments ending in '.versions'"
        )
    return key


def verify(key: str, version_id: str, data: bytes, expected: str | None) -> bytes:
    if not expected:
        raise ArtifactCorrupted(
            f"artifact {key} (version {version_id}) has no recorded sha256: cannot verify it"
        )
    actual = sha256_hex(data)
    if actual != expected:
        raise ArtifactCorrupted(
            f"artifact {key} (version {version_id}) is corrupted: sha256 {actual[:12]}... "
            f"does not match the recorded {expected[:12]}...; restore it from another "
            "version or re-run the step that produced it"
        )
    return data


@runtime_checkable
class ArtifactStore(Protocol):
    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> ArtifactRef: ...

    def get(self, key: str, version_id: str | None = None) -> bytes: ...

    def list(self, prefix: str = "") -> builtins.list[str]: ...

    def versions(self, key: str) -> builtins.list[ArtifactRef]: ...
