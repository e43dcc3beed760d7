"""Payload encryption: AES-256-GCM codec (rotation, key id, tamper), the encrypted
history of a real deployment run (no plaintext spec or secret), replay with the codec,
and the codec server's token check."""

from __future__ import annotations

import base64
import json
import uuid

import aiohttp
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from tests.observability.helpers import SECRET_MARKER, canary_spec, fake_worker
from tests.servers import free_port
from tests.workflows.fakes import FakePlatform
from workers.codec import ENCODING, KEY_ID, EncryptionCodec, Keyring
from workers.codec_server import serve
from workflows.client import data_converter, deployment_result, execute_deployment
from workflows.deployment import DeploymentWorkflow
from workflows.models import DeployInput, DeployResult
from workflows.rollback import RollbackWorkflow


@pytest.fixture
def codec() -> EncryptionCodec:
    return EncryptionCodec(Keyring.generate("k1").rotated("k2"))


async def test_codec_roundtrip_rotation_and_tamper() -> None:
    old = Keyring.generate("2025")
    new = old.rotated("2026")
    p = Payload(metadata={"encoding": b"json/plain"}, data=b'{"secret": "x"}')
    sealed_old = (await EncryptionCodec(old).encode([p]))[0]
    assert sealed_old.metadata["encoding"] == ENCODING and sealed_old.metadata[KEY_ID] == b"2025"
    assert b"secret" not in sealed_old.data
    c = EncryptionCodec(new)
    sealed_new = (await c.encode([p]))[0]
    assert sealed_new.metadata[KEY_ID] == b"2026"  # the newest key encrypts
    assert await c.decode([sealed_old, sealed_new]) == [p, p]  # any key decrypts
    assert (await c.decode([p]))[0] == p  # unencrypted payloads pass through
    with pytest.raises(ValueError, match="unknown key id '2026'"):
        await EncryptionCodec(old).decode([sealed_new])
    forged = Payload(metadata={"encoding": ENCODING, KEY_ID: b"2025"}, data=sealed_new.data)
    from cryptography.exceptions import InvalidTag

    with pytest.raises(InvalidTag):  # the key id is authenticated data: swapping it fails
        await c.decode([forged])


async def test_history_is_encrypted_and_replays(
    ts_env: WorkflowEnvironment, codec: EncryptionCodec
) -> None:
    client = Client(**{**ts_env.client.config(), "data_converter": data_converter(codec)})
    fake = FakePlatform()
    w, tq = fake_worker(client, fake)
    wid = f"enc-{uuid.uuid4()}"
    async with w:
        for v in ("v1", "v2"):
            res = await execute_deployment(
                client,
                DeploymentWorkflow.run,
                DeployInput(spec=canary_spec(v), actor="tester", set_search_attributes=False),
                id=f"{wid}-{v}",
                task_queue=tq,
                result_type=DeployResult,
            )
            assert res.outcome == "promoted", res.reason
    handle = client.get_workflow_handle(f"{wid}-v2", result_type=DeployResult)
    history = await handle.fetch_history()
    raw = history.to_json().encode() + b"".join(e.SerializeToString() for e in history.events)
    for plain in (
        SECRET_MARKER.encode(),
        b"svc.py",
        b"canary",
        b"set_weight",
        b'"shop"',
        b"tester",
    ):
        assert plain not in raw, plain
    assert b"binary/encrypted" in raw
    # the workflow result decodes with the codec, and the run replays with it
    assert (await deployment_result(handle)).version == "v2"
    replay = await Replayer(
        workflows=[DeploymentWorkflow, RollbackWorkflow], data_converter=data_converter(codec)
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert replay.replay_failure is None
    # without the key, the payloads are opaque: replay cannot even read the input
    blind = await Replayer(
        workflows=[DeploymentWorkflow, RollbackWorkflow], data_converter=data_converter()
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert blind.replay_failure is not None

    # the codec server decodes a payload from that history for a valid token only
    first = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    port, token = free_port(), "s3cret-token-0123456789"
    origin = "http://127.0.0.1:8233"
    runner = await serve(codec, token, [origin], "127.0.0.1", port)
    body = json.dumps(
        {
            "payloads": [
                {
                    "metadata": {
                        k: base64.b64encode(v).decode() for k, v in first.metadata.items()
                    },
                    "data": base64.b64encode(first.data).decode(),
                }
            ]
        }
    )
    url = f"http://127.0.0.1:{port}/decode"
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(
                url,
                data=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "X-Namespace": "default",
                    "Origin": origin,
                },
            ) as r:
                assert r.status == 200
                assert r.headers["Access-Control-Allow-Origin"] == origin
                out = await r.json()
            decoded = base64.b64decode(out["payloads"][0]["data"])
            assert SECRET_MARKER.encode() in decoded and b"svc.py" in decoded
            async with s.post(
                url, data=body, headers={"Authorization": "Bearer wrong-token-xxxxxxxx"}
            ) as r:
                assert r.status == 403
                assert SECRET_MARKER not in await r.text()
            async with s.post(url, data=body) as r:
                assert r.status == 401
            async with s.options(
                url, headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
            ) as r:
                assert (
                    r.status == 204 and "Authorization" in r.headers["Access-Control-Allow-Headers"]
                )
            async with s.options(url, headers={"Origin": "http://evil.example"}) as r:
                assert "Access-Control-Allow-Origin" not in r.headers
            # encode works too and round-trips through decode
            async with s.post(
                f"http://127.0.0.1:{port}/encode",
                data=json.dumps(
                    {
                        "payloads": [
                            {
                                "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                                "data": base64.b64encode(b'"hello"').decode(),
                            }
                        ]
                    }
                ),
                headers={"Authorization": token},
            ) as r:
                enc = await r.json()
            assert base64.b64decode(enc["payloads"][0]["metadata"]["encoding"]) == ENCODING
    finally:
        await runner.cleanup()


def test_keyring_file_and_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from workers.cli.codec import codec_app

    ring = tmp_path / "ring.json"
    r = CliRunner().invoke(codec_app, ["keygen", str(ring), "--id", "a"])
    assert r.exit_code == 0, r.output
    assert oct(ring.stat().st_mode & 0o777) == "0o600"
    r = CliRunner().invoke(codec_app, ["rotate", str(ring), "--id", "b"])
    assert r.exit_code == 0, r.output
    k = Keyring.from_file(ring)
    assert list(k.keys) == ["a", "b"] and k.primary == "b"


async def test_codec_server_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The `codec-server` command as a process: 401 without, 403 with a wrong, 200 with the token."""
    import subprocess
    import sys

    from tests.servers import stop_process, wait_until

    ring = Keyring.generate("k1")
    (tmp_path / "ring.json").write_text(json.dumps(ring.to_json()))
    (tmp_path / "token").write_text("correct-horse-battery-staple\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import typer; from workers.cli.codec import codec_server; typer.run(codec_server)",
            "--port",
            str(port),
            "--token-file",
            str(tmp_path / "token"),
            "--keyring",
            str(tmp_path / "ring.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from tests.servers import port_open

        wait_until(lambda: port_open(port), 20, "codec server", proc)
        sealed = (
            await EncryptionCodec(ring).encode(
                [Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')]
            )
        )[0]
        body = json.dumps(
            {
                "payloads": [
                    {
                        "metadata": {
                            k: base64.b64encode(v).decode() for k, v in sealed.metadata.items()
                        },
                        "data": base64.b64encode(sealed.data).decode(),
                    }
                ]
            }
        )
        url = f"http://127.0.0.1:{port}/decode"
        async with aiohttp.ClientSession() as s:
            for headers, status in (
                ({}, 401),
                ({"Authorization": "Bearer nope-nope-nope-nope"}, 403),
                ({"Authorization": "Bearer correct-horse-battery-staple"}, 200),
            ):
                async with s.post(url, data=body, headers=headers) as r:
                    assert r.status == status
                    if status == 200:
                        assert base64.b64decode((await r.json())["payloads"][0]["data"]) == b'"x"'
    finally:
        stop_process(proc)
