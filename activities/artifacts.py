"""Versioned artifact storage: release bundles, analysis data, chaos journals, reports.

Contract (``ArtifactStore``; both implementations are blocking; call them from
activities through ``asyncio.to_thread``):

* ``put(key, data, content_type) -> ArtifactRef`` stores a *new version* of ``key`` and
  returns its ``version_id``, ``sha256`` (hex) and ``size``. Keys are ``/``-separated
  relative paths (``runs/<workflow-id>/manifests.yaml``); ``..``, empty segments and
  absolute keys are refused (``ArtifactError``).
* ``get(key, version_id=None) -> bytes`` returns the latest (or the given) version after
  verifying its SHA-256 against the checksum recorded at ``put``; a mismatch or missing
  checksum raises ``ArtifactCorrupted``; an unknown key/version ``ArtifactNotFound``.
* ``list(prefix) -> list[str]`` the keys under a prefix (sorted);
  ``versions(key) -> list[ArtifactRef]`` oldest first.
* Unreachable storage (connection refused, timeouts, 5xx) raises
  ``ArtifactStoreUnavailable`` (a ``ServerUnavailable``) after botocore's own retries with
  backoff (``standard`` mode). A 403 (``AccessDenied``, unknown access key, wrong secret
  key) raises ``ArtifactAccessDenied`` naming the bucket/key and what to fix; botocore
  does not retry it and neither should Temporal. Raised from an activity these become
  Temporal ``ApplicationError`` types (:class:`~activities.interceptor.ErrorInterceptor`;
  access denied / corrupted / not found: non-retryable; unavailable: retryable).

``LocalArtifactStore(dir)``: ``<dir>/<key>.versions/<000001>`` data files with a
``<000001>.json`` sidecar (sha256, size, content type); a version exists once its sidecar
does. ``S3ArtifactStore``: the bucket is created if missing and versioning is enabled when
it is not already (so an identity without bucket-admin rights can use a prepared bucket); the
SHA-256 lives in the object's user metadata (``x-amz-meta-sha256``).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

from code_foundation.errors import CodeError, ServerUnavailable

if TYPE_CHECKING:
    from activities.settings import Settings


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


_DENIED_CODES = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden")


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


def _verify(key: str, version_id: str, data: bytes, expected: str | None) -> bytes:
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


# ---------------------------------------------------------------- local directory
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
        return _verify(key, str(n), data, self._meta(key, n).get("sha256"))

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


# ---------------------------------------------------------------- S3
class S3ArtifactStore:
    """A versioned S3 bucket (AWS, SeaweedFS, moto, MinIO ...) through boto3."""

    def __init__(
        self,
        endpoint_url: str | None,
        bucket: str,
        credentials: tuple[str, str] | None = None,
        region: str = "us-east-1",
        *,
        max_attempts: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        create_bucket: bool = True,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.endpoint_url = endpoint_url
        config = Config(
            region_name=region,
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            s3={"addressing_style": "path"},
        )
        kwargs: dict[str, Any] = {}
        if credentials is not None:
            kwargs = {"aws_access_key_id": credentials[0], "aws_secret_access_key": credentials[1]}
        self.s3 = boto3.client("s3", endpoint_url=endpoint_url, config=config, **kwargs)
        self.region = region
        self._bucket_ready = not create_bucket

    # errors ------------------------------------------------------------
    def _where(self) -> str:
        return f"s3://{self.bucket}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    def _denied_hint(self, code: str) -> str:
        where = self._where()
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return (
                f"{where} rejected the credentials ({code}: unknown access key or wrong "
                "secret key); check CODE_S3_ACCESS_KEY and CODE_S3_SECRET_KEY"
            )
        if code == "AccessDenied":
            return (
                f"access denied by {where} (AccessDenied): the credentials are valid but "
                f"lack permission for this operation; grant them Read, Write and List on "
                f"bucket {self.bucket} (Admin too if the engine must create the bucket or "
                "enable versioning), or configure other credentials"
            )
        return (  # a bare 403 (HEAD requests carry no error body)
            f"access denied by {where} (403): wrong access/secret key or missing "
            f"permission on bucket {self.bucket}; check CODE_S3_ACCESS_KEY, "
            "CODE_S3_SECRET_KEY and the identity's permissions"
        )

    def _classify(self, exc: Exception, what: str) -> Exception:
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        if isinstance(
            exc,
            EndpointConnectionError
            | ConnectTimeoutError
            | ReadTimeoutError
            | ConnectionClosedError,
        ):
            return ArtifactStoreUnavailable(
                f"{what}: {self._where()} unreachable after retries ({type(exc).__name__})"
            )
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchKey", "NoSuchVersion", "404", "NotFound") or status == 404:
                return ArtifactNotFound(f"{what}: not found in {self._where()}")
            if status == 403 or code in _DENIED_CODES:
                return ArtifactAccessDenied(f"{what}: {self._denied_hint(code)}")
            if status is not None and status >= 500:
                return ArtifactStoreUnavailable(f"{what}: {self._where()} failed ({code})")
            return ArtifactError(f"{what}: {self._where()} refused the request ({code})")
        return exc

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception as exc:
            mapped = self._classify(exc, what)
            if mapped is exc:
                raise
            raise mapped from exc

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        if self._bucket_ready:
            return
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            mapped = self._classify(exc, f"bucket {self.bucket}")
            if not isinstance(mapped, ArtifactNotFound):
                raise mapped from exc
            create: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                create["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self._call(f"create bucket {self.bucket}", self.s3.create_bucket, **create)
        except Exception as exc:
            raise self._classify(exc, f"bucket {self.bucket}") from exc
        status = self._call(
            f"get versioning of bucket {self.bucket}",
            self.s3.get_bucket_versioning,
            Bucket=self.bucket,
        ).get("Status")
        if status == "Enabled":
            self._bucket_ready = True
            return
        self._call(
            f"enable versioning on {self.bucket}",
            self.s3.put_bucket_versioning,
            Bucket=self.bucket,
            VersioningConfiguration={"Status": "Enabled"},
        )
        self._bucket_ready = True

    # store ---------------------------------------------------------------
    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> ArtifactRef:
        self.ensure_bucket()
        check_key(key)
        digest = sha256_hex(data)
        resp = self._call(
            f"put s3://{self.bucket}/{key}",
            self.s3.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            Metadata={"sha256": digest},
        )
        version = resp.get("VersionId") or "null"
        return ArtifactRef(key=key, version_id=version, sha256=digest, size=len(data))

    def get(self, key: str, version_id: str | None = None) -> bytes:
        self.ensure_bucket()
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": check_key(key)}
        if version_id is not None:
            args["VersionId"] = version_id
        what = f"get s3://{self.bucket}/{key}" + (f" version {version_id}" if version_id else "")
        resp = self._call(what, self.s3.get_object, **args)
        data: bytes = resp["Body"].read()
        meta = {k.lower(): v for k, v in (resp.get("Metadata") or {}).items()}
        return _verify(key, resp.get("VersionId") or "null", data, meta.get("sha256"))

    def list(self, prefix: str = "") -> builtins.list[str]:
        self.ensure_bucket()
        keys: builtins.list[str] = []
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        try:
            for page in pages:
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        except Exception as exc:
            raise self._classify(exc, f"list {prefix!r}") from exc
        return sorted(keys)

    def versions(self, key: str) -> builtins.list[ArtifactRef]:
        self.ensure_bucket()
        found: builtins.list[dict[str, Any]] = []
        pages = self.s3.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=check_key(key)
        )
        try:
            for page in pages:
                found.extend(v for v in page.get("Versions", []) if v["Key"] == key)
        except Exception as exc:
            raise self._classify(exc, f"versions of {key}") from exc
        found.reverse()  # S3 lists newest first
        out = []
        for v in found:
            head = self._call(
                f"head {key}", self.s3.head_object, Bucket=self.bucket, Key=key,
                VersionId=v["VersionId"],
            )  # fmt: skip
            meta = {k.lower(): val for k, val in (head.get("Metadata") or {}).items()}
            out.append(
                ArtifactRef(
                    key=key,
                    version_id=v["VersionId"],
                    sha256=meta.get("sha256", ""),
                    size=int(v.get("Size", head.get("ContentLength", 0))),
                )
            )
        return out


def store_from_settings(settings: Settings) -> ArtifactStore:
    """The artifact store the settings choose (``CODE_ARTIFACT_STORE=local|s3``)."""
    if settings.artifact_store == "s3":
        creds = None
        if settings.s3_access_key is not None and settings.s3_secret_key is not None:
            creds = (
                settings.s3_access_key.get_secret_value(),
                settings.s3_secret_key.get_secret_value(),
            )
        return S3ArtifactStore(
            settings.s3_endpoint_url, settings.s3_bucket, creds, settings.s3_region
        )
    return LocalArtifactStore(settings.effective_artifact_dir())
