"""Token verification against pinned keys: pure and deterministic, so it runs inside
workflows (and replays) as well as in the codec server.

Contract: :func:`verify` checks a JWT's signature (RS256, ES256 or EdDSA through PyJWT and
``cryptography``, never hand-written crypto) with the keys of an :class:`IdentityConfig`
pinned by the ``identity.pin`` activity, then its issuer, audience, ``exp``/``nbf``/``iat``
against the ``now`` it is given (``workflow.now()`` in a workflow) with ``skew_seconds`` of
leeway, and maps the claims to a :class:`~workflows.policy.Principal` (``sub``, ``email``,
``groups``, ``amr``). Failures raise :class:`TokenRejected` with the reason;
``unknown_key=True`` when no pinned key verified the signature (the caller may refresh the
keys once and retry: a forged token stays refused). The token itself is never returned,
logged or put into a reason."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import jwt
    from jwt.exceptions import InvalidSignatureError, PyJWTError

from workflows.policy import Policy, Principal

ALGORITHMS = ("RS256", "ES256", "EdDSA")


class IdentityConfig(BaseModel):
    """What a run pins at start: off (``enabled=False``) unless the worker is configured."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    issuer: str = ""
    audience: str = ""
    skew_seconds: int = Field(60, ge=0, le=600)
    jwks: dict[str, Any] = Field(default_factory=lambda: {"keys": []})
    policy: Policy = Field(default_factory=Policy)

    def merged(self, fresh: IdentityConfig) -> IdentityConfig:
        """``fresh``'s keys added to the pinned ones (old keys keep verifying the tokens
        they signed until those expire; policy and settings from ``fresh``)."""
        keys = list(fresh.jwks.get("keys", []))
        seen = {_fingerprint(k) for k in keys}
        keys += [k for k in self.jwks.get("keys", []) if _fingerprint(k) not in seen]
        return fresh.model_copy(update={"jwks": {"keys": keys}})


def _fingerprint(jwk: dict[str, Any]) -> str:
    return "|".join(str(jwk.get(f, "")) for f in ("kty", "kid", "n", "x", "y", "crv"))


class TokenRejected(Exception):
    """A token that does not verify; ``reason`` says why (never the token)."""

    def __init__(self, reason: str, *, unknown_key: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unknown_key = unknown_key


def _keys(cfg: IdentityConfig, kid: str | None, alg: str) -> list[Any]:
    out = []
    for jwk in cfg.jwks.get("keys", []):
        if kid is not None and jwk.get("kid") not in (None, kid):
            continue
        if jwk.get("use") not in (None, "sig"):
            continue
        try:
            key = jwt.PyJWK(jwk, algorithm=jwk.get("alg") or alg)
        except PyJWTError:
            continue  # a key of another type/algorithm cannot verify this token
        if key.algorithm_name == alg:
            out.append(key)
    return out


def verify(token: str | None, cfg: IdentityConfig, now: datetime) -> Principal:
    """The principal of a valid ``token``, else :class:`TokenRejected`."""
    if not token:
        raise TokenRejected("no token (log in with `codectl login`)")
    try:
        header = jwt.get_unverified_header(token)
    except PyJWTError:
        raise TokenRejected("not a JWT") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise TokenRejected(f"algorithm {alg!r} refused (allowed: {', '.join(ALGORITHMS)})")
    # cryptography's native code imports Python modules lazily on first use: inside the
    # workflow sandbox those imports must be the real modules (a second copy aborts)
    with workflow.unsafe.imports_passed_through():
        claims = _verified_claims(token, cfg, header.get("kid"), alg)
    return principal_of(claims, cfg, now)


def _verified_claims(token: str, cfg: IdentityConfig, kid: str | None, alg: str) -> dict[str, Any]:
    claims: dict[str, Any] | None = None
    for key in _keys(cfg, kid, alg):
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                # time and audience are checked below against the workflow's clock
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
            break
        except InvalidSignatureError:
            continue
        except PyJWTError as exc:
            raise TokenRejected(f"malformed token ({type(exc).__name__})") from None
    if claims is None:
        what = f"key {kid!r}" if kid else "any pinned key"
        raise TokenRejected(f"signature does not verify with {what}", unknown_key=True)
    return claims


def principal_of(claims: dict[str, Any], cfg: IdentityConfig, now: datetime) -> Principal:
    """Check a signature-verified token's claims; the principal they name."""
    if claims.get("iss") != cfg.issuer:
        raise TokenRejected(f"issuer {claims.get('iss')!r} is not {cfg.issuer!r}")
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if cfg.audience not in auds:
        raise TokenRejected(f"audience {aud!r} does not include {cfg.audience!r}")
    t, skew = now.timestamp(), cfg.skew_seconds
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if not isinstance(exp, int | float):
        raise TokenRejected("token has no expiry (exp)")
    if t > exp + skew:
        raise TokenRejected(f"token expired {int(t - exp)} s ago")
    if isinstance(nbf, int | float) and t < nbf - skew:
        raise TokenRejected("token not valid yet (nbf)")
    if isinstance(iat, int | float) and t < iat - skew:
        raise TokenRejected("token issued in the future (iat)")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenRejected("token has no subject (sub)")
    email = claims.get("email")
    return Principal(
        sub=sub,
        email=email if isinstance(email, str) and email else None,
        groups=_strings(claims.get("groups")),
        amr=_strings(claims.get("amr")),
        issuer=cfg.issuer,
    )


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return [str(x) for x in v if isinstance(x, str | int)]
    return []
