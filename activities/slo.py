"""Error-budget queries and governance audit records (activities).

* ``slo.error_budget`` (:class:`BudgetInput` → :class:`BudgetResult`): the remaining
  error budget of a service's SLO over its rolling window and which SRE Workbook
  burn-rate windows fire, computed by ``rust_core.burn_rates`` from per-step event
  counts. Source: Prometheus (``sum(increase(<query>[step]))`` range queries) when
  ``Settings.prometheus_url`` and the policy's queries are set, else the local
  router's request/error counts for the window. Also sets the
  ``code_error_budget_remaining`` gauge. A budget that cannot be read is
  :class:`BudgetUnavailable` (retryable: never silently "fine").
* ``audit.record`` (:class:`AuditInput` → :class:`AuditResult`): appends one record
  (approvals, overrides, aborts with the caller's identity) to the ledger's
  hash-chained audit log through ``Ledger.audit``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from temporalio import activity

from activities.platform.base import SampleSource
from activities.settings import Settings
from code_foundation.errors import ConfigError, ServerUnavailable
from code_foundation.names import A
from workflows.slo import (
    BURN_WINDOWS,
    AuditInput,
    AuditResult,
    BudgetInput,
    BudgetResult,
)

if TYPE_CHECKING:
    from activities.ledger import Ledger

_SECONDS = {"m": 60, "h": 3600, "d": 86400}


class BudgetUnavailable(ServerUnavailable):
    """The error budget could not be computed (metrics source down or failing); retry."""


def _secs(w: str) -> float:
    return float(w[:-1]) * _SECONDS[w[-1]]


def budget_from_series(
    slo: str,
    objective: float,
    window_seconds: float,
    ts: Sequence[float],
    good: Sequence[float],
    total: Sequence[float],
    now: float | None = None,
    source: str = "",
) -> BudgetResult:
    """Remaining budget + firing burn-rate windows from per-timestamp event counts."""
    import rust_core

    windows = [(_secs(lw), _secs(sw), f, sev) for sev, lw, sw, f in BURN_WINDOWS]
    if not ts:
        return BudgetResult(slo=slo, remaining=1.0, source=source)
    res = rust_core.burn_rates(
        list(ts),
        list(good),
        list(total),
        objective,
        windows=windows,
        now=now,
        budget_period=window_seconds,
    )
    firing = [
        f"{int(w.long_window)}s/{int(w.short_window)}s {w.factor}x" for w in res.windows if w.firing
    ]
    return BudgetResult(
        slo=slo,
        remaining=float(res.error_budget_remaining),
        firing=firing,
        source=source,
        events=float(sum(total)),
    )


class SloActivities:
    def __init__(
        self, settings: Settings, platform: SampleSource | None = None, ledger: Ledger | None = None
    ) -> None:
        self.settings = settings
        self._platform = platform
        self._ledger = ledger

    # ------------------------------------------------------------ error budget
    async def _prometheus_series(
        self, q: str, start: float, end: float, step: float
    ) -> dict[float, float]:
        import httpx

        url = self.settings.prometheus_url
        if not url:
            raise ConfigError("the error budget's Prometheus queries need CODE_PROMETHEUS_URL")
        headers = {}
        if self.settings.prometheus_token is not None:
            headers["Authorization"] = f"Bearer {self.settings.prometheus_token.get_secret_value()}"
        query = f"sum(increase({q}[{int(step)}s]))"
        async with httpx.AsyncClient(timeout=15.0, headers=headers) as c:
            r = await c.get(
                url.rstrip("/") + "/api/v1/query_range",
                params={"query": query, "start": start, "end": end, "step": step},
            )
            r.raise_for_status()
            result = r.json().get("data", {}).get("result", [])
        out: dict[float, float] = {}
        for series in result:
            for t, v in series["values"]:
                out[float(t)] = out.get(float(t), 0.0) + float(v)
        return out

    async def _router_series(
        self, inp: BudgetInput, start: float, end: float
    ) -> tuple[list[float], list[float], list[float]]:
        platform = self._platform
        if platform is None:
            from activities.platform.local import LocalPlatform

            platform = LocalPlatform(self.settings.agent_url)
        samples = await platform.fetch_samples(inp.service, inp.environment, start, end)
        total = float(sum(s.count for s in samples.values()))
        errors = float(sum(s.errors for s in samples.values()))
        return [end], [total - errors], [total]

    @activity.defn(name=A.BUDGET)
    async def error_budget(self, inp: BudgetInput) -> BudgetResult:
        end = time.time()
        start = end - inp.window_seconds
        try:
            if self.settings.prometheus_url and inp.good_query and inp.total_query:
                step = max(60.0, inp.window_seconds / 10000)
                good = await self._prometheus_series(inp.good_query, start, end, step)
                total = await self._prometheus_series(inp.total_query, start, end, step)
                ts = sorted(total)
                res = budget_from_series(
                    inp.slo,
                    inp.objective,
                    inp.window_seconds,
                    ts,
                    [good.get(t, 0.0) for t in ts],
                    [total[t] for t in ts],
                    now=end,
                    source="prometheus",
                )
            else:
                ts, g, t = await self._router_series(inp, start, end)
                res = budget_from_series(
                    inp.slo, inp.objective, inp.window_seconds, ts, g, t, now=end, source="router"
                )
        except Exception as exc:  # an unreadable budget is retried, never silently "fine"
            raise BudgetUnavailable(f"cannot compute the error budget of {inp.slo}: {exc}") from exc
        from activities.observability import METRICS

        METRICS.error_budget.labels(
            service=inp.service, environment=inp.environment, slo=inp.slo
        ).set(res.remaining)
        return res

    # ------------------------------------------------------------ audit
    def ledger(self) -> Ledger:
        if self._ledger is None:
            from activities.ledger import Ledger

            self._ledger = Ledger(self.settings.effective_ledger_url(), lazy=True)
        return self._ledger

    @activity.defn(name=A.AUDIT)
    async def audit(self, inp: AuditInput) -> AuditResult:
        rec = await asyncio.to_thread(
            self.ledger().audit, inp.actor, inp.action, inp.subject, inp.detail
        )
        return AuditResult(seq=rec.seq, hash=rec.hash)


def slo_activities(settings: Settings) -> list[Callable[..., Any]]:
    acts = SloActivities(settings)
    return [acts.error_budget, acts.audit]
