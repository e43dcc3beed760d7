"""A real HTTP receiver on loopback for hook and notification tests: records every
request (method, path, headers, raw body) and answers with what ``respond`` returns
(default ``200 {"ok": true}``). Runs in a thread; ``stop()`` closes the port."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Responder = Callable[[Call], tuple[int, str]]


class Receiver:
    def __init__(self, respond: Responder | None = None) -> None:
        self.calls: list[Call] = []
        self.respond: Responder = respond or (lambda _c: (200, '{"ok": true}'))
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                call = Call(
                    self.command,
                    self.path,
                    {k: v for k, v in self.headers.items()},
                    self.rfile.read(n) if n else b"",
                )
                with outer._lock:
                    outer.calls.append(call)
                code, body = outer.respond(call)
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def paths(self) -> list[str]:
        with self._lock:
            return [c.path for c in self.calls]

    def to(self, path: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
