"""Availability against the SLO, from a real Prometheus scraping a real counter endpoint:
each scrape of the target adds 199 good and 1 failed request (``code!~"5.."`` vs ``500``),
so the availability over the window is 199/200 whatever the scrape count. Two SLOs of the
service (objectives 0.99 and 0.999) over the same counters: the first passes, the second
fails, the Reliability score is their stated fraction; without Prometheus, or without an
SLO, it is "not measured"."""

from __future__ import annotations

import http.server
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from activities.readiness import ReadinessActivities
from activities.settings import Settings
from tests.readiness.test_readiness_prometheus import start_prometheus
from tests.servers import free_port, stop_process, wait_until
from workflows.readiness_formulas import certify
from workflows.readiness_models import GatherInput, Rules

pytestmark = pytest.mark.integration

SLO = """
apiVersion: openslo/v1
kind: SLO
metadata: {{name: av-{name}}}
spec:
  service: av
  indicator:
    metadata: {{name: av-ratio}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{type: Prometheus, spec: {{query: 'av_requests_total{{code!~"5.."}}'}}}}}}
        total: {{metricSource: {{type: Prometheus, spec: {{query: 'av_requests_total'}}}}}}
  timeWindow: [{{duration: 1d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: {target}}}]
"""


class Counters(http.server.BaseHTTPRequestHandler):
    scrapes = 0

    def do_GET(self) -> None:
        Counters.scrapes += 1
        n = Counters.scrapes
        body = (
            "# TYPE av_requests_total counter\n"
            f'av_requests_total{{code="200"}} {199 * n}\n'
            f'av_requests_total{{code="500"}} {n}\n'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def gather(files: list[str]) -> GatherInput:
    now = datetime.now(UTC)
    return GatherInput(
        service="av",
        environment="dev",
        window_start=now - timedelta(days=1),
        window_end=now,
        rules=Rules(slo_files=files),
    )


async def test_availability_against_the_slo_from_prometheus(tmp_path: Path) -> None:
    slo = tmp_path / "av.yaml"
    slo.write_text(
        SLO.format(name="two-nines", target=0.99)
        + "---"
        + SLO.format(name="three-nines", target=0.999)
    )
    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Counters)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    rules = tmp_path / "none.yaml"
    rules.write_text("groups: []\n")
    proc, url = start_prometheus(tmp_path, rules, scrape=f"127.0.0.1:{port}")
    try:

        def scraped() -> bool:
            q = {"query": "count_over_time(av_requests_total[1h])"}
            r = httpx.get(url + "/api/v1/query", params=q, timeout=5).json()
            res = r["data"]["result"]
            return len(res) == 2 and all(int(x["value"][1]) >= 3 for x in res)

        wait_until(scraped, 60, "3 scrapes of the counters")
        acts = ReadinessActivities(Settings(state_dir=tmp_path, prometheus_url=url))
        part = await acts.observability(gather([str(slo)]))
    finally:
        stop_process(proc)
        srv.shutdown()
    two, three = part.observability.slos
    assert two.availability == pytest.approx(199 / 200, rel=1e-9), two.availability_error
    assert three.availability == two.availability and two.availability_events
    assert "sum(increase(av_requests_total" in two.availability_query
    cert = certify(part, Rules(), generated_at=part.window_end)
    fig = cert.figure("reliability.availability")
    assert fig is not None and fig.value == pytest.approx(0.995) and fig.ok is False
    assert "av-two-nines: 0.99500 vs objective 0.99 (pass" in fig.detail
    assert "av-three-nines: 0.99500 vs objective 0.999 (fail" in fig.detail
    assert {e.kind for e in fig.evidence} == {"prometheus", "file"}
    rel = cert.category("reliability")
    assert rel.score == 0.5 and "1 of 2 SLOs met" in rel.summary  # no chaos run: 1 / 2

    # no Prometheus configured: not measured, with the reason
    off = await ReadinessActivities(Settings(state_dir=tmp_path)).observability(gather([str(slo)]))
    c2 = certify(off, Rules(), generated_at=off.window_end)
    f2 = c2.figure("reliability.availability")
    assert f2 is not None and f2.value is None and "Prometheus not configured" in f2.detail
    assert c2.category("reliability").score is None
    # no SLO for the service: not measured
    c3 = certify(await acts.observability(gather([])), Rules(), generated_at=off.window_end)
    f3 = c3.figure("reliability.availability")
    assert f3 is not None and f3.value is None and f3.detail == "no SLO defined for the service"
