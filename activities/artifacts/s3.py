"""``S3ArtifactStore``: a versioned S3 bucket (AWS, SeaweedFS, moto, MinIO ...) through
boto3. The bucket is created if missing and versioning is enabled when it is not already
(so an identity without bucket-admin rights can use a prepared bucket); the SHA-256 lives
in the object's user metadata (``x-amz-meta-sha256``). botocore errors are classified
into the artifact errors (see :mod:`activities.artifacts`). Blocking."""

from __future__ import annotations

import builtins
from typing import Any

from activities.artifacts.base import (
    ArtifactAccessDenied,
    ArtifactError,
    ArtifactNotFound,
    ArtifactRef,
    ArtifactStoreUnavailable,
    check_key,
    sha256_hex,
    verify,
)

_DENIED_CODES = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden")


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
        return verify(key, resp.get("VersionId") or "null", data, meta.get("sha256"))

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
