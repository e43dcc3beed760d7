# ruff: noqa: F811 - pytest fixtures imported from tests.servers are parameter names
"""Secret resolution against a real OpenBao dev server (``tests.servers.openbao_server``:
``bao server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:P``). The sealed
and server-down cases start their own short-lived server so the shared one stays usable.
Every test also checks that the secret value never appears in exception text or logs."""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
from pydantic import SecretStr

from activities.secrets import (
    SecretNotFound,
    SecretPermissionDenied,
    SecretReferenceInvalid,
    SecretResolver,
    SecretStoreSealed,
    SecretStoreUnavailable,
    parse_ref,
    short_hash,
)
from activities.settings import Settings
from code_foundation.errors import to_application_error as application_error
from tests.servers import BaoServer, openbao_server, start_openbao  # noqa: F401

VALUE = f"pw-{uuid.uuid4().hex}"  # the secret that must never leak
OTHER = f"api-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def bao(openbao_server: BaoServer) -> Iterator[BaoServer]:
    root = hvac.Client(url=openbao_server.url, token=openbao_server.root_token)
    if "kv/" not in root.sys.list_mounted_secrets_engines()["data"]:
        root.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
    root.secrets.kv.v2.create_or_update_secret(
        path="app", mount_point="kv", secret={"db_password": "old"}
    )
    root.secrets.kv.v2.create_or_update_secret(
        path="app", mount_point="kv", secret={"db_password": VALUE, "api_key": OTHER}
    )  # version 2
    root.secrets.kv.v2.create_or_update_secret(
        path="team/web", mount_point="secret", secret={"token": OTHER}
    )
    yield openbao_server


@pytest.fixture(autouse=True)
def no_leaks(caplog: pytest.LogCaptureFixture) -> Iterator[list[BaseException]]:
    """Collects raised errors; after the test, neither they nor any log record hold VALUE."""
    caplog.set_level(logging.DEBUG)
    raised: list[BaseException] = []
    yield raised
    for exc in raised:
        text = "".join(traceback.format_exception(exc)) + repr(exc) + str(application_error(exc))
        assert VALUE not in text and OTHER not in text
    assert VALUE not in caplog.text and OTHER not in caplog.text
    for rec in caplog.records:
        assert VALUE not in rec.getMessage()


def resolver(bao: BaoServer, **kw) -> SecretResolver:
    kw.setdefault("token", bao.root_token)
    return SecretResolver(bao.url, **kw)


def test_parse_refs() -> None:
    long, short = parse_ref("vault:kv/data/app#db_password"), parse_ref("vault:kv/app#db_password")
    assert (long.mount, long.path, long.key) == ("kv", "app", "db_password")
    assert (short.mount, short.path, short.key) == ("kv", "app", "db_password")
    nested = parse_ref("vault:team/kv/data/svc/a#k")
    assert (nested.mount, nested.path) == ("team/kv", "svc/a")
    assert parse_ref("env:DB").key == "DB" and parse_ref("file:/run/s").path == "/run/s"
    for bad in ["nope", "vault:kv/app", "vault:app#k", "ftp:x", "file:rel/path", "vault:#k"]:
        with pytest.raises(SecretReferenceInvalid, match="secret reference"):
            parse_ref(bad)


def test_resolve_ok_with_versions(bao: BaoServer, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CODE_TEST_SECRET", "from-env")
    f = tmp_path / "s"
    f.write_text("from-file\n")
    values, versions = resolver(bao).resolve(
        {
            "DB_PASSWORD": "vault:kv/data/app#db_password",
            "DB_PASSWORD_SHORT": "vault:kv/app#db_password",
            "API_KEY": "vault:kv/app#api_key",
            "TEAM_TOKEN": "vault:secret/data/team/web#token",
            "FROM_ENV": "env:CODE_TEST_SECRET",
            "FROM_FILE": f"file:{f}",
        }
    )
    assert values == {
        "DB_PASSWORD": VALUE,
        "DB_PASSWORD_SHORT": VALUE,
        "API_KEY": OTHER,
        "TEAM_TOKEN": OTHER,
        "FROM_ENV": "from-env",
        "FROM_FILE": "from-file",
    }
    assert versions["DB_PASSWORD"] == versions["DB_PASSWORD_SHORT"] == "vault-v2"
    assert versions["TEAM_TOKEN"] == "vault-v1"
    assert versions["FROM_ENV"] == short_hash("from-env") and len(versions["FROM_ENV"]) == 19
    assert VALUE not in repr(versions)


async def test_async_resolve_and_settings(bao: BaoServer) -> None:
    settings = Settings(
        vault_url=bao.url, vault_token=SecretStr(bao.root_token), secret_store="vault"
    )
    values, versions = await SecretResolver.from_settings(settings).aresolve(
        {"P": "vault:kv/app#db_password"}
    )
    assert values == {"P": VALUE} and versions == {"P": "vault-v2"}


def test_missing_path(bao: BaoServer, no_leaks: list[BaseException]) -> None:
    with pytest.raises(SecretNotFound, match=r"vault:kv/data/nope#x \(for X\): no such path") as e:
        resolver(bao).resolve({"X": "vault:kv/data/nope#x"})
    no_leaks.append(e.value)
    assert application_error(e.value).non_retryable


def test_missing_key_names_the_reference_not_the_values(
    bao: BaoServer, no_leaks: list[BaseException]
) -> None:
    with pytest.raises(SecretNotFound) as e:
        resolver(bao).resolve({"X": "vault:kv/app#db_pasword"})
    no_leaks.append(e.value)
    msg = str(e.value)
    assert "vault:kv/app#db_pasword" in msg and "key 'db_pasword' not found" in msg
    assert "api_key, db_password" in msg  # key names help; values never appear


def test_permission_denied_with_restricted_policy(
    bao: BaoServer, no_leaks: list[BaseException]
) -> None:
    root = hvac.Client(url=bao.url, token=bao.root_token)
    root.sys.create_or_update_policy(
        name="only-other", policy='path "kv/data/other/*" { capabilities = ["read"] }'
    )
    token = root.auth.token.create(policies=["only-other"], ttl="10m")["auth"]["client_token"]
    with pytest.raises(SecretPermissionDenied, match="vault:kv/data/app#db_password") as e:
        resolver(bao, token=token).resolve({"DB": "vault:kv/data/app#db_password"})
    no_leaks.append(e.value)
    assert application_error(e.value).type == "SecretPermissionDenied"
    assert application_error(e.value).non_retryable


def test_approle_login(bao: BaoServer, no_leaks: list[BaseException]) -> None:
    root = hvac.Client(url=bao.url, token=bao.root_token)
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    root.sys.create_or_update_policy(
        name="read-app", policy='path "kv/data/app" { capabilities = ["read"] }'
    )
    root.auth.approle.create_or_update_approle("deployer", token_policies=["read-app"])
    role_id = root.auth.approle.read_role_id("deployer")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("deployer")["data"]["secret_id"]

    r = SecretResolver(bao.url, role_id=role_id, secret_id=secret_id)
    values, versions = r.resolve({"DB": "vault:kv/data/app#db_password"})
    assert values == {"DB": VALUE} and versions == {"DB": "vault-v2"}
    with pytest.raises(SecretPermissionDenied) as e:  # the policy only covers kv/data/app
        r.resolve({"T": "vault:secret/data/team/web#token"})
    no_leaks.append(e.value)
    with pytest.raises(SecretPermissionDenied, match="AppRole login") as e:
        SecretResolver(bao.url, role_id=role_id, secret_id="wrong").resolve(
            {"DB": "vault:kv/app#db_password"}
        )
    no_leaks.append(e.value)


def test_env_and_file_missing(tmp_path: Path, no_leaks: list[BaseException]) -> None:
    with pytest.raises(SecretNotFound, match="env:CODE_NO_SUCH_VAR") as e:
        SecretResolver().resolve({"A": "env:CODE_NO_SUCH_VAR"})
    no_leaks.append(e.value)
    with pytest.raises(SecretNotFound, match="file not found") as e:
        SecretResolver().resolve({"A": f"file:{tmp_path / 'missing'}"})
    no_leaks.append(e.value)


def test_sealed_then_down(tmp_path: Path, no_leaks: list[BaseException]) -> None:
    srv = start_openbao(tmp_path)
    try:
        root = hvac.Client(url=srv.url, token=srv.root_token)
        root.secrets.kv.v2.create_or_update_secret(path="app", secret={"p": VALUE})
        r = SecretResolver(srv.url, token=srv.root_token, timeout=2)
        assert r.resolve({"P": "vault:secret/app#p"})[0] == {"P": VALUE}
        root.sys.seal()
        with pytest.raises(SecretStoreSealed, match="is sealed") as e:
            r.resolve({"P": "vault:secret/app#p"})
        no_leaks.append(e.value)
        assert application_error(e.value).non_retryable
    finally:
        srv.stop()
    with pytest.raises(SecretStoreUnavailable, match="cannot connect") as down:
        r.resolve({"P": "vault:secret/app#p"})
    no_leaks.append(down.value)
    err = application_error(down.value)
    assert err.type == "SecretStoreUnavailable" and not err.non_retryable


def test_timeout_is_unavailable_and_retryable(no_leaks: list[BaseException]) -> None:
    import socket

    with socket.socket() as sock:  # accepts connections (backlog) but never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        r = SecretResolver(url, token="t", timeout=0.5)
        with pytest.raises(SecretStoreUnavailable, match="timed out after 0.5s") as e:
            r.resolve({"P": "vault:kv/app#p"})
    no_leaks.append(e.value)
    assert not application_error(e.value).non_retryable
