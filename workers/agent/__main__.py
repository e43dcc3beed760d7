"""CLI wiring of the local platform agent.

``python -m workers.agent --host 127.0.0.1 --port 8270 --state-dir DIR``

Binds loopback only (a non-loopback --host is refused). SIGINT/SIGTERM stop
every router and child process cleanly, then the agent exits 0."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
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


async def _serve(args: argparse.Namespace) -> None:
    agent = Agent(
        args.state_dir.resolve(),
        url=f"http://{args.host}:{args.port}",
        upstream_timeout=args.upstream_timeout,
    )
    runner = web.AppRunner(make_app(agent), access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, args.host, args.port)
        try:
            await site.start()
        except OSError as exc:
            print(
                f"agent: cannot listen on {args.host}:{args.port}: {exc.strerror}; "
                "is another agent running? use --port",
                file=sys.stderr,
            )
            raise SystemExit(3) from None
        print(
            f"agent: listening on http://{args.host}:{args.port} (state {args.state_dir})",
            flush=True,
        )
        await stop.wait()
    finally:
        await runner.cleanup()  # stops routers and every child process


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
