"""Load engine benchmark: our engine vs wrk vs Locust (FastHttpUser), one run, same target.

    python bench/bench_load.py [--seconds 10]

Target: ``loadtest.target_server`` (a raw asyncio HTTP/1.1 server) in its own
process on 127.0.0.1. Each generator runs in its own process with 50
connections/users for ``--seconds``; "per core" = successful requests per
CPU-second the generator process used (user+sys, import time excluded for the
Python generators; wrk measured through RUSAGE_CHILDREN). Our engine's maximum
is measured at 1.2x the rate a 3 s saturation probe achieved. Then it runs
at 25/50/80% of that maximum and the achieved rate is compared with
the requested one. Targets (issue 6): per-core rate >= Locust's; achieved
within 1% of requested up to 80%. Prints a table with ratios and PASS/MISS.
Loopback only; every run is bounded in time. Finishes in well under 3 minutes."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONNS = 50
STEP_S = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------- child modes
def child_ours(url: str, rate: float, seconds: float, vus: int) -> None:
    sys.path.insert(0, str(ROOT))
    from loadtest.engine import run_load
    from loadtest.scenario import make_profile, parse_scenario

    sc = parse_scenario({"base_url": url, "targets": [{"name": "root"}]})
    prof = make_profile(None, rate=rate, duration=seconds, max_vus=vus)
    c0, t0 = _cpu(), time.monotonic()
    st = asyncio.run(run_load(sc, prof))
    cpu, wall = _cpu() - c0, time.monotonic() - t0
    print(
        json.dumps(
            {
                "ok": st.ok,
                "errors": st.errors,
                "sent": st.sent,
                "dropped": st.dropped,
                "planned": st.planned,
                "cpu": cpu,
                "wall": wall,
                "duration": seconds,
                "achieved_send_rate": st.achieved_rate(),
                "p99": st.quantiles()["p99"],
            }
        )
    )


def child_locust(url: str, seconds: float) -> None:
    import gevent
    from locust import FastHttpUser, constant, task
    from locust.env import Environment

    class U(FastHttpUser):
        wait_time = constant(0)
        host = url

        @task
        def root(self) -> None:
            self.client.get("/")

    env = Environment(user_classes=[U])
    runner = env.create_local_runner()
    c0, t0 = _cpu(), time.monotonic()
    runner.start(CONNS, spawn_rate=CONNS)
    gevent.spawn_later(seconds, runner.quit)
    runner.greenlet.join()
    cpu, wall = _cpu() - c0, time.monotonic() - t0
    total = env.stats.total
    print(
        json.dumps(
            {
                "ok": total.num_requests - total.num_failures,
                "errors": total.num_failures,
                "cpu": cpu,
                "wall": wall,
            }
        )
    )


# ---------------------------------------------------------------- parent
def _run_child(args: list[str], timeout: float) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if out.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed: {out.stderr[-800:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_wrk(url: str, seconds: float) -> dict | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    c0 = _children_cpu()
    t0 = time.monotonic()
    out = subprocess.run(
        [wrk, "-t1", f"-c{CONNS}", f"-d{int(seconds)}s", url + "/"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    )
    cpu, wall = _children_cpu() - c0, time.monotonic() - t0
    m = re.search(r"(\d+) requests in", out.stdout)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out.stdout
    )
    n = int(m.group(1)) if m else 0
    e = int(errs.group(1)) if errs else 0
    if sock:
        e += sum(int(x) for x in sock.groups())
    return {"ok": n - e, "errors": e, "cpu": cpu, "wall": wall, "duration": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--child", nargs="*")
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        if kind == "ours":
            child_ours(rest[0], float(rest[1]), float(rest[2]), int(rest[3]))
        elif kind == "locust":
            child_locust(rest[0], float(rest[1]))
        return

    secs = a.seconds
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    target = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtest.target_server",
            "--port",
            str(port),
            "--max-seconds",
            "170",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    started = time.monotonic()
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        rows: dict[str, dict] = {}
        # our engine, saturated: a 3 s probe at an absurd rate estimates what this machine
        # can do; the measured run then asks for 1.2x that (arrivals beyond 50 in flight
        # are dropped, as the open model says, without burning the CPU on 200k drops/s)
        probe = _run_child(["--child", "ours", url, "100000", "3", str(CONNS)], 60)
        ask = 1.2 * probe["ok"] / 3
        ours = _run_child(["--child", "ours", url, f"{ask:.0f}", str(secs), str(CONNS)], secs + 60)
        ours["requested"] = ask
        rows["ours (open model)"] = ours
        w = run_wrk(url, secs)
        if w:
            rows["wrk -t1 -c50"] = w
        try:
            rows["locust FastHttpUser"] = _run_child(
                ["--child", "locust", url, str(secs)], secs + 60
            )
        except Exception as exc:  # noqa: BLE001 - report, don't hide
            print(f"locust failed: {exc}", file=sys.stderr)
        max_rate = ours["ok"] / ours["duration"]
        accuracy = []
        for frac in (0.25, 0.5, 0.8):
            req = max_rate * frac
            r = _run_child(["--child", "ours", url, f"{req:.1f}", str(STEP_S), "1000"], 70)
            done_rate = r["ok"] / r["duration"]
            accuracy.append((frac, req, r["achieved_send_rate"], done_rate, r["dropped"], r["p99"]))
    finally:
        target.terminate()
        target.wait(10)

    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    t = Table(
        title=f"load generators, {CONNS} connections, {secs:g}s each, same target "
        f"({os.cpu_count()} shared cores)"
    )
    for col in (
        "generator",
        "ok req",
        "errors",
        "req/s (wall)",
        "CPU s",
        "req/s per core",
        "vs ours",
    ):
        t.add_column(col, justify="right" if col != "generator" else "left")
    per_core = {k: v["ok"] / v["cpu"] if v["cpu"] > 0 else 0.0 for k, v in rows.items()}
    ours_pc = per_core["ours (open model)"]
    for k, v in rows.items():
        t.add_row(
            k,
            f"{v['ok']:,}",
            f"{v['errors']:,}",
            f"{v['ok'] / v.get('duration', secs):,.0f}",
            f"{v['cpu']:.2f}",
            f"{per_core[k]:,.0f}",
            f"{ours_pc / per_core[k]:.2f}x" if per_core[k] else "-",
        )
    console.print(t)
    a2 = Table(
        title=f"rate accuracy (our max = {max_rate:,.0f} req/s, {STEP_S}s per step, max_vus 1000)"
    )
    for col in (
        "step",
        "requested/s",
        "achieved send/s",
        "send err %",
        "completed/s",
        "completed err %",
        "dropped",
        "p99 ms",
        "target",
    ):
        a2.add_column(col, justify="right")
    verdicts = []
    for frac, req, sent, done, dropped, p99 in accuracy:
        e_send = 100 * abs(sent - req) / req
        e_done = 100 * abs(done - req) / req
        ok = e_send <= 1.0 and e_done <= 1.0
        verdicts.append(ok)
        a2.add_row(
            f"{frac:.0%}",
            f"{req:,.0f}",
            f"{sent:,.0f}",
            f"{e_send:.2f}",
            f"{done:,.0f}",
            f"{e_done:.2f}",
            f"{dropped:,}",
            f"{p99:.2f}" if p99 else "-",
            "PASS" if ok else "MISS",
        )
    console.print(a2)
    loc = per_core.get("locust FastHttpUser")
    wrk = per_core.get("wrk -t1 -c50")
    console.print("targets:")
    if loc:
        console.print(
            f"  per-core rate >= Locust's: ours {ours_pc:,.0f} vs locust {loc:,.0f} "
            f"({ours_pc / loc:.2f}x) -> {'PASS' if ours_pc >= loc else 'MISS'}"
        )
    else:
        console.print("  per-core rate >= Locust's: locust did not run -> MISS (unmeasured)")
    if wrk:
        console.print(f"  (reference) wrk per core {wrk:,.0f}: ours is {ours_pc / wrk:.2f}x of wrk")
    console.print(f"  achieved within 1% up to 80% of max -> {'PASS' if all(verdicts) else 'MISS'}")
    console.print(f"total wall time {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
