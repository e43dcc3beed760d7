"""A real local OIDC issuer for the identity tests: ``oidc-provider-mock`` as a process on a
free loopback port (discovery + JWKS over HTTP), restartable on the same port (a restart is
a key rotation: the mock generates a new RSA key per process), and real tokens from it
through its authorization-code flow (:func:`workers.cli.login.mint_dev_token`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from activities.settings import Settings
from tests.ci import unavailable
from tests.servers import free_port, port_open, stop_process, wait_until
from workers.cli.login import mint_dev_token


class Issuer:
    def __init__(self, log_dir: Path, max_age: int = 600, port: int | None = None) -> None:
        self.port = port or free_port()
        self.max_age = max_age
        self.log = log_dir / f"oidc-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Issuer:
        exe = shutil.which("oidc-provider-mock")
        if exe is None:
            unavailable("oidc-provider-mock not found; pip install oidc-provider-mock")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [exe, "-H", "127.0.0.1", "-p", str(self.port), "-e", str(self.max_age)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: port_open(self.port), 20, f"OIDC issuer on {self.port}", self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def rotate(self) -> None:
        """Restart on the same port: a new signing key, the old one no longer published."""
        self.stop()
        wait_until(lambda: not port_open(self.port), 10, "issuer stopped")
        self.start()

    def token(
        self, sub: str, groups: list[str], *, mfa: bool = True, audience: str = "codectl"
    ) -> str:
        return mint_dev_token(self.url, sub, audience=audience, groups=groups, mfa=mfa)


def identity_settings(state_dir: Path, issuer: Issuer, policy: str, **extra: Any) -> Settings:
    """Settings with identity on against ``issuer`` (audience ``codectl``, dev mode), the
    access ``policy`` text written to ``<state_dir>/policy.yaml``."""
    path = state_dir / "policy.yaml"
    path.write_text(policy)
    return Settings(
        state_dir=state_dir,
        identity_issuer=issuer.url,
        identity_audience="codectl",
        identity_policy=path,
        identity_dev=True,
        **extra,
    )
