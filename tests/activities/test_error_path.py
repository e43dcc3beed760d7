"""The one error path of activities (:mod:`activities.interceptor`): a ``CodeError`` an
activity raises reaches the workflow as ``ApplicationError(type=<class name>,
non_retryable=not retryable)`` through a real worker; an ``ApplicationError`` passes
through unchanged; and every ``CodeError`` subclass of the project is listed in
``code_foundation.error_types`` on the side its ``retryable`` flag says."""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.interceptor import ErrorInterceptor, application_errors, mapped
from activities.platform.base import SecretResolutionFailed
from code_foundation import error_types
from code_foundation.errors import CodeError, ServerUnavailable, SpecError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "code_foundation",
    "rust_core",
    "chaos",
    "loadtest",
    "workflows",
    "activities",
    "workers",
)
RAISE = "test.error_path.raise"


@activity.defn(name=RAISE)
async def raise_kind(kind: str) -> str:
    if kind == "retryable":
        raise ServerUnavailable("the database is down; will retry")
    if kind == "fatal":
        raise SpecError("spec.yaml", ["service: field required"])
    if kind == "instance-retryable":  # the instance's own flag wins over the class's
        raise SecretResolutionFailed("vault is down", retryable=True)
    if kind == "application":
        raise ApplicationError("raised as is", type="Custom", non_retryable=True)
    return "ok"


@workflow.defn(sandboxed=False)
class RaiseWorkflow:
    @workflow.run
    async def run(self, kind: str) -> list[str]:
        try:
            await workflow.execute_activity(
                RAISE,
                kind,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            cause = err.cause
            assert isinstance(cause, ApplicationError)
            return [cause.type or "", str(cause.non_retryable), cause.message]
        return ["ok"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("retryable", ["ServerUnavailable", "False", "the database is down; will retry"]),
        (
            "fatal",
            [
                "SpecError",
                "True",
                "spec.yaml is invalid (1 problem(s)):\n  - service: field required",
            ],
        ),
        ("instance-retryable", ["SecretResolutionFailed", "False", "vault is down"]),
        ("application", ["Custom", "True", "raised as is"]),
    ],
)
async def test_worker_maps_code_errors(
    ts_env: WorkflowEnvironment,
    kind: str,
    expected: list[str],
) -> None:
    tq = f"error-path-{uuid.uuid4()}"
    async with Worker(
        ts_env.client,
        task_queue=tq,
        workflows=[RaiseWorkflow],
        activities=[raise_kind],
        interceptors=[ErrorInterceptor()],
    ):
        got = await ts_env.client.execute_workflow(
            RaiseWorkflow.run, kind, id=f"error-path-{uuid.uuid4()}", task_queue=tq
        )
    assert got == expected


async def test_mapped_keeps_message_traceback_and_cause() -> None:
    async def fails() -> None:
        try:
            raise OSError("connection refused")
        except OSError as exc:
            raise ServerUnavailable("ledger unreachable") from exc

    with pytest.raises(ApplicationError) as info:
        await mapped(fails)()
    err = info.value
    assert err.type == "ServerUnavailable" and not err.non_retryable
    assert err.message == "ledger unreachable"
    assert isinstance(err.__cause__, OSError)  # the error's own cause, not the error again
    frames = []
    tb = err.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert "fails" in frames  # the traceback still points where the error was raised


def test_other_errors_pass_through_unchanged() -> None:
    with pytest.raises(ValueError, match="not ours"), application_errors():
        raise ValueError("not ours")
    original = ApplicationError("as is", type="Custom")
    with pytest.raises(ApplicationError) as info, application_errors():
        raise original
    assert info.value is original


def _import_everything() -> None:
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        for info in pkgutil.walk_packages(mod.__path__, f"{pkg}."):
            if not info.name.endswith(".__main__"):  # entry points run when imported
                importlib.import_module(info.name)


def _subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_subclasses(sub)}
    return out


def test_every_code_error_is_listed_by_its_retryability() -> None:
    _import_everything()
    ours = {c for c in _subclasses(CodeError) if c.__module__.split(".")[0] in PACKAGES}
    assert len(ours) > 20  # the walk found the project's errors
    assert not set(error_types.RETRYABLE) & set(error_types.NON_RETRYABLE)
    wrong = []
    for cls in sorted(ours, key=lambda c: c.__name__):
        side = error_types.RETRYABLE if cls.retryable else error_types.NON_RETRYABLE
        if cls.__name__ not in side:
            where = "RETRYABLE" if cls.retryable else "NON_RETRYABLE"
            wrong.append(
                f"{cls.__module__}.{cls.__name__} (retryable={cls.retryable}): not in {where}"
            )
    assert not wrong, "\n".join(wrong)
