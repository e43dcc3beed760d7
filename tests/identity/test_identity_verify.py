"""Verification and policy as pure functions: RS256, ES256 and EdDSA keys from a JWKS, the
issuer/audience/time checks against the clock given (never the machine's), ``alg: none``
and HMAC refused, an unknown key flagged for one refresh, rotation keeps old keys; the
policy's deny-by-default in protected environments, ``require_mfa``, the two-person rule,
admin, and every problem of a bad policy named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from code_foundation.errors import SpecError
from code_foundation.loader import load_text
from workflows.identity import IdentityConfig, TokenRejected, verify
from workflows.policy import Policy, Principal, decide

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ISS, AUD = "https://id.example.com", "codectl"


def keypair(alg: str) -> tuple[Any, dict[str, Any]]:
    if alg == "RS256":
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    elif alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    jwk["kid"] = f"{alg}-1"
    return key, jwk


def token(key: Any, alg: str, kid: str | None = None, **claims: Any) -> str:
    body = {
        "iss": ISS,
        "aud": AUD,
        "sub": "alice",
        "email": "alice@example.com",
        "groups": ["release-managers"],
        "amr": ["pwd", "hwk"],
        "iat": int(NOW.timestamp()) - 10,
        "exp": int(NOW.timestamp()) + 300,
        **claims,
    }
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} if kid else None)


def cfg(*jwks: dict[str, Any], skew: int = 30) -> IdentityConfig:
    return IdentityConfig(
        enabled=True, issuer=ISS, audience=AUD, skew_seconds=skew, jwks={"keys": list(jwks)}
    )


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_each_algorithm_verifies_and_maps_claims(alg: str) -> None:
    key, jwk = keypair(alg)
    who = verify(token(key, alg, jwk["kid"]), cfg(jwk), NOW)
    assert who == Principal(
        sub="alice",
        email="alice@example.com",
        groups=["release-managers"],
        amr=["pwd", "hwk"],
        issuer=ISS,
    )
    assert verify(token(key, alg), cfg(jwk), NOW).sub == "alice"  # no kid: every pinned key


def test_claims_and_time_are_checked_against_the_given_clock() -> None:
    key, jwk = keypair("ES256")
    c = cfg(jwk, skew=30)
    cases = {
        "issuer": token(key, "ES256", iss="https://evil.example.com"),
        "audience": token(key, "ES256", aud="other"),
        "expired": token(key, "ES256", exp=int(NOW.timestamp()) - 31),
        "not valid yet": token(key, "ES256", nbf=int(NOW.timestamp()) + 31),
        "no subject": token(key, "ES256", sub=""),
        "no expiry": token(key, "ES256", exp=None),
    }
    for why, tok in cases.items():
        with pytest.raises(TokenRejected) as info:
            verify(tok, c, NOW)
        assert not info.value.unknown_key, why
        assert why.split()[-1] in info.value.reason or why == "no expiry", (why, info.value.reason)
    # inside the skew it passes; the same token an hour later does not
    edge = token(key, "ES256", exp=int(NOW.timestamp()) - 29)
    assert verify(edge, c, NOW).sub == "alice"
    with pytest.raises(TokenRejected, match="expired"):
        verify(edge, c, NOW + timedelta(hours=1))


def test_forged_none_and_hmac_tokens_are_refused() -> None:
    key, jwk = keypair("RS256")
    other, _ = keypair("RS256")
    with pytest.raises(TokenRejected) as info:
        verify(token(other, "RS256", jwk["kid"]), cfg(jwk), NOW)
    assert info.value.unknown_key  # the caller may refresh once; still refused after
    unsigned = jwt.encode({"iss": ISS, "aud": AUD, "sub": "x", "exp": 2e9}, None, algorithm="none")
    with pytest.raises(TokenRejected, match="algorithm 'none' refused"):
        verify(unsigned, cfg(jwk), NOW)
    # HS256 "signed" with the public key's text: the classic confusion attack
    hmac = jwt.encode({"iss": ISS, "aud": AUD, "sub": "x"}, "k" * 32, algorithm="HS256")
    with pytest.raises(TokenRejected, match="HS256"):
        verify(hmac, cfg(jwk), NOW)
    for junk in ("", "not-a-jwt", "a.b.c"):
        with pytest.raises(TokenRejected):
            verify(junk, cfg(jwk), NOW)


def test_rotation_merges_new_keys_and_keeps_old_ones() -> None:
    old_key, old = keypair("RS256")
    new_key, new = keypair("EdDSA")
    pinned = cfg(old).merged(cfg(new))
    assert verify(token(old_key, "RS256", old["kid"]), pinned, NOW).sub == "alice"
    assert verify(token(new_key, "EdDSA", new["kid"]), pinned, NOW).sub == "alice"
    assert len(pinned.merged(cfg(new)).jwks["keys"]) == 2  # merging twice adds nothing


POLICY = """
version: 1
protected_environments: [production]
require_mfa: [production]
two_person: [production]
bindings:
  - {role: deployer, groups: [eng], environments: ["*"]}
  - {role: approver, groups: [rm], environments: [production], services: [shop, "web-*"]}
  - {role: admin, subjects: [root@example.com], environments: ["*", production]}
"""


def who(sub: str, groups: list[str], amr: tuple[str, ...] = ("mfa",)) -> Principal:
    return Principal(sub=sub, email=f"{sub}@example.com", groups=groups, amr=list(amr))


def test_policy_decisions() -> None:
    pol = load_text(Policy, POLICY, "policy.yaml")
    eng, rm, root = who("eve", ["eng"]), who("rita", ["rm"]), who("root", [])
    assert decide(pol, eng, "deploy", "staging", "shop").allowed
    prod = decide(pol, eng, "deploy", "production", "shop")  # '*' does not reach production
    assert not prod.allowed and "protected" in prod.reason
    assert decide(pol, rm, "approve", "production", "web-api").allowed
    assert not decide(pol, rm, "approve", "production", "billing").allowed  # out of scope
    no_mfa = decide(pol, who("rita", ["rm"], ("pwd",)), "approve", "production", "shop")
    assert not no_mfa.allowed and "multi-factor" in no_mfa.reason
    own = decide(pol, rm, "approve", "production", "shop", starter="rita@example.com")
    assert not own.allowed and "two-person" in own.reason
    assert decide(pol, rm, "approve", "production", "shop", starter="alice").allowed
    assert decide(pol, root, "abort", "production", "anything").allowed  # admin
    assert not decide(pol, eng, "launch", "staging", "shop").allowed  # unknown action
    assert decide(pol, rm, "approve", "production", "shop").claims == {
        "sub": "rita",
        "email": "rita@example.com",
        "groups": "rm",
        "amr": "mfa",
    }


def test_bad_policy_names_every_problem() -> None:
    with pytest.raises(SpecError) as info:
        load_text(
            Policy,
            "version: 2\nbindings:\n  - {role: boss, groups: [x]}\n  - {role: viewer}\n"
            "  - {role: viewer, groups: [x], environments: []}\n",
            "policy.yaml",
        )
    text = "\n".join(info.value.problems)
    for where in ("version", "bindings.0.role", "bindings.1", "bindings.2.environments"):
        assert where in text, text
