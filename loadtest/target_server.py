"""A tiny, fast loopback HTTP/1.1 server for benchmarks and tests.

Answers every request with a fixed 200 (a raw-speed target), except
``GET /__served``, which answers the number of requests served so far; keep-alive;
binds 127.0.0.1 only. Run ``python -m loadtest.target_server --port P``; it
stops on SIGTERM/SIGINT or after ``--max-seconds`` (bounded)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

_BODY = b"ok\n"
_RESP = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
    + str(len(_BODY)).encode()
    + b"\r\n\r\n"
    + _BODY
)


class _Proto(asyncio.Protocol):
    served = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        n = 0
        out = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].lower()
            body_len = 0
            pos = head.find(b"\r\ncontent-length:")
            if pos >= 0:
                eol = head.find(b"\r\n", pos + 2)
                body_len = int(head[pos + 17 : eol if eol >= 0 else len(head)])
            total = end + 4 + body_len
            if len(buf) < total:
                break
            buf = buf[total:]
            if head.startswith(b"get /__served "):
                _Proto.served += n
                n = 0
                body = str(_Proto.served).encode()
                out += b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                continue
            n += 1
            out += _RESP
        self.buf = buf
        if out:
            _Proto.served += n
            self.t.write(out)  # type: ignore[attr-defined]


async def serve(port: int, max_seconds: float, ready: asyncio.Event | None = None) -> int:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Proto, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    with contextlib.suppress(TimeoutError):  # the bounded run is over
        await asyncio.wait_for(stop.wait(), max_seconds)
    server.close()
    return _Proto.served


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--max-seconds", type=float, default=600.0)
    args = ap.parse_args()
    served = asyncio.run(serve(args.port, args.max_seconds))
    print(f"served {served}", flush=True)


if __name__ == "__main__":
    main()
