"""Evidence for readiness certificates beyond the ledger rows and journals (helpers of
:mod:`activities.readiness`):

* :func:`identity_decisions` — the audited identity decisions (``identity.<action>``
  records written by :mod:`workflows.identity_gate`) about one service/environment in the
  window: the subject names ``<service>/<environment>``; the record's ``workflow_id``
  ties it to a run.
* :func:`availability` — one SLO's measured availability over the certificate window from
  Prometheus: ``sum(increase(good[W]))`` / ``sum(increase(total[W]))`` evaluated at the
  window's end (``W`` = the window in seconds); ``None`` with the reason when Prometheus
  is not configured, has no events, or cannot be read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from activities.settings import Settings
from workflows.readiness_models import IdentityDecision, SloFacts


def identity_decisions(
    records: list[Any], service: str, environment: str, start: datetime, end: datetime
) -> list[IdentityDecision]:
    out: list[IdentityDecision] = []
    scope = f"{service}/{environment}"
    for r in records:
        ts = r.ts if r.ts.tzinfo else r.ts.replace(tzinfo=UTC)
        if not r.action.startswith("identity.") or not start <= ts <= end:
            continue
        subj = str(r.subject)
        if not (subj.startswith(scope + "@") or subj.endswith(f" on {scope}")):
            continue
        d = json.loads(r.detail_json or "{}")
        out.append(
            IdentityDecision(
                seq=r.seq,
                ts=ts,
                workflow_id=str(d.get("workflow_id", "")),
                action=r.action.removeprefix("identity."),
                actor=str(r.actor),
                allowed=d.get("decision") == "allowed",
            )
        )
    return out


def _query(q: str, seconds: int) -> str:
    if "{{window}}" in q:
        return f"sum({q.replace('{{window}}', f'{seconds}s')})"
    return f"sum(increase({q}[{seconds}s]))"


async def availability(settings: Settings, slo: SloFacts, start: datetime, end: datetime) -> None:
    """Set ``slo.availability*`` (measured, or the reason it is not)."""
    import httpx

    url = settings.prometheus_url
    if not url:
        slo.availability_error = "Prometheus not configured (CODE_PROMETHEUS_URL)"
        return
    if not (slo.good_query and slo.total_query):
        slo.availability_error = "the SLO has no good/total queries"
        return
    seconds = max(1, int((end - start).total_seconds()))
    good_q, total_q = _query(slo.good_query, seconds), _query(slo.total_query, seconds)
    slo.availability_query = f"({good_q}) / ({total_q}) @ {end.timestamp():.0f}"
    headers = {}
    if settings.prometheus_token is not None:
        headers["Authorization"] = f"Bearer {settings.prometheus_token.get_secret_value()}"
    try:
        async with httpx.AsyncClient(timeout=settings.prometheus_timeout, headers=headers) as c:
            values = []
            for q in (good_q, total_q):
                r = await c.get(
                    url.rstrip("/") + "/api/v1/query",
                    params={"query": q, "time": end.timestamp()},
                )
                r.raise_for_status()
                res = r.json()["data"]["result"]
                values.append(sum(float(x["value"][1]) for x in res))
    except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
        slo.availability_error = f"Prometheus unreadable: {type(exc).__name__}: {exc}"[:300]
        return
    good, total = values
    slo.availability_events = total
    if total <= 0:
        slo.availability_error = "no events in the window"
        return
    slo.availability = min(1.0, max(0.0, good / total))
