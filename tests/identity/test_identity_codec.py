"""The codec server accepts the same OIDC tokens as the workflows (real issuer, real
tokens, the real aiohttp server on loopback): no token 401, a forged token 401, a valid
token without the viewer role 403, a viewer 200 with the payload decoded; a token signed
after the issuer rotated its key verifies (the server re-fetches the JWKS once)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from activities.identity import IdentitySource
from activities.settings import Settings
from tests.identity.issuer import Issuer
from tests.servers import free_port
from workers.codec import EncryptionCodec, Keyring
from workers.codec_server import oidc_authorizer, serve
from workers.tls import server_context

POLICY = """
version: 1
bindings:
  - {role: viewer, groups: [viewers], environments: ["*"]}
"""


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[Issuer]:
    iss = Issuer(tmp_path).start()
    try:
        yield iss
    finally:
        iss.stop()


async def test_codec_server_takes_oidc_tokens(issuer: Issuer, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    settings = Settings(
        state_dir=tmp_path,
        identity_issuer=issuer.url,
        identity_audience="codectl",
        identity_policy=policy,
        identity_dev=True,
    )
    codec = EncryptionCodec(Keyring.generate("k1"))
    sealed = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"hi"')])
    body = json_format.MessageToJson(Payloads(payloads=sealed))
    port = free_port()
    runner = await serve(codec, oidc_authorizer(IdentitySource(settings)), [], "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}/decode"

    async def post(token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(timeout=10) as c:
            return await c.post(url, content=body, headers=headers)

    try:
        assert (await post(None)).status_code == 401
        viewer = issuer.token("vera", ["viewers"])
        assert (await post(viewer[:-6] + "AAAAAA")).status_code == 401
        wrong = await post(issuer.token("bob", ["engineering"]))
        assert wrong.status_code == 403 and "lacks role viewer" in wrong.json()["error"]
        ok = await post(viewer)
        assert ok.status_code == 200
        out = json_format.Parse(ok.text, Payloads())
        assert out.payloads[0].data == b'"hi"'
        await asyncio.to_thread(issuer.rotate)
        assert (await post(issuer.token("vera", ["viewers"]))).status_code == 200
    finally:
        await runner.cleanup()


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    crt, pem = tmp_path / "tls.crt", tmp_path / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return crt, pem


async def test_codec_server_tls_is_1_2_or_better(tmp_path: Path) -> None:

    crt, key = self_signed(tmp_path)
    codec = EncryptionCodec(Keyring.generate("k1"))
    port = free_port()
    runner = await serve(codec, "t" * 32, [], "127.0.0.1", port, server_context(crt, key))
    try:
        client = ssl.create_default_context(cafile=str(crt))
        async with httpx.AsyncClient(verify=client, timeout=10) as c:
            r = await c.post(f"https://127.0.0.1:{port}/decode", content="{}")
        assert r.status_code == 401  # TLS works; the token is still required

        def version(maximum: ssl.TLSVersion | None) -> str | None:
            ctx = ssl.create_default_context(cafile=str(crt))
            if maximum is not None:
                ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
                ctx.maximum_version = maximum
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s,
            ):
                return s.version()

        assert await asyncio.to_thread(version, None) == "TLSv1.3"  # preferred
        assert await asyncio.to_thread(version, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
        with warnings.catch_warnings():  # asking for TLS 1.1 is deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            old = ssl.TLSVersion.TLSv1_1
        with pytest.raises(ssl.SSLError):
            await asyncio.to_thread(version, old)
    finally:
        await runner.cleanup()
