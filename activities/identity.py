"""The ``identity.pin`` activity: what a workflow pins at its start to verify tokens —
the issuer's public keys (OIDC discovery → ``jwks_uri``) and the access policy.

Contract: identity is **off** (``IdentityConfig(enabled=False)``) unless the settings name an
issuer, an audience and a policy file (``CODE_IDENTITY_ISSUER``, ``CODE_IDENTITY_AUDIENCE``,
``CODE_IDENTITY_POLICY``); setting only some of them is a ``ConfigError`` naming the missing
ones. The discovery document and the JWKS are fetched with httpx, only from URLs
``allowed_targets`` allows (:func:`code_foundation.targets.target_problem`); the discovery's
``issuer`` must equal the configured one. A plain-``http`` issuer is the local dev issuer
and is refused unless ``CODE_IDENTITY_DEV`` is on. The JWKS is cached per process for
``identity_jwks_ttl`` seconds; ``refresh=True`` (a workflow met a token no pinned key
verifies: rotation) re-fetches now. Only public key members are ever returned. An
unreachable issuer is the retryable ``ServerUnavailable``; a bad policy file a
``SpecError`` naming every field. :class:`IdentitySource` is usable outside activities (the
codec server). :class:`RejectionAudit` writes the denials Update validators reject into
the ledger (:func:`workflows.identity_gate.audit_rejections`)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from temporalio import activity

from activities.settings import Settings
from code_foundation import targets
from code_foundation.errors import ConfigError, ServerUnavailable, TargetRefused
from code_foundation.loader import load_file
from code_foundation.names import A
from workflows.identity import IdentityConfig
from workflows.identity_gate import IdentityPinInput, audit_rejections, enforce
from workflows.policy import Policy
from workflows.slo import AuditInput

log = logging.getLogger(__name__)

_PUBLIC = {"kty", "kid", "use", "alg", "key_ops", "n", "e", "crv", "x", "y"}


def public_jwks(doc: Any, source: str) -> dict[str, Any]:
    """A JWKS with only public members (a private ``d`` never travels further)."""
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise ServerUnavailable(f"{source} is not a JWKS (no 'keys' list)")
    return {
        "keys": [
            {k: v for k, v in key.items() if k in _PUBLIC} for key in keys if isinstance(key, dict)
        ]
    }


class IdentitySource:
    """The configured issuer's keys (cached, refreshed on demand) and the policy."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._jwks: dict[str, Any] | None = None
        self._fetched = 0.0

    @property
    def configured(self) -> bool:
        s = self.settings
        given = [s.identity_issuer, s.identity_audience, s.identity_policy]
        if any(given) and not all(given):
            missing = [
                f"CODE_IDENTITY_{n.upper()}"
                for n, v in zip(("issuer", "audience", "policy"), given, strict=True)
                if not v
            ]
            raise ConfigError(f"identity is half configured: set {', '.join(missing)} too")
        return all(given)

    def _target(self, url: str, what: str) -> None:
        problem = targets.target_problem(url, self.settings.allowed_targets, what=what)
        if problem:
            raise TargetRefused(problem)

    def _get(self, client: httpx.Client, url: str) -> Any:
        try:
            r = client.get(url)
            r.raise_for_status()
            return r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ServerUnavailable(
                f"identity issuer: cannot read {url} ({type(exc).__name__}: {exc}); "
                "is the OIDC issuer running (codectl dev starts a local one)?"
            ) from exc

    def fetch_jwks(self) -> dict[str, Any]:
        """Discovery → JWKS, now (no cache)."""
        issuer = str(self.settings.identity_issuer).rstrip("/")
        if issuer.startswith("http://") and not self.settings.identity_dev:
            raise ConfigError(
                f"identity issuer {issuer} is plain HTTP (the local dev issuer); "
                "use an https issuer, or set CODE_IDENTITY_DEV=true for development"
            )
        discovery = f"{issuer}/.well-known/openid-configuration"
        self._target(discovery, "identity issuer")
        with httpx.Client(timeout=10.0, verify=self.settings.tls_verify()) as client:
            doc = self._get(client, discovery)
            got = str(doc.get("issuer", "")).rstrip("/") if isinstance(doc, dict) else ""
            if got != issuer:
                raise ConfigError(f"{discovery} names issuer {got!r}, not {issuer!r}")
            jwks_uri = str(doc.get("jwks_uri", ""))
            self._target(jwks_uri, "identity JWKS")
            return public_jwks(self._get(client, jwks_uri), jwks_uri)

    def jwks(self, refresh: bool = False) -> dict[str, Any]:
        """The cached JWKS (re-fetched when older than the TTL or when asked)."""
        with self._lock:
            stale = time.monotonic() - self._fetched > self.settings.identity_jwks_ttl
            if refresh or stale or self._jwks is None:
                self._jwks = self.fetch_jwks()
                self._fetched = time.monotonic()
            return self._jwks

    def policy(self) -> Policy:
        path = self.settings.identity_policy
        if path is None:
            raise ConfigError("CODE_IDENTITY_POLICY is not set")
        return load_file(Policy, path, what="access policy")

    def config(self, refresh: bool = False) -> IdentityConfig:
        """What a workflow pins (``enabled=False`` when identity is not configured)."""
        if not self.configured:
            return IdentityConfig(enabled=False)
        s = self.settings
        return IdentityConfig(
            enabled=True,
            issuer=str(s.identity_issuer).rstrip("/"),
            audience=str(s.identity_audience),
            skew_seconds=s.identity_skew_seconds,
            jwks=self.jwks(refresh),
            policy=self.policy(),
        )


class IdentityActivities:
    def __init__(self, settings: Settings) -> None:
        self.source = IdentitySource(settings)

    @activity.defn(name=A.IDENTITY_PIN)
    async def pin(self, inp: IdentityPinInput) -> IdentityConfig:
        return await asyncio.to_thread(self.source.config, inp.refresh)


class RejectionAudit:
    """The sink of the denials Update validators reject (Temporal records no rejected
    Update, so no activity can): each goes into the ledger's hash chain from one writer
    thread, outside the workflow, and nothing comes back to it."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.effective_ledger_url()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="identity-audit")
        self._ledger: Any = None

    def _write(self, rec: AuditInput) -> None:
        from activities.ledger import Ledger

        try:
            if self._ledger is None:
                self._ledger = Ledger(self.url, lazy=True)
            self._ledger.audit(rec.actor, rec.action, rec.subject, rec.detail)
        except Exception:  # a lost audit record is logged loudly, never raised into a workflow
            log.exception("could not audit a rejected update: %s %s", rec.action, rec.subject)

    def __call__(self, rec: AuditInput) -> None:
        self._pool.submit(self._write, rec)

    def flush(self) -> None:
        """Wait until every record handed over so far is written."""
        self._pool.submit(lambda: None).result()


def identity_activities(settings: Settings) -> list[Callable[..., Any]]:
    """The activity; registering it with identity configured turns enforcement on for this
    worker's workflows (:func:`workflows.identity_gate.enforce`) and audits the denials
    their Update validators reject (:class:`RejectionAudit`)."""
    acts = IdentityActivities(settings)
    on = acts.source.configured
    enforce(on)
    audit_rejections(RejectionAudit(settings) if on else None)
    return [acts.pin]
