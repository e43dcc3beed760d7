"""Tracing and metrics wiring of CODE processes (worker, CLI, dev stack). Wiring only.

* Tracing (off unless ``Settings.otlp_endpoint``): :func:`init_tracing` installs a
  global OpenTelemetry ``TracerProvider`` exporting OTLP/HTTP protobuf to
  ``<endpoint>/v1/traces``; :func:`client_interceptors` returns temporalio's
  ``TracingInterceptor`` for ``Client.connect`` — a client interceptor that is also a
  worker interceptor, so a worker built on that client traces workflows and
  activities too. A deployment started by ``codectl`` reads as one trace:
  ``StartWorkflow`` → ``RunWorkflow`` → ``StartActivity`` → ``RunActivity`` →
  ``code.<activity>`` (``always_create_workflow_spans`` keeps schedule-started runs
  traced as well).
* Metrics (off unless ``Settings.metrics_port``): :func:`runtime_for` makes the
  temporalio ``Runtime`` export SDK metrics through its Prometheus endpoint on a
  loopback port (``sdk_metrics_port``, default ``metrics_port + 1``);
  :func:`start_metrics_server` serves ``/metrics`` on ``metrics_host:metrics_port``
  with the domain metrics (prometheus-client registry) followed by the SDK metrics
  fetched from that loopback endpoint, so Prometheus scrapes one target. It binds
  loopback unless ``metrics_host`` says otherwise (``0.0.0.0`` in a pod) and speaks HTTPS
  (TLS 1.2+, 1.3 preferred: :func:`workers.tls.server_context`) when
  ``metrics_tls_cert`` is set; the TLS handshake runs in the request's own thread, so a
  slow or plain-HTTP client never blocks the accept loop.
* :func:`worker_interceptors`: the domain interceptor (metrics + spans), plus the
  tracing interceptor when the client does not already carry one.
"""

from __future__ import annotations

import ssl
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from activities.settings import Settings

_runtime: Any = None
_runtime_lock = threading.Lock()
_tracing_on = False


def init_tracing(settings: Settings, provider: Any = None) -> bool:
    """Install the global tracer provider once; True when tracing is on."""
    global _tracing_on
    if _tracing_on:
        return True
    if provider is None:
        if not settings.otlp_endpoint:
            return False
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: settings.otel_service_name})
        )
        endpoint = settings.otlp_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    from opentelemetry import trace

    trace.set_tracer_provider(provider)
    _tracing_on = True
    return True


def tracing_interceptor() -> Any:
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return TracingInterceptor(always_create_workflow_spans=True)


def client_interceptors(settings: Settings) -> list[Any]:
    return [tracing_interceptor()] if init_tracing(settings) else []


def worker_interceptors(settings: Settings, client: Any = None) -> list[Any]:
    from temporalio.contrib.opentelemetry import TracingInterceptor

    from activities.observability import DomainInterceptor

    out: list[Any] = [DomainInterceptor()]
    on_client = client is not None and any(
        isinstance(i, TracingInterceptor) for i in client.config().get("interceptors", [])
    )
    if not on_client and init_tracing(settings):
        out.insert(0, tracing_interceptor())
    return out


def sdk_metrics_port(settings: Settings) -> int | None:
    if settings.metrics_port is None:
        return None
    return settings.sdk_metrics_port or settings.metrics_port + 1


def runtime_for(settings: Settings) -> Any:
    """The process' temporalio Runtime: with Prometheus SDK metrics when metrics are on."""
    global _runtime
    port = sdk_metrics_port(settings)
    if port is None:
        return None
    with _runtime_lock:
        if _runtime is None:
            from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

            _runtime = Runtime(
                telemetry=TelemetryConfig(
                    metrics=PrometheusConfig(
                        bind_address=f"127.0.0.1:{port}", durations_as_seconds=True
                    ),
                )
            )
        return _runtime


class _Handler(BaseHTTPRequestHandler):
    sdk_url: str | None = None

    def do_GET(self) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

        if self.path.split("?")[0] not in ("/metrics", "/"):
            self.send_error(404)
            return
        body = generate_latest(REGISTRY)
        if self.sdk_url:
            try:
                with urllib.request.urlopen(self.sdk_url, timeout=2) as r:  # noqa: S310 - loopback URL we built
                    body += b"\n" + r.read()
            except OSError:
                pass  # the SDK endpoint is not up yet: serve the domain metrics alone
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _TLSServer(ThreadingHTTPServer):
    ctx: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            conn = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a failed handshake (plain HTTP, TLS < 1.2) gets no answer
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()


def start_metrics_server(settings: Settings) -> ThreadingHTTPServer | None:
    """Serve /metrics (domain + SDK) in a daemon thread; None when metrics are off."""
    if settings.metrics_port is None:
        return None
    sdk = sdk_metrics_port(settings)
    handler = type(
        "Handler", (_Handler,), {"sdk_url": f"http://127.0.0.1:{sdk}/metrics" if sdk else None}
    )
    server: ThreadingHTTPServer
    if settings.metrics_tls_cert is not None:
        from workers.tls import server_context

        cert = settings.metrics_tls_cert
        server = _TLSServer((settings.metrics_host, settings.metrics_port), handler)
        server.ctx = server_context(cert, settings.metrics_tls_key or cert)
    else:
        server = ThreadingHTTPServer((settings.metrics_host, settings.metrics_port), handler)
    threading.Thread(target=server.serve_forever, name="code-metrics", daemon=True).start()
    return server


def shutdown() -> None:
    """Flush and stop the tracer provider installed by :func:`init_tracing` (if any)."""
    global _tracing_on
    if not _tracing_on:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()
    _tracing_on = False
