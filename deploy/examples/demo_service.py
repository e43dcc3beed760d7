"""CODE demo service: a tiny HTTP service whose behaviour comes from its environment.

Standard library only; run it as ``PORT=8080 python demo_service.py``. It binds
127.0.0.1 only.

Environment:
  PORT                 (required) port to listen on
  SERVICE_VERSION      version reported in responses (default "dev")
  DEMO_ERROR_RATE      fraction 0..1 of requests to ``/`` and ``/work`` answered 500
  DEMO_LATENCY_MS      latency added to ``/`` and ``/work`` (with +-10% jitter)
  DEMO_LEAK_KB_PER_S   memory growth: retain this many KB per second of uptime
  DEMO_FAIL_HEALTH=1   ``/healthz`` always answers 503 (the version never becomes healthy)

Endpoints: ``/healthz`` (200 "ok"), ``/`` and ``/work`` (JSON with the version),
``/info`` (version, pid, rss_bytes, uptime_s, leaked_kb)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("SERVICE_VERSION", "dev")
ERROR_RATE = min(1.0, max(0.0, float(os.environ.get("DEMO_ERROR_RATE", "0") or 0)))
LATENCY_MS = max(0.0, float(os.environ.get("DEMO_LATENCY_MS", "0") or 0))
LEAK_KB_PER_S = max(0.0, float(os.environ.get("DEMO_LEAK_KB_PER_S", "0") or 0))
FAIL_HEALTH = os.environ.get("DEMO_FAIL_HEALTH", "") in ("1", "true", "yes")

_STARTED = time.monotonic()
_RNG = random.Random()  # seeded per process from os.urandom
_RNG_LOCK = threading.Lock()
_LEAK: list[bytes] = []
_LEAK_LOCK = threading.Lock()


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _leaker() -> None:
    """Retain LEAK_KB_PER_S KB per second of uptime (touching pages so RSS grows)."""
    while True:
        time.sleep(1.0)
        chunk = bytearray(int(LEAK_KB_PER_S * 1024))
        for i in range(0, len(chunk), 4096):
            chunk[i] = 1
        with _LEAK_LOCK:
            _LEAK.append(bytes(chunk))


def _leaked_kb() -> float:
    with _LEAK_LOCK:
        return sum(len(c) for c in _LEAK) / 1024


class Handler(BaseHTTPRequestHandler):
    server_version = "code-demo/1"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body are separate writes: without NODELAY, Nagle + delayed ACK add 40 ms
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Service-Version", VERSION)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: object) -> None:
        self._send(status, json.dumps(obj).encode())

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)

    def _handle(self) -> None:
        self._drain()
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            if FAIL_HEALTH:
                self._send(503, b"unhealthy\n", "text/plain")
            else:
                self._send(200, b"ok\n", "text/plain")
            return
        if path == "/info":
            self._json(
                200,
                {
                    "version": VERSION,
                    "pid": os.getpid(),
                    "rss_bytes": _rss_bytes(),
                    "uptime_s": round(time.monotonic() - _STARTED, 3),
                    "leaked_kb": _leaked_kb(),
                    # fingerprints (never values) of the env vars named in DEMO_SECRET_VARS
                    "secrets": {
                        name: hashlib.sha256(os.environ[name].encode()).hexdigest()[:12]
                        for name in filter(None, os.environ.get("DEMO_SECRET_VARS", "").split(","))
                        if name in os.environ
                    },
                },
            )
            return
        if path in ("/", "/work"):
            with _RNG_LOCK:
                jitter = _RNG.uniform(0.9, 1.1)
                fail = _RNG.random() < ERROR_RATE
            if LATENCY_MS > 0:
                time.sleep(LATENCY_MS * jitter / 1000.0)
            if fail:
                self._json(500, {"version": VERSION, "error": "injected failure"})
            else:
                self._json(200, {"version": VERSION, "path": path, "ok": True})
            return
        self._json(404, {"version": VERSION, "error": f"no route {path}"})

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle
    do_HEAD = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main() -> int:
    port_text = os.environ.get("PORT")
    if not port_text:
        print("demo_service: set PORT", file=sys.stderr)
        return 2
    server = Server(("127.0.0.1", int(port_text)), Handler)
    if LEAK_KB_PER_S > 0:
        threading.Thread(target=_leaker, daemon=True, name="leak").start()

    def _stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
