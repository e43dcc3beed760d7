"""The crash matrix (``make crash-matrix``): every workflow type x every crash point found
in its uncrashed history x each of {worker, agent, temporal}, SIGKILLed there and brought
back by the supervisor; each trial checked (:mod:`tests.crash.trial`).

Contract: ``python -m tests.crash.matrix`` runs the reference (uncrashed) run of every
scenario on one stack, then the cells in batches of at most ``BATCH`` trials per fresh
stack (so the supervisor's restart backoff stays at 1-2 s), ``CRASH_JOBS`` batches at
once (default 2). ``CRASH_TRIALS=N`` trials per cell (default 1), ``CRASH_SCENARIOS`` /
``CRASH_PROCESSES`` (comma lists) narrow it, ``CRASH_RESUME=<log>`` skips (and counts as
reported) the trials an interrupted run's log lists, ``--ci`` runs :func:`ci_sample`. It
prints the table (workflow x crash point x process -> trials, correct) and a total line
``N/M trials correct``, writes both to ``artifacts/crash-matrix.md`` (``--out``) and
exits 1 when any trial is not correct."""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

from tests.crash.scenarios import SCENARIOS
from tests.crash.stack import PROCESSES
from tests.crash.trial import CHECKS, Reference, Trial, TrialResult, run_batch

ROOT = Path(__file__).resolve().parents[2]
BATCH = 6


WORKER_CI_BOUND_S = 15.0


def ci_sample(refs: dict[str, Reference], seed: int = 0) -> list[Trial]:
    """One trial per workflow type, every process covered, points drawn with ``seed``.

    The worker is killed only where the activity in flight is retried within
    :data:`WORKER_CI_BOUND_S` (it heartbeats): a worker SIGKILLed during a platform
    activity leaves Temporal waiting out that activity's start-to-close timeout (2
    minutes), which the full matrix measures and a 4-minute CI run cannot afford. The
    agent and the Temporal server are killed in the middle of a platform-changing
    activity when the workflow has one."""
    rng = random.Random(seed)
    names = sorted(refs)
    quick = [n for n in names if any(p.bound_s <= WORKER_CI_BOUND_S for p in refs[n].points)]
    worker = set(rng.sample(quick, min(2, len(quick))))
    others = [p for p in PROCESSES if p != "worker"]
    trials, k = [], seed
    for name in names:
        points = refs[name].points
        if name in worker:
            cands = [p for p in points if p.bound_s <= WORKER_CI_BOUND_S]
            trials.append(Trial(name, rng.choice(cands), "worker"))
            continue
        mids = [p for p in points if p.phase == "mid"]
        trials.append(Trial(name, rng.choice(mids or points), others[k % len(others)]))
        k += 1
    return trials


def full_plan(refs: dict[str, Reference], processes: list[str], trials: int) -> list[Trial]:
    """Every cell ``trials`` times, processes alternating so no process is killed twice in
    a row on one stack."""
    out = []
    for name, ref in refs.items():
        for _ in range(trials):
            for point in ref.points:
                for process in processes:
                    out.append(Trial(name, point, process))
    return out


def batches(trials: list[Trial], size: int = BATCH) -> list[list[Trial]]:
    """Chunks of one scenario each, at most ``size`` trials and at most ``size // 3`` kills
    of any one process."""
    by_scenario: dict[str, list[Trial]] = collections.defaultdict(list)
    for t in trials:
        by_scenario[t.scenario].append(t)
    out = []
    for group in by_scenario.values():
        for i in range(0, len(group), size):
            out.append(group[i : i + size])
    return out


async def run(
    scenarios: list[str],
    processes: list[str],
    trials: int,
    jobs: int,
    ci: bool,
    seed: int,
    root: Path,
) -> list[TrialResult]:
    refs: dict[str, Reference] = {}

    def keep(found: dict[str, Reference]) -> list[Trial]:
        refs.update(found)
        return ci_sample(found, seed) if ci else []

    print(f"reference runs ({', '.join(scenarios)}):", flush=True)
    results = await run_batch(root / "ref", keep, scenarios)
    if ci:
        return results
    resumed = _resumed(os.environ.get("CRASH_RESUME", ""))
    done_keys = collections.Counter((r.scenario, r.point, r.process) for r in resumed)
    todo = []
    for t in full_plan(refs, processes, trials):
        key = (t.scenario, t.point.label if not isinstance(t.point, str) else t.point, t.process)
        if done_keys[key] > 0:
            done_keys[key] -= 1
        else:
            todo.append(t)
    if resumed:
        print(f"{len(resumed)} trials taken from {os.environ['CRASH_RESUME']}", flush=True)
    plan = batches(todo)
    print(f"{sum(len(b) for b in plan)} trials in {len(plan)} batches, {jobs} at once", flush=True)
    sem = asyncio.Semaphore(jobs)

    async def one(i: int, batch: list[Trial]) -> list[TrialResult]:
        async with sem:
            return await run_batch(root / f"b{i}", batch, [], refs=refs)

    done = await asyncio.gather(*(one(i, b) for i, b in enumerate(plan)))
    return resumed + [r for rs in done for r in rs]


def _resumed(log: str) -> list[TrialResult]:
    """Trials reported by an earlier, interrupted run's log (``  ok s | point | process``):
    a resumed run skips them and counts them as that log reported them."""
    if not log:
        return []
    out = []
    for line in Path(log).read_text().splitlines():
        m = re.match(r"^  (ok|FAIL) (\S+) \| (.+?) \| (\w+) \(", line)
        if m:
            ok = m.group(1) == "ok"
            r = TrialResult(m.group(2), m.group(3), m.group(4), detail=f"from {log}")
            r.checks = {c: ok for c in CHECKS}
            out.append(r)
    return out


def _point_order(refs_points: dict[str, list[str]], scenario: str, label: str) -> int:
    labels = refs_points.get(scenario, [])
    return labels.index(label) if label in labels else len(labels)


def table(results: list[TrialResult]) -> tuple[list[tuple[str, str, str, int, int]], str]:
    cells: dict[tuple[str, str, str], list[TrialResult]] = collections.defaultdict(list)
    order: dict[str, list[str]] = collections.defaultdict(list)
    for r in results:
        cells[(r.scenario, r.point, r.process)].append(r)
        if r.point not in order[r.scenario]:
            order[r.scenario].append(r.point)
    names = list(SCENARIOS)
    rows = [
        (s, p, proc, len(rs), sum(r.correct for r in rs))
        for (s, p, proc), rs in sorted(
            cells.items(),
            key=lambda kv: (
                names.index(kv[0][0]),
                _point_order(order, kv[0][0], kv[0][1]),
                PROCESSES.index(kv[0][2]) if kv[0][2] in PROCESSES else -1,
            ),
        )
    ]
    total = f"{sum(r.correct for r in results)}/{len(results)} trials correct"
    return rows, total


def markdown(results: list[TrialResult], header: str, seconds: float) -> str:
    rows, total = table(results)
    lines = [f"# Crash matrix\n\n{header}, {seconds:.0f} s\n"]
    lines += ["| workflow | crash point | process | trials | correct |", "|---|---|---|---|---|"]
    lines += [f"| {s} | {p} | {proc} | {n} | {ok} |" for s, p, proc, n, ok in rows]
    lines += ["", f"**{total}**", ""]
    by_process = collections.Counter(r.process for r in results)
    by_scenario = collections.Counter(r.scenario for r in results)
    lines.append("trials per process: " + ", ".join(f"{k} {v}" for k, v in by_process.items()))
    lines.append("trials per workflow: " + ", ".join(f"{k} {v}" for k, v in by_scenario.items()))
    bad = [r for r in results if not r.correct]
    if bad:
        lines += ["", "## Incorrect trials", ""]
        for r in bad:
            failed = [c for c in CHECKS if not r.checks.get(c, False)]
            lines.append(f"- {r.scenario} | {r.point} | {r.process}: {failed}: {r.detail}")
    return "\n".join(lines) + "\n"


def print_table(results: list[TrialResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    rows, total = table(results)
    t = Table(title="crash matrix")
    for col in ("workflow", "crash point", "process", "trials", "correct"):
        t.add_column(col, justify="right" if col in ("trials", "correct") else "left")
    for s, p, proc, n, ok in rows:
        t.add_row(s, p, proc, str(n), str(ok) if ok == n else f"[red]{ok}[/red]")
    console = Console(width=120)
    console.print(t)
    console.print(total)


def _csv(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name, "").strip()
    return [x.strip() for x in raw.split(",") if x.strip()] if raw else default


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _down_all(root: Path) -> None:
    """Stop every stack still recorded under ``root`` (an interrupted run)."""
    from activities.settings import Settings
    from workers.devstack import down

    for state in root.iterdir():
        if (state / "stack.json").exists():
            down(Settings(state_dir=state))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ci", action="store_true", help="one trial of the CI sample")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CRASH_SEED", "0")))
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "crash-matrix.md")
    args = ap.parse_args(argv)
    scenarios = _csv("CRASH_SCENARIOS", list(SCENARIOS))
    processes = _csv("CRASH_PROCESSES", list(PROCESSES))
    trials = int(os.environ.get("CRASH_TRIALS", "1"))
    jobs = int(os.environ.get("CRASH_JOBS", "2"))
    root = Path(tempfile.mkdtemp(prefix="code-crash-"))
    t0 = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        results = asyncio.run(run(scenarios, processes, trials, jobs, args.ci, args.seed, root))
    finally:
        _down_all(root)
    seconds = time.monotonic() - t0
    print_table(results)
    header = "CI sample (--ci)" if args.ci else f"CRASH_TRIALS={trials}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(results, header, seconds))
    print(f"{seconds:.0f} s; table written to {args.out}; state dirs under {root}")
    return 0 if results and all(r.correct for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
