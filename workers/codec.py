"""AES-256-GCM payload codec for every Client, Worker and Replayer of CODE.

Contract
--------
* ``Keyring``: named 32-byte keys; the *newest* (``primary``, default the last
  listed) encrypts, any listed key decrypts. Rotation = add a key (and keep the old
  ones until every history encrypted with them has expired).
  JSON shape (file or Vault KV v2 secret data)::

      {"keys": [{"id": "2026-01", "key": "<base64 of 32 bytes>"}, ...], "primary": "2026-01"}

* ``EncryptionCodec.encode``: each payload is serialized (the whole ``Payload``
  protobuf, metadata included) and sealed with a fresh 96-bit nonce; the result's
  metadata is ``encoding=binary/encrypted`` and ``encryption-key-id=<id>``; data is
  ``nonce || ciphertext+tag``; the key id is the associated data, so a swapped id
  fails authentication. ``decode`` leaves payloads without that encoding untouched
  (histories recorded before encryption still replay) and refuses an unknown key id
  with a ``ValueError`` naming it.
* No I/O at import: keyrings are read by ``Keyring.from_file`` / ``from_vault``;
  :func:`codec_from_settings` builds the configured codec, which callers pass to the
  converter of each client or replayer (``workflows.client.data_converter(codec)``,
  ``connect(..., codec=...)``): there is no process-wide codec.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE = 12


class Keyring:
    def __init__(self, keys: dict[str, bytes], primary: str | None = None) -> None:
        if not keys:
            raise ValueError("the keyring holds no keys")
        for kid, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"key {kid!r} is {len(key)} bytes; AES-256 needs 32")
        self.keys = dict(keys)
        self.primary = primary or list(keys)[-1]
        if self.primary not in self.keys:
            raise ValueError(f"primary key {self.primary!r} is not in the keyring")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Keyring:
        entries = data.get("keys")
        if not isinstance(entries, list):
            raise ValueError('a keyring is {"keys": [{"id": ..., "key": base64}], "primary": id}')
        keys = {str(e["id"]): base64.b64decode(e["key"]) for e in entries}
        return cls(keys, data.get("primary"))

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        return cls.from_json(json.loads(Path(path).read_text()))

    @classmethod
    def from_vault(cls, client: Any, path: str) -> Keyring:
        """``path`` is ``<mount>/data/<secret>`` (KV v2) or ``<mount>/<secret>``."""
        mount, _, rest = path.partition("/")
        secret = rest.removeprefix("data/")
        resp = client.secrets.kv.v2.read_secret_version(
            path=secret, mount_point=mount, raise_on_deleted_version=True
        )
        return cls.from_json(resp["data"]["data"])

    def to_json(self) -> dict[str, Any]:
        return {
            "keys": [{"id": k, "key": base64.b64encode(v).decode()} for k, v in self.keys.items()],
            "primary": self.primary,
        }

    def rotated(self, new_id: str, key: bytes | None = None) -> Keyring:
        """A keyring with one more key, which becomes primary."""
        keys = dict(self.keys)
        keys[new_id] = key or os.urandom(32)
        return Keyring(keys, new_id)

    @staticmethod
    def generate(kid: str = "k1") -> Keyring:
        return Keyring({kid: os.urandom(32)}, kid)


class EncryptionCodec(PayloadCodec):
    def __init__(self, keyring: Keyring) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.keyring = keyring
        self._aead = {kid: AESGCM(key) for kid, key in keyring.keys.items()}

    def _seal(self, p: Payload) -> Payload:
        kid = self.keyring.primary
        nonce = os.urandom(NONCE)
        sealed = self._aead[kid].encrypt(nonce, p.SerializeToString(), kid.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode()}, data=nonce + sealed)

    def _open(self, p: Payload) -> Payload:
        if p.metadata.get("encoding") != ENCODING:
            return p
        kid = p.metadata.get(KEY_ID, b"").decode()
        aead = self._aead.get(kid)
        if aead is None:
            raise ValueError(
                f"payload encrypted with unknown key id {kid!r}; add it to the keyring"
            )
        plain = aead.decrypt(p.data[:NONCE], p.data[NONCE:], kid.encode())
        return Payload.FromString(plain)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(p) for p in payloads]


def keyring_from_settings(settings: Any) -> Keyring | None:
    if settings.codec_keyring is not None:
        return Keyring.from_file(settings.codec_keyring)
    if settings.codec_vault_path:
        import hvac

        client = hvac.Client(url=settings.vault_url, timeout=10)
        if settings.vault_token is not None:
            client.token = settings.vault_token.get_secret_value()
        elif settings.vault_role_id and settings.vault_secret_id is not None:
            client.auth.approle.login(
                settings.vault_role_id, settings.vault_secret_id.get_secret_value()
            )
        return Keyring.from_vault(client, settings.codec_vault_path)
    return None


def codec_from_settings(settings: Any) -> EncryptionCodec | None:
    """The payload codec configured in settings (a keyring file or Vault), or None."""
    ring = keyring_from_settings(settings)
    return EncryptionCodec(ring) if ring is not None else None


def replayer_from_settings(settings: Any, workflows: Sequence[type]) -> Any:
    """A ``Replayer`` whose converter carries the configured codec (encrypted histories)."""
    from temporalio.worker import Replayer

    from workflows.client import data_converter

    codec = codec_from_settings(settings)
    return Replayer(workflows=list(workflows), data_converter=data_converter(codec))
