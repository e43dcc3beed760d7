"""rust_core: the CODE verdict engine (Rust, via the private native module ``_native``).

Contract
--------
* Every function here has a pure-Python twin with the same signature in
  ``rust_core.reference``; the two agree on random inputs (see tests/rust_core).
* Numeric inputs: numpy arrays or any C-contiguous float64 buffer are read in place
  (no copy); lists, tuples and other dtypes are converted.  Heavy work releases
  the GIL.  Bad input (empty where data is needed, NaN, mismatched lengths, wrong
  types) raises ``ValueError``/``TypeError`` whose message starts with the
  argument's name (``"x: must not be empty"``).  No Rust panic reaches Python.
* Results are frozen dataclasses with ``to_dict()`` (NaN/inf -> None).
* ``judge_version()`` / ``__version__`` is the crate version: record it with every
  verdict for provenance.

Semantics in one line each (details in each docstring and in the Rust modules):
``percentiles`` = numpy.percentile "linear"; ``Histogram`` = log-bucketed, mergeable,
relative error <= ``relative_error`` on every quantile (vs. the order statistic of
rank floor(q*(n-1))), versioned bytes (``b"CDH1"``); ``mann_whitney_u`` =
scipy.stats.mannwhitneyu; ``hodges_lehmann`` = median of x_i - y_j with the
Lehmann/Bauer interval; ``judge`` = Kayenta NetflixACAJudge semantics;
``burn_rates`` = SRE Workbook multi-window burn rates over per-timestamp event
counts; ``theil_sen`` = scipy.stats.theilslopes (method "separate");
``mann_kendall`` = Mann–Kendall S with tau-b as scipy.stats.kendalltau;
``validate_manifests`` = Kubernetes policy rules CODE000..CODE009;
``chain_hash``/``verify_chain`` = SHA-256 hash chain; ``LoadEngine`` = the native
open-model HTTP/1.1 load engine (its reference is the Python engine ``loadtest.engine``,
which lives above this package; ``loadtest.native`` drives it with the scenario model).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, cast

from rust_core import _native
from rust_core._native import Histogram, LoadEngine
from rust_core._types import (
    DEFAULT_WINDOWS,
    BurnRateResult,
    BurnWindow,
    HodgesLehmannResult,
    JudgeResult,
    MannKendallResult,
    MannWhitneyResult,
    MetricResult,
    MetricSpec,
    TheilSenResult,
    Violation,
    check_groups,
    check_mapping,
    coerce_specs,
    trend_of,
)

__all__ = [
    "DEFAULT_WINDOWS",
    "GENESIS",
    "RULES",
    "BurnRateResult",
    "BurnWindow",
    "Histogram",
    "HodgesLehmannResult",
    "LoadEngine",
    "JudgeResult",
    "MannKendallResult",
    "MannWhitneyResult",
    "MetricResult",
    "MetricSpec",
    "TheilSenResult",
    "Violation",
    "__version__",
    "burn_rates",
    "chain_hash",
    "hodges_lehmann",
    "judge",
    "judge_version",
    "mann_kendall",
    "mann_whitney_u",
    "percentiles",
    "theil_sen",
    "validate_manifests",
    "verify_chain",
]

__version__: str = _native.version()

RULES: tuple[tuple[str, str], ...] = _native.RULES
"""Manifest policy rules ``(rule_id, name)``, in order (the native table)."""

GENESIS = "0" * 64


def judge_version() -> str:
    """Version of the verdict engine (the crate version), for provenance of verdicts."""
    return __version__


def _f64(values: Any) -> Any:
    """Hand numpy arrays of other dtypes to Rust as float64 (one vectorised cast)."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(values, np.ndarray) and values.dtype != np.float64:
        if values.dtype.kind not in "biuf":
            return values  # let the native side raise the TypeError
        return np.ascontiguousarray(values, dtype=np.float64)
    return values


def percentiles(values: Any, quantiles: Sequence[float]) -> list[float]:
    """Exact percentiles (``quantiles`` in [0, 100]) as ``numpy.percentile`` (linear)."""
    return _native.percentiles(_f64(values), _f64(quantiles))


def mann_whitney_u(
    x: Any,
    y: Any,
    alternative: str = "two-sided",
    method: str = "auto",
    use_continuity: bool = True,
) -> MannWhitneyResult:
    """Mann–Whitney U test as ``scipy.stats.mannwhitneyu`` (``u`` is U of x; ``z`` NaN when exact).

    ``method="auto"`` follows scipy (exact when one sample has <= 8 values and there are
    no ties) but falls back to the asymptotic test when len(x)*len(y) > 1e7, where the
    exact table would need > 80 MB; an explicit ``method="exact"`` that large is refused.
    """
    u, p, z = _native.mann_whitney_u(_f64(x), _f64(y), alternative, method, use_continuity)
    return MannWhitneyResult(u=u, p_value=p, z=z)


def hodges_lehmann(x: Any, y: Any, confidence: float = 0.95) -> HodgesLehmannResult:
    """Hodges–Lehmann shift of x - y and its distribution-free confidence interval.

    The interval is ``[D(c), D(N+1-c)]`` over the sorted N = len(x)*len(y) differences,
    c the Mann–Whitney critical value (exact distribution when len(x) + len(y) <= 50 and
    there are no ties, tie-corrected normal approximation otherwise).  When c < 1 the
    interval is unbounded (-inf, inf).
    """
    e, lo, hi = _native.hodges_lehmann(_f64(x), _f64(y), confidence)
    return HodgesLehmannResult(estimate=e, lower=lo, upper=hi)


def judge(
    metrics: Sequence[MetricSpec | Mapping[str, Any]],
    canary: Mapping[str, Any],
    baseline: Mapping[str, Any],
    groups: Mapping[str, float] | None = None,
    pass_threshold: float = 95.0,
    marginal_threshold: float = 75.0,
    confidence: float = 0.98,
) -> JudgeResult:
    """Kayenta-style canary verdict over named metric series (see rust_core/src/judge.rs).

    A metric absent from ``canary``/``baseline`` has no data.  ``groups`` maps group
    name to weight (percent); groups without a weight share ``100 - sum(weights)``.
    """
    specs = coerce_specs(metrics)
    check_mapping(canary, "canary")
    check_mapping(baseline, "baseline")
    weights = check_groups(groups)
    c = [_f64(canary.get(s.name, ())) for s in specs]
    b = [_f64(baseline.get(s.name, ())) for s in specs]
    score, cls, reason, gs, ms = _native.judge(
        [s.as_native() for s in specs],
        c,
        b,
        weights,
        float(pass_threshold),
        float(marginal_threshold),
        float(confidence),
    )
    return JudgeResult(
        score=score,
        classification=cast(Any, cls),
        groups=dict(gs),
        metrics=[MetricResult(**m) for m in ms],
        reason=reason,
    )


def burn_rates(
    timestamps: Any,
    good: Any,
    total: Any,
    objective: float,
    windows: Sequence[tuple[float, float, float, str]] | None = None,
    now: float | None = None,
    budget_period: float = 30 * 86400.0,
) -> BurnRateResult:
    """Multi-window SLO burn rates (SRE Workbook) from per-timestamp event counts.

    ``good[i]``/``total[i]`` are the events *at* ``timestamps[i]`` (seconds), not
    cumulative counters.  A window of length w covers ``now - w < t <= now``; ``now``
    defaults to the last timestamp.  Burn rate = error ratio / (1 - objective).  A
    window pair fires when both burn rates are strictly above its factor.
    """
    ws = (
        None
        if windows is None
        else [(float(a), float(b), float(c), str(d)) for a, b, c, d in windows]
    )
    out, remaining, now_used = _native.burn_rates(
        _f64(timestamps), _f64(good), _f64(total), objective, ws, now, budget_period
    )
    wins = [BurnWindow(*w) for w in out]
    return BurnRateResult(
        windows=wins,
        error_budget_remaining=remaining,
        now=now_used,
        firing=any(w.firing for w in wins),
    )


def theil_sen(x: Any, y: Any, confidence: float = 0.95) -> TheilSenResult:
    """Theil–Sen slope of y on x with confidence bounds, as ``scipy.stats.theilslopes(y, x)``."""
    s, i, lo, hi = _native.theil_sen(_f64(x), _f64(y), confidence)
    return TheilSenResult(slope=s, intercept=i, low_slope=lo, high_slope=hi)


def mann_kendall(y: Any, x: Any = None, alpha: float = 0.05) -> MannKendallResult:
    """Mann–Kendall trend test; ``tau`` equals ``scipy.stats.kendalltau(x, y)`` (tau-b).

    ``x`` defaults to the index 0..n-1.  ``z`` is continuity-corrected with the tie-
    corrected variance; ``p_value`` is two-sided; ``trend`` uses ``alpha``.
    """
    s, tau, z, p = _native.mann_kendall(_f64(y), None if x is None else _f64(x))
    return MannKendallResult(s=s, tau=tau, z=z, p_value=p, trend=trend_of(p, z, alpha))


def validate_manifests(
    yaml_text: str,
    required_labels: Sequence[str] = (),
    rules: Sequence[str] | None = None,
) -> list[Violation]:
    """Policy violations in multi-document Kubernetes YAML (rule ids CODE000..CODE009).

    ``rules`` selects rules by id or name (default: all); parse errors (CODE000) are
    always reported.  Violations are sorted by (document, rule_id, path, message).
    """
    if not isinstance(yaml_text, str):
        raise TypeError(f"yaml_text: expected str, got {type(yaml_text).__name__}")
    if isinstance(required_labels, str):
        raise TypeError("required_labels: expected a sequence of label names, not a str")
    if isinstance(rules, str):
        raise TypeError("rules: expected a sequence of rule ids or names, not a str")
    out = _native.validate_manifests(
        yaml_text,
        [str(x) for x in required_labels],
        None if rules is None else [str(r) for r in rules],
    )
    return [Violation(*v) for v in out]


def chain_hash(prev_hash: str, payload: bytes | str) -> str:
    """``sha256(prev_hash.encode("utf-8") + payload).hexdigest()``; str payloads are UTF-8."""
    return _native.chain_hash(prev_hash, payload)


def verify_chain(
    records: Sequence[tuple[str, bytes | str, str]], genesis: str = GENESIS
) -> int | None:
    """Index of the first broken record (bad hash, or prev_hash != previous hash), else None."""
    return _native.verify_chain(records, genesis)
