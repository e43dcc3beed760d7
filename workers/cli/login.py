"""``codectl login`` / ``logout`` / ``whoami``: the caller's OIDC token.

* ``codectl login --as alice --groups release-managers [--mfa]`` (dev mode only: the
  settings' issuer is the local dev issuer ``codectl dev`` runs, ``CODE_IDENTITY_DEV`` on)
  sets the user's claims at the dev issuer and runs its authorization-code flow over
  loopback HTTP (:func:`mint_dev_token`). In production ``codectl login --token-file F``
  stores a token issued elsewhere, plain ``codectl login`` stores ``$CODE_TOKEN`` when set,
  else runs the configured issuer's OIDC device-code flow (:mod:`workers.cli.device`). The token is kept in ``<state>/identity/token`` with mode
  0600 and is never printed; every action codectl sends carries it
  (:func:`workers.cli.common.token`).
* ``codectl whoami [--output json]`` verifies the stored token against the issuer's keys
  (the same :func:`workflows.identity.verify` the workflows run) and shows the principal,
  the token's expiry and, with a policy configured, the roles per environment."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import typer

from activities.settings import Settings
from code_foundation import targets
from code_foundation.errors import ConfigError, ServerUnavailable, TargetRefused
from workers.cli.common import console, fail, token, token_path
from workers.cli.device import LoginFailed, device_login
from workers.cli.output import OUTPUT_HELP, check_output, emit

REDIRECT = "http://127.0.0.1/codectl/callback"


def mint_dev_token(
    issuer: str,
    sub: str,
    *,
    audience: str = "codectl",
    groups: list[str] | None = None,
    mfa: bool = False,
    email: str | None = None,
) -> str:
    """A real ID token from the dev issuer (oidc-provider-mock): set the user's claims,
    authorize as them, exchange the code. Loopback only."""
    problem = targets.loopback_problem(issuer)
    if problem:
        raise TargetRefused(f"the dev issuer must be on loopback: {problem}")
    base = issuer.rstrip("/")
    claims = {
        "email": email or f"{sub}@example.com",
        "groups": list(groups or []),
        "amr": ["pwd", "mfa", "otp"] if mfa else ["pwd"],
    }
    state = secrets.token_urlsafe(8)
    try:
        with httpx.Client(timeout=10.0) as c:
            c.put(f"{base}/users/{sub}", json=claims).raise_for_status()
            r = c.post(
                f"{base}/oauth2/authorize",
                params={
                    "client_id": audience,
                    "redirect_uri": REDIRECT,
                    "response_type": "code",
                    "scope": "openid email",
                    "state": state,
                },
                data={"sub": sub},
            )
            loc = r.headers.get("location", "")
            code = parse_qs(urlsplit(loc).query).get("code", [""])[0]
            if r.status_code != 302 or not code:
                raise ServerUnavailable(
                    f"dev issuer {base} gave no authorization code ({r.status_code})"
                )
            t = c.post(
                f"{base}/oauth2/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": REDIRECT,
                    "client_id": audience,
                    "client_secret": "dev",
                },
            )
            t.raise_for_status()
            return str(t.json()["id_token"])
    except httpx.HTTPError as exc:
        raise ServerUnavailable(
            f"cannot reach the dev issuer at {base} ({type(exc).__name__}); start it with `codectl dev`"
        ) from None


def store_token(value: str, settings: Settings | None = None) -> Path:
    """Write the token with mode 0600 (created so; never world-readable for an instant)."""
    path = token_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, value.strip().encode() + b"\n")
    finally:
        os.close(fd)
    return path


def login(
    as_: str = typer.Option(None, "--as", help="dev mode: the subject to log in as"),
    groups: str = typer.Option("", "--groups", help="dev mode: comma-separated groups"),
    mfa: bool = typer.Option(False, "--mfa", help="dev mode: the token says MFA was used"),
    token_file: Path = typer.Option(None, "--token-file", help="store a token issued elsewhere"),
) -> None:
    """Log in: store an OIDC token every codectl action then carries (--as in dev mode;
    --token-file; $CODE_TOKEN; else the issuer's device-code flow)."""
    settings = Settings()
    try:
        value = _obtain(settings, as_, groups, mfa, token_file)
    except (ConfigError, OSError) as exc:
        raise fail(
            exc if isinstance(exc, ConfigError) else f"cannot read {token_file}: {exc}", 2
        ) from None
    except (ServerUnavailable, TargetRefused, LoginFailed) as exc:
        raise fail(exc) from None
    path = store_token(value, settings)
    console.print(f"logged in; token stored in {path} (mode 0600)")


def _jwt(value: str, source: str) -> str:
    if value.count(".") != 2:
        raise ConfigError(f"{source} does not hold a JWT")
    return value


def _obtain(
    settings: Settings, as_: str | None, groups: str, mfa: bool, token_file: Path | None
) -> str:
    if token_file is not None:
        return _jwt(token_file.read_text(encoding="utf-8").strip(), str(token_file))
    if as_:
        if not settings.identity_dev or not settings.identity_issuer:
            raise ConfigError(
                "`codectl login --as` needs the dev issuer (CODE_IDENTITY_DEV=true and "
                "CODE_IDENTITY_ISSUER, as `codectl dev` sets); in production use "
                "--token-file, CODE_TOKEN or the device-code flow (plain `codectl login`)"
            )
        return mint_dev_token(
            settings.identity_issuer,
            as_,
            audience=settings.identity_audience or "codectl",
            groups=[g.strip() for g in groups.split(",") if g.strip()],
            mfa=mfa,
        )
    env = os.environ.get("CODE_TOKEN", "").strip()
    if env:
        return _jwt(env, "CODE_TOKEN")
    if not settings.identity_issuer or not settings.identity_audience:
        raise ConfigError(
            "say how: --token-file FILE, CODE_TOKEN, or set CODE_IDENTITY_ISSUER and "
            "CODE_IDENTITY_AUDIENCE for the device-code flow (--as NAME in dev mode)"
        )

    def prompt(uri: str, code: str, complete: str | None) -> None:
        console.print(f"open [bold]{complete or uri}[/bold] and enter the code [bold]{code}[/bold]")
        console.print("waiting for the login to be approved ...")

    return device_login(
        settings.identity_issuer,
        settings.identity_audience,
        prompt=prompt,
        allowed=settings.allowed_targets,
        dev=settings.identity_dev,
        verify=settings.tls_verify(),
    )


def logout() -> None:
    """Forget the stored token."""
    token_path().unlink(missing_ok=True)
    console.print("logged out")


def whoami(output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP)) -> None:
    """Show who the stored token says you are (verified against the issuer's keys)."""
    from activities.identity import IdentitySource
    from workflows.identity import TokenRejected, verify
    from workflows.policy import roles_of

    check_output(output)
    settings = Settings()
    value = token()
    if not value:
        raise fail("not logged in (codectl login)", 1)
    src = IdentitySource(settings)
    try:
        if not src.configured:
            raise ConfigError("identity is not configured (CODE_IDENTITY_ISSUER/AUDIENCE/POLICY)")
        cfg = src.config()
        who = verify(value, cfg, datetime.now(UTC))
    except TokenRejected as exc:
        raise fail(f"your token is refused: {exc.reason}", 1) from None
    except Exception as exc:  # noqa: BLE001 - a CLI says what failed
        raise fail(exc) from None
    import jwt

    exp = jwt.decode(value, options={"verify_signature": False}).get("exp")
    envs = sorted({p for b in cfg.policy.bindings for p in b.environments if "*" not in p})
    roles = {env: roles_of(cfg.policy, who, env, "*") for env in [*envs, "*"]}
    doc = {
        "sub": who.sub,
        "email": who.email,
        "groups": who.groups,
        "amr": who.amr,
        "issuer": who.issuer,
        "expires": datetime.fromtimestamp(exp, UTC).isoformat() if exp else None,
        "roles": roles,
    }
    if output == "json":
        emit("code.whoami/v1", doc)
        return
    console.print(f"[bold]{who.id}[/bold] (sub {who.sub}) from {who.issuer}")
    console.print(f"groups: {', '.join(who.groups) or '-'}   amr: {', '.join(who.amr) or '-'}")
    console.print(f"token expires {doc['expires']}")
    for env, rs in roles.items():
        console.print(f"  {env}: {', '.join(rs) or '(no role)'}")
