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

from typing import TYPE_CHECKING

from activities.artifacts.base import (
    ArtifactAccessDenied,
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactRef,
    ArtifactStore,
    ArtifactStoreUnavailable,
    check_key,
    sha256_hex,
)
from activities.artifacts.local import LocalArtifactStore
from activities.artifacts.s3 import S3ArtifactStore

if TYPE_CHECKING:
    from activities.settings import Settings

__all__ = [
    "ArtifactAccessDenied",
    "ArtifactCorrupted",
    "ArtifactError",
    "ArtifactNotFound",
    "ArtifactRef",
    "ArtifactStore",
    "ArtifactStoreUnavailable",
    "LocalArtifactStore",
    "S3ArtifactStore",
    "check_key",
    "sha256_hex",
    "store_from_settings",
]


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
