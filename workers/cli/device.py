"""The OIDC device authorization grant (RFC 8628) for ``codectl login`` in production.

Contract: :func:`device_login` reads the issuer's discovery document
(``/.well-known/openid-configuration``; its ``issuer`` must equal the configured one), posts
``client_id`` and ``scope`` to its ``device_authorization_endpoint``, shows the user the
verification URI and user code through ``prompt`` (never the device code), then polls the
``token_endpoint`` with ``grant_type=urn:ietf:params:oauth:grant-type:device_code`` every
``interval`` seconds (5 when the server names none): ``authorization_pending`` polls again,
``slow_down`` adds 5 s to the interval (RFC 8628 §3.5), ``access_denied`` and
``expired_token`` end the login, and so does the ``expires_in`` deadline. It returns the
``id_token`` (the ``access_token`` when the issuer sends no ID token) — a JWT the workflows
verify like any other. Every URL must pass ``allowed_targets``; a plain-``http`` issuer is
refused unless dev mode is on. Errors: :class:`LoginFailed` (the user or issuer said no,
or the code expired), ``ServerUnavailable`` (issuer unreachable or not speaking the
protocol), ``TargetRefused``/``ConfigError``. ``sleep`` and ``clock`` are injectable so a
test can drive the loop against a real server without waiting real seconds."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from code_foundation import targets
from code_foundation.errors import CodeError, ConfigError, ServerUnavailable, TargetRefused

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5.0
SLOW_DOWN_STEP = 5.0


class LoginFailed(CodeError):
    """The device login ended without a token (denied, expired, refused)."""


def _check_target(url: str, allowed: Sequence[str] | None, what: str) -> None:
    problem = targets.target_problem(url, allowed, what=what)
    if problem:
        raise TargetRefused(problem)


def _json(r: httpx.Response, what: str) -> dict[str, Any]:
    try:
        doc = r.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise ServerUnavailable(f"{what} answered {r.status_code} without a JSON object")
    return doc


def discover(client: httpx.Client, issuer: str, allowed: Sequence[str] | None) -> tuple[str, str]:
    """The issuer's device authorization and token endpoints."""
    url = f"{issuer}/.well-known/openid-configuration"
    _check_target(url, allowed, "identity issuer")
    doc = _json(client.get(url), url)
    got = str(doc.get("issuer", "")).rstrip("/")
    if got != issuer:
        raise ConfigError(f"{url} names issuer {got!r}, not {issuer!r}")
    device, tok = doc.get("device_authorization_endpoint"), doc.get("token_endpoint")
    if not isinstance(device, str) or not device:
        raise ConfigError(
            f"issuer {issuer} does not offer the device-code flow (no "
            "device_authorization_endpoint); log in with --token-file or CODE_TOKEN"
        )
    if not isinstance(tok, str) or not tok:
        raise ServerUnavailable(f"{url} names no token_endpoint")
    _check_target(device, allowed, "device authorization endpoint")
    _check_target(tok, allowed, "token endpoint")
    return device, tok


def device_login(
    issuer: str,
    client_id: str,
    *,
    prompt: Callable[[str, str, str | None], None],
    allowed: Sequence[str] | None = None,
    dev: bool = False,
    scope: str = "openid email profile",
    verify: Any = True,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Run the device-code flow; the token (see the module contract)."""
    issuer = issuer.rstrip("/")
    if issuer.startswith("http://") and not dev:
        raise ConfigError(
            f"identity issuer {issuer} is plain HTTP (the local dev issuer); "
            "use an https issuer, or set CODE_IDENTITY_DEV=true for development"
        )
    try:
        with httpx.Client(timeout=10.0, verify=verify) as client:
            device_url, token_url = discover(client, issuer, allowed)
            r = client.post(device_url, data={"client_id": client_id, "scope": scope})
            auth = _json(r, device_url)
            if r.status_code != 200:
                raise LoginFailed(f"the issuer refused the device login: {_error(auth)}")
            return _poll(client, token_url, client_id, auth, prompt, sleep, clock)
    except httpx.HTTPError as exc:
        raise ServerUnavailable(
            f"cannot reach the identity issuer {issuer} ({type(exc).__name__})"
        ) from None


def _error(doc: dict[str, Any]) -> str:
    err = str(doc.get("error", "unknown_error"))
    desc = doc.get("error_description")
    return f"{err} ({desc})" if isinstance(desc, str) and desc else err


def _poll(
    client: httpx.Client,
    token_url: str,
    client_id: str,
    auth: dict[str, Any],
    prompt: Callable[[str, str, str | None], None],
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> str:
    device_code, user_code = auth.get("device_code"), auth.get("user_code")
    uri = auth.get("verification_uri") or auth.get("verification_url")
    if not all(isinstance(v, str) and v for v in (device_code, user_code, uri)):
        raise ServerUnavailable(
            "the device authorization answer lacks device_code, user_code or verification_uri"
        )
    complete = auth.get("verification_uri_complete")
    prompt(str(uri), str(user_code), complete if isinstance(complete, str) else None)
    interval = float(auth.get("interval") or DEFAULT_INTERVAL)
    deadline = clock() + float(auth.get("expires_in") or 600)
    while True:
        sleep(interval)
        if clock() > deadline:
            raise LoginFailed("the device code expired before the login was approved")
        r = client.post(
            token_url,
            data={"grant_type": GRANT, "device_code": device_code, "client_id": client_id},
        )
        doc = _json(r, token_url)
        if r.status_code == 200:
            value = doc.get("id_token") or doc.get("access_token")
            if not isinstance(value, str) or value.count(".") != 2:
                raise ServerUnavailable("the token endpoint returned no JWT")
            return value
        err = doc.get("error")
        if err == "authorization_pending":
            continue
        if err == "slow_down":
            interval += SLOW_DOWN_STEP
            continue
        if err == "access_denied":
            raise LoginFailed("the login was denied at the issuer")
        if err == "expired_token":
            raise LoginFailed("the device code expired before the login was approved")
        raise LoginFailed(f"the issuer refused the device login: {_error(doc)}")
