"""Resolve secret references into values at apply time; return only versions upstream.

Contract
--------
References (``Artifact.secrets``: env var name -> reference):

* ``vault:<mount>/data/<path>#<key>`` — KV v2 (e.g. ``vault:kv/data/app#db_password``);
  the short form ``vault:<mount>/<path>#<key>`` (``vault:kv/app#db_password``) means the
  same. A mount containing ``/`` must use the long form.
* ``env:NAME`` — the worker's environment variable ``NAME``.
* ``file:/abs/path`` — a file's content (one trailing newline stripped).

``SecretResolver.resolve(refs) -> (values, versions)`` (``aresolve`` off the event loop;
:class:`SecretSource` is that seam as a protocol): ``values`` maps env name to the
secret value and must only ever go to the platform (process environment, Kubernetes
Secret); ``versions`` maps env name to ``vault-v<N>`` (KV v2 metadata version) or
``sha256:<12 hex>`` for env/file values, and is what workflows may see and record.

Errors name the *reference*, never the value (``SecretError`` subclasses):
``SecretReferenceInvalid`` (malformed), ``SecretNotFound`` (missing path or key),
``SecretPermissionDenied`` (403 / failed AppRole login), ``SecretStoreSealed``,
``SecretStoreUnavailable`` (connection refused / timeout / 5xx: retryable).
Raised from an activity they become ``ApplicationError(type=<class name>)`` (the worker's
:class:`~activities.interceptor.ErrorInterceptor`); only ``SecretStoreUnavailable`` is
retryable. Authentication: a token, or AppRole
(role_id + secret_id, logged in lazily and again once when the token is refused).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from code_foundation.errors import CodeError, ConfigError, ServerUnavailable

if TYPE_CHECKING:
    from activities.settings import Settings

log = logging.getLogger(__name__)


class SecretError(CodeError):
    """A secret reference could not be resolved."""


class SecretReferenceInvalid(SecretError):
    pass


class SecretNotFound(SecretError):
    pass


class SecretPermissionDenied(SecretError):
    pass


class SecretStoreSealed(SecretError):
    pass


class SecretStoreUnavailable(SecretError, ServerUnavailable):
    pass


@dataclass(frozen=True)
class SecretRef:
    scheme: Literal["vault", "env", "file"]
    raw: str
    mount: str = ""
    path: str = ""
    key: str = ""

    @property
    def location(self) -> str:
        """The vault location without the key (what one read fetches)."""
        return f"{self.mount}/data/{self.path}"


def parse_ref(ref: str) -> SecretRef:
    scheme, sep, rest = ref.partition(":")
    if not sep or not rest:
        raise SecretReferenceInvalid(
            f"secret reference {ref!r} is malformed: use vault:<mount>/data/<path>#<key>, "
            "env:NAME or file:/path"
        )
    if scheme == "env":
        return SecretRef("env", ref, key=rest)
    if scheme == "file":
        if not rest.startswith("/"):
            raise SecretReferenceInvalid(f"secret reference {ref!r}: file: needs an absolute path")
        return SecretRef("file", ref, path=rest)
    if scheme != "vault":
        raise SecretReferenceInvalid(
            f"secret reference {ref!r}: unknown scheme {scheme!r} (vault, env or file)"
        )
    location, hash_, key = rest.partition("#")
    location = location.strip("/")
    if not hash_ or not key or "/" not in location:
        raise SecretReferenceInvalid(
            f"secret reference {ref!r} is malformed: use vault:<mount>/data/<path>#<key> "
            "(or vault:<mount>/<path>#<key>)"
        )
    if "/data/" in location:
        mount, _, path = location.partition("/data/")
    else:
        mount, _, path = location.partition("/")
    if not mount or not path:
        raise SecretReferenceInvalid(f"secret reference {ref!r}: empty mount or path")
    return SecretRef("vault", ref, mount=mount, path=path, key=key)


def short_hash(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]


@runtime_checkable
class SecretSource(Protocol):
    """What platforms need of a secret store: references in, values and versions out."""

    async def aresolve(self, refs: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """``(values, versions)`` for ``{env_name: reference}``; raises ``SecretError``."""
        ...


class SecretResolver:
    """Resolves references against env, files and a Vault/OpenBao server (hvac)."""

    def __init__(
        self,
        vault_url: str | None = None,
        *,
        token: str | None = None,
        role_id: str | None = None,
        secret_id: str | None = None,
        approle_mount: str = "approle",
        timeout: float = 5.0,
    ) -> None:
        self.vault_url = vault_url
        self._token = token
        self._role_id = role_id
        self._secret_id = secret_id
        self._approle_mount = approle_mount
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretResolver:
        return cls(
            settings.vault_url,
            token=settings.vault_token.get_secret_value() if settings.vault_token else None,
            role_id=settings.vault_role_id,
            secret_id=(
                settings.vault_secret_id.get_secret_value() if settings.vault_secret_id else None
            ),
        )

    # ------------------------------------------------------------ public
    def resolve(self, refs: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """``(values, versions)`` for ``{env_name: reference}``; see the module docstring."""
        parsed = {name: parse_ref(ref) for name, ref in refs.items()}  # all-or-nothing
        values: dict[str, str] = {}
        versions: dict[str, str] = {}
        reads: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}
        for name, ref in parsed.items():
            if ref.scheme == "env":
                if ref.key not in os.environ:
                    raise SecretNotFound(f"secret {ref.raw} (for {name}): variable not set")
                values[name] = os.environ[ref.key]
                versions[name] = short_hash(values[name])
            elif ref.scheme == "file":
                values[name] = self._read_file(ref, name)
                versions[name] = short_hash(values[name])
            else:
                cache_key = (ref.mount, ref.path)
                if cache_key not in reads:
                    reads[cache_key] = self._read_vault(ref, name)
                data, version = reads[cache_key]
                if ref.key not in data:
                    keys = ", ".join(sorted(data)) or "none"
                    raise SecretNotFound(
                        f"secret {ref.raw} (for {name}): key {ref.key!r} not found at "
                        f"{ref.location} (keys there: {keys})"
                    )
                values[name] = str(data[ref.key])
                versions[name] = f"vault-v{version}"
            log.debug("resolved secret for %s from %s (%s)", name, ref.raw, versions[name])
        return values, versions

    async def aresolve(self, refs: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        return await asyncio.to_thread(self.resolve, refs)

    # ------------------------------------------------------------ sources
    @staticmethod
    def _read_file(ref: SecretRef, name: str) -> str:
        try:
            text = Path(ref.path).read_text()
        except FileNotFoundError:
            raise SecretNotFound(f"secret {ref.raw} (for {name}): file not found") from None
        except PermissionError:
            raise SecretPermissionDenied(
                f"secret {ref.raw} (for {name}): file not readable by the worker"
            ) from None
        except OSError as exc:
            raise SecretNotFound(f"secret {ref.raw} (for {name}): {exc.strerror}") from None
        return text.removesuffix("\n")

    def _vault(self, relogin: bool = False) -> Any:
        import hvac

        with self._lock:
            if self._client is not None and not relogin:
                return self._client
            if not self.vault_url:
                raise ConfigError(
                    "a vault: secret reference needs a Vault/OpenBao server: set CODE_VAULT_URL "
                    "and CODE_VAULT_TOKEN (or CODE_VAULT_ROLE_ID + CODE_VAULT_SECRET_ID)"
                )
            client = hvac.Client(url=self.vault_url, token=self._token, timeout=self._timeout)
            if self._role_id and self._secret_id:
                try:
                    client.auth.approle.login(
                        role_id=self._role_id,
                        secret_id=self._secret_id,
                        mount_point=self._approle_mount,
                    )
                except Exception as exc:  # noqa: BLE001 - every hvac/requests failure is classified
                    raise self._classify(exc, f"AppRole login at {self.vault_url}") from None
            elif not self._token:
                raise ConfigError(
                    "no Vault credentials: set CODE_VAULT_TOKEN, or CODE_VAULT_ROLE_ID and "
                    "CODE_VAULT_SECRET_ID for AppRole"
                )
            self._client = client
            return client

    def _read_vault(self, ref: SecretRef, name: str) -> tuple[dict[str, Any], int]:
        what = f"secret {ref.raw} (for {name})"
        for attempt in (0, 1):
            client = self._vault(relogin=attempt == 1)
            try:
                resp = client.secrets.kv.v2.read_secret_version(
                    path=ref.path, mount_point=ref.mount, raise_on_deleted_version=True
                )
            except Exception as exc:  # noqa: BLE001 - every hvac/requests failure is classified
                err = self._classify(exc, what)
                # an expired AppRole token: log in again once
                if isinstance(err, SecretPermissionDenied) and attempt == 0 and self._role_id:
                    continue
                raise err from None
            data = resp.get("data") or {}
            return dict(data.get("data") or {}), int((data.get("metadata") or {}).get("version", 0))
        raise AssertionError("unreachable")

    def _classify(self, exc: Exception, what: str) -> SecretError:
        """Map hvac/requests failures; messages carry the reference and server, no data."""
        import hvac.exceptions as hx
        import requests

        where = self.vault_url
        if isinstance(exc, hx.InvalidPath):
            return SecretNotFound(f"{what}: no such path on {where}")
        if isinstance(exc, hx.Forbidden | hx.Unauthorized):
            return SecretPermissionDenied(
                f"{what}: permission denied by {where} (check the token/AppRole policy)"
            )
        if isinstance(exc, hx.InvalidRequest) and "login" in what:
            return SecretPermissionDenied(f"{what}: rejected (invalid role_id or secret_id)")
        if isinstance(exc, hx.VaultDown) and "sealed" in str(exc).lower():
            return SecretStoreSealed(f"{what}: {where} is sealed; unseal it and retry")
        if isinstance(exc, hx.VaultDown):
            return self._sealed_or_down(what)
        if isinstance(exc, requests.exceptions.Timeout):
            return SecretStoreUnavailable(f"{what}: {where} timed out after {self._timeout}s")
        if isinstance(exc, requests.exceptions.ConnectionError):
            return SecretStoreUnavailable(f"{what}: cannot connect to {where}")
        if isinstance(exc, hx.InternalServerError | hx.BadGateway | hx.RateLimitExceeded):
            return SecretStoreUnavailable(f"{what}: {where} failed ({type(exc).__name__})")
        return SecretError(f"{what}: {where} refused the request ({type(exc).__name__})")

    def _sealed_or_down(self, what: str) -> SecretError:
        try:
            sealed = bool(self._client and self._client.sys.is_sealed())
        except Exception:  # noqa: BLE001
            sealed = False
        if sealed:
            return SecretStoreSealed(f"{what}: {self.vault_url} is sealed; unseal it and retry")
        return SecretStoreUnavailable(f"{what}: {self.vault_url} is unavailable (503)")
