"""A minimal keep-alive HTTP/1.1 client connection on ``asyncio.Protocol``.

Built for load generation: requests are pre-encoded bytes, responses are
parsed only as far as needed (status, Content-Length / chunked / read-to-close,
``Connection: close``) and bodies are discarded. One request in flight per
connection (no pipelining). The owner gets ``on_done(conn, status, error)``
callbacks; ``error`` is ``None``, ``"timeout"`` or ``"transport"``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

_CRLF2 = b"\r\n\r\n"
_NO_BODY = (204, 304)


class Http1Conn(asyncio.Protocol):
    __slots__ = (
        "transport", "buf", "busy", "head", "closed", "keep_alive", "on_done",
        "idx", "intended", "timer", "_need", "_status", "_chunked", "_until_close",
    )  # fmt: skip

    def __init__(self, on_done: Callable[[Http1Conn, int, str | None], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.busy = False
        self.head = False
        self.closed = False
        self.keep_alive = True
        self.on_done = on_done
        self.idx = 0
        self.intended = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self._need = -1  # total bytes (head + body) of the current response, once known
        self._status = 0
        self._chunked = False
        self._until_close = False

    # ---------------------------------------------------------- protocol
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.busy:
            if self._until_close and self._status:
                self._finish(self._status, None)
            else:
                self._finish(0, "transport")

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # unsolicited bytes: the connection cannot be trusted
            self.close()
            return
        self.buf += data
        self._parse()

    # ---------------------------------------------------------- use
    def send(self, data: bytes, head: bool, idx: int, intended: float) -> None:
        self.busy = True
        self.head = head
        self.idx = idx
        self.intended = intended
        self._reset()
        if self.transport is None:
            raise RuntimeError("send() before the connection was made")
        self.transport.write(data)

    def timed_out(self) -> None:
        self.timer = None
        if self.busy:
            self._finish(0, "timeout")
            self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # ---------------------------------------------------------- parsing
    def _finish(self, status: int, error: str | None) -> None:
        self.busy = False
        if error is not None:
            self.closed = True  # never reuse a connection after a failure
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.on_done(self, status, error)

    def _parse(self) -> None:
        buf = self.buf
        if self._need < 0 and not self._chunked and not self._until_close:
            end = buf.find(_CRLF2)
            if end < 0:
                if len(buf) > 65536:
                    self._finish(0, "transport")
                    self.close()
                return
            head_len = end + 4
            try:
                status = int(buf[9:12])
            except ValueError:
                self._finish(0, "transport")
                self.close()
                return
            self._status = status
            headers = bytes(buf[:end]).lower()
            if b"\r\nconnection: close" in headers or headers.startswith(b"http/1.0"):
                self.keep_alive = False
            if self.head or status in _NO_BODY or 100 <= status < 200:
                self._need = head_len
            else:
                pos = headers.find(b"\r\ncontent-length:")
                if pos >= 0:
                    eol = headers.find(b"\r\n", pos + 2)
                    value = headers[pos + 17 : eol if eol >= 0 else len(headers)]
                    self._need = head_len + int(value.strip())
                elif b"\r\ntransfer-encoding: chunked" in headers:
                    self._chunked = True
                    del buf[:head_len]
                else:
                    self._until_close = True
                    self.keep_alive = False
                    return
        if self._chunked:
            self._parse_chunks()
            return
        if self._until_close:
            buf.clear()
            return
        if len(buf) >= self._need:
            del buf[: self._need]
            status = self._status
            self._finish(status, None)
            if not self.keep_alive:
                self.close()

    def _parse_chunks(self) -> None:
        buf = self.buf
        while True:
            eol = buf.find(b"\r\n")
            if eol < 0:
                return
            try:
                size = int(bytes(buf[:eol]).split(b";", 1)[0], 16)
            except ValueError:
                self._finish(0, "transport")
                self.close()
                return
            if size == 0:
                end = buf.find(_CRLF2, eol)
                if end < 0 and buf[eol : eol + 4] != b"\r\n\r\n":
                    return
                del buf[: (end + 4 if end >= 0 else eol + 4)]
                self._chunked = False
                self._finish(self._status, None)
                if not self.keep_alive:
                    self.close()
                return
            total = eol + 2 + size + 2
            if len(buf) < total:
                return
            del buf[:total]


def encode_request(
    method: str, host: str, path: str, headers: dict[str, str], body: bytes
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lower = {k.lower() for k in headers}
    for k, v in headers.items():
        lines.append(f"{k}: {v}")
    if (body or method in ("POST", "PUT", "PATCH")) and "content-length" not in lower:
        lines.append(f"Content-Length: {len(body)}")
    if "user-agent" not in lower:
        lines.append("User-Agent: code-load/1")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
