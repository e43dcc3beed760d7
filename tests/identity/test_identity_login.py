"""Production login: the OIDC device-code flow (RFC 8628) against a real device
authorization server on loopback (:mod:`tests.identity.device_server`; the dev issuer,
oidc-provider-mock, has no device endpoint), ``CODE_TOKEN``, and the dev issuer refused
outside dev mode. Every token obtained verifies through CODE's own verification
(discovery → JWKS by :class:`activities.identity.IdentitySource`, then
:func:`workflows.identity.verify`)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from activities.identity import IdentitySource
from activities.settings import Settings
from code_foundation.errors import ConfigError
from tests.identity.device_server import DeviceIssuer
from workers.cli.device import LoginFailed, device_login
from workflows.identity import IdentityConfig, verify
from workflows.policy import Principal


@pytest.fixture
def issuer() -> Iterator[DeviceIssuer]:
    server = DeviceIssuer(slow_down_at={2}).start()
    try:
        yield server
    finally:
        server.stop()


def verified(token: str, url: str, tmp_path: Path) -> Principal:
    s = Settings(state_dir=tmp_path, identity_issuer=url, identity_dev=True)
    cfg = IdentityConfig(
        enabled=True, issuer=url, audience="codectl", jwks=IdentitySource(s).fetch_jwks()
    )
    return verify(token, cfg, datetime.now(UTC))


def test_device_flow_polls_slows_down_and_verifies(issuer: DeviceIssuer, tmp_path: Path) -> None:
    shown: list[tuple[str, str, str | None]] = []
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:  # the user approves in the browser after two polls
            issuer.user("approve", shown[0][1])

    token = device_login(
        issuer.url, "codectl", prompt=lambda *a: shown.append(a), dev=True, sleep=sleep
    )
    assert shown[0][0] == f"{issuer.url}/activate" and shown[0][2] is not None
    # interval 1 s from the server; slow_down (2nd poll) adds 5 s for every later poll
    assert waits == [1.0, 1.0, 6.0] and len(issuer.polls) == 3
    who = verified(token, issuer.url, tmp_path)
    assert who.sub == "alice" and who.groups == ["release-managers"] and "mfa" in who.amr


def test_device_flow_denied_and_expired(issuer: DeviceIssuer) -> None:
    def deny(uri: str, code: str, complete: str | None) -> None:
        issuer.user("deny", code)

    with pytest.raises(LoginFailed, match="denied"):
        device_login(issuer.url, "codectl", prompt=deny, dev=True, sleep=lambda s: None)

    ticks = iter(range(0, 10_000, 400))  # each clock reading 400 s later; the code lives 600 s
    polls = len(issuer.polls)
    with pytest.raises(LoginFailed, match="expired"):
        device_login(
            issuer.url,
            "codectl",
            prompt=lambda *a: None,
            dev=True,
            sleep=lambda s: None,
            clock=lambda: float(next(ticks)),
        )
    assert len(issuer.polls) == polls + 1  # one poll in time, none after the deadline


def test_plain_http_issuers_need_dev_mode(issuer: DeviceIssuer, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="plain HTTP"):
        device_login(issuer.url, "codectl", prompt=lambda *a: None, sleep=lambda s: None)
    prod = Settings(state_dir=tmp_path, identity_issuer=issuer.url, identity_dev=False)
    with pytest.raises(ConfigError, match="plain HTTP"):
        IdentitySource(prod).fetch_jwks()
    assert issuer.polls == [] and issuer.codes == {}  # nothing was asked of the issuer


def codectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CODE_")}
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_codectl_login_device_flow_and_env(tmp_path: Path) -> None:
    server = DeviceIssuer(auto_approve_after=2).start()
    try:
        env = {
            "CODE_STATE_DIR": str(tmp_path),
            "CODE_IDENTITY_ISSUER": server.url,
            "CODE_IDENTITY_AUDIENCE": "codectl",
        }
        refused = codectl(env, "login")
        assert refused.returncode == 2 and "plain HTTP" in refused.stderr
        out = codectl({**env, "CODE_IDENTITY_DEV": "true"}, "login")
        assert out.returncode == 0, out.stderr
        user_code = next(iter(server.codes.values()))["user_code"]
        assert user_code in out.stdout and "/activate" in out.stdout
        assert not any(code in out.stdout + out.stderr for code in server.codes)
        token_file = tmp_path / "identity/token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert token not in out.stdout + out.stderr
        assert verified(token, server.url, tmp_path).sub == "alice"

        token_file.unlink()
        other = server.sign({"aud": "codectl", "sub": "bob"})
        stored = codectl({**env, "CODE_TOKEN": other}, "login")
        assert stored.returncode == 0, stored.stderr
        assert token_file.read_text().strip() == other and other not in stored.stdout
        bad = codectl({**env, "CODE_TOKEN": "not-a-token"}, "login")
        assert bad.returncode == 2 and "CODE_TOKEN does not hold a JWT" in bad.stderr
    finally:
        server.stop()
