# ruff: noqa: F811 - pytest fixtures imported from tests.servers are parameter names
"""Artifact stores: a local directory and S3 through moto's real server process
(``tests.servers.s3_server`` runs ``moto_server -H 127.0.0.1 -p P``; each test uses its
own fresh bucket). Every behavioural test runs on both stores. Failure modes that need an
S3 server enforcing authentication (403) run against SeaweedFS's S3 gateway
(``tests.servers.seaweedfs_server``)."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import SecretStr

from activities.artifacts import (
    ArtifactAccessDenied,
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactStore,
    ArtifactStoreUnavailable,
    LocalArtifactStore,
    S3ArtifactStore,
    store_from_settings,
)
from activities.settings import Settings
from code_foundation.errors import to_application_error as application_error
from tests.servers import (  # noqa: F401
    S3Server,
    SeaweedS3Server,
    free_port,
    s3_server,
    seaweedfs_server,
)


def _raw_client(srv: S3Server):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=srv.endpoint_url,
        aws_access_key_id=srv.access_key,
        aws_secret_access_key=srv.secret_key,
        region_name=srv.region,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "artifacts")
    srv: S3Server = request.getfixturevalue("s3_server")
    return S3ArtifactStore(
        srv.endpoint_url,
        f"code-{uuid.uuid4().hex[:12]}",
        (srv.access_key, srv.secret_key),
        srv.region,
    )


def test_round_trip_with_versions(store: ArtifactStore) -> None:
    key = "runs/deploy-web-prod-v1/manifests.yaml"
    one = store.put(key, b"kind: Deployment\n", "application/yaml")
    two = store.put(key, b"kind: Deployment\nreplicas: 2\n", "application/yaml")
    assert one.version_id != two.version_id
    assert one.size == 17 and len(one.sha256) == 64
    assert store.get(key) == b"kind: Deployment\nreplicas: 2\n"
    assert store.get(key, one.version_id) == b"kind: Deployment\n"
    assert store.get(key, two.version_id) == b"kind: Deployment\nreplicas: 2\n"
    assert [(v.version_id, v.sha256, v.size) for v in store.versions(key)] == [
        (one.version_id, one.sha256, one.size),
        (two.version_id, two.sha256, two.size),
    ]
    store.put("runs/deploy-web-prod-v1/analysis/0.json", b"{}", "application/json")
    store.put("runs/other/report.html", b"<html/>", "text/html")
    assert store.list("runs/deploy-web-prod-v1/") == [
        "runs/deploy-web-prod-v1/analysis/0.json",
        key,
    ]
    assert len(store.list("")) == 3
    assert store.versions("runs/none") == []


def test_empty_and_binary_payloads(store: ArtifactStore) -> None:
    blob = bytes(range(256)) * 1000
    ref = store.put("bin/blob", blob)
    assert store.get("bin/blob", ref.version_id) == blob
    empty = store.put("bin/empty", b"")
    assert empty.size == 0 and store.get("bin/empty") == b""


def test_not_found(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFound, match="missing/key"):
        store.get("missing/key")
    store.put("a/b", b"x")
    with pytest.raises(ArtifactNotFound):
        store.get("a/b", "999999" if isinstance(store, LocalArtifactStore) else "nope-version")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "x.versions/y", "a\\b"])
def test_bad_keys_refused(store: ArtifactStore, key: str) -> None:
    with pytest.raises(ArtifactError, match="invalid artifact key"):
        store.put(key, b"x")


def test_corruption_detected(store: ArtifactStore, request: pytest.FixtureRequest) -> None:
    key = "runs/r1/bundle.tar"
    good = store.put(key, b"original bundle bytes")
    bad = store.put(key, b"second version")
    if isinstance(store, LocalArtifactStore):
        # flip bytes of the newest version's data file on disk
        data_file = store.root / f"{key}.versions" / f"{int(bad.version_id):06d}"
        data_file.write_bytes(b"second versioN")
    else:
        # a raw put that keeps the old checksum metadata: new bytes, stale sha256
        assert isinstance(store, S3ArtifactStore)
        raw = _raw_client(request.getfixturevalue("s3_server"))
        raw.put_object(
            Bucket=store.bucket, Key=key, Body=b"tampered!", Metadata={"sha256": bad.sha256}
        )
    with pytest.raises(ArtifactCorrupted, match="corrupted") as info:
        store.get(key)
    assert key in str(info.value)
    assert store.get(key, good.version_id) == b"original bundle bytes"  # others still fine
    err = application_error(info.value)
    assert err.type == "ArtifactCorrupted" and err.non_retryable


def test_s3_missing_checksum_is_refused(s3_server: S3Server) -> None:
    store = S3ArtifactStore(
        s3_server.endpoint_url, f"code-{uuid.uuid4().hex[:12]}",
        (s3_server.access_key, s3_server.secret_key),
    )  # fmt: skip
    store.ensure_bucket()
    _raw_client(s3_server).put_object(Bucket=store.bucket, Key="k", Body=b"no metadata")
    with pytest.raises(ArtifactCorrupted, match="no recorded sha256"):
        store.get("k")


def test_s3_bucket_created_with_versioning(s3_server: S3Server) -> None:
    bucket = f"code-{uuid.uuid4().hex[:12]}"
    store = S3ArtifactStore(
        s3_server.endpoint_url, bucket, (s3_server.access_key, s3_server.secret_key)
    )
    store.put("x", b"1")
    raw = _raw_client(s3_server)
    assert raw.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    head = raw.head_object(Bucket=bucket, Key="x")
    assert head["Metadata"]["sha256"] == store.versions("x")[0].sha256


def test_s3_server_down_is_unavailable_and_retryable() -> None:
    store = S3ArtifactStore(
        f"http://127.0.0.1:{free_port()}", "b", ("k", "s"), max_attempts=2, connect_timeout=1
    )
    with pytest.raises(ArtifactStoreUnavailable, match="unreachable after retries") as info:
        store.put("a", b"x")
    err = application_error(info.value)
    assert err.type == "ArtifactStoreUnavailable" and not err.non_retryable


def test_store_from_settings(tmp_path: Path, s3_server: S3Server) -> None:
    local = store_from_settings(Settings(state_dir=tmp_path))
    assert isinstance(local, LocalArtifactStore) and local.root == tmp_path / "artifacts"
    s3 = store_from_settings(
        Settings(
            state_dir=tmp_path,
            artifact_store="s3",
            s3_endpoint_url=s3_server.endpoint_url,
            s3_bucket=f"code-{uuid.uuid4().hex[:12]}",
            s3_access_key=SecretStr(s3_server.access_key),
            s3_secret_key=SecretStr(s3_server.secret_key),
        )
    )
    assert isinstance(s3, S3ArtifactStore)
    ref = s3.put("k", b"v")
    assert s3.get("k", ref.version_id) == b"v"


# ---------------------------------------------------------------- failure modes: 403, timeout
# moto's server does not enforce authentication, so 403s come from a real SeaweedFS S3
# gateway with identities configured (``tests.servers.seaweedfs_server``).
def _seaweed_store(srv: SeaweedS3Server, creds: tuple[str, str], **kw: Any) -> S3ArtifactStore:
    return S3ArtifactStore(srv.endpoint_url, kw.pop("bucket", None) or _bucket(), creds, **kw)


def _bucket() -> str:
    return f"code-{uuid.uuid4().hex[:12]}"


def _count_requests(store: S3ArtifactStore) -> list[str]:
    sent: list[str] = []
    store.s3.meta.events.register("before-send.s3", lambda **kw: sent.append(kw["request"].url))
    return sent


def test_seaweedfs_round_trip_with_versions(seaweedfs_server: SeaweedS3Server) -> None:
    srv = seaweedfs_server
    store = _seaweed_store(srv, (srv.access_key, srv.secret_key))
    one = store.put("runs/r/bundle", b"first")
    two = store.put("runs/r/bundle", b"second")
    assert one.version_id != two.version_id
    assert store.get("runs/r/bundle") == b"second"
    assert store.get("runs/r/bundle", one.version_id) == b"first"
    assert [v.version_id for v in store.versions("runs/r/bundle")] == [
        one.version_id,
        two.version_id,
    ]


def test_s3_access_denied_is_classified_and_not_retried(
    seaweedfs_server: SeaweedS3Server,
) -> None:
    srv = seaweedfs_server
    admin = _seaweed_store(srv, (srv.access_key, srv.secret_key))
    admin.put("runs/r/report.html", b"<html/>")  # creates the versioned bucket
    reader = _seaweed_store(srv, (srv.reader_key, srv.reader_secret), bucket=admin.bucket)
    assert reader.get("runs/r/report.html") == b"<html/>"  # Read is granted
    sent = _count_requests(reader)
    with pytest.raises(ArtifactAccessDenied) as info:
        reader.put("runs/r/manifests.yaml", b"kind: Deployment\n")
    msg = str(info.value)
    assert f"s3://{admin.bucket}/runs/r/manifests.yaml" in msg
    assert "AccessDenied" in msg and "grant them Read, Write and List" in msg
    assert srv.reader_secret not in msg
    assert len(sent) == 1  # a 403 is final: botocore does not retry it
    assert isinstance(info.value, ArtifactError)
    assert not isinstance(info.value, ArtifactStoreUnavailable)
    err = application_error(info.value)
    assert err.type == "ArtifactAccessDenied" and err.non_retryable


@pytest.mark.parametrize("creds", ["wrong-secret", "unknown-key"])
def test_s3_bad_credentials_are_access_denied(
    seaweedfs_server: SeaweedS3Server, creds: str
) -> None:
    srv = seaweedfs_server
    admin = _seaweed_store(srv, (srv.access_key, srv.secret_key))
    admin.ensure_bucket()
    bad = (srv.access_key, "not-the-secret") if creds == "wrong-secret" else ("nobody", "x")
    code = "SignatureDoesNotMatch" if creds == "wrong-secret" else "InvalidAccessKeyId"
    # put on a prepared bucket: the error body names the cause
    store = _seaweed_store(srv, bad, bucket=admin.bucket, create_bucket=False)
    with pytest.raises(ArtifactAccessDenied, match=code) as info:
        store.put("runs/r/x", b"x")
    msg = str(info.value)
    assert f"s3://{admin.bucket}/runs/r/x" in msg and "CODE_S3_SECRET_KEY" in msg
    assert "not-the-secret" not in msg
    assert application_error(info.value).non_retryable
    # bucket check first (HEAD: a bare 403 without a body) - classified the same way
    fresh = _seaweed_store(srv, bad, bucket=admin.bucket)
    with pytest.raises(ArtifactAccessDenied, match=r"\(403\).*CODE_S3_ACCESS_KEY") as info:
        fresh.put("runs/r/x", b"x")
    assert admin.bucket in str(info.value)
    assert application_error(info.value).type == "ArtifactAccessDenied"


def test_s3_read_timeout_is_unavailable_and_retryable() -> None:
    """A server that accepts connections but never answers (a hung gateway)."""
    with socket.socket() as lsock:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        port = lsock.getsockname()[1]
        store = S3ArtifactStore(
            f"http://127.0.0.1:{port}", "b-hung", ("k", "s"),
            max_attempts=2, connect_timeout=1, read_timeout=0.5, create_bucket=False,
        )  # fmt: skip
        sent = _count_requests(store)
        with pytest.raises(ArtifactStoreUnavailable, match="ReadTimeoutError") as info:
            store.put("a", b"x")
    assert len(sent) == 3  # botocore's max_attempts counts retries: 1 try + 2 retries
    err = application_error(info.value)
    assert err.type == "ArtifactStoreUnavailable" and not err.non_retryable
