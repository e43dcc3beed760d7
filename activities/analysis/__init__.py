"""Canary analysis, one interval at a time. Two modes:

* **thresholds** (the backbone, when an ``AnalysisSpec`` has no ``metrics``): canary vs
  stable error rate and p99 latency over one window read from the local router;
  ``pass`` / ``fail`` / ``inconclusive`` (too little canary traffic) with reasons.
* **judge** (``metrics`` given): each metric is read for the canary and the baseline
  from a provider (:mod:`activities.metrics`: Prometheus or the router) and judged by
  ``rust_core.judge`` (Kayenta semantics). Pass / Marginal / Fail map to ``pass`` /
  ``marginal`` / ``fail``; no data for every metric is ``inconclusive``.

Provenance: every interval (errors included) is stored as an :class:`AnalysisRecord`
in the artifact store under :func:`record_key` — raw series, query text, judge version,
config, verdict — and only the key goes into history. :func:`rejudge_record` re-runs
the judge on a stored record (``codectl rejudge``). Metrics-backend failures raise
``MetricsError`` naming the failing query (reported as ``ApplicationError(type=<error
class>)`` by the worker's error interceptor); the workflow counts them against
``consecutive_error_limit``.

Modules: :mod:`.verdict` (pure verdict computation), :mod:`.collect` (reading metrics
and storing records: the I/O), :mod:`.record` (the provenance model)."""

from activities.analysis.collect import Collected, analyse_activity, analyse_interval, collect
from activities.analysis.record import (
    RECORD_SCHEMA,
    AnalysisRecord,
    dump_record,
    load_record,
    new_record,
    record_key,
    store_record,
)
from activities.analysis.verdict import (
    Window,
    analyse_windows,
    analysis_for,
    judge_thresholds,
    judge_values,
    metric_specs,
    p99,
    rejudge_record,
    result_from_judge,
    summarise,
    thresholds_for,
)

__all__ = [
    "RECORD_SCHEMA",
    "AnalysisRecord",
    "Collected",
    "Window",
    "analyse_activity",
    "analyse_interval",
    "analyse_windows",
    "analysis_for",
    "collect",
    "dump_record",
    "judge_thresholds",
    "judge_values",
    "load_record",
    "metric_specs",
    "new_record",
    "p99",
    "record_key",
    "rejudge_record",
    "result_from_judge",
    "store_record",
    "summarise",
    "thresholds_for",
]
