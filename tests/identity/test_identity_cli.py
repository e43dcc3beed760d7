"""The identity commands end to end against a real dev issuer started the way
``codectl dev`` starts it (:mod:`workers.dev_issuer`): ``codectl login --as`` mints a real
token (stored mode 0600, never printed), ``codectl whoami`` verifies it against the issuer's
JWKS and shows the roles the policy gives; ``login --as`` is refused outside dev mode;
``codectl policy check`` names every problem (exit 2); ``codectl audit list --actor X
--denied`` shows the denied identity decisions of the chain."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.ledger import Ledger
from activities.settings import Settings
from tests.servers import free_port
from workers import dev_issuer, devstack


def codectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        "CODE_STATE_DIR": str(tmp_path),
        "CODE_IDENTITY_DEV": "true",
        "CODE_IDENTITY_ISSUER": f"http://127.0.0.1:{free_port()}",
    }
    settings = Settings(
        state_dir=tmp_path, identity_dev=True, identity_issuer=env["CODE_IDENTITY_ISSUER"]
    )
    stack = devstack.Stack(settings)
    record: dict[str, int] = {}
    try:
        dev_issuer.ensure(stack, tmp_path / "logs", record, devstack)
        assert [c.name for c in stack.components] == ["oidc"] and "oidc" in record
        assert (tmp_path / "identity/policy.yaml").exists()  # the example policy, copied
        yield env
    finally:
        stack.stop()


def test_login_whoami_and_policy(dev: dict[str, str], tmp_path: Path) -> None:
    out = codectl(dev, "login", "--as", "alice", "--groups", "release-managers", "--mfa")
    assert out.returncode == 0, out.stderr
    token_file = tmp_path / "identity/token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert token.count(".") == 2 and token not in out.stdout + out.stderr
    who = codectl(dev, "whoami", "--output", "json")
    assert who.returncode == 0, who.stderr
    doc = json.loads(who.stdout)
    assert doc["sub"] == "alice" and doc["groups"] == ["release-managers"]
    assert "mfa" in doc["amr"] and "approver" in doc["roles"]["production"]
    assert token not in who.stdout

    tampered = tmp_path / "bad.jwt"
    tampered.write_text(token[:-6] + "AAAAAA")
    assert codectl(dev, "login", "--token-file", str(tampered)).returncode == 0
    refused = codectl(dev, "whoami")
    assert refused.returncode == 1 and "signature does not verify" in refused.stderr

    prod = {k: v for k, v in dev.items() if k != "CODE_IDENTITY_DEV"}
    denied = codectl(prod, "login", "--as", "mallory")
    assert denied.returncode == 2 and "dev issuer" in denied.stderr

    bad = tmp_path / "policy.yaml"
    bad.write_text("bindings:\n  - {role: boss, groups: [x]}\n  - {role: viewer}\n")
    check = codectl(dev, "policy", "check", str(bad))
    assert check.returncode == 2
    assert "bindings.0.role" in check.stderr and "bindings.1" in check.stderr
    ok = codectl(dev, "policy", "check", str(tmp_path / "identity/policy.yaml"))
    assert ok.returncode == 0, ok.stderr


def test_audit_list_denied(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    for actor, decision in [
        ("carol@example.com", "denied"),
        ("dave@example.com", "allowed"),
        ("carol@example.com", "allowed"),
    ]:
        ledger.audit(
            actor,
            "identity.approve",
            "shop/production@v2",
            {"decision": decision, "reason": f"{actor} {decision}"},
        )
    out = codectl(
        {"CODE_STATE_DIR": str(tmp_path)},
        "audit",
        "list",
        "--actor",
        "carol@example.com",
        "--denied",
        "--output",
        "json",
    )
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["records"]
    assert [(r["actor"], r["detail"]["decision"]) for r in rows] == [
        ("carol@example.com", "denied")
    ]
