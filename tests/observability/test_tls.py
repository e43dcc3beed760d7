"""TLS / mTLS for the Temporal connection: ``workers.tls.tls_config`` from Settings,
and a real mTLS connection through a TLS-terminating proxy in front of the dev server
(the dev server itself has no TLS option): a client with the CA and a client
certificate connects and works; one without a client certificate is refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.settings import Settings
from tests.servers import free_port
from workers.tls import tls_config
from workers.worker import connect_from_settings


def _pki(d: Path) -> dict[str, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def cert(subject: str, k, issuer=None, issuer_key=None, ca=False, san=None, usage=None):  # type: ignore[no-untyped-def]
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        b = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            b = b.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        if usage:
            b = b.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        return b.sign(issuer_key or k, hashes.SHA256())

    ca_key = key()
    ca = cert("code-test-ca", ca_key, ca=True)
    out: dict[str, Path] = {}

    def write(name: str, c, k) -> None:  # type: ignore[no-untyped-def]
        (d / f"{name}.crt").write_bytes(c.public_bytes(serialization.Encoding.PEM))
        if k is not None:
            (d / f"{name}.key").write_bytes(
                k.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        out[name] = d / f"{name}.crt"

    write("ca", ca, None)
    sk, ck = key(), key()
    write(
        "server",
        cert(
            "localhost",
            sk,
            ca.subject,
            ca_key,
            san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
            usage=[ExtendedKeyUsageOID.SERVER_AUTH],
        ),
        sk,
    )
    write(
        "client",
        cert("code-worker", ck, ca.subject, ca_key, usage=[ExtendedKeyUsageOID.CLIENT_AUTH]),
        ck,
    )
    return out


def test_tls_config_from_settings(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    assert tls_config(Settings()) is False
    cfg = tls_config(
        Settings(
            temporal_tls=True,
            temporal_tls_ca=pki["ca"],
            temporal_tls_cert=pki["client"],
            temporal_tls_key=tmp_path / "client.key",
        )
    )
    assert cfg.server_root_ca_cert == pki["ca"].read_bytes()
    assert cfg.client_cert and cfg.client_private_key and b"PRIVATE KEY" in cfg.client_private_key
    server_only = tls_config(Settings(temporal_tls=True, temporal_tls_ca=pki["ca"]))
    assert server_only.client_cert is None


async def _proxy(target_port: int, ctx: ssl.SSLContext) -> tuple[asyncio.AbstractServer, int]:
    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            w.close()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            w.close()
            return
        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    port = free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=ctx)
    return server, port


async def test_mtls_connection_through_tls_proxy(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    pki = _pki(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki["server"], tmp_path / "server.key")
    ctx.load_verify_locations(pki["ca"])
    ctx.verify_mode = ssl.CERT_REQUIRED  # mTLS: the client must present a cert from our CA
    ctx.set_alpn_protocols(["h2"])
    target = int(dev_env.client.service_client.config.target_host.rsplit(":", 1)[1])
    server, port = await _proxy(target, ctx)
    try:
        good = Settings(
            temporal_address=f"127.0.0.1:{port}",
            temporal_tls=True,
            temporal_tls_ca=pki["ca"],
            temporal_tls_cert=pki["client"],
            temporal_tls_key=tmp_path / "client.key",
        )
        client = await asyncio.wait_for(connect_from_settings(good), 20)
        handle = client.get_workflow_handle(f"nope-{uuid.uuid4()}")
        with pytest.raises(Exception, match="not found"):  # a real RPC answered over mTLS
            await handle.describe()
        no_cert = Settings(
            temporal_address=f"127.0.0.1:{port}", temporal_tls=True, temporal_tls_ca=pki["ca"]
        )
        with pytest.raises(Exception) as refused:
            c2 = await asyncio.wait_for(connect_from_settings(no_cert), 20)
            await asyncio.wait_for(c2.get_workflow_handle("x").describe(), 10)
        assert "not found" not in str(refused.value)  # refused at the handshake, not answered
        plain = Settings(temporal_address=f"127.0.0.1:{port}")
        with pytest.raises(Exception) as plaintext:
            c3 = await asyncio.wait_for(connect_from_settings(plain), 20)
            await asyncio.wait_for(c3.get_workflow_handle("x").describe(), 10)
        assert "not found" not in str(plaintext.value)
    finally:
        server.close()
