"""The CODE Temporal worker: connects with the engine's settings and hosts every
workflow and activity listed in :mod:`workers.registry`. Wiring only.

Run: ``python -m workers.worker`` (or ``codectl worker``)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.interceptor import ErrorInterceptor
from activities.settings import Settings
from workers import registry
from workflows.client import connect

log = logging.getLogger("code.worker")


def build_worker(
    client: Client,
    settings: Settings,
    task_queue: str | None = None,
    activities: Sequence[Callable[..., Any]] | None = None,
    workflows: Sequence[type] | None = None,
    **kwargs: Any,
) -> Worker:
    from workers.telemetry import worker_interceptors

    acts = list(activities) if activities is not None else registry.activities(settings)
    kwargs["interceptors"] = [
        *worker_interceptors(settings, client),
        ErrorInterceptor(),  # every activity's CodeError -> ApplicationError
        *kwargs.get("interceptors", []),
    ]
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=list(workflows) if workflows is not None else registry.workflows(),
        activities=acts,
        activity_executor=ThreadPoolExecutor(max_workers=16),
        **kwargs,
    )


async def connect_from_settings(settings: Settings, *, sdk_metrics: bool = False) -> Client:
    """Connect with TLS, the payload codec and tracing from settings; ``sdk_metrics`` (the
    worker process only) also exports Temporal SDK metrics when ``metrics_port`` is set."""
    from workers import codec, telemetry
    from workers.tls import tls_config

    extra: dict[str, Any] = {"interceptors": telemetry.client_interceptors(settings)}
    runtime = telemetry.runtime_for(settings) if sdk_metrics else None
    if runtime is not None:
        extra["runtime"] = runtime
    return await connect(
        settings.temporal_address,
        settings.temporal_namespace,
        codec=codec.codec_from_settings(settings),  # payload encryption when configured
        tls=tls_config(settings),
        **extra,
    )


async def run(settings: Settings | None = None) -> None:
    settings = (settings or Settings()).apply_targets()  # allowed_targets, process-wide
    from workers.telemetry import start_metrics_server

    client = await connect_from_settings(settings, sdk_metrics=True)
    metrics = start_metrics_server(settings)  # /metrics when CODE_METRICS_PORT is set
    worker = build_worker(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
    async with worker:
        await stop.wait()
    if metrics is not None:
        metrics.shutdown()
    from workers.telemetry import shutdown as stop_tracing

    stop_tracing()  # flush the last spans
    log.info("worker stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run())


if __name__ == "__main__":
    main()
