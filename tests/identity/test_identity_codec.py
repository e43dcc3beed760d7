"""The codec server accepts the same OIDC tokens as the workflows (real issuer, real
tokens, the real aiohttp server on loopback): no token 401, a forged token 401, a valid
token without the viewer role 403, a viewer 200 with the payload decoded; a token signed
after the issuer rotated its key verifies (the server re-fetches the JWKS once)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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
