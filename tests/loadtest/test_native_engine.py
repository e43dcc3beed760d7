"""The native engine (rust_core.LoadEngine via loadtest.native) against real loopback
servers, checked against the Python engine (its reference). No timing assertions."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from code_foundation.errors import SpecError
from loadtest.engine import LoadRun
from loadtest.native import NativeLoadRun, load_run, run_load
from loadtest.safety import NotLoopbackError
from loadtest.scenario import LoadProfile, make_profile, parse_scenario
from tests.loadtest.conftest import Target

ROOT = Path(__file__).resolve().parents[2]


def _sc(url: str, targets: list[dict], timeout: str = "5s"):
    return parse_scenario({"base_url": url, "timeout": timeout, "targets": targets})


MIXED: list[dict] = [
    {"name": "home", "path": "/", "weight": 2},
    {
        "name": "echo",
        "method": "POST",
        "path": "/echo",
        "json": {"a": 1},
        "headers": {"X-Test": "1"},
        "expect_status": 201,
    },
    {"name": "chunked", "path": "/chunked"},
    {"name": "fail", "path": "/fail"},
]


async def test_same_counts_as_the_python_engine(target: Target) -> None:
    sc = _sc(target.url, MIXED)
    prof = make_profile(None, rate=200, duration="2s", max_vus=50)
    py = await run_load(sc, prof, engine="python")
    target.hits = 0
    seen: list = []
    nat = await run_load(sc, prof, engine="native", on_progress=seen.append, progress_every=0.5)
    assert nat.planned == py.planned == 400 and nat.sent + nat.dropped == 400
    assert nat.dropped == 0 and nat.completed == 400 == target.hits
    for a, b in zip(py.keys, nat.keys, strict=True):
        assert (a.name, a.method, a.count, a.ok, a.errors, a.status) == (
            b.name,
            b.method,
            b.count,
            b.ok,
            b.errors,
            b.status,
        )
    by = {k.name: k for k in nat.keys}
    assert by["home"].count == 160 and by["echo"].status == {"201": 80}
    assert by["fail"].errors == 80 and by["fail"].status == {"500": 80}
    assert abs(nat.achieved_rate() / 200 - 1) < 0.01
    assert nat.histogram().count == 400
    assert seen and seen[-1].sent == 400 and seen[-1].completed == 400


async def test_same_latency_distribution_on_a_fixed_latency_target(target: Target) -> None:
    sc = _sc(target.url, [{"name": "slow", "path": "/slow?s=0.03"}])
    prof = make_profile(None, rate=50, duration="2s", max_vus=50)
    py = await run_load(sc, prof, engine="python")
    nat = await run_load(sc, prof, engine="native")
    assert py.completed == nat.completed == 100 and nat.errors == 0
    qp, qn = py.quantiles(), nat.quantiles()
    for q in ("p50", "p90"):
        n, p = qn[q], qp[q]
        assert n is not None and p is not None
        assert n >= 30 and p >= 30  # never less than the server's own latency
        assert abs(n - p) <= 0.2 * p, (q, qn, qp)


async def test_drops_counted_with_a_tiny_in_flight_bound(target: Target) -> None:
    sc = _sc(target.url, [{"name": "slow", "path": "/slow?s=0.5"}])
    st = await run_load(sc, make_profile(None, rate=40, duration="1s", max_vus=5))
    # 5 in flight until ~0.5s, then 5 more; the other arrivals are dropped
    assert st.planned == 40 and st.sent == 10 and st.dropped == 30
    assert st.completed == 10 and st.errors == 0


async def test_timeouts_refused_connections_and_stall(target: Target) -> None:
    sc = _sc(target.url, [{"name": "slow", "path": "/slow?s=1", "timeout": "200ms"}])
    st = await run_load(sc, make_profile(None, rate=10, duration="1s", max_vus=50))
    k = st.keys[0]
    assert k.count == 10 and k.timeouts == 10 and k.errors == 10 and k.ok == 0
    assert st.histogram().quantile(0.5) >= 195
    st = await run_load(
        _sc("http://127.0.0.1:9", [{"name": "x"}], timeout="1s"),
        make_profile(None, rate=20, duration="0.5s"),
    )
    assert st.completed == 10 and st.keys[0].transport_errors == 10
    # one 400 ms server stall with one connection: arrivals meanwhile are dropped and the
    # stalled request shows the stall (latency from the intended send time)
    target.stall_s = 0.4
    st = await run_load(
        _sc(target.url, [{"name": "home"}]), make_profile(None, rate=100, duration="2s", max_vus=1)
    )
    assert st.histogram().max >= 390 and st.dropped >= 30


async def test_stop_ends_early_and_safety(target: Target) -> None:
    run = NativeLoadRun(
        _sc(target.url, [{"name": "home"}]), make_profile(None, rate=100, duration="30s")
    )

    def stop_after_half_second(p) -> None:
        if p.elapsed_s > 0.4:
            run.stop()

    st = await run.run(on_progress=stop_after_half_second, progress_every=0.25)
    assert st.sent > 0 and st.planned == st.sent + st.dropped < 3000  # 3000 = the whole run
    sc = parse_scenario({"targets": [{"name": "x"}]})
    prof = make_profile(None, rate=1, duration="1s")
    with pytest.raises(NotLoopbackError, match="loopback"):
        NativeLoadRun(sc, prof, base_url="http://93.184.216.34/")
    with pytest.raises(SpecError, match="base_url"):
        NativeLoadRun(sc, prof)
    with pytest.raises(SpecError, match="plain HTTP"):
        LoadRun(sc, prof, base_url="https://127.0.0.1:1")
    assert isinstance(load_run(sc, prof, base_url="http://127.0.0.1:1"), NativeLoadRun)
    assert isinstance(load_run(sc, prof, engine="python", base_url="http://127.0.0.1:1"), LoadRun)


# ---------------------------------------------------------------- GIL and live progress
@pytest.fixture
def raw_target() -> Iterator[str]:
    """loadtest.target_server in its own process (the test thread blocks in run_sync)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtest.target_server",
            "--port",
            str(port),
            "--max-seconds",
            "60",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_gil_released_and_progress_readable_during_the_run(raw_target: str) -> None:
    sc = _sc(raw_target, [{"name": "home"}])
    run = NativeLoadRun(sc, make_profile(None, rate=500, duration="1.5s"))
    seen: list = []
    done = threading.Event()

    def watch() -> None:  # pure Python: it can only run while run_sync has let go of the GIL
        while not done.is_set():
            seen.append(run.progress())
            time.sleep(0.02)

    t = threading.Thread(target=watch)
    t.start()
    try:
        st = run.run_sync()
    finally:
        done.set()
        t.join()
    assert st.completed == 750 and st.errors == 0
    during = [p for p in seen if 0 < p.sent < 750]
    assert during, "no progress was observed while the run was going on"
    assert any(p.p99_ms is not None for p in during)
    assert [p.sent for p in seen] == sorted(p.sent for p in seen)


# ---------------------------------------------------------------- HTTPS on loopback
def _certs(tmp: Path) -> tuple[Path, Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def cert(subject: str, key, issuer: str, issuer_key, ca: bool):
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            b = b.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return b.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("code test CA", ca_key, "code test CA", ca_key, True)
    leaf = cert("127.0.0.1", key, "code test CA", ca_key, False)
    pem = serialization.Encoding.PEM
    paths = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(leaf.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest_asyncio.fixture
async def tls_target(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    ca, crt, key = _certs(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(crt, key)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="secure")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"https://127.0.0.1:{port}", ca
    finally:
        await runner.cleanup()


async def test_https_on_loopback(tls_target: tuple[str, Path]) -> None:
    url, ca = tls_target
    sc = _sc(url, [{"name": "home"}], timeout="2s")
    prof = make_profile(None, rate=100, duration="1s", max_vus=20)
    st = await NativeLoadRun(sc, prof, ca_file=str(ca)).run()
    assert st.completed == 100 and st.ok == 100 and st.errors == 0
    # a server whose certificate we do not trust: every request fails, none is sent in clear
    untrusted = await NativeLoadRun(sc, make_profile(None, rate=20, duration="0.5s")).run()
    assert untrusted.completed == 10 and untrusted.keys[0].transport_errors == 10
    with pytest.raises(SpecError, match="ca_file"):
        NativeLoadRun(sc, prof, ca_file=str(ca.parent / "missing.pem"))


async def test_ramping_profile_same_schedule_as_python(target: Target) -> None:
    sc = _sc(target.url, [{"name": "home"}])
    ramp = LoadProfile.model_validate(
        {"executor": "ramping", "start_rate": 20, "stages": [{"duration": "1s", "target": 100}]}
    )
    py = await run_load(sc, ramp, engine="python")
    nat = await run_load(sc, ramp, engine="native")
    assert nat.planned == py.planned == ramp.planned() == 60
    assert nat.completed == py.completed == 60 and nat.errors == 0
