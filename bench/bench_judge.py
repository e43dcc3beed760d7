"""How good is the canary judge? False positives and detection on simulated canaries.

    python bench/bench_judge.py [--trials 1000] [--seed 7] [--markdown]

Each trial draws a baseline and a canary of ``n`` requests each (n = 100, 1,000,
10,000) from a realistic shape and asks four judges whether the canary is worse:

* latency (ms): a lognormal mixture (90% around 20 ms, sigma 0.35; 9.5% around 60 ms,
  sigma 0.5) plus 0.5% outliers (200..2000 ms), bucketed to 2% wide log buckets as a
  histogram reports them (so values tie), and a +3% drift over the window that baseline
  and canary share. The canary's latencies are multiplied by 1 + effect.
* errors: per-request failures at 1% for the baseline and 1% + effect points for the
  canary, read by the judge as per-second error-rate buckets of 20 requests (what the
  router provider gives it).

Judges: **CODE judge** = ``rust_core.judge`` as an analysis step configures it
(direction increase, confidence 0.98, outlier factor 3, allowed_increase 1.0; a
non-Pass metric fails the canary); **thresholds** = CODE's thresholds mode with the
default ``Thresholds`` (error rate <= 5% and <= stable + 1 point; p99 <= 1.5x stable and
> 5 ms worse); **Argo-style** = one fixed threshold on the canary alone, set with 10%
headroom over the true baseline (p95 latency <= 1.1x baseline's p95; error rate <= 2%);
**limit** = the most powerful test for the simulated family at the judge's one-sided
level 1%: a t-test on log latency, a two-proportion z-test on errors.

Effect 0 gives the false-positive rate; other effects the detection rate; "vs limit" is
the judge's detection as a fraction of the limit test's. Seeded; no timing involved."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rust_core
from activities.analysis.verdict import judge_thresholds
from workflows.spec import Thresholds

SIZES = (100, 1_000, 10_000)
LATENCY_EFFECTS = (0.0, 0.02, 0.05, 0.10, 0.20, 0.50)
ERROR_EFFECTS = (0.0, 0.001, 0.005, 0.01, 0.05)
BASE_ERROR = 0.01
BUCKET = 20  # requests per error-rate bucket (1 s at 20 req/s)
ALPHA = 0.01  # one-sided level of the judge's 98% interval
Z = 2.3263478740408408  # Phi^-1(1 - ALPHA)
LOG_BUCKET = math.log(1.02)
JUDGE = {"direction": "increase", "outlier_factor": 3.0, "allowed_increase": 1.0}
THRESHOLDS = Thresholds()


def latencies(rng: np.random.Generator, n: int, effect: float) -> np.ndarray:
    kind = rng.random(n)
    v = np.where(
        kind < 0.9, rng.lognormal(math.log(20), 0.35, n), rng.lognormal(math.log(60), 0.5, n)
    )
    out = kind > 0.995
    v[out] = rng.uniform(200, 2000, int(out.sum()))
    v *= 1.0 + 0.03 * np.linspace(0.0, 1.0, n)  # the drift both versions see
    v *= 1.0 + effect
    return np.exp(np.round(np.log(v) / LOG_BUCKET) * LOG_BUCKET)  # histogram buckets


def true_p95(rng: np.random.Generator) -> float:
    return float(np.percentile(latencies(rng, 2_000_000, 0.0), 95))


def t_test_log(c: np.ndarray, b: np.ndarray) -> bool:
    lc, lb = np.log(c), np.log(b)
    se = math.sqrt(lc.var(ddof=1) / len(lc) + lb.var(ddof=1) / len(lb))
    return se > 0 and (lc.mean() - lb.mean()) / se > Z


def z_test(ec: int, eb: int, n: int) -> bool:
    p = (ec + eb) / (2 * n)
    se = math.sqrt(p * (1 - p) * 2 / n)
    return se > 0 and (ec - eb) / n / se > Z


def code_judge(c: np.ndarray, b: np.ndarray, name: str) -> bool:
    r = rust_core.judge([{"name": name, **JUDGE}], {name: c}, {name: b}, confidence=0.98)
    return r.classification != "Pass"


def window(n: int, errors: int, lat: np.ndarray) -> dict[str, float]:
    return {
        "requests": float(n),
        "errors": float(errors),
        "error_rate": errors / n,
        "p99_ms": float(np.percentile(lat, 99)),
    }


def latency_trial(rng: np.random.Generator, n: int, effect: float, p95: float) -> list[bool]:
    b, c = latencies(rng, n, 0.0), latencies(rng, n, effect)
    cw, bw = window(n, 0, c), window(n, 0, b)
    return [
        code_judge(c, b, "latency_ms"),
        judge_thresholds(cw, bw, THRESHOLDS)[0] == "fail",
        float(np.percentile(c, 95)) > 1.1 * p95,
        t_test_log(c, b),
    ]


def error_trial(rng: np.random.Generator, n: int, effect: float) -> list[bool]:
    fb = rng.random(n) < BASE_ERROR
    fc = rng.random(n) < BASE_ERROR + effect
    k = n // BUCKET
    rb = fb[: k * BUCKET].reshape(k, BUCKET).mean(axis=1)
    rc = fc[: k * BUCKET].reshape(k, BUCKET).mean(axis=1)
    lat = np.full(n, 20.0)
    ec, eb = int(fc.sum()), int(fb.sum())
    return [
        code_judge(rc, rb, "error_rate"),
        judge_thresholds(window(n, ec, lat), window(n, eb, lat), THRESHOLDS)[0] == "fail",
        ec / n > BASE_ERROR + 0.01,
        z_test(ec, eb, n),
    ]


JUDGES = ("CODE judge", "thresholds", "Argo-style", "limit")


def run(trials: int, seed: int) -> list[dict[str, Any]]:
    rows = []
    p95 = true_p95(np.random.default_rng(seed))
    for kind, effects in (("latency", LATENCY_EFFECTS), ("errors", ERROR_EFFECTS)):
        for n in SIZES:
            for e in effects:
                rng = np.random.default_rng([seed, n, int(e * 10_000), kind == "errors"])
                hits = np.zeros(len(JUDGES))
                for _ in range(trials):
                    r = (
                        latency_trial(rng, n, e, p95)
                        if kind == "latency"
                        else error_trial(rng, n, e)
                    )
                    hits += r
                rows.append(
                    {
                        "kind": kind,
                        "n": n,
                        "effect": e,
                        **dict(zip(JUDGES, hits / trials, strict=True)),
                    }
                )
    return rows


def effect_label(kind: str, e: float) -> str:
    if e == 0:
        return "0 (FPR)"
    return f"+{e:.0%}" if kind == "latency" else f"+{e * 100:g} pt"


def table(rows: list[dict[str, Any]], trials: int) -> list[str]:
    out = [
        f"| metric | n/side | effect | {' | '.join(JUDGES)} | CODE judge vs limit |",
        "|---|---:|---:|" + "---:|" * (len(JUDGES) + 1),
    ]
    for r in rows:
        lim = r["limit"]
        ratio = "-" if r["effect"] == 0 or lim == 0 else f"{r['CODE judge'] / lim:.2f}"
        out.append(
            f"| {r['kind']} | {r['n']:,} | {effect_label(r['kind'], r['effect'])} | "
            + " | ".join(f"{r[j]:.1%}" for j in JUDGES)
            + f" | {ratio} |"
        )
    out.append(f"\n{trials:,} seeded trials per cell.")
    return out


def targets(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    fpr = max(r["CODE judge"] for r in rows if r["effect"] == 0)
    out.append(
        f"CODE judge false-positive rate <= 1% at effect 0: worst {fpr:.2%} -> {'PASS' if fpr <= 0.01 else 'MISS'}"
    )
    d = next(r for r in rows if r["kind"] == "latency" and r["n"] == 1000 and r["effect"] == 0.10)
    out.append(
        f"detection >= 95% at +10% latency, 1,000/side: {d['CODE judge']:.1%} -> "
        f"{'PASS' if d['CODE judge'] >= 0.95 else 'MISS'}"
    )
    short = [
        r for r in rows if r["effect"] > 0 and r["limit"] > 0 and r["CODE judge"] < 0.9 * r["limit"]
    ]
    cells = sum(1 for r in rows if r["effect"] > 0)
    verdict = "PASS" if not short else f"MISS in {len(short)} of {cells} cells"
    out.append(f"power >= 0.9x the limit test at every effect size: {verdict}")
    for r in short:
        out.append(
            f"  below: {r['kind']} n={r['n']:,} {effect_label(r['kind'], r['effect'])}: "
            f"{r['CODE judge']:.1%} vs limit {r['limit']:.1%}"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    t0 = time.monotonic()
    rows = run(a.trials, a.seed)
    print("\n".join(table(rows, a.trials)))
    print()
    print("\n".join(targets(rows)))
    print(f"\ntotal wall time {time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    main()
