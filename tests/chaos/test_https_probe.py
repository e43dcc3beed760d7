"""HTTPS probes and load against a loopback TLS server with a CA generated here: the
probe verifies with ``tls_ca_file`` (and presents ``tls_client_cert`` to a server
that requires one), refuses an untrusted certificate, and skips verification only
with ``tls_insecure``; the native load engine sends HTTPS with the same CA file.
Traffic goes to 127.0.0.1 only."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp import web
from temporalio.testing import ActivityEnvironment

from activities.chaos import ChaosActivities
from activities.settings import Settings
from chaos.messages import ProbeInput
from chaos.model import HttpProbe
from loadtest.native import NativeLoadRun
from loadtest.scenario import make_profile, parse_scenario


def _pki(tmp: Path) -> dict[str, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    pem = serialization.Encoding.PEM
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "code test CA")])

    def issue(cn: str, key: Any, ca: bool, usage: Any = None, san: bool = False) -> Any:
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            ip = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
            b = b.add_extension(x509.SubjectAlternativeName([ip]), critical=False)
        if usage is not None:
            b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return b.sign(ca_key, hashes.SHA256())

    out: dict[str, Path] = {"ca": tmp / "ca.pem"}
    out["ca"].write_bytes(issue("code test CA", ca_key, True).public_bytes(pem))
    for role, usage in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(f"{role}.test", key, False, usage, san=role == "server")
        out[role] = tmp / f"{role}.pem"
        out[role].write_bytes(cert.public_bytes(pem))
        out[f"{role}_key"] = tmp / f"{role}.key"
        out[f"{role}_key"].write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    return out


async def _serve(pki: dict[str, Path], client_cert: bool) -> tuple[web.AppRunner, str]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki["server"], pki["server_key"])
    if client_cert:
        ctx.load_verify_locations(pki["ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="secure")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"https://127.0.0.1:{port}"


@pytest_asyncio.fixture
async def tls(tmp_path: Path) -> AsyncIterator[tuple[dict[str, Path], str, str]]:
    pki = _pki(tmp_path)
    plain, url = await _serve(pki, client_cert=False)
    mutual, murl = await _serve(pki, client_cert=True)
    try:
        yield pki, url, murl
    finally:
        await plain.cleanup()
        await mutual.cleanup()


async def _probe(settings: Settings, url: str) -> Any:
    acts = ChaosActivities(settings)
    p = HttpProbe(name="tls", url=url + "/", timeout="2s")
    return (await ActivityEnvironment().run(acts.probe, ProbeInput(probe=p, phase="before"))).record


async def test_https_probe_verifies_with_the_configured_ca(
    tls: tuple[dict[str, Path], str, str], tmp_path: Path
) -> None:
    pki, url, mutual = tls
    base = {"state_dir": tmp_path}
    assert (await _probe(Settings(**base, tls_ca_file=pki["ca"]), url)).ok
    untrusted = await _probe(Settings(**base), url)  # system roots do not know our CA
    assert not untrusted.ok and untrusted.status is None
    assert (await _probe(Settings(**base, tls_insecure=True), url)).ok  # only when asked
    # a server that requires a client certificate
    with_cert = Settings(
        **base,
        tls_ca_file=pki["ca"],
        tls_client_cert=pki["client"],
        tls_client_key=pki["client_key"],
    )
    assert (await _probe(with_cert, mutual)).ok
    assert not (await _probe(Settings(**base, tls_ca_file=pki["ca"]), mutual)).ok


async def test_https_load_with_the_configured_ca(tls: tuple[dict[str, Path], str, str]) -> None:
    pki, url, _ = tls
    settings = Settings(tls_ca_file=pki["ca"])
    sc = parse_scenario({"base_url": url, "timeout": "2s", "targets": [{"name": "home"}]})
    prof = make_profile(None, rate=50, duration="1s", max_vus=10)
    st = await NativeLoadRun(sc, prof, ca_file=str(settings.tls_ca_file)).run()
    assert st.completed == 50 and st.ok == 50 and st.errors == 0


async def test_codectl_load_https_uses_the_tls_ca_file_setting(
    tls: tuple[dict[str, Path], str, str], tmp_path: Path, monkeypatch: Any
) -> None:
    import asyncio
    import json

    from typer.testing import CliRunner

    from workers.cli.root import app

    pki, url, _ = tls
    scenario = tmp_path / "sc.yaml"
    scenario.write_text(f"base_url: {url}\ntimeout: 2s\ntargets:\n  - name: home\n")
    monkeypatch.setenv("CODE_TLS_CA_FILE", str(pki["ca"]))
    args = ["load", str(scenario), "--rate", "20", "--duration", "1s", "--json"]
    r = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert r.exit_code == 0, r.output
    stats = json.loads(r.stdout[r.stdout.index("{") :])
    summary = stats["summary"]
    assert summary["completed"] == 20 and summary["errors"] == 0 and summary["dropped"] == 0
