"""A CPU or memory burner process (``python -m activities.faults.burner``).

``--kind cpu --cores N`` spins N processes; ``--kind memory --mb M`` holds M
MiB (touched pages). It always exits by itself after ``--max-duration``
seconds, so a lost revert cannot leave it running forever. ``--key`` only
marks the command line so a revert can verify it kills the right process."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def _spin(deadline: float) -> None:
    x = 0
    while time.monotonic() < deadline:
        for _ in range(10000):
            x += 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--kind", choices=["cpu", "memory"], required=True)
    p.add_argument("--cores", type=int, default=1)
    p.add_argument("--mb", type=int, default=64)
    p.add_argument("--max-duration", type=float, default=300.0)
    p.add_argument("--key", default="")
    a = p.parse_args(argv)
    deadline = time.monotonic() + a.max_duration
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if a.kind == "cpu":
        for _ in range(max(0, a.cores - 1)):
            if os.fork() == 0:
                _spin(deadline)
                os._exit(0)
        _spin(deadline)
        return 0
    hold = bytearray(a.mb * 1024 * 1024)
    for i in range(0, len(hold), 4096):
        hold[i] = 1
    while time.monotonic() < deadline:
        time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
