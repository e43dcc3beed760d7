"""CLI wiring of the local platform agent.

``python -m workers.agent --host 127.0.0.1 --port 8270 --state-dir DIR``

Binds loopback only (a non-loopback --host is refused). One agent per state dir
(an exclusive lock on ``agent.lock``; a second one exits 3), and the port is bound
before anything is reconciled, so a second agent never touches the first one's
processes. On start it reconciles the desired state left by a previous agent
(see :mod:`workers.agent.reconcile`). SIGINT/SIGTERM stop every router and
service instance cleanly, then the agent exits 0; a crash (SIGKILL) leaves them
serving for the next agent to re-adopt."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import ipaddress
import os
import signal
import socket
import sys
from pathlib import Path

from aiohttp import web

from workers.agent.app import make_app
from workers.agent.core import Agent


def _parse(argv: list[str] | None) -> argparse.Namespace:
    from activities.settings import default_state_dir

    p = argparse.ArgumentParser(prog="python -m workers.agent", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    p.add_argument("--port", type=int, default=8270)
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where state.json, ops.jsonl and instance logs go (default: $CODE_STATE_DIR/agent)",
    )
    p.add_argument(
        "--upstream-timeout",
        type=float,
        default=10.0,
        help="seconds the router waits for an instance before answering 504",
    )
    args = p.parse_args(argv)
    if args.state_dir is None:
        args.state_dir = default_state_dir() / "agent"
    try:
        loopback = args.host == "localhost" or ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        p.error(f"--host {args.host} is not a loopback address; the agent only binds loopback")
    return args


def _lock(state_dir: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)  # not inherited
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        print(
            f"agent: another agent (pid {holder}) uses state dir {state_dir}; "
            "stop it first or use another --state-dir",
            file=sys.stderr,
        )
        raise SystemExit(3) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        print(
            f"agent: cannot listen on {host}:{port}: {exc.strerror}; "
            "is another agent running? use --port",
            file=sys.stderr,
        )
        raise SystemExit(3) from None
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def _serve(args: argparse.Namespace) -> None:
    state_dir = args.state_dir.resolve()
    lock = _lock(state_dir)
    sock = _bind(args.host, args.port)  # before reconciling: a busy port touches nothing
    agent = Agent(
        state_dir, url=f"http://{args.host}:{args.port}", upstream_timeout=args.upstream_timeout
    )
    runner = web.AppRunner(make_app(agent), access_log=None, handle_signals=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.setup()  # reconciles (Agent.start)
        await web.SockSite(runner, sock).start()
        print(f"agent: listening on http://{args.host}:{args.port} (state {state_dir})", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()  # stops routers and every service instance
        sock.close()
        os.close(lock)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
