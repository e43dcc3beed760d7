"""Benchmark rust_core against its pure-Python reference and against numpy/scipy.

One run prints one table of times and ratios measured in that run, then the issue's
targets with PASS/MISS.  Where the O(n^2) or pure-Python reference cannot finish in
reasonable time, its time is *extrapolated* from the largest size it was measured at
(n log n for sorting-based functions, linear for scans) and marked with "~"; the
target verdicts use measured ratios only.  Peak memory is the resident-set high-water
mark gained during the Rust call (Linux: /proc/self/clear_refs + VmHWM).

    python bench/bench_rust_core.py           # ~2-3 minutes on 2 cores
    python bench/bench_rust_core.py --quick   # smaller sizes, < 1 minute
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import scipy.stats as ss

import rust_core as rc
import rust_core.reference as ref
from bench.rc_timing import ROWS, fmt_t, nlogn, peak_mb, row, timeit


def bench(sizes: list[int], full: bool) -> None:
    rng = np.random.default_rng(0)

    # ---------------------------------------------------------------- percentiles
    qs = [50.0, 90.0, 99.0, 99.9]
    ref_t: dict[int, float] = {}
    for n in (10_000, 100_000):
        v = rng.lognormal(size=n)
        ref_t[n] = timeit(lambda v=v: ref.percentiles(v.tolist(), qs), 2)
    for n in sizes:
        v = rng.lognormal(size=n)
        t_r = timeit(lambda v=v: rc.percentiles(v, qs), 5 if n < 10**7 else 3)
        t_np = timeit(lambda v=v: np.percentile(v, qs), 5 if n < 10**7 else 3)
        mem = peak_mb(lambda v=v: rc.percentiles(v, qs))
        if n in ref_t:
            row("percentiles", n, t_r, ref_t[n], t_np, "numpy.percentile", mem)
        else:
            row(
                "percentiles",
                n,
                t_r,
                nlogn(ref_t[100_000], 100_000, n),
                t_np,
                "numpy.percentile",
                mem,
                True,
            )

    # ---------------------------------------------------------------- histogram
    for n in sizes:
        v = rng.lognormal(3, 1.5, size=n)
        h = rc.Histogram()
        t_r = timeit(lambda v=v, h=h: h.record_many(v), 5)
        mem = peak_mb(lambda v=v: rc.Histogram().record_many(v))
        if n <= 100_000:
            rh = ref.Histogram()
            t_ref: float | None = timeit(lambda v=v, rh=rh: rh.record_many(v.tolist()), 2)
            x = False
        else:
            rh = ref.Histogram()
            vv = v[:100_000].tolist()
            t_ref = timeit(lambda vv=vv, rh=rh: rh.record_many(vv), 1) * n / 100_000
            x = True
        row(
            "Histogram.record_many",
            n,
            t_r,
            t_ref,
            None,
            "",
            mem,
            x,
            note=f"{n / t_r / 1e6:.0f}M values/s",
        )

    # ---------------------------------------------------------------- Mann–Whitney
    ref_t = {}
    for n in (10_000, 100_000):
        x, y = rng.normal(size=n), rng.normal(0.01, 1, size=n)
        ref_t[n] = timeit(lambda x=x, y=y: ref.mann_whitney_u(x.tolist(), y.tolist()), 1)
    for n in sizes:
        x, y = rng.normal(size=n).round(3), rng.normal(0.01, 1, size=n).round(3)
        t_r = timeit(lambda x=x, y=y: rc.mann_whitney_u(x, y), 3)
        t_s = (
            timeit(lambda x=x, y=y: ss.mannwhitneyu(x, y), 3)
            if ss and (n <= 10**6 or full)
            else None
        )
        mem = peak_mb(lambda x=x, y=y: rc.mann_whitney_u(x, y))
        if n in ref_t:
            row("mann_whitney_u", n, t_r, ref_t[n], t_s, "scipy.mannwhitneyu", mem)
        else:
            row(
                "mann_whitney_u",
                n,
                t_r,
                nlogn(ref_t[100_000], 100_000, n),
                t_s,
                "scipy.mannwhitneyu",
                mem,
                True,
            )

    # ---------------------------------------------------------------- Hodges–Lehmann
    x3, y3 = rng.normal(size=1000), rng.normal(0.1, 1, size=1000)
    t_ref3 = timeit(lambda: ref.hodges_lehmann(x3.tolist(), y3.tolist()), 1)
    t_r3 = timeit(lambda: rc.hodges_lehmann(x3, y3), 3)
    row(
        "hodges_lehmann",
        1000,
        t_r3,
        t_ref3,
        None,
        "",
        peak_mb(lambda: rc.hodges_lehmann(x3, y3)),
        note="reference is O(n*m)",
    )
    for n in [s for s in sizes if s <= 10**6 or full]:
        x, y = rng.normal(size=n), rng.normal(0.01, 1, size=n)
        t_r = timeit(lambda x=x, y=y: rc.hodges_lehmann(x, y), 2 if n < 10**6 else 1)
        mem = peak_mb(lambda x=x, y=y: rc.hodges_lehmann(x, y)) if n < 10**7 else math.nan
        row(
            "hodges_lehmann",
            n,
            t_r,
            None,
            None,
            "",
            mem,
            note="reference infeasible (n*m differences)",
        )

    # ---------------------------------------------------------------- judge
    base = rng.lognormal(4, 0.3, 1000)
    can = rng.lognormal(4, 0.3, 1000) * 1.05
    spec = [{"name": "lat", "direction": "increase"}]
    t_ref = timeit(lambda: ref.judge(spec, {"lat": can.tolist()}, {"lat": base.tolist()}), 1)
    t_r = timeit(lambda: rc.judge(spec, {"lat": can}, {"lat": base}), 3)
    row(
        "judge (1 metric)",
        1000,
        t_r,
        t_ref,
        None,
        "",
        peak_mb(lambda: rc.judge(spec, {"lat": can}, {"lat": base})),
    )
    for n in [s for s in sizes if s <= 10**6]:
        b, c = rng.lognormal(4, 0.3, n), rng.lognormal(4, 0.3, n) * 1.01
        t_r = timeit(lambda b=b, c=c: rc.judge(spec, {"lat": c}, {"lat": b}), 1)
        row(
            "judge (1 metric)",
            n,
            t_r,
            None,
            None,
            "",
            peak_mb(lambda b=b, c=c: rc.judge(spec, {"lat": c}, {"lat": b})),
        )

    # ---------------------------------------------------------------- burn rates
    for n in (10_000, 1_000_000):
        t = np.sort(rng.uniform(0, 30 * 86400, n))
        tot = rng.integers(50, 150, n).astype(float)
        good = tot - rng.binomial(tot.astype(int), 0.001)
        t_r = timeit(lambda t=t, g=good, tt=tot: rc.burn_rates(t, g, tt, 0.999), 3)
        if n <= 10_000:
            t_ref = timeit(
                lambda t=t, g=good, tt=tot: ref.burn_rates(
                    t.tolist(), g.tolist(), tt.tolist(), 0.999
                ),
                1,
            )
            x = False
        else:
            k = 100_000
            t_ref = (
                timeit(
                    lambda t=t[:k], g=good[:k], tt=tot[:k]: ref.burn_rates(
                        t.tolist(), g.tolist(), tt.tolist(), 0.999
                    ),
                    1,
                )
                * n
                / k
            )
            x = True
        row(
            "burn_rates",
            n,
            t_r,
            t_ref,
            None,
            "",
            peak_mb(lambda t=t, g=good, tt=tot: rc.burn_rates(t, g, tt, 0.999)),
            x,
        )

    # ---------------------------------------------------------------- trends
    for n in (1000, 3000, 10_000):
        xs = np.arange(float(n))
        ys = 0.01 * xs + rng.normal(0, 1, n)
        t_r = timeit(lambda xs=xs, ys=ys: rc.theil_sen(xs, ys), 2)
        t_s = timeit(lambda xs=xs, ys=ys: ss.theilslopes(ys, xs), 1) if ss and n <= 3000 else None
        t_ref = (
            timeit(lambda xs=xs, ys=ys: ref.theil_sen(xs.tolist(), ys.tolist()), 1)
            if n <= 1000
            else None
        )
        row(
            "theil_sen",
            n,
            t_r,
            t_ref,
            t_s,
            "scipy.theilslopes",
            peak_mb(lambda xs=xs, ys=ys: rc.theil_sen(xs, ys)),
        )
    for n in (2000, 10_000, 1_000_000):
        ys = 0.001 * np.arange(n) + rng.normal(0, 1, n)
        t_r = timeit(lambda ys=ys: rc.mann_kendall(ys), 3)
        idx = np.arange(n)
        t_s = timeit(lambda ys=ys, idx=idx: ss.kendalltau(idx, ys), 2) if ss else None
        t_ref = timeit(lambda ys=ys: ref.mann_kendall(ys.tolist()), 1) if n <= 2000 else None
        row(
            "mann_kendall",
            n,
            t_r,
            t_ref,
            t_s,
            "scipy.kendalltau",
            peak_mb(lambda ys=ys: rc.mann_kendall(ys)),
        )

    # ---------------------------------------------------------------- manifests
    template = """apiVersion: apps/v1
kind: {kind}
metadata:
  name: svc-{i}
  namespace: prod
  labels:
    app: svc-{i}
spec:
  replicas: 3
  template:
    metadata:
      labels:
        app: svc-{i}
    spec:
      containers:
      - name: main
        image: {img}
        ports:
        - containerPort: 8080
        resources:
          requests:
            cpu: 100m
            memory: 64Mi
          limits:
            memory: 128Mi
        readinessProbe:
          httpGet:
            path: /healthz
            port: 8080
        securityContext:
          runAsNonRoot: {nonroot}
      volumes:
      - name: tmp
        emptyDir: {{}}
"""
    docs = [
        template.format(
            i=i,
            kind=["Deployment", "StatefulSet", "Job", "DaemonSet"][i % 4],
            img=["nginx:1.25", "nginx", "app:latest", "r.local:5000/app@sha256:abc"][i % 4],
            nonroot=["true", "false"][i % 2],
        )
        for i in range(10_000)
    ]
    text = "\n---\n".join(docs)
    t_r = timeit(lambda: rc.validate_manifests(text, ["app", "team"]), 3)
    t_ref = timeit(lambda: ref.validate_manifests(text, ["app", "team"]), 1, budget=60)
    row(
        "validate_manifests",
        10_000,
        t_r,
        t_ref,
        None,
        "",
        peak_mb(lambda: rc.validate_manifests(text, ["app", "team"])),
        note="reference: PyYAML pure-Python SafeLoader",
    )

    # ---------------------------------------------------------------- audit chain
    n = 100_000
    recs = []
    prev = "0" * 64
    for i in range(n):
        p = f'{{"seq": {i}, "event": "deployed"}}'
        h = ref.chain_hash(prev, p)
        recs.append((prev, p, h))
        prev = h
    t_r = timeit(lambda: rc.verify_chain(recs), 3)
    t_ref = timeit(lambda: ref.verify_chain(recs), 2)
    row(
        "verify_chain",
        n,
        t_r,
        t_ref,
        None,
        "",
        peak_mb(lambda: rc.verify_chain(recs)),
        note="records read in one C-API pass, hashed GIL-free over the cores (>=20k records)",
    )


def report(elapsed: float) -> None:
    print()
    print(
        f"{'function':<24}{'n':>10} {'rust':>11} {'reference':>12} {'numpy/scipy':>12} "
        f"{'x ref':>8} {'x np/sp':>8} {'peak MB':>8}  notes"
    )
    for r in ROWS:
        xr = "-" if r["ref"] is None else f"{'~' if r['ref_x'] else ''}{r['ref'] / r['rust']:.1f}"
        xo = "-" if r["other"] is None else f"{r['other'] / r['rust']:.2f}"
        refs = "-" if r["ref"] is None else ("~" if r["ref_x"] else "") + fmt_t(r["ref"]).strip()
        mem = "-" if math.isnan(r["mem"]) else f"{r['mem']:.1f}"
        note = r["note"] + (f" [{r['other_name']}]" if r["other"] is not None else "")
        print(
            f"{r['fn']:<24}{r['n']:>10} {fmt_t(r['rust']):>11} {refs:>12} {fmt_t(r['other']):>12} "
            f"{xr:>8} {xo:>8} {mem:>8}  {note}"
        )
    print(
        "\n'~' = reference time extrapolated from a smaller measured size (not used for verdicts)."
    )
    print("x ref / x np/sp = how many times faster rust_core is (higher is better).\n")

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    measured = [r for r in ROWS if r["ref"] is not None and not r["ref_x"]]
    worst = min(measured, key=lambda r: r["ref"] / r["rust"])
    print(
        f"target >=10x pure-Python reference (measured rows): worst {worst['ref'] / worst['rust']:.1f}x "
        f"({worst['fn']} n={worst['n']}) -> {verdict(all(r['ref'] / r['rust'] >= 10 for r in measured))}"
    )
    for r in measured:
        if r["ref"] / r["rust"] < 10:
            print(f"    MISS: {r['fn']} n={r['n']}: {r['ref'] / r['rust']:.1f}x")
    mwu = [r for r in ROWS if r["fn"] == "mann_whitney_u" and r["n"] == 10**6 and r["other"]]
    if mwu:
        x = mwu[0]["other"] / mwu[0]["rust"]
        print(f"target Mann-Whitney >=3x scipy at 1e6: {x:.2f}x -> {verdict(x >= 3)}")
    pct = [r for r in ROWS if r["fn"] == "percentiles"]
    worst_p = max(r["rust"] / r["other"] for r in pct)
    print(
        f"target percentiles within 2x of numpy.percentile: worst rust/numpy = {worst_p:.2f} -> {verdict(worst_p <= 2)}"
    )
    hist = [r for r in ROWS if r["fn"] == "Histogram.record_many" and r["n"] >= 10**6]
    best_rate = max(r["n"] / r["rust"] for r in hist) / 1e6
    low_rate = min(r["n"] / r["rust"] for r in hist) / 1e6
    print(
        f"target histogram >=50M values/s/core: {low_rate:.0f}-{best_rate:.0f}M/s (n>=1e6) -> {verdict(low_rate >= 50)}"
    )
    man = [r for r in ROWS if r["fn"] == "validate_manifests"][0]
    print(
        f"target manifests >=20x reference on 10,000: {man['ref'] / man['rust']:.1f}x -> {verdict(man['ref'] / man['rust'] >= 20)}"
    )
    print(
        f"\nload average at end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; total {elapsed:.0f}s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes 1e4/1e5/1e6 only")
    ap.add_argument("--full", action="store_true", help="also scipy MWU and HL at 1e7 (slow)")
    args = ap.parse_args()
    sizes = [10_000, 100_000, 1_000_000] if args.quick else [10_000, 1_000_000, 10_000_000]
    t0 = time.perf_counter()
    print(
        f"rust_core {rc.__version__}; numpy {np.__version__}; scipy {getattr(ss, '__name__', None) and __import__('scipy').__version__}"
    )
    bench(sizes, args.full)
    report(time.perf_counter() - t0)


if __name__ == "__main__":
    main()
